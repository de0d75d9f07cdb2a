"""Lesson 32: The modern block -- RMSNorm, RoPE, grouped-query attention and SwiGLU

From GPT-2 to Llama
Lesson 10's GPT-2 block is the 2019 transformer: LayerNorm, learned position embeddings added
to the tokens, one key and one value head per query head, a GELU MLP, biases everywhere. Nearly
every open model since Llama (2023) -- SmolLM2, Mistral, Qwen -- keeps its shape and
swaps four parts. This lesson writes that block in minimod/models/llama.py, with Hugging Face's
key names (model.layers.0.self_attn.q_proj.weight, ...), so its state_dict loads as is:
    input_ids (B, T) -> model.embed_tokens (B, T, C)           no position embedding at all
    n_layer × LlamaDecoderLayer:
        x = x + self_attn(input_layernorm(x), rotary, cache)   RMSNorm, RoPE, GQA
        x = x + mlp(post_attention_layernorm(x))                RMSNorm, SwiGLU
    model.norm (RMSNorm) -> lm_head (B, T, vocab_size), tied to embed_tokens
Still pre-norm, as GPT-2 (lesson 10): each sub-layer reads a normalised copy and ADDS to a
residual stream that is normalised once, at the end. No bias in any Linear.

1. RMSNorm instead of LayerNorm (lesson 5)
    y = x / √(mean(x²) + ε) · γ          over the C features of each token; ε = norm_eps
LayerNorm subtracts the mean and adds a bias β; RMSNorm only rescales. It is cheaper (one
reduction instead of two) and trains as well: what matters is keeping the scale in check.
nn.RMSNorm(C, eps=config.norm_eps) is given (lesson 5); SmolLM2's ε is 1e-5.

2. Rotary position embeddings instead of learned positions (lesson 9)
Nothing is added to the tokens. Inside every attention layer the queries and keys of each head
(head_dim = d = C / n_head) are rotated by their position m: feature i pairs with feature
i + d/2 (Hugging Face's "rotate half" layout), and the pair turns by the angle m · θ_i,
    θ_i = rope_base^(−2i/d),  i = 0 .. d/2 − 1
    (q_i, q_(i+d/2)) -> (q_i cos mθ_i − q_(i+d/2) sin mθ_i,  q_(i+d/2) cos mθ_i + q_i sin mθ_i)
A rotation R(m) is orthogonal and R(m)ᵀ R(n) = R(n − m), so the score of query m and key n,
    ⟨R(m) q, R(n) k⟩ = qᵀ R(n − m) k,
depends on the RELATIVE position n − m only: the model learns "the word two back", wherever it
stands. Values are not rotated. rope_base comes from the file (GGUF's llama.rope.freq_base):
SmolLM2 uses 100000 (Llama 2: 10000), so θ_0 = 1 radian per position and the slowest pair
(i = 31 of d = 64) turns once in about 2π · 100000^(62/64) ≈ 440,000 positions -- room for long
contexts. LlamaModel owns ONE nn.RotaryEmbedding(head_dim, block_size, rope_base) (lesson 9),
self.rotary_emb, and passes it to every layer; rotary(q, k, offset=past) rotates q (B, H, T, d)
and k (B, H_kv, T, d) at positions past .. past + T − 1.

3. Grouped-query attention (GQA) instead of one key/value head per query head
q_proj makes n_head query heads, but k_proj and v_proj only n_kv_head key/value heads; each
KV head serves a GROUP of group = n_head / n_kv_head consecutive query heads: query head h uses
KV head h // group. SmolLM2: 9 query heads, 3 KV heads, groups of 3 (heads 0-2 read KV head 0,
3-5 KV head 1, 6-8 KV head 2). Why: when generating, the KV cache (lesson 10) stores every
past token's keys and values, 2 · n_kv_head · d numbers per token per layer. SmolLM2 keeps
2 · 3 · 64 = 384 instead of 2 · 9 · 64 = 1152: over 30 layers in float32 that is 45 KiB per
token instead of 135 KiB, 360 MiB for a full 8192-token context instead of 1.05 GiB -- 3 times
less memory to hold and to read at every generated token, for a small loss in quality
(multi-query attention, n_kv_head = 1, saves the most and loses the most).
The computation, without copying keys and values (LlamaAttention.forward):
    q, k, v = q_proj(x), k_proj(x), v_proj(x) as heads       (B, H, T, d), (B, H_kv, T, d) × 2
    past = len(cache) (0 without one); q, k = rotary(q, k, offset=past)
    with a cache: k, v = cache.update(k, v)                   (B, H_kv, past + T, d)
    q -> q.unflatten(1, (n_kv_head, group))                   (B, H_kv, group, T, d)
    k, v -> k.unsqueeze(2), v.unsqueeze(2)                    (B, H_kv, 1, S, d)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask)    broadcasting over the group axis
    mask: causal_mask(T, S, offset=past) when T > 1; None for a single new token (it sees all)
    y (B, H_kv, group, T, d) -> (B, H, T, d) -> (B, T, H · d) -> o_proj
Heads h = j · group + g sit at (j, g) after unflatten, so KV head j = h // group: the order the
weights were trained with. The cache stores the ROTATED keys of the n_kv_head heads.

4. SwiGLU instead of the GELU MLP
    mlp(x) = down_proj( silu(gate_proj(x)) ⊙ up_proj(x) ),   silu(z) = z · sigmoid(z)
Two projections up to n_hidden: one, through SiLU, is a soft gate (near 0 for very negative
values, near the identity for positive ones) that decides, per hidden unit and per token, how
much of the other passes. Gated units train to a lower loss than GELU at the same cost
(Shazeer 2020). Three matrices instead of two, so n_hidden is about 8C/3 instead of 4C:
SmolLM2's 1536 = 8 · 576 / 3 gives 3 · C · 8C/3 = 8C², exactly GPT-2's MLP.

Parameter counts, SmolLM2-135M (C = 576, d = 64, 9 / 3 heads, n_hidden 1536, 30 layers)
    model.embed_tokens = lm_head (tied)   49152 · 576               = 28,311,552
    per layer: input_layernorm, post_attention_layernorm  2 · 576   =      1,152
               q_proj 576 · 576 and o_proj 576 · 576                =    663,552
               k_proj, v_proj 576 · 192 each (3 heads · 64)         =    221,184
               gate_proj, up_proj 576 · 1536, down_proj 1536 · 576  =  2,654,208
               one layer                                            =  3,540,096
    30 layers                                                       = 106,202,880
    model.norm                                                      =        576
    total                                                           = 134,515,008
the sum of the 272 tensors of the GGUF file that `make real` installs. A GPT-2 block of the
same width holds 3,988,800 (4C² attention + 8C² MLP + biases + LayerNorms): GQA saves 442,368
per layer (k_proj and v_proj a third of q_proj's size), SwiGLU costs the same, the norms half.
The embedding is 21% of the model; an untied lm_head would add another 28.3 M.

A worked example
- RMSNorm of x = (1, 7) with γ = (1, 2): mean(x²) = 25, √(25 + 1e-5) ≈ 5, y = (0.2, 2.8).
- RoPE, d = 4, rope_base 100: θ = (1, 0.1); pairs are features (0, 2) and (1, 3). q = k =
  (1, 0, 0, 0): q at position 2 -> (cos 2, 0, sin 2, 0) = (−0.4161, 0, 0.9093, 0); k at 5 ->
  (cos 5, 0, sin 5, 0) = (0.2837, 0, −0.9589, 0); q · k = −0.1180 − 0.8719 = −0.9900 = cos 3,
  the same as q at 0 and k at 3, or q at 10 and k at 13.
- GQA with 4 query heads and 2 KV heads: group 2; query heads 0, 1 read KV head 0, heads 2, 3
  read KV head 1.
- SwiGLU, one hidden unit: gate 1, up 2 -> silu(1) · 2 = 0.7311 · 2 = 1.4621; gate −2, up 2 ->
  −0.2384 · 2 = −0.4768; gate 0 -> 0, whatever up is.

What you write
In minimod/models/llama.py: LlamaAttention.forward (the heads, RoPE, the cache, GQA by
broadcasting, the mask, o_proj), LlamaMLP.forward (SwiGLU), LlamaDecoderLayer.forward (the two
pre-norm residual steps) and LlamaModel.forward (embed_tokens, every layer with the one
rotary_emb and its own cache[i] -- or None --, then norm). Given: LlamaConfig, every __init__
(the layers above, under Hugging Face's names), LlamaForCausalLM (the tying, the initialisation,
the length check, the loss and generate, which reuses lesson 10's loop and LayerCache), and
nn.RMSNorm and nn.RotaryEmbedding from lessons 5 and 9.

Classic pitfalls
- RoPE pairing: rotate-half pairs (i, i + d/2); the original paper and llama.cpp pair
  neighbours (2i, 2i + 1). Both are fine for a model trained with them, not for the other's
  weights. A GGUF file stores q_proj and k_proj rows PERMUTED for llama.cpp's interleaved RoPE;
  minimod's loader (models.weights.llama_state_dict_from_gguf, rope_rows_to_half) undoes the
  permutation so the rotate-half code here applies. Forget it and the model still runs, on
  garbage attention scores.
- RMSNorm's ε outside the square root, x / (√mean(x²) + ε): slightly different numbers, and
  not the ones the model was trained with (Hugging Face: x · rsqrt(mean(x²) + ε)).
- GQA with k.repeat(1, group, 1, 1): query head h then reads KV head h % n_kv_head, not
  h // group -- the wrong keys, silently. repeat_interleave(group, dim=1) is right but copies
  every key and value group times at every step; unsqueeze + broadcasting copies nothing.
- SwiGLU with the SiLU on up_proj instead of gate_proj (or on the product): the same shapes,
  the wrong function -- gate_proj is the one trained as the gate.
- Rotating with offset 0 when a cache holds past tokens, or caching the keys before rotating
  them: generation with a cache then differs from generation without one.
- A residual step without "x +", or norms applied after the addition (post-norm, lesson 11).

Run it
After `make real` (it installs the SmolLM2-135M-Instruct GGUF file), minimod's own copy of this
code answers (tests/test_llama.py checks its logits against transformers', within 1e-4
relative, and its greedy text token for token):
    minimod generate --from smollm2 --prompt "The capital of France is" --max-new-tokens 8
        --temperature 0
prints "The capital of France is Paris." (then two new lines and "The answer is:", the rest of
the 8 tokens). To run YOUR block on the real weights, build the model from your lesson file and
load the file as minimod.tasks.smollm2.load_smollm2 does:
    file = read_gguf(smollm2_path())                     (minimod.models.gguf, .pretrained)
    config = LlamaConfig.from_gguf_metadata(file.metadata)
    model = LlamaForCausalLM(config)                     (from exercises.e32_llama_block)
    load_checked(model, llama_state_dict_from_gguf(load_tensors(file), config))
    tokenizer = PretrainedBPETokenizer.from_gguf_metadata(file.metadata)   (minimod.data.bpe)
    ids = torch.tensor([tokenizer.encode("The capital of France is")])
    tokenizer.decode(model.eval().generate(ids, 8, temperature=0)[0].tolist())
gives the same text, in about 20 s (most of it reading and dequantizing the file).
Next: lesson 33 (Chat templates: roles, special tokens, and the exact text a model expects)

Check it: minimod exercises check 32
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod.models.llama import LlamaConfig
    >>> from exercises.e32_llama_block import LlamaForCausalLM
    >>> one = LlamaForCausalLM(LlamaConfig(vocab_size=16, block_size=64, n_layer=1))
    >>> layer = one.model.layers[0]  # one SmolLM2 layer: C 576, 9 / 3 heads, n_hidden 1536
    >>> [sum(p.numel() for p in part.parameters()) for part in (layer.self_attn, layer.mlp)]
    [884736, 2654208]
    >>> config = LlamaConfig(
    ...     vocab_size=16, block_size=16, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, n_hidden=48
    ... )
    >>> tiny = LlamaForCausalLM(config)
    >>> idx = torch.zeros(1, 5, dtype=torch.long)
    >>> logits, _ = tiny(idx)
    >>> tuple(logits.shape)
    (1, 5, 16)
    >>> fast = tiny.generate(idx, 6, temperature=0)
    >>> torch.equal(fast, tiny.generate(idx, 6, temperature=0, use_cache=False))
    True
"""

