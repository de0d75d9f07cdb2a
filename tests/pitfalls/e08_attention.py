"""Lesson 8's pitfalls: attention."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant

T = "tests/test_attention.py::"

MUTANTS = [
    Mutant(
        "Scaling by 1/d instead of 1/√d",
        "scores = scores.to(compute).mul_(scale)",
        "scores = scores.to(compute).div_(query.shape[-1])",
        "1/d",
        (T + "test_sdpa_matches_torch",),
    ),
    Mutant(
        "softmax over the queries (dim=-2)",
        "    row_max = scores.amax(-1, keepdim=True)\n"
        "    row_max.masked_fill_(torch.isinf(row_max), 0.0)  # a row of −inf has max −inf: use 0\n"
        "    weights = exp_(scores.sub_(row_max))  # exp(−inf) = 0\n"
        "    total = weights.sum(-1, keepdim=True)",
        "    row_max = scores.amax(-2, keepdim=True)\n"
        "    row_max.masked_fill_(torch.isinf(row_max), 0.0)\n"
        "    weights = exp_(scores.sub_(row_max))\n"
        "    total = weights.sum(-2, keepdim=True)",
        "softmax ran over the queries",
        (T + "test_sdpa_matches_torch",),
    ),
    Mutant(
        "A causal mask that hides the diagonal",
        ".tril(offset)",
        ".tril(offset - 1)",
        "let a token see itself",
        (T + "test_causal_mask",),
    ),
    Mutant(
        "A causal mask that hides the diagonal",
        ".tril(offset)",
        ".triu(offset + 1)",
        "True where attention is ALLOWED",
        (T + "test_sdpa_matches_torch",),
    ),
    Mutant(
        'masked_fill(mask, −inf) with a "True = allowed" mask',
        'zeros.masked_fill(~attn_mask, float("-inf"))',
        'zeros.masked_fill(attn_mask, float("-inf"))',
        "polarity is inverted",
        (T + "test_sdpa_matches_torch",),
    ),
    Mutant(
        "NaN for a fully masked row",
        "    row_max.masked_fill_(torch.isinf(row_max), 0.0)  # a row of −inf has max −inf: use 0\n",
        "",
        "not NaN",
        (T + "test_masked_softmax",),
    ),
    Mutant(
        '"b t (d h)" instead of "b t (h d)"',
        'rearrange(x, "b t (h d) -> b h t d", h=self.num_heads)',
        'rearrange(x, "b t (d h) -> b h t d", h=self.num_heads)',
        "contiguous block",
        (T + "test_multihead_attention_matches_torch",),
    ),
    Mutant(
        "key_padding_mask read like scaled_dot_product_attention's mask",
        "~key_padding_mask if key_padding_mask.dtype == torch.bool else key_padding_mask",
        "key_padding_mask",
        "True where a key is PADDING",
        (T + "test_multihead_attention_matches_torch",),
    ),
]
