"""FlashAttention's algorithm in tensor operations: attention without the (L, S) weights.

    flash_attention(Q, K, V) = softmax(Q Kᵀ · scale) V,   scale = 1/√d by default

the same numbers as scaled_dot_product_attention (attention.py), computed one block of keys at a
time with an online softmax (a running row maximum m and a running sum l rescale what the earlier
blocks added), so no (L, S) tensor ever exists: the forward keeps the output O and the
log-sum-exp of each row, lse = m + log l, and the backward recomputes each block's weights from
them (FlashAttention-2's backward). Extra memory O(L · block + S · d) instead of O(L · S).

Shapes: query (..., L, d), key (..., S, d), value (..., S, d_v) -> (..., L, d_v), where "..." is
any batch shape (usually batch, heads) and broadcasts between the three.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from minimod.nn._function import run


def flash_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    is_causal: bool = False,
    scale: float | None = None,
    block_size: int = 128,
) -> torch.Tensor:
    """softmax(Q Kᵀ · scale) V as torch.nn.functional.scaled_dot_product_attention computes it
    (``is_causal``: query i sees keys j ≤ i), through ``FlashAttention``: keys and values are
    read ``block_size`` at a time, and only the output and one log-sum-exp per query row are
    kept for the backward pass. No attention mask, no dropout, no returned weights: those need
    the (L, S) matrix this function exists to avoid."""
    if query.dim() < 2 or key.dim() < 2 or value.dim() < 2:
        raise ValueError(
            f"flash_attention: query, key and value need at least 2 dimensions (..., T, d), got "
            f"shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"flash_attention: query (..., L, d), key (..., S, d) and value (..., S, d_v) "
            f"disagree: got {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        )
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"flash_attention: block_size must be an int ≥ 1, got {block_size!r}")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    return run(FlashAttention, query, key, value, is_causal, scale, block_size)


def _block_scores(query, key, start, is_causal, scale, dtype):
    """The scores of the queries that can see key block ``key`` (..., b, d), which starts at key
    position ``start``: (..., L, b), or (..., L − start, b) for the rows start.. when causal --
    the rows above the block see none of it and are skipped. Causal, the first b of those rows
    see only the block's keys up to their own position: the rest get −inf."""
    # BEGIN SOLUTION
    if is_causal:
        query = query[..., start:, :]
    scores = (query @ key.transpose(-2, -1)).to(dtype) * scale
    if is_causal:
        rows, width = min(scores.shape[-2], key.shape[-2]), key.shape[-2]
        hidden = torch.ones(rows, width, dtype=torch.bool, device=scores.device).triu(1)
        scores[..., :rows, :].masked_fill_(hidden, float("-inf"))
    return scores
    # END SOLUTION


