"""Lesson 10's pitfalls: GPT, its KV cache and sampling."""

from pitfalls import Mutant

T = "tests/test_gpt.py::"

MUTANTS = [
    Mutant(
        'x = self.attn(self.ln_1(x)) without "x +"',
        "x = x + self.attn(self.ln_1(x), cache)",
        "x = self.attn(self.ln_1(x), cache)",
        "with a residual stream",
        (T + "test_logits_match_the_torch_twin_and_a_cached_chunk_matches_the_full_pass",),
    ),
    Mutant(
        "Post-LN by accident",
        "x = x + self.attn(self.ln_1(x), cache)\n        return x + self.mlp(self.ln_2(x))",
        "x = self.ln_1(x + self.attn(x, cache))\n        return self.ln_2(x + self.mlp(x))",
        "pre-LN",
        (T + "test_logits_match_the_torch_twin_and_a_cached_chunk_matches_the_full_pass",),
    ),
    Mutant(
        "Tying with a copy",
        "self.transformer.wte.weight = self.lm_head.weight",
        "self.transformer.wte.weight = nn.Parameter(self.lm_head.weight.detach().clone())",
        "must BE transformer.wte.weight",
        (T + "test_lm_head_is_tied_to_the_token_embedding",),
    ),
    Mutant(
        "A KV cache with the new token at position 0 instead of past",
        "positions = torch.arange(past, past + length, device=idx.device)",
        "positions = torch.arange(0, length, device=idx.device)",
        "position embedding p",
        (T + "test_cached_and_uncached_generation_agree",),
    ),
    Mutant(
        "A KV cache with the new token at position 0 instead of past",
        "causal_mask(q.shape[-2], k.shape[-2], offset=past, device=x.device)",
        "causal_mask(q.shape[-2], k.shape[-2], device=x.device)",
        "needs offset=past",
        (T + "test_logits_match_the_torch_twin_and_a_cached_chunk_matches_the_full_pass",),
    ),
    Mutant(
        "top_p that keeps its mask in sorted order",
        "drop = drop_sorted.scatter(-1, order, drop_sorted)",
        "drop = drop_sorted",
        "put back in vocabulary order",
        (T + "test_sample_top_p_keeps_the_smallest_nucleus",),
    ),
    Mutant(
        "top_p that keeps its mask in sorted order",
        "drop_sorted = probs.cumsum(dim=-1) - probs >= top_p",
        "drop_sorted = probs.cumsum(dim=-1) > top_p",
        "the token that crosses p stays",
        (T + "test_sample_top_p_keeps_the_smallest_nucleus",),
    ),
]
