"""Attention: every position looks at every (allowed) position and takes a weighted average.

    Attention(Q, K, V) = softmax(Q Kᵀ · scale + mask) V,   scale = 1/√d by default

Shapes: query (..., L, d), key (..., S, d), value (..., S, d_v) -> (..., L, d_v), where "..." is
any batch shape (usually batch, heads) and broadcasts between the three.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import describe, expect_trailing_shape
from minimod.nn._function import run
from minimod.nn.dropout import dropout as apply_dropout
from minimod.nn.linear import Linear, linear
from minimod.nn.module import Module, Parameter


def causal_mask(
    length: int, source_length: int | None = None, offset: int = 0, device=None
) -> torch.Tensor:
    """Boolean (L, S) mask, True where query i may attend to key j: j ≤ i + offset (the diagonal
    too). offset = the number of earlier keys, e.g. those already in a KV cache."""
    source_length = length if source_length is None else source_length
    # BEGIN SOLUTION
    return torch.ones(length, source_length, dtype=torch.bool, device=device).tril(offset)
    # END SOLUTION


def masked_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis in which −inf scores get weight 0. A row whose scores are all
    −inf (every key masked) gets all-zero weights, so its output is 0 -- not NaN -- and no
    gradient flows through it."""
    # BEGIN SOLUTION
    row_max = scores.amax(-1, keepdim=True).detach()
    row_max = torch.where(torch.isinf(row_max), torch.zeros_like(row_max), row_max)
    exp = torch.exp(scores - row_max)  # exp(−inf) = 0
    total = exp.sum(-1, keepdim=True)
    return exp / torch.where(total == 0, torch.ones_like(total), total)
    # END SOLUTION


