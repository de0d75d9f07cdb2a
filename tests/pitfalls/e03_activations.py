"""Lesson 3's pitfalls: activations, softmax and log-softmax."""

from pitfalls import Mutant

T = "tests/test_activation.py::"

MUTANTS = [
    Mutant(
        "softmax without subtracting the max",
        "exp = torch.exp(shifted)",
        "exp = torch.exp(input)",
        "subtract the max along dim",
        (T + "test_softmax_matches_torch",),
    ),
    Mutant(
        "log(softmax(x)) instead of log-softmax",
        "return shifted - torch.log(torch.exp(shifted).sum(dim, keepdim=True))",
        "return torch.log(torch.exp(shifted) / torch.exp(shifted).sum(dim, keepdim=True))",
        "looks like log(softmax(x))",
        (T + "test_softmax_matches_torch",),
    ),
    Mutant(
        "relu via x * (x > 0) is fine",
        "output = input.clamp_min(0)",
        "output = torch.max(input, 0).values",
        "works elementwise",
        (T + "test_elementwise_matches_torch",),
    ),
    Mutant(
        "GELU's tanh form",
        "mul_(math.sqrt(2.0 / math.pi))",
        "mul_(math.sqrt(2.0 * math.pi))",
        "sqrt(2/pi)",
        (T + "test_gelu_approximations_match_torch",),
    ),
    Mutant(
        "GELU's tanh form",
        "0.044715 * input**3",
        "0.044715 * input**2",
        "x³, not x²",
        (T + "test_gelu_approximations_match_torch",),
    ),
    Mutant(
        "A backward that returns dy/dx instead of dy · dy/dx",
        "return derivative.mul_(grad_output), None",
        "return derivative, None",
        "forgot to multiply by the incoming gradient",
        (T + "test_elementwise_at_extreme_inputs",),
    ),
    Mutant(
        "GELU's gate as y / x without the case x = 0",
        "derivative.addcdiv_(y, x).nan_to_num_(nan=0.5)",
        "derivative.addcdiv_(y, x)",
        "at x = 0",
        (T + "test_gradient_at_exactly_zero_matches_torch",),
    ),
    Mutant(
        "nan_to_num_ over a whole gradient",
        "derivative.addcmul_(x, x.new_zeros(()))",
        "derivative.add_(0.0)",
        "a NaN input must get torch's gradient",
        (T + "test_nan_input_matches_torch",),
    ),
    Mutant(
        "ReLUFunction's backward as dy · [y > 0]",
        "return grad_output * (output <= 0).logical_not_()",
        "return grad_output * (output > 0)",
        "a NaN input must get torch's gradient",
        (T + "test_nan_input_matches_torch",),
    ),
    Mutant(
        "tanh as (e^x − e^(−x)) / (e^x + e^(−x)) directly",
        "magnitude = -torch.expm1(2 * negative_abs) / (1 + torch.exp(2 * negative_abs))\n"
        "    return torch.where(input >= 0, magnitude, -magnitude)",
        "return (input.exp() - (-input).exp()) / (input.exp() + (-input).exp())",
        "NaN/inf",
        (T + "test_elementwise_matches_torch",),
    ),
    Mutant(
        "torch.abs(x) or torch.sign(x) in sigmoid or tanh",
        "z = torch.exp(torch.where(input >= 0, -input, input))",
        "z = torch.exp(-torch.abs(input))",
        "at x = 0",
        (T + "test_gradient_at_exactly_zero_matches_torch",),
    ),
    Mutant(
        "torch.abs(x) or torch.sign(x) in sigmoid or tanh",
        "negative_abs = torch.where(input >= 0, -input, input)",
        "negative_abs = -torch.abs(input)",
        "at x = 0",
        (T + "test_gradient_at_exactly_zero_matches_torch",),
    ),
    Mutant(
        "Reducing over the wrong dim",
        "shifted = input - input.amax(dim, keepdim=True).detach()\n"
        "    exp = torch.exp(shifted)\n"
        "    return exp / exp.sum(dim, keepdim=True)",
        "shifted = input - input.amax(-1, keepdim=True).detach()\n"
        "    exp = torch.exp(shifted)\n"
        "    return exp / exp.sum(-1, keepdim=True)",
        "wrong dim",
        (T + "test_softmax_matches_torch",),
    ),
]