class FlashAttention(torch.autograd.Function):
    """softmax(Q Kᵀ · scale) V by blocks of keys, with FlashAttention-2's backward.

    Forward, for each key block j (K_j, V_j, b keys) and the rows that see it, with m, l and
    O running per row (m = −inf, l = 0, O = 0 at the start):
        S_j = Q K_jᵀ · scale                                (..., L, b)
        m' = max(m, rowmax(S_j)),   α = exp(m − m'),   P_j = exp(S_j − m')
        l = α l + rowsum(P_j),      O = α O + P_j V_j,   m = m'
    then O = O / l and lse = m + log l (..., L, 1). Backward, given dO, with
    D = rowsum(dO ∘ O) (..., L, 1), for each block again:
        P_j = exp(S_j − lse)   (the block's true weights, recomputed)
        dV_j = P_jᵀ dO,   dP_j = dO V_jᵀ,   dS_j = P_j ∘ (dP_j − D)
        dQ += dS_j K_j · scale,   dK_j = dS_jᵀ Q · scale
    Kept for the backward: Q, K, V, O and lse -- nothing of size L × S. The running statistics
    and the softmax are in at least float32. Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, query, key, value, is_causal, scale, block_size):
        ctx.dtypes = (query.dtype, key.dtype, value.dtype)
        ctx.is_causal, ctx.scale, ctx.block_size = is_causal, scale, block_size
        compute = torch.promote_types(query.dtype, torch.float32)
        length, width = query.shape[-2], value.shape[-1]
        rows = torch.broadcast_shapes(query.shape[:-2], key.shape[:-2]) + (length, 1)
        batch = torch.broadcast_shapes(rows[:-2], value.shape[:-2])
        # BEGIN SOLUTION
        row_max = torch.full(rows, float("-inf"), dtype=compute, device=query.device)
        row_sum = torch.zeros(rows, dtype=compute, device=query.device)
        output = torch.zeros(batch + (length, width), dtype=compute, device=query.device)
        for start in range(0, key.shape[-2], block_size):
            if is_causal and start >= length:
                break  # every later block lies above the diagonal: no query sees it
            block = slice(start, start + block_size)
            first = start if is_causal else 0
            scores = _block_scores(query, key[..., block, :], start, is_causal, scale, compute)
            new_max = torch.maximum(row_max[..., first:, :], scores.amax(-1, keepdim=True))
            rescale = torch.exp(row_max[..., first:, :] - new_max)
            weights = scores.sub_(new_max).exp_()
            # In place, on the rows' views: no second running output while the block adds to it.
            row_sum[..., first:, :].mul_(rescale).add_(weights.sum(-1, keepdim=True))
            output[..., first:, :].mul_(rescale).add_(
                weights.to(value.dtype) @ value[..., block, :]
            )
            row_max[..., first:, :] = new_max
        output = output.div_(row_sum).to(value.dtype)
        log_sum_exp = row_max + row_sum.log()
        ctx.save_for_backward(query, key, value, output, log_sum_exp)
        return output
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        query, key, value, output, log_sum_exp = ctx.saved_tensors
        is_causal, scale, block_size = ctx.is_causal, ctx.scale, ctx.block_size
        # The products in the inputs' dtype, the softmax's backward in the log-sum-exp's.
        low = torch.promote_types(torch.promote_types(query.dtype, key.dtype), value.dtype)
        query, key, value, grad_output = (t.to(low) for t in (query, key, value, grad_output))
        compute = log_sum_exp.dtype
        batch = torch.broadcast_shapes(log_sum_exp.shape[:-2], value.shape[:-2])
        # BEGIN SOLUTION
        delta = (grad_output.to(compute) * output.to(compute)).sum(-1, keepdim=True)
        grad_query = torch.zeros(batch + query.shape[-2:], dtype=compute, device=query.device)
        grad_key = torch.zeros(batch + key.shape[-2:], dtype=compute, device=key.device)
        grad_value = torch.zeros(batch + value.shape[-2:], dtype=compute, device=value.device)
        for start in range(0, key.shape[-2], block_size):
            if is_causal and start >= query.shape[-2]:
                break  # keys no query sees: their gradients stay 0
            block = slice(start, start + block_size)
            first = start if is_causal else 0
            scores = _block_scores(query, key[..., block, :], start, is_causal, scale, compute)
            weights = scores.sub_(log_sum_exp[..., first:, :]).exp_()
            rows_grad = grad_output[..., first:, :]
            grad_value[..., block, :] = weights.to(low).transpose(-2, -1) @ rows_grad
            grad_weights = (rows_grad @ value[..., block, :].transpose(-2, -1)).to(compute)
            grad_scores = grad_weights.sub_(delta[..., first:, :]).mul_(weights).to(low)
            grad_query[..., first:, :] += (grad_scores @ key[..., block, :]).mul_(scale)
            grad_key[..., block, :] = (grad_scores.transpose(-2, -1) @ query[..., first:, :]).mul_(
                scale
            )
        grads = (grad_query, grad_key, grad_value)
        shapes = (query.shape, key.shape, value.shape)
        grads = [
            g.sum_to_size(shape).to(dtype)
            for g, shape, dtype in zip(grads, shapes, ctx.dtypes, strict=True)
        ]
        return (*grads, None, None, None)
        # END SOLUTION