def _additive_mask(attn_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask (True = attend) as 0 / −inf to add to the scores; a float mask as is."""
    # BEGIN SOLUTION
    if attn_mask.dtype == torch.bool:
        zeros = torch.zeros(attn_mask.shape, dtype=dtype, device=attn_mask.device)
        return zeros.masked_fill(~attn_mask, float("-inf"))
    return attn_mask.to(dtype)
    # END SOLUTION


def _broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast of two shapes, or None if they do not broadcast (plain Python: cheaper
    than torch.broadcast_shapes, and this check runs on every attention call)."""
    size = max(len(a), len(b))
    a, b = (1,) * (size - len(a)) + tuple(a), (1,) * (size - len(b)) + tuple(b)
    if any(x != y and x != 1 and y != 1 for x, y in zip(a, b, strict=True)):
        return None
    return tuple(y if x == 1 else x for x, y in zip(a, b, strict=True))


def _check_mask(attn_mask: torch.Tensor, query: torch.Tensor, key: torch.Tensor) -> None:
    """The mask must broadcast to the scores' shape (batch of q and k broadcast, L, S) without
    enlarging it."""
    batch = _broadcast_shapes(query.shape[:-2], key.shape[:-2])
    if batch is None:
        raise ValueError(
            f"scaled_dot_product_attention: query batch {tuple(query.shape[:-2])} "
            f"and key batch {tuple(key.shape[:-2])} do not broadcast"
        )
    scores = batch + (query.shape[-2], key.shape[-2])
    if _broadcast_shapes(tuple(attn_mask.shape), scores) != scores:
        raise ValueError(
            f"scaled_dot_product_attention: attn_mask of shape "
            f"{tuple(attn_mask.shape)} does not broadcast to the scores' shape "
            f"{scores} (..., L, S)"
        )


def attention_weights(
    query: torch.Tensor,
    key: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """softmax(Q Kᵀ · scale + mask): (..., L, S), each row sums to 1 (or is all 0, see above)."""
    length, source_length = query.shape[-2], key.shape[-2]
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal, not both")
    if attn_mask is not None:
        _check_mask(attn_mask, query, key)
    # BEGIN SOLUTION
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        attn_mask = causal_mask(length, source_length, device=query.device)
    if attn_mask is not None:
        scores = scores + _additive_mask(attn_mask, scores.dtype)
    return masked_softmax(scores)
    # END SOLUTION


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> torch.Tensor:
    """torch.nn.functional.scaled_dot_product_attention's semantics: a boolean ``attn_mask`` is
    True where attention is allowed; a float mask is added to the scores; ``is_causal`` hides
    the future (keys after the query's position). Dropout (on the weights) only if dropout_p > 0.

    Computed by ``Attention``, whose backward pass is written by hand: it keeps only the
    weights (not the scores, the masked scores, the exponentials, ...), and takes a few large
    tensor operations where autograd would replay every step of the forward.
    """
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal, not both")
    if attn_mask is not None:
        _check_mask(attn_mask, query, key)
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(
            f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}"
        )
    if is_causal:
        attn_mask = causal_mask(query.shape[-2], key.shape[-2], device=query.device)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    return run(Attention, query, key, value, attn_mask, scale, dropout_p)


class Attention(torch.autograd.Function):
    """softmax(Q Kᵀ · scale + mask) V with a hand-written backward pass.

    Forward, with P the weights (..., L, S) and D the dropout mask scaled by 1/(1 − p)
    (D = 1 without dropout):
        S = Q Kᵀ · scale (+ mask),   P = masked_softmax(S),   O = (P ∘ D) V
    Backward, given dO (..., L, d_v):
        dV = (P ∘ D)ᵀ dO                                   (..., S, d_v)
        dP = (dO Vᵀ) ∘ D                                    (..., L, S)
        dS = P ∘ (dP − rowsum(dP ∘ P))    the softmax's Jacobian, one row at a time
        dQ = dS K · scale,   dK = dSᵀ Q · scale,   d(float mask) = dS
    Gradients of broadcast batch axes are summed back to each input's shape. Only Q, K, V, P
    (and the dropout mask) are kept for the backward pass. The softmax runs in at least
    float32, also when autocast computes Q Kᵀ in bfloat16. Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, query, key, value, attn_mask, scale, dropout_p):
        ctx.dtypes = (query.dtype, key.dtype, value.dtype)
        ctx.mask_shape = None if attn_mask is None else attn_mask.shape
        # BEGIN SOLUTION
        scores = query @ key.transpose(-2, -1)  # (..., L, S)
        compute = torch.promote_types(scores.dtype, torch.float32)
        scores = scores.to(compute) * scale  # a new tensor: from here on, edit it in place
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                scores.masked_fill_(~attn_mask, float("-inf"))
            else:
                scores.add_(attn_mask.to(compute))
        # masked_softmax, in place: a row of −inf (every key masked) gets weights 0, not NaN.
        row_max = scores.amax(-1, keepdim=True)
        if attn_mask is not None:
            row_max.masked_fill_(torch.isinf(row_max), 0.0)
        weights = scores.sub_(row_max).exp_()
        total = weights.sum(-1, keepdim=True)
        if attn_mask is not None:
            total.masked_fill_(total == 0, 1.0)
        weights.div_(total)
        keep = None
        dropped = weights
        if dropout_p > 0.0:
            keep = torch.rand_like(weights) >= dropout_p  # as dropout(): keep with 1 − p
            dropped = weights * keep * (0.0 if dropout_p == 1.0 else 1.0 / (1.0 - dropout_p))
        output = dropped.to(value.dtype) @ value
        ctx.save_for_backward(query, key, value, weights, keep)
        ctx.scale, ctx.dropout_p = scale, dropout_p
        return output
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        query, key, value, weights, keep = ctx.saved_tensors
        scale, dropout_p = ctx.scale, ctx.dropout_p
        # The products in the inputs' dtype (bfloat16 under autocast, as autocast's own
        # products would be), the softmax's backward in the weights' (at least float32).
        low = torch.promote_types(torch.promote_types(query.dtype, key.dtype), value.dtype)
        query, key, value, grad_output = (t.to(low) for t in (query, key, value, grad_output))
        # BEGIN SOLUTION
        factor = 0.0 if dropout_p == 1.0 else 1.0 / (1.0 - dropout_p)
        dropped = weights if keep is None else weights * keep * factor
        grad_value = dropped.to(low).transpose(-2, -1) @ grad_output
        grad_weights = (grad_output @ value.transpose(-2, -1)).to(weights.dtype)
        if keep is not None:
            grad_weights = grad_weights * keep * factor
        # The softmax's backward, per row: dS = P ∘ (dP − Σ_j dP_j P_j).
        grad_scores = grad_weights.sub_((grad_weights * weights).sum(-1, keepdim=True))
        grad_scores.mul_(weights)
        grad_low = grad_scores.to(low)
        grad_query = (grad_low @ key).mul_(scale)
        grad_key = (grad_low.transpose(-2, -1) @ query).mul_(scale)
        grads = [grad_query, grad_key, grad_value]
        grads = [
            g.sum_to_size(shape).to(dtype)
            for g, shape, dtype in zip(
                grads, (query.shape, key.shape, value.shape), ctx.dtypes, strict=True
            )
        ]
        grad_mask = None
        if ctx.needs_input_grad[3]:
            grad_mask = grad_scores.sum_to_size(ctx.mask_shape)
        return (*grads, grad_mask, None, None)
        # END SOLUTION


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention's layer and state_dict layout: ``in_proj_weight`` (3E, E)
    stacks the query, key and value projections, ``in_proj_bias`` (3E,), ``out_proj`` Linear.

    forward(query (N, L, E), key (N, S, E), value (N, S, E)) -> (output (N, L, E), weights)
    with batch_first=True (the default here; torch's default is False). Masks as in torch:
    ``key_padding_mask`` (N, S) True = padding (ignored); ``attn_mask`` (L, S) or (N·H, L, S)
    True = NOT allowed, or a float mask added to the scores. Unlike torch, a query whose keys
    are all masked gets a zero output instead of NaN.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
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
        factory = dict(device=device, dtype=dtype)
        self.in_proj_weight = Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        if bias:
            self.in_proj_bias = Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # BEGIN SOLUTION
        # One xavier draw over the stacked (3E, E) matrix, as torch: fan_in E, fan_out 3E.
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        # END SOLUTION

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
        """Both masks as one additive (N, H or 1, L or 1, S) tensor, or None."""
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
        if attn_mask is not None:  # True = NOT allowed, the opposite of attention_weights'
            extra = _additive_mask(
                ~attn_mask if attn_mask.dtype == torch.bool else attn_mask, dtype
            )
            if extra.dim() == 3:
                extra = extra.view(batch, self.num_heads, length, source_length)
            mask = extra if mask is None else mask + extra
        return mask
        # END SOLUTION

    def _attend(self, query, key, value, mask):
        """query (N, L, E), key and value (N, S, E), mask additive or None -> the output
        (N, L, E) and the attention weights of every head (N, H, L, S)."""
        # BEGIN SOLUTION
        q, k, v = self._project(query, key, value)
        q, k, v = (rearrange(x, "b t (h d) -> b h t d", h=self.num_heads) for x in (q, k, v))
        weights = attention_weights(q, k, mask)  # (N, H, L, S)
        if self.training and self.dropout > 0:
            weights = apply_dropout(weights, self.dropout)
        output = rearrange(weights @ v, "b h t d -> b t (h d)")
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
        output, weights = self._attend(query, key, value, mask)
        if unbatched:
            output, weights = output[0], weights[0]
        elif not self.batch_first:
            output = output.transpose(0, 1)
        if not need_weights:
            return output, None
        return output, weights.mean(dim=-3) if average_attn_weights else weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
