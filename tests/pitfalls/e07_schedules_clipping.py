"""Lesson 7's pitfalls: learning-rate schedules and gradient clipping."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

S, C = "tests/test_lr_scheduler.py::", "tests/test_clip_grad.py::"

MUTANTS = [
    Mutant(
        "Clipping each gradient by its own norm",
        "    for g in grads:\n        g.mul_(scale.to(g.device))",
        "    for g, norm in zip(grads, norms):\n"
        "        g.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))",
        "clipped by its own norm",
        (C + "test_clip_grad_norm_matches_torch",),
    ),
    Mutant(
        "Calling scheduler.step() before optimizer.step()",
        "base_lr * fn(self.last_epoch)",
        "base_lr * fn(self.last_epoch + 1)",
        "the first lr is skipped",
        (S + "test_lambda_lr_matches_torch",),
    ),
    Mutant(
        "Warmup that starts at lr = base_lr / w instead of 0",
        "            return step / self.warmup_steps\n",
        "            return (step + 1) / self.warmup_steps\n",
        "warmup should start from 0",
        (S + "test_warmup_schedule_matches_formula",),
    ),
    Mutant(
        "Warmup that starts at lr = base_lr / w instead of 0",
        "(step - self.warmup_steps) / decay_steps",
        "step / decay_steps",
        "measured from the end of warmup",
        (S + "test_warmup_schedule_matches_formula",),
    ),
    Mutant(
        'Multiplying group["lr"] by the factor each step',
        "base_lr * fn(self.last_epoch)\n"
        "            for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)",
        'group["lr"] * fn(self.last_epoch)\n'
        "            for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups, strict=True)",
        "not the current lr",
        (S + "test_warmup_schedule_matches_formula",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Clipping the parameters instead of the gradients",
        "the marked region of clip_grad_norm_ only sees the gradients (the given _with_grads "
        "collects them), so it cannot clip the parameters; and clipping before backward() is "
        "an order mistake in a training loop (lesson 18), not in this lesson's code",
    ),
]
