"""Lesson 21's pitfalls: freezing, parameter groups and gradual unfreezing."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_finetune.py::"

MUTANTS = [
    Mutant(
        "requires_grad=False but the old .grad kept",
        "            param.grad = None  # else the optimizer would still step it (and decay it)\n",
        "",
        "drop its gradient",
        (T + "test_frozen_parameters_do_not_change_under_adamw_with_weight_decay",),
    ),
    Mutant(
        "Building the optimizer over the trainable parameters only",
        "    for name, param in named:\n",
        "    for name, param in [(n, p) for n, p in named if p.requires_grad]:\n",
        "never trains what is unfrozen later",
        (T + "test_weight_decay_only_on_matrices_and_every_parameter_grouped",),
    ),
    Mutant(
        "Weight decay on biases and norm gains",
        "decay = decays(param) and not any(fnmatchcase(name, glob) for glob in no_decay)",
        "decay = not any(fnmatchcase(name, glob) for glob in no_decay)",
        "a bias or a norm gain",
        (T + "test_weight_decay_only_on_matrices_and_every_parameter_grouped",),
    ),
    Mutant(
        "The decay exponent backwards",
        "group_lr = lr * layer_decay ** (num_layers + 1 - layer)  # the head: lr itself",
        "group_lr = lr * layer_decay**layer",
        "grow towards the input",
        (T + "test_layer_decay_matches_the_formula",),
    ),
    Mutant(
        "The decay exponent backwards",
        "group_lr = lr * layer_decay ** (num_layers + 1 - layer)  # the head: lr itself",
        "group_lr = lr * layer_decay ** (num_layers - layer)",
        "exactly lr",
        (T + "test_layer_decay_matches_the_formula",),
    ),
    Mutant(
        "Gradual unfreezing that only ever unfreezes",
        "        if rest:\n"
        "            freeze(self.model, *rest)  # also what a later stage had unfrozen: a pure function\n",
        "",
        "freeze what later stages had unfrozen",
        (T + "test_gradual_unfreezing_is_a_pure_function_of_the_step",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Freezing a CNN's weights but not its batch norm statistics",
        "keeping the batch norms in eval mode is linear_probe's job, which is given code (no "
        "marked region of this lesson); test_linear_probe_trains_the_head_and_keeps_batch_norm_"
        "statistics checks it",
    ),
]