# Lesson 32 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import torch

from minimod import nn
from minimod.models.generation import LayerCache, generate
from minimod.models.llama import LlamaConfig
from minimod.nn import functional as F
from minimod.nn.attention import causal_mask

# ---- from minimod/models/llama.py ----------------------------------------


class LlamaAttention(nn.Module):
    """Causal self-attention with RoPE and grouped-query attention, no biases."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head, head_dim = config.n_head, config.n_kv_head, config.head_dim
        self.q_proj = nn.Linear(config.n_embd, config.n_head * head_dim, bias=False)
        self.k_proj = nn.Linear(config.n_embd, config.n_kv_head * head_dim, bias=False)
        self.v_proj = nn.Linear(config.n_embd, config.n_kv_head * head_dim, bias=False)
        self.o_proj = nn.Linear(config.n_head * head_dim, config.n_embd, bias=False)

    def forward(
        self, x: torch.Tensor, rotary: nn.RotaryEmbedding, cache: LayerCache | None = None
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); ``rotary`` is the model's one RotaryEmbedding; a cache
        holds the rotated keys and the values of the n_kv_head heads."""
        # BEGIN YOUR CODE
        # (B, T, heads·D) -> (B, heads, T, D)
        q, k, v = (
            proj(x).unflatten(-1, (heads, -1)).transpose(1, 2)
            for proj, heads in (
                (self.q_proj, self.n_head),
                (self.k_proj, self.n_kv_head),
                (self.v_proj, self.n_kv_head),
            )
        )
        past = 0 if cache is None else len(cache)
        q, k = rotary(q, k, offset=past)  # positions past … past + T − 1
        if cache is not None:
            k, v = cache.update(k, v)  # (B, n_kv_head, past + T, D)
        # GQA without copying keys and values: query head h uses key/value head h // group.
        # Queries (B, n_kv_head, group, T, D) against keys (B, n_kv_head, 1, S, D): attention
        # broadcasts the batch axes.
        group = self.n_head // self.n_kv_head
        q = q.unflatten(1, (self.n_kv_head, group))
        k, v = k.unsqueeze(2), v.unsqueeze(2)
        mask = None  # a single new query (generation with a cache) sees every key
        if q.shape[-2] > 1:
            mask = causal_mask(q.shape[-2], k.shape[-2], offset=past, device=x.device)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.flatten(1, 2).transpose(1, 2).flatten(-2)  # (B, H, T, D) -> (B, T, H·D)
        return self.o_proj(y)
        # END YOUR CODE


