"""Llama (Touvron et al. 2023) as Hugging Face's LlamaForCausalLM has it, built from minimod layers.

    input_ids (B, T)
    -> model.embed_tokens (B, T, C)                           no position embedding: RoPE below
    -> n_layer × LlamaDecoderLayer                            (pre-norm, as GPT-2)
         x = x + self_attn(input_layernorm(x))                 RMSNorm, then attention
         x = x + mlp(post_attention_layernorm(x))              RMSNorm, then SwiGLU
    -> model.norm (RMSNorm) -> lm_head (B, T, vocab_size), whose weight IS embed_tokens' (tied)

What differs from GPT-2 (``minimod.models.gpt``), one idea each:
- RMSNorm instead of LayerNorm: rescale only, no mean subtracted, no bias; no bias anywhere.
- rotary position embeddings (RoPE) rotate queries and keys by their position inside every
  attention layer, in Hugging Face's "rotate half" layout (``minimod.nn.RotaryEmbedding``).
- grouped-query attention (GQA): n_head query heads share n_kv_head key/value heads, so the KV
  cache is n_head / n_kv_head times smaller.
- SwiGLU MLP: down(silu(gate(x)) · up(x)), a gated unit in place of GELU.

Key names are Hugging Face's (model.layers.0.self_attn.q_proj.weight, ...), so its state_dict
loads as is; ``minimod.models.weights.llama_state_dict_from_gguf`` renames a GGUF file's tensors
(llama.cpp) to them. Generating text reuses ``minimod.models.generation.generate`` and its
``LayerCache``, as GPT does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from minimod import nn
from minimod.models.generation import LayerCache, generate
from minimod.nn import functional as F
from minimod.nn.attention import causal_mask

# LlamaConfig field <- the GGUF metadata key (llama.cpp's names, after "llama.") it comes from.
GGUF_CONFIG_KEYS = {
    "n_layer": "block_count",
    "n_embd": "embedding_length",
    "n_hidden": "feed_forward_length",
    "n_head": "attention.head_count",
    "n_kv_head": "attention.head_count_kv",
    "rope_base": "rope.freq_base",
    "norm_eps": "attention.layer_norm_rms_epsilon",
    "block_size": "context_length",
}


@dataclass
class LlamaConfig:
    """Sizes as minimod's GPTConfig names them (``generate`` reads block_size and n_layer);
    the defaults are SmolLM2-135M's."""

    vocab_size: int = 49152
    block_size: int = 8192  # the longest context (RoPE tables are precomputed up to it)
    n_layer: int = 30
    n_head: int = 9  # query heads
    n_kv_head: int = 3  # key/value heads, shared by n_head / n_kv_head query heads each
    n_embd: int = 576
    n_hidden: int = 1536  # the SwiGLU MLP's inner width
    rope_base: float = 100000.0  # θ_i = rope_base^(−2i/head_dim); Llama 2 used 10000
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        sizes = ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd", "n_hidden")
        for name in sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"LlamaConfig: {name} must be ≥ 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"LlamaConfig: n_embd {self.n_embd} must be n_head {self.n_head} × an even "
                "head size (RoPE rotates pairs of features)"
            )
        if self.n_head % self.n_kv_head:
            raise ValueError(
                f"LlamaConfig: n_head {self.n_head} is not divisible by n_kv_head {self.n_kv_head}"
            )

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def from_gguf_metadata(cls, metadata: Mapping[str, Any]) -> LlamaConfig:
        """The config of a GGUF file's llama model from its metadata (key -> plain value):
        ``llama.block_count``, ``llama.embedding_length``, ... (GGUF_CONFIG_KEYS); the vocabulary
        size is the length of ``tokenizer.ggml.tokens``. RoPE must turn whole heads
        (``llama.rope.dimension_count``, when given, is the head size)."""
        architecture = metadata.get("general.architecture")
        if architecture != "llama":
            raise ValueError(
                f"LlamaConfig.from_gguf_metadata: expected general.architecture 'llama', "
                f"got {architecture!r}"
            )
        missing = [
            f"llama.{key}" for key in GGUF_CONFIG_KEYS.values() if f"llama.{key}" not in metadata
        ]
        missing += [] if "tokenizer.ggml.tokens" in metadata else ["tokenizer.ggml.tokens"]
        if missing:
            raise ValueError(f"LlamaConfig.from_gguf_metadata: missing {', '.join(missing)}")
        sizes = {field: metadata[f"llama.{key}"] for field, key in GGUF_CONFIG_KEYS.items()}
        for field in ("rope_base", "norm_eps"):
            sizes[field] = float(sizes[field])
        config = cls(vocab_size=len(metadata["tokenizer.ggml.tokens"]), **sizes)
        rotated = metadata.get("llama.rope.dimension_count", config.head_dim)
        if rotated != config.head_dim:
            raise ValueError(
                f"LlamaConfig.from_gguf_metadata: RoPE turns {rotated} features of each head, "
                f"minimod's Llama all {config.head_dim}"
            )
        return config


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
        # BEGIN SOLUTION
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
        # END SOLUTION


class LlamaMLP(nn.Module):
    """SwiGLU (Shazeer 2020): down(silu(gate(x)) · up(x)), no biases."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.n_embd, config.n_hidden, bias=False)
        self.up_proj = nn.Linear(config.n_embd, config.n_hidden, bias=False)
        self.down_proj = nn.Linear(config.n_hidden, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C), through the inner width n_hidden."""
        # BEGIN SOLUTION
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        # END SOLUTION


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
        # BEGIN SOLUTION
        x = x + self.self_attn(self.input_layernorm(x), rotary, cache)
        return x + self.mlp(self.post_attention_layernorm(x))
        # END SOLUTION


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
        # BEGIN SOLUTION
        x = self.embed_tokens(idx)
        for i, layer in enumerate(self.layers):
            x = layer(x, self.rotary_emb, None if cache is None else cache[i])
        return self.norm(x)
        # END SOLUTION


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
