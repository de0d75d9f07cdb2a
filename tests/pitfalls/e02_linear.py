"""Lesson 2's pitfalls: Linear layers and initialisation."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant

T = "tests/test_linear.py::"

MUTANTS = [
    Mutant(
        "x @ W instead of x @ W.T",
        "return input @ weight.T if bias is None else input @ weight.T + bias",
        "return input @ weight if bias is None else input @ weight + bias",
        "x @ W.T",
        (T + "test_linear_matches_torch",),
    ),
    Mutant(
        "Storing W as (in_features, out_features)",
        "self.weight = Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))",
        "self.weight = Parameter(torch.empty(in_features, out_features, device=device, dtype=dtype))",
        "(out_features, in_features)",
        (T + "test_linear_matches_torch",),
    ),
    Mutant(
        "Using out_features (fan_out) for the default bound",
        "init.kaiming_uniform_(self.weight, a=math.sqrt(5))",
        "init.kaiming_uniform_(self.weight, a=math.sqrt(5), mode='fan_out')",
        "uses out_features",
        (T + "test_default_init_is_torchs_uniform",),
    ),
    Mutant(
        "Using out_features (fan_out) for the default bound",
        "init.kaiming_uniform_(self.weight, a=math.sqrt(5))",
        "init.kaiming_normal_(self.weight, a=math.sqrt(5))",
        "normally distributed",
        (T + "test_default_init_is_torchs_uniform",),
    ),
    Mutant(
        "Forgetting self.bias entirely when bias=False",
        '        else:\n            self.register_parameter("bias", None)\n',
        "",
        "no attribute 'bias'",
        (T + "test_linear_matches_torch",),
    ),
    Mutant(
        "Creating tensors without device= and dtype=",
        "self.weight = Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))",
        "self.weight = Parameter(torch.empty(out_features, in_features))",
        "with device=device, dtype=dtype",
        (T + "test_linear_defaults_and_attributes",),
    ),
]
