"""Lesson 6's pitfalls: SGD and AdamW."""

from pitfalls import Mutant

T = "tests/test_optim.py::"

MUTANTS = [
    Mutant(
        "p = p − lr * g rebinds a local name",
        "param.add_(grad, alpha=-lr)",
        "param = param - lr * grad",
        "only rebinds a local name",
        (T + "test_sgd_matches_torch",),
    ),
    Mutant(
        "Forgetting to skip parameters whose grad is None",
        "                if param.grad is None:\n"
        "                    continue\n"
        '                grad = -param.grad if group["maximize"] else param.grad\n'
        '                if group["weight_decay"]',
        '                grad = -param.grad if group["maximize"] else param.grad\n'
        '                if group["weight_decay"]',
        "whose .grad is None",
        (T + "test_parameter_without_gradient_is_skipped",),
    ),
    Mutant(
        "AdamW's decay added to the gradient",
        "param.mul_(1 - lr * weight_decay)",
        "grad = grad.add(param, alpha=weight_decay)",
        "adam with an l2 penalty",
        (T + "test_adamw_matches_torch",),
    ),
    Mutant(
        "No bias correction",
        "bias_correction1 = 1 - beta1**step\n                bias_correction2 = 1 - beta2**step",
        "bias_correction1 = bias_correction2 = 1.0",
        "bias correction missing",
        (T + "test_adamw_matches_torch",),
    ),
    Mutant(
        "ε inside the square root",
        "denom = exp_avg_sq.sqrt().div_(math.sqrt(bias_correction2)).add_(eps)",
        "denom = exp_avg_sq.div(bias_correction2).add_(eps).sqrt_()",
        "eps is inside the square root",
        (T + "test_adamw_matches_torch",),
    ),
    Mutant(
        "A momentum buffer that starts at zeros",
        'buffer = state["momentum_buffer"] = grad.detach().clone()',
        'buffer = state["momentum_buffer"] = grad.detach() * (1 - dampening)',
        "the first step was dampened",
        (T + "test_sgd_matches_torch",),
    ),
]
