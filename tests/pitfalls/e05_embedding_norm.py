"""Lesson 5's pitfalls: embeddings, LayerNorm, RMSNorm and dropout."""

from pitfalls import Mutant

E, N, D = "tests/test_embedding.py::", "tests/test_norm.py::", "tests/test_dropout.py::"

MUTANTS = [
    Mutant(
        "x.var() is the unbiased variance",
        "variance = (centered * centered).mean(dims, keepdim=True)  # biased: divide by N",
        "variance = x.var(dims, keepdim=True)",
        "unbiased variance",
        (N + "test_layer_norm_matches_torch",),
    ),
    Mutant(
        "ε added after the square root",
        "rstd = torch.rsqrt(variance + eps)",
        "rstd = 1 / (variance.sqrt() + eps)",
        "eps belongs inside the square root",
        (N + "test_layer_norm_matches_torch",),
    ),
    Mutant(
        "ε added after the square root",
        "centered = x - x.mean(dims, keepdim=True)\n"
        "        variance = (centered * centered).mean(dims, keepdim=True)",
        "centered = x - x.mean(0, keepdim=True)\n"
        "        variance = (centered * centered).mean(0, keepdim=True)",
        "not over the batch axis",
        (N + "test_layer_norm_matches_torch",),
    ),
    Mutant(
        "RMSNorm that subtracts the mean",
        "output = input * torch.rsqrt((input * input).mean(dims, keepdim=True) + eps)",
        "input = input - input.mean(dims, keepdim=True)\n"
        "    output = input * torch.rsqrt((input * input).mean(dims, keepdim=True) + eps)",
        "does not subtract the mean",
        (N + "test_rms_norm_matches_torch",),
    ),
    Mutant(
        "Dropout that also drops in eval mode",
        "if not training or p == 0.0:",
        "if p == 0.0:",
        "eval mode",
        (D + "test_eval_mode_and_training_false_are_identity",),
    ),
    Mutant(
        "Dropout that also drops in eval mode",
        "return input * keep * (1.0 / (1.0 - p))",
        "return input * keep * (1.0 - p)",
        "not multiplied by it",
        (D + "test_functional_dropout_statistics",),
    ),
    Mutant(
        "The padding row receiving gradient",
        "        if ctx.padding_idx is not None:\n            grad_weight[ctx.padding_idx] = 0\n",
        "",
        "padding_idx row got a gradient",
        (E + "test_embedding_matches_torch",),
    ),
    Mutant(
        "The padding row receiving gradient",
        "            with torch.no_grad():\n                self.weight[self.padding_idx].fill_(0)",
        "            pass",
        "initialised to zeros",
        (E + "test_default_init_with_padding_zeroes_only_that_row",),
    ),
]
