"""Lesson 25's pitfalls: activation checkpointing."""

from pitfalls import Mutant, NotAMutant

T = "tests/test_recompute.py::"

MUTANTS = [
    Mutant(
        "Returning the recomputed outputs' .grad instead of the inputs'",
        "input_grads = [a.grad if isinstance(a, torch.Tensor) else None for a in args]",
        "input_grads = [o.grad if isinstance(o, torch.Tensor) else None for o in outputs]",
        "the .grad of the detached INPUTS",
        (T + "test_checkpointed_block_gives_the_same_gradients",),
    ),
    Mutant(
        "Forgetting the random state",
        "            torch.set_rng_state(ctx.rng_state)\n",
        "",
        "restore the forward's random state",
        (T + "test_checkpointed_block_gives_the_same_gradients",),
    ),
    Mutant(
        "Recomputing without torch.enable_grad()",
        "            with torch.enable_grad():\n                outputs = ctx.function(*args)\n",
        "            outputs = ctx.function(*args)\n",
        "torch.enable_grad()",
        (T + "test_checkpointed_block_gives_the_same_gradients",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Blocks that change their inputs in place",
        "a property of the block being checkpointed (the learner's model), not of the "
        "checkpoint Function this lesson writes",
    ),
]
