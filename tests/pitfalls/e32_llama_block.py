"""Lesson 32's pitfalls: the Llama block."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_llama.py::"
LAYER = (T + "test_a_layer_whose_branches_add_nothing_passes_x_through",)

MUTANTS = [
    Mutant(
        "GQA with k.repeat(1, group, 1, 1)",
        "        q = q.unflatten(1, (self.n_kv_head, group))\n"
        "        k, v = k.unsqueeze(2), v.unsqueeze(2)\n"
        "        mask = None  # a single new query (generation with a cache) sees every key\n"
        "        if q.shape[-2] > 1:\n"
        "            mask = causal_mask(q.shape[-2], k.shape[-2], offset=past, device=x.device)\n"
        "        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n"
        "        y = y.flatten(1, 2).transpose(1, 2).flatten(-2)  # (B, H, T, D) -> (B, T, H·D)\n",
        "        k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)\n"
        "        mask = None\n"
        "        if q.shape[-2] > 1:\n"
        "            mask = causal_mask(q.shape[-2], k.shape[-2], offset=past, device=x.device)\n"
        "        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)\n"
        "        y = y.transpose(1, 2).flatten(-2)\n",
        "KV head h // group",
        (T + "test_query_head_h_reads_key_value_head_h_over_group",),
    ),
    Mutant(
        "SwiGLU with the SiLU on up_proj instead of gate_proj",
        "F.silu(self.gate_proj(x)) * self.up_proj(x)",
        "self.gate_proj(x) * F.silu(self.up_proj(x))",
        "the SiLU goes on gate_proj's output",
        (T + "test_mlp_is_hugging_faces_swiglu",),
    ),
    Mutant(
        "SwiGLU with the SiLU on up_proj instead of gate_proj",
        "F.silu(self.gate_proj(x)) * self.up_proj(x)",
        "F.silu(self.gate_proj(x) * self.up_proj(x))",
        "the SiLU goes on gate_proj's output",
        (T + "test_mlp_is_hugging_faces_swiglu",),
    ),
    Mutant(
        "Rotating with offset 0 when a cache holds past tokens",
        "q, k = rotary(q, k, offset=past)  # positions",
        "q, k = rotary(q, k, offset=0)  # positions",
        "offset = the tokens already in the cache",
        (T + "test_cached_greedy_generation_equals_uncached_and_hugging_face",),
    ),
    Mutant(
        'A residual step without "x +"',
        "x = x + self.self_attn(self.input_layernorm(x), rotary, cache)",
        "x = self.self_attn(self.input_layernorm(x), rotary, cache)",
        'keep the "x +"',
        LAYER,
    ),
    Mutant(
        'A residual step without "x +"',
        "return x + self.mlp(self.post_attention_layernorm(x))",
        "return self.post_attention_layernorm(x + self.mlp(x))",
        "post-norm",
        LAYER,
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "RoPE pairing",
        "the rotation is nn.RotaryEmbedding (lesson 9) and the GGUF row permutation "
        "models.weights.rope_rows_to_half, both outside this lesson's regions; test_llama.py's "
        "reference-only tests check the permutation against interleaved RoPE",
    ),
    NotAMutant(
        "RMSNorm's ε outside the square root",
        "RMSNorm is nn.RMSNorm (lesson 5), outside this lesson's regions; its own tests compare it "
        "with torch's",
    ),
]
