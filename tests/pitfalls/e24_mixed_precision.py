"""Lesson 24's pitfalls: mixed precision and the loss scaler."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_precision.py::"

MUTANTS = [
    Mutant(
        "Stepping on still-scaled gradients",
        "                grad.mul_(inv_scale.to(grad.device))\n",
        "                pass\n",
        "S times too far",
        (T + "test_scaler_matches_torch_grad_scaler",),
    ),
    Mutant(
        "Not skipping an inf step",
        "        if self.last_step_skipped:\n            return None  # the parameters stay as they were\n",
        "",
        "must be skipped",
        (T + "test_scaler_matches_torch_grad_scaler",),
    ),
    Mutant(
        "Not resetting the growth counter after a skip",
        "            self._growth_tracker = 0  # growth needs growth_interval good steps IN A ROW\n",
        "",
        "set the growth counter back to 0",
        (T + "test_scaler_matches_torch_grad_scaler",),
    ),
    Mutant(
        "loss * 65536.0 on an fp16 loss overflows",
        "return outputs * scale  # the 0-dim float32 tensor, not a Python float (see above)",
        "return outputs * scale.item()",
        "0-dim float32 tensor",
        (T + "test_scale_multiplies_like_torch",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Unscaling twice",
        "whether unscale_ already ran this step is tracked by given code (self._state and "
        'step()\'s `if state["stage"] == "ready"`, outside the marked regions), so no edit of '
        "the regions unscales twice",
    ),
    NotAMutant(
        "Clipping before unscale_",
        "an order mistake in a training step (lesson 18's Trainer), not in the scaler this "
        "lesson writes",
    ),
    NotAMutant(
        "Converting the model with .half()",
        "a mistake in how a model is prepared for training, not in autocast or the scaler; "
        "autocast's region keeps parameters float32 by construction",
    ),
    NotAMutant(
        "Saving checkpoints without the scaler's state_dict()",
        "the scaler's state_dict/load_state_dict are given code, and saving it is the "
        "Trainer's checkpoint (lesson 18), not a marked region of this lesson",
    ),
]
