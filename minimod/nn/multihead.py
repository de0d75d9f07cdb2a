"""Multi-head attention with torch.nn.MultiheadAttention's layout and masks.

H heads attend in their own subspaces of size D = E / H; their outputs are concatenated and
mixed by ``out_proj``. The attention itself is ``scaled_dot_product_attention`` (the hand-written
``Attention`` Function), which also returns the weights when they are asked for.
"""

from __future__ import annotations

import torch
from einops import rearrange

from minimod.nn import init
from minimod.nn._checks import describe, expect_trailing_shape
from minimod.nn.attention import _additive_mask, causal_mask, scaled_dot_product_attention
from minimod.nn.linear import Linear, linear
from minimod.nn.module import Module, Parameter


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention's layer and state_dict layout: ``in_proj_weight`` (3E, E)
    stacks the query, key and value projections, ``in_proj_bias`` (3E,), ``out_proj`` Linear;
    with ``add_bias_kv``, ``bias_k`` and ``bias_v`` (1, 1, E): one more (projected) key and
    value appended to every sequence; with ``add_zero_attn``, one more all-zero key and value
    per head after those.

    forward(query (N, L, E), key (N, S, E), value (N, S, E)) -> (output (N, L, E), weights)
    with batch_first=True (the default here; torch's default is False). Masks as in torch:
    ``key_padding_mask`` (N, S) True = padding (ignored); ``attn_mask`` (L, S) or (N·H, L, S)
    True = NOT allowed, or a float mask added to the scores. The weights, (N, L, S') averaged
    over the heads or (N, H, L, S') per head (S' = S plus the appended keys), are computed only
    when need_weights=True. Unlike torch, a query whose keys are all masked gets a zero output
    (out_proj's bias) instead of NaN.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        batch_first: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"MultiheadAttention: embed_dim {embed_dim} is not divisible by "
                f"num_heads {num_heads}"
            )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim, self.batch_first = embed_dim // num_heads, batch_first
        self.add_zero_attn = add_zero_attn
        factory = dict(device=device, dtype=dtype)
        self.in_proj_weight = Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        if bias:
            self.in_proj_bias = Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = Parameter(torch.empty(1, 1, embed_dim, **factory))
            self.bias_v = Parameter(torch.empty(1, 1, embed_dim, **factory))
        else:
            self.bias_k = self.bias_v = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN SOLUTION
        # One xavier draw over the stacked (3E, E) matrix, as torch: fan_in E, fan_out 3E.
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        # END SOLUTION
        if self.bias_k is not None:  # as torch: xavier_normal_, fan_in = fan_out = E
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _project(self, query, key, value):
        """(q, k, v), each (N, T, E): rows 0..E−1 of in_proj_weight project the query,
        E..2E−1 the key, 2E..3E−1 the value."""
        # BEGIN SOLUTION
        weight, bias = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:  # self-attention: one matmul for all three
            return linear(query, weight, bias).chunk(3, dim=-1)
        weights = weight.chunk(3)
        biases = bias.chunk(3) if bias is not None else (None, None, None)
        return tuple(
            linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases, strict=True)
        )
        # END SOLUTION

    def _mask(self, key_padding_mask, attn_mask, batch, length, source_length, dtype):
        """Both masks as one additive (N or 1, H or 1, L or 1, S) tensor, or None."""
        if key_padding_mask is not None and key_padding_mask.shape != (batch, source_length):
            raise ValueError(
                f"{describe(self)}: key_padding_mask must have shape "
                f"(N, S) = {(batch, source_length)}, got {tuple(key_padding_mask.shape)}"
            )
        expected = [(length, source_length), (batch * self.num_heads, length, source_length)]
        if attn_mask is not None and tuple(attn_mask.shape) not in expected:
            raise ValueError(
                f"{describe(self)}: attn_mask must have shape (L, S) or "
                f"(N·num_heads, L, S), i.e. one of {expected}, got {tuple(attn_mask.shape)}"
            )
        # BEGIN SOLUTION
        mask = None
        if key_padding_mask is not None:  # True = padding: NOT allowed
            mask = _additive_mask(
                ~key_padding_mask if key_padding_mask.dtype == torch.bool else key_padding_mask,
                dtype,
            )[:, None, None, :]
        if attn_mask is not None:  # True = NOT allowed, the opposite of attention's
            extra = _additive_mask(
                ~attn_mask if attn_mask.dtype == torch.bool else attn_mask, dtype
            )
            if extra.dim() == 3:
                extra = extra.view(batch, self.num_heads, length, source_length)
            mask = extra if mask is None else mask + extra
        return mask
        # END SOLUTION

    def _append_keys(self, k, v, mask):
        """add_bias_kv and add_zero_attn: k, v (N, H, S, D) get bias_k / bias_v (split into the
        heads) and then a zero key and value appended along S; the mask allows the new keys."""
        extra = []
        if self.bias_k is not None:
            extra.append((self.bias_k, self.bias_v))
        if self.add_zero_attn:
            zeros = k.new_zeros(1, 1, self.embed_dim)
            extra.append((zeros, zeros))
        for new_k, new_v in extra:
            new_k, new_v = (
                rearrange(t, "1 1 (h d) -> 1 h 1 d", h=self.num_heads).expand(
                    k.shape[0], -1, -1, -1
                )
                for t in (new_k, new_v)
            )
            k, v = torch.cat([k, new_k], dim=2), torch.cat([v, new_v], dim=2)
        if extra and mask is not None:
            mask = torch.cat([mask, mask.new_zeros(*mask.shape[:-1], len(extra))], dim=-1)
        return k, v, mask

    def _attend(self, query, key, value, mask, need_weights):
        """query (N, L, E), key and value (N, S, E), mask additive or None -> the output
        (N, L, E) and, if need_weights, the attention weights of every head (N, H, L, S)
        (else None)."""
        # BEGIN SOLUTION
        q, k, v = self._project(query, key, value)
        q, k, v = (rearrange(x, "b t (h d) -> b h t d", h=self.num_heads) for x in (q, k, v))
        k, v, mask = self._append_keys(k, v, mask)
        dropout_p = self.dropout if self.training else 0.0
        attended = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, need_weights=need_weights
        )
        output, weights = attended if need_weights else (attended, None)
        output = rearrange(output, "b h t d -> b t (h d)")
        return self.out_proj(output), weights
        # END SOLUTION

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        for name, x in (("query", query), ("key", key), ("value", value)):
            expect_trailing_shape(f"{describe(self)} {name}", x, (self.embed_dim,))
        unbatched = query.dim() == 2
        if unbatched:  # (L, E): add a batch axis of 1
            query, key, value = query[None], key[None], value[None]
            key_padding_mask = None if key_padding_mask is None else key_padding_mask[None]
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        batch, length, source_length = query.shape[0], query.shape[1], key.shape[1]
        if is_causal and attn_mask is None:
            attn_mask = ~causal_mask(length, source_length, device=query.device)
        mask = self._mask(key_padding_mask, attn_mask, batch, length, source_length, query.dtype)
        output, weights = self._attend(query, key, value, mask, need_weights)
        if unbatched:
            output = output[0]
        elif not self.batch_first:
            output = output.transpose(0, 1)
        if weights is None:
            return output, None
        weights = weights.mean(dim=1) if average_attn_weights else weights
        return output, weights[0] if unbatched else weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
