"""Attention: every position looks at every (allowed) position and takes a weighted average.

    Attention(Q, K, V) = softmax(Q Kᵀ · scale + mask) V,   scale = 1/√d by default

Shapes: query (..., L, d), key (..., S, d), value (..., S, d_v) -> (..., L, d_v), where "..." is
any batch shape (usually batch, heads) and broadcasts between the three.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from minimod.nn._function import run
from minimod.nn.activation import exp_


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
    """Softmax over the last axis, IN PLACE: overwrites ``scores`` (..., L, S) with the weights
    and returns it. −inf scores get weight 0. A row whose scores are all −inf (every key masked)
    gets all-zero weights, so its output is 0 -- not NaN. In place because its one caller,
    Attention's forward, owns its scores and writes the backward by hand: no autograd runs
    through here, and the weights take no memory beyond the scores'. (``exp_`` is e^x in place,
    through exp2: the faster of the two on the CPU.)"""
    # BEGIN SOLUTION
    row_max = scores.amax(-1, keepdim=True)
    row_max.masked_fill_(torch.isinf(row_max), 0.0)  # a row of −inf has max −inf: use 0
    weights = exp_(scores.sub_(row_max))  # exp(−inf) = 0
    total = weights.sum(-1, keepdim=True)
    return weights.div_(total.masked_fill_(total == 0, 1.0))
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


def _check_arguments(query, key, attn_mask, dropout_p: float, is_causal: bool) -> None:
    """attn_mask or is_causal, not both; dropout_p in [0, 1]; the batch axes of query and key
    broadcast, and the mask broadcasts to the scores' shape (batch, L, S) without enlarging it."""
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal, not both")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(
            f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}"
        )
    if attn_mask is None:
        return
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


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    *,
    need_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """torch.nn.functional.scaled_dot_product_attention's semantics: a boolean ``attn_mask`` is
    True where attention is allowed; a float mask is added to the scores; ``is_causal`` hides
    the future (keys after the query's position). Dropout (on the weights) only if dropout_p > 0.

    ``need_weights=True`` (minimod's addition, for MultiheadAttention) returns (output, weights):
    the weights (..., L, S) after dropout, those the output was computed with; gradients flow
    through both.

    Computed by ``Attention``, whose backward pass is written by hand: it keeps only the
    weights (not the scores, the masked scores, the exponentials, ...), and takes a few large
    tensor operations where autograd would replay every step of the forward.
    """
    _check_arguments(query, key, attn_mask, dropout_p, is_causal)
    if is_causal:
        attn_mask = causal_mask(query.shape[-2], key.shape[-2], device=query.device)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    return run(Attention, query, key, value, attn_mask, scale, dropout_p, need_weights)


class Attention(torch.autograd.Function):
    """softmax(Q Kᵀ · scale + mask) V with a hand-written backward pass.

    Forward, with P the weights (..., L, S) and D the dropout mask scaled by 1/(1 − p)
    (D = 1 without dropout):
        S = Q Kᵀ · scale (+ mask),   P = masked_softmax(S),   O = (P ∘ D) V
    and, if need_weights, also returns W = P ∘ D. Backward, given dO (..., L, d_v) and dW
    (0 without need_weights):
        dV = (P ∘ D)ᵀ dO                                   (..., S, d_v)
        dP = (dO Vᵀ + dW) ∘ D                               (..., L, S)
        dS = P ∘ (dP − rowsum(dP ∘ P))    the softmax's Jacobian, one row at a time
           = P ∘ dP − P ∘ rowsum(P ∘ dP)  (so it is computed: in place over dP)
        dQ = dS K · scale,   dK = dSᵀ Q · scale,   d(float mask) = dS
    Gradients of broadcast batch axes are summed back to each input's shape. Only Q, K, V, P
    (and the dropout mask) are kept for the backward pass. The softmax runs in at least
    float32, also when autocast computes Q Kᵀ in bfloat16. Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, query, key, value, attn_mask, scale, dropout_p, need_weights):
        ctx.dtypes = (query.dtype, key.dtype, value.dtype)
        ctx.mask_shape = None if attn_mask is None else attn_mask.shape
        # BEGIN SOLUTION
        scores = query @ key.transpose(-2, -1)  # (..., L, S), a new tensor: edit it in place
        compute = torch.promote_types(scores.dtype, torch.float32)
        scores = scores.to(compute).mul_(scale)  # .to copies only a 16-bit product
        if attn_mask is not None:
            scores.add_(_additive_mask(attn_mask, compute))
        weights = masked_softmax(scores)
        keep = None
        dropped = weights
        if dropout_p > 0.0:
            keep = torch.rand_like(weights) >= dropout_p  # as dropout(): keep with 1 − p
            dropped = weights * keep * (0.0 if dropout_p == 1.0 else 1.0 / (1.0 - dropout_p))
        dropped = dropped.to(value.dtype)
        output = dropped @ value
        ctx.save_for_backward(query, key, value, weights, keep)
        ctx.scale, ctx.dropout_p = scale, dropout_p
        return (output, dropped) if need_weights else output
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, grad_returned_weights=None):
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
        if grad_returned_weights is not None:  # need_weights: the returned P ∘ D was used
            grad_weights.add_(grad_returned_weights.to(weights.dtype))
        if keep is not None:
            grad_weights.mul_(keep).mul_(factor)
        # The softmax's backward, per row: dS = P ∘ (dP − Σ_j dP_j P_j), spelled
        # P ∘ dP − P · Σ_j (P ∘ dP)_j and written over dP: no second (..., L, S) tensor.
        grad_scores = grad_weights.mul_(weights)
        grad_scores.addcmul_(weights, grad_scores.sum(-1, keepdim=True), value=-1.0)
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
        return (*grads, grad_mask, None, None, None)
        # END SOLUTION