class LlamaMLP(nn.Module):
    """SwiGLU (Shazeer 2020): down(silu(gate(x)) · up(x)), no biases."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.n_embd, config.n_hidden, bias=False)
        self.up_proj = nn.Linear(config.n_embd, config.n_hidden, bias=False)
        self.down_proj = nn.Linear(config.n_hidden, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C), through the inner width n_hidden."""
        # BEGIN YOUR CODE
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        # END YOUR CODE


class LlamaDecoderLayer(nn.Module):
    """Pre-norm, as GPT's Block, with RMSNorm."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.self_attn = LlamaAttention(config)
        self.post_attention_layernorm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.mlp = LlamaMLP(config)

    def forward(
        self, x: torch.Tensor, rotary: nn.RotaryEmbedding, cache: LayerCache | None = None
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C): the residual stream plus attention, then plus the MLP."""
        # BEGIN YOUR CODE
        x = x + self.self_attn(self.input_layernorm(x), rotary, cache)
        return x + self.mlp(self.post_attention_layernorm(x))
        # END YOUR CODE


class LlamaModel(nn.Module):
    """The body: embedding, decoder layers, final RMSNorm (Hugging Face's ``model.``). One
    RotaryEmbedding serves every layer: its cos/sin tables (block_size, head_dim) are
    non-persistent buffers, absent from the state_dict, as Hugging Face's rotary_emb."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.n_embd)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config) for _ in range(config.n_layer)])
        self.norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.rotary_emb = nn.RotaryEmbedding(config.head_dim, config.block_size, config.rope_base)

    def forward(self, idx: torch.Tensor, cache: list[LayerCache] | None = None) -> torch.Tensor:
        """idx (B, T) -> the final RMSNorm's output (B, T, C); ``cache``: one LayerCache per
        layer, or None."""
        # BEGIN YOUR CODE
        x = self.embed_tokens(idx)
        for i, layer in enumerate(self.layers):
            x = layer(x, self.rotary_emb, None if cache is None else cache[i])
        return self.norm(x)
        # END YOUR CODE


class LlamaForCausalLM(nn.Module):
    """Hugging Face's LlamaForCausalLM with a tied LM head: ``model`` and ``lm_head``."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.model.embed_tokens.weight = self.lm_head.weight
        # Hugging Face's initialisation (initializer_range 0.02); RMSNorm weights start at 1.
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def hidden_states(self, idx: torch.Tensor, cache: list[LayerCache] | None = None):
        """idx (B, T) -> the final RMSNorm's output (B, T, C); with a cache (one LayerCache per
        layer), idx holds only the tokens after those the cache has seen."""
        if idx.dim() != 2:
            raise ValueError(
                f"LlamaForCausalLM: expected token ids of shape (B, T), got {tuple(idx.shape)}"
            )
        past = 0 if cache is None else len(cache[0])
        if past + idx.shape[1] > self.config.block_size:
            raise ValueError(
                f"LlamaForCausalLM: sequence of length {past + idx.shape[1]} is longer than "
                f"block_size {self.config.block_size}"
            )
        return self.model(idx, cache)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx, targets (B, T) -> logits (B, T, vocab_size) and the mean cross-entropy loss
        (None without targets; targets of −1 are ignored)."""
        logits = self.lm_head(self.hidden_states(idx))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss

    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Append max_new_tokens sampled tokens to idx (B, T), as ``GPT.generate`` does
        (temperature 0 = greedy; ``minimod.models.generation.generate``)."""
        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, use_cache, generator)
