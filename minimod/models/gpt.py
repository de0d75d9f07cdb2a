"""A GPT (decoder-only transformer) in the style of nanoGPT, built from minimod layers.

    idx (B, T) token ids
    -> token embedding wte (B, T, C) + position embedding wpe (T, C), dropout
    -> n_layer × Block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))     (pre-LayerNorm)
    -> ln_f -> lm_head (B, T, vocab_size), whose weight IS wte's weight (tied)

Key names follow GPT-2 (transformer.wte, transformer.h.0.attn.c_attn, …), so GPT-2-shaped
checkpoints convert with a transpose of the attention/MLP weights (GPT-2 stores them as Conv1D).
Generating text (``GPT.generate``: sampling, the KV cache) is in ``minimod.models.generation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange

from minimod import nn
from minimod.models.generation import LayerCache, generate
from minimod.nn import functional as F
from minimod.nn.attention import causal_mask


@dataclass
class GPTConfig:
    vocab_size: int = 50304
    block_size: int = 1024  # the longest context the model can see
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm layers (GPT-2: True)
    gelu_approximate: str = "none"  # GPT-2 itself used "tanh"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTConfig: {name} must be ≥ 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"GPTConfig: n_embd {self.n_embd} is not divisible by n_head {self.n_head}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        q, k, v = self.c_attn(x).chunk(3, dim=-1)  # each (B, T, C)
        # rearrange(t, "b t (h d) -> b h t d"), spelled with views: this runs once per layer
        # per generated token, where einops' own overhead would show.
        q, k, v = (t.unflatten(-1, (self.n_head, -1)).transpose(1, 2) for t in (q, k, v))
        past = 0 if cache is None else len(cache)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, H, past + T, D)
        # Query i (position past + i) sees keys 0 … past + i: the future stays hidden. A single
        # new query (generation with a cache) sees every key: no mask needed.
        mask = None
        if q.shape[-2] > 1:
            mask = causal_mask(q.shape[-2], k.shape[-2], offset=past, device=x.device)
        dropout_p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).flatten(-2)  # (B, H, T, D) -> (B, T, C)
        return self.resid_dropout(self.c_proj(y))
        # END SOLUTION


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate=config.gelu_approximate)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm: normalise, transform, add back (the residual path stays un-normalised)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))
        # END SOLUTION


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # BEGIN SOLUTION
        # Weight tying: the input embedding and the output projection are one matrix.
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/√(2·n_layer),
        # since each block adds two of them to it.
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        # END SOLUTION

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # BEGIN SOLUTION
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        # END SOLUTION

    def num_parameters(self, trainable_only: bool = False, non_embedding: bool = True) -> int:
        """As nanoGPT reports it: position embeddings excluded unless non_embedding=False (the
        token embedding is counted, because it is also the output layer)."""
        total = super().num_parameters(trainable_only)
        return total - self.transformer.wpe.weight.numel() if non_embedding else total

    def hidden_states(self, idx: torch.Tensor, cache: list[LayerCache] | None = None):
        """idx (B, T) -> the final LayerNorm's output (B, T, C)."""
        if idx.dim() != 2:
            raise ValueError(f"GPT: expected token ids of shape (B, T), got {tuple(idx.shape)}")
        past = 0 if cache is None else len(cache[0])
        length = idx.shape[1]
        if past + length > self.config.block_size:
            raise ValueError(
                f"GPT: sequence of length {past + length} is longer than "
                f"block_size {self.config.block_size}"
            )
        # BEGIN SOLUTION
        positions = torch.arange(past, past + length, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(positions))
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if cache is None else cache[i])
        return self.transformer.ln_f(x)
        # END SOLUTION

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx, targets (B, T) -> logits (B, T, vocab_size) and the mean cross-entropy loss
        (None without targets; targets of −1 are ignored)."""
        # BEGIN SOLUTION
        logits = self.lm_head(self.hidden_states(idx))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(
                rearrange(logits, "b t v -> (b t) v"),
                rearrange(targets, "b t -> (b t)"),
                ignore_index=-1,
            )
        return logits, loss
        # END SOLUTION

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
        """Append max_new_tokens sampled tokens to idx (B, T). temperature 0 = greedy; the loop,
        the sampling and the KV cache are in ``minimod.models.generation``."""
        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, use_cache, generator)
