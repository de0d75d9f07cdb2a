"""Connectionist temporal classification (Graves et al. 2006): the loss and two decoders.

CTC scores a label sequence l (length S) against T ≥ S frames of class log-probabilities by
summing over every alignment: a path of T symbols from the classes plus a blank that collapses
to l (merge repeats, then drop blanks). The sum runs as the α recursion over the extended
sequence l' = (blank, l1, blank, l2, ..., lS, blank) of length 2S + 1, in log space, vectorised
over the batch and looping over time; the gradient comes from the matching β recursion -- the α
recursion of each sequence read backwards, run in the same loop -- written by hand in a
torch.autograd.Function.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from minimod.nn._checks import can_read_back
from minimod.nn._function import run
from minimod.nn.module import Module

REDUCTIONS = ("none", "mean", "sum")
NEG_INF = float("-inf")


def extend_targets(targets: torch.Tensor, target_lengths: torch.Tensor, blank: int):
    """Padded targets (N, S) -> l' (N, 2S + 1): blanks around and between the labels; the
    padding past each target's length becomes blanks too (it is never read)."""
    steps = torch.arange(targets.shape[1], device=targets.device)
    labels = torch.where(steps < target_lengths[:, None], targets, blank)
    extended = labels.new_full((targets.shape[0], 2 * targets.shape[1] + 1), blank)
    extended[:, 1::2] = labels
    return extended


def _skips(extended: torch.Tensor) -> torch.Tensor:
    """(N, S') bool: a path may jump from s − 2 to s -- s holds a label that differs from the
    label at s − 2 (between two equal labels the blank is required)."""
    skip = torch.zeros_like(extended, dtype=torch.bool)
    skip[:, 2:] = extended[:, 2:] != extended[:, :-2]
    skip[:, ::2] = False  # blanks are never skipped to
    return skip


def _reversal(extended, input_lengths, target_lengths, steps: int):
    """Index maps that read each sequence backwards within its own lengths: frame t <-> L − 1 − t,
    state s <-> 2·S_n − s; frames and states past the ends stay where they are.
    -> (frames (T, N), states (N, S'))."""
    frame = torch.arange(steps, device=extended.device)[:, None]
    last = (input_lengths - 1)[None]
    state = torch.arange(extended.shape[1], device=extended.device)[None]
    end = 2 * target_lengths[:, None]
    frames = torch.where(frame <= last, last - frame, frame)
    return frames, torch.where(state <= end, end - state, state)


def _read_backwards(x: torch.Tensor, frames: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """x (T, S', N) through _reversal's maps: out[t, s, n] = x[frames[t, n], states[n, s], n].
    Reading backwards twice gives x back."""
    x = x.gather(0, frames[:, None].expand(x.shape))
    return x.gather(1, states.T[None].expand(x.shape))


def alpha_recursion(emit: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """The α recursion over time, every state and sequence at once: emit (T, S', N) = log
    y_t(l'_s), skip (S', N) from _skips -> α (T, S', N), α_t(s) = log of all path prefixes in
    state s at frame t, the emission at (t, s) included."""
    # BEGIN SOLUTION
    steps, states, batch = emit.shape
    # alpha[t, s + 2] = α_t(s), with two −inf states before s = 0: the rows shifted by one and
    # by two states are then slices of the buffer, views that copy nothing.
    alpha = emit.new_full((steps, states + 2, batch), NEG_INF)
    alpha[0, 2:4] = emit[0, :2]  # start in the first blank or the first label
    stay, step, skip_from = (alpha[:, k : k + states].unbind(0) for k in (2, 1, 0))
    barred = torch.where(skip, 0.0, NEG_INF).to(emit.dtype)  # −inf where s − 2 -> s is not allowed
    emits = emit.unbind(0)
    for t in range(1, steps):
        # α_t(s) = log(e^α_{t−1}(s) + e^α_{t−1}(s − 1) + e^α_{t−1}(s − 2) [skip]) + e_t(s)
        came = torch.logaddexp(torch.logaddexp(stay[t - 1], step[t - 1]), skip_from[t - 1] + barred)
        torch.add(came, emits[t], out=stay[t])
    return alpha[:, 2:]
    # END SOLUTION


class CTCFunction(torch.autograd.Function):
    """−log p(l | x) per sequence, with the gradient from the α and β recursions.

    log_probs (T, N, C), extended l' (N, S'), input_lengths (N,) in [1, T], target_lengths (N,)
    -> nll (N,). α_t(s) and β_t(s) both include the emission at (t, s), so
    α_t(s) + β_t(s) − log y_t(l'_s) is the log-probability of all paths through (t, s).
    Inside, the lattice is (T, S', N), states before sequences, so that each frame is one
    contiguous block; the recursions run in float64 whatever the input's dtype, and the loss
    and the gradient come back in that dtype.
    """

    @staticmethod
    def forward(ctx, log_probs, extended, input_lengths, target_lengths, zero_infinity):
        steps, batch, _ = log_probs.shape
        ends = 2 * target_lengths[:, None]  # the final blank of each l'
        # BEGIN SOLUTION
        # β is α of the problem read backwards (frames L − 1 ... 0, states 2S ... 0): when a
        # gradient will be wanted, both run in one loop, the reversed sequences beside the batch
        # (N ... 2N − 1). emit[t, s, n] = log y_t(l'_s) of sequence n, (T, S', N or 2N).
        both = any(ctx.needs_input_grad)
        size = (steps, extended.shape[1], 2 * batch if both else batch)
        emit = log_probs.new_empty(size, dtype=torch.float64)
        labels = extended[None].expand(steps, -1, -1)
        emit[..., :batch] = log_probs.gather(2, labels).transpose(1, 2)
        skip = _skips(extended).T  # (S', N)
        if both:
            frames, states = _reversal(extended, input_lengths, target_lengths, steps)
            emit[..., batch:] = _read_backwards(emit[..., :batch], frames, states)
            skip = torch.cat([skip, _skips(extended.gather(1, states)).T], 1)
        alpha = alpha_recursion(emit, skip)
        # Read each sequence at its own last frame: end in the last blank or the last label.
        last = alpha[input_lengths - 1, :, torch.arange(batch, device=alpha.device)]  # (N, S')
        final_label = last.gather(1, (ends - 1).clamp(min=0))
        final_label = torch.where(ends > 0, final_label, NEG_INF)
        nll = -torch.logaddexp(last.gather(1, ends), final_label)[:, 0]
        ctx.zero_infinity = zero_infinity
        ctx.save_for_backward(log_probs, extended, input_lengths, target_lengths, emit, alpha, nll)
        nll = nll.to(log_probs.dtype)
        if zero_infinity:
            return torch.where(torch.isinf(nll), torch.zeros_like(nll), nll)
        return nll
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_nll):
        log_probs, extended, input_lengths, target_lengths, emit, alpha, nll = ctx.saved_tensors
        steps, batch, _ = log_probs.shape
        frames, states = _reversal(extended, input_lengths, target_lengths, steps)
        # (T, S', N): True past each sequence's last frame or final state (not in its lattice).
        positions = torch.arange(extended.shape[1], device=emit.device)[:, None]
        outside = (torch.arange(steps, device=emit.device)[:, None, None] >= input_lengths) | (
            positions > 2 * target_lengths
        )
        # BEGIN SOLUTION
        # The reversed half of the loop, read backwards again, is β.
        beta = _read_backwards(alpha[..., batch:], frames, states)
        emit, alpha = emit[..., :batch], alpha[..., :batch]
        # γ_t(s): the share of p(l|x) through (t, s); ∂nll/∂log y_t(c) = −Σ_{s: l'_s = c} γ_t(s).
        # (In place, each step: these are the largest tensors of the backward.)
        occupancy = beta.add_(alpha).sub_(emit).add_(nll).exp_().masked_fill_(outside, 0.0)
        if ctx.zero_infinity:
            occupancy.masked_fill_(torch.isinf(nll), 0.0)
        grad = torch.zeros_like(log_probs, dtype=occupancy.dtype).transpose(1, 2)  # (T, C, N)
        grad.scatter_add_(1, extended.T[None].expand(steps, -1, -1), occupancy)
        grad = grad.transpose(1, 2).mul_(-grad_nll[:, None])
        return grad.to(log_probs.dtype), None, None, None, None
        # END SOLUTION


def _check_lengths(name: str, lengths, batch: int, low: int, high: int, device) -> torch.Tensor:
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.dim() == 0:
        lengths = lengths[None]
    if lengths.shape != (batch,) or lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ValueError(
            f"ctc_loss: {name} must be {batch} integers (one per sequence), got shape "
            f"{tuple(lengths.shape)} and dtype {lengths.dtype}"
        )
    if can_read_back(lengths) and bool(((lengths < low) | (lengths > high)).any()):
        raise ValueError(f"ctc_loss: {name} must be in [{low}, {high}], got {lengths.tolist()}")
    return lengths.long()


def _padded_targets(targets, target_lengths, batch: int, blank: int) -> torch.Tensor:
    """Targets (N, S) padded, or 1-D concatenated (Σ target_lengths,) -> padded (N, S)."""
    if targets.dim() == 2:
        if targets.shape[0] != batch:
            raise ValueError(
                f"ctc_loss: padded targets must have {batch} rows (one per sequence), got shape "
                f"{tuple(targets.shape)}"
            )
        return targets
    if targets.dim() != 1:
        raise ValueError(
            f"ctc_loss: targets must be padded (N, S) or concatenated (sum of target_lengths,), "
            f"got shape {tuple(targets.shape)}"
        )
    longest = int(target_lengths.max()) if batch else 0
    if int(target_lengths.sum()) != targets.shape[0]:
        raise ValueError(
            f"ctc_loss: concatenated targets must hold sum(target_lengths) = "
            f"{int(target_lengths.sum())} labels, got {targets.shape[0]}"
        )
    starts = torch.cumsum(target_lengths, 0) - target_lengths
    index = starts[:, None] + torch.arange(longest, device=targets.device)
    inside = index < (starts + target_lengths)[:, None]
    index = index.clamp(max=max(targets.shape[0] - 1, 0))
    if targets.shape[0] == 0:
        return targets.new_full((batch, longest), blank)
    return torch.where(inside, targets[index], blank)


def ctc_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    input_lengths,
    target_lengths,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> torch.Tensor:
    """The CTC loss, −log p(targets | log_probs), as torch.nn.functional.ctc_loss computes it.

    log_probs (T, N, C) (log-softmax over C), or unbatched (T, C). targets: padded (N, S) or
    concatenated 1-D (Σ target_lengths,); unbatched (S,). input_lengths, target_lengths (N,)
    (unbatched: ints). reduction "mean" divides each loss by its target length (at least 1),
    then averages over the batch; "sum" adds; "none" gives (N,). An impossible alignment (a
    target too long for its input) costs inf, or 0 with a zero gradient if zero_infinity.
    The gradient is ∂loss/∂log_probs itself (torch's differs by exp(log_probs), a term the
    log-softmax before it cancels).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"ctc_loss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(log_probs, torch.Tensor) or not log_probs.is_floating_point():
        raise TypeError("ctc_loss: log_probs must be a floating-point tensor")
    if log_probs.dim() not in (2, 3):
        raise ValueError(
            f"ctc_loss: log_probs must be (T, N, C) or unbatched (T, C), got shape "
            f"{tuple(log_probs.shape)}"
        )
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise TypeError(f"ctc_loss: targets must be integer labels, got {targets.dtype}")
    unbatched = log_probs.dim() == 2
    if unbatched:
        log_probs, targets = log_probs[:, None], targets[None]
    steps, batch, classes = log_probs.shape
    if not 0 <= blank < classes:
        raise ValueError(f"ctc_loss: blank must be a class in [0, {classes}), got {blank}")
    device = log_probs.device
    input_lengths = _check_lengths("input_lengths", input_lengths, batch, 1, steps, device)
    longest = targets.shape[1] if targets.dim() == 2 else targets.shape[0]
    target_lengths = _check_lengths("target_lengths", target_lengths, batch, 0, longest, device)
    padded = _padded_targets(targets, target_lengths, batch, blank).long()
    extended = extend_targets(padded, target_lengths, blank)
    if can_read_back(extended) and bool(((extended < 0) | (extended >= classes)).any()):
        raise ValueError(f"ctc_loss: target labels must be classes in [0, {classes})")
    labels = extended[:, 1::2]
    inside = torch.arange(labels.shape[1], device=device) < target_lengths[:, None]
    if can_read_back(labels) and bool((inside & (labels == blank)).any()):
        raise ValueError(f"ctc_loss: targets may not contain the blank ({blank})")
    nll = run(CTCFunction, log_probs, extended, input_lengths, target_lengths, zero_infinity)
    if reduction == "mean":
        return (nll / target_lengths.clamp(min=1).to(nll.dtype)).mean()
    if reduction == "sum":
        return nll.sum()
    return nll[0] if unbatched else nll


class CTCLoss(Module):
    """torch.nn.CTCLoss: forward(log_probs, targets, input_lengths, target_lengths)."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"CTCLoss: reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.blank, self.reduction, self.zero_infinity = blank, reduction, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths) -> torch.Tensor:
        return ctc_loss(
            log_probs,
            targets,
            input_lengths,
            target_lengths,
            self.blank,
            self.reduction,
            self.zero_infinity,
        )


def _frames(where: str, log_probs: torch.Tensor) -> torch.Tensor:
    """(T, N, C), or (T, C) made (T, 1, C)."""
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() not in (2, 3):
        shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else log_probs
        raise ValueError(f"{where}: expected log_probs (T, N, C) or (T, C), got {shape}")
    return log_probs[:, None] if log_probs.dim() == 2 else log_probs


def ctc_greedy_decode(log_probs: torch.Tensor, lengths=None, blank: int = 0):
    """Best path decoding: the most likely class per frame, repeats merged, blanks dropped.

    log_probs (T, N, C) with lengths (N,) (None: all T frames) -> N label lists;
    (T, C) -> one label list.
    """
    frames = _frames("ctc_greedy_decode", log_probs)
    steps, batch, _ = frames.shape
    lengths = [steps] * batch if lengths is None else torch.as_tensor(lengths).reshape(-1).tolist()
    if len(lengths) != batch or any(not 0 <= n <= steps for n in lengths):
        raise ValueError(
            f"ctc_greedy_decode: lengths must be {batch} values in [0, {steps}], got {lengths}"
        )
    # BEGIN SOLUTION
    best = frames.argmax(-1)  # (T, N)
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[1:] = best[1:] != best[:-1]
    keep = changed & (best != blank)
    decoded = [best[:n, i][keep[:n, i]].tolist() for i, n in enumerate(lengths)]
    return decoded[0] if log_probs.dim() == 2 else decoded
    # END SOLUTION


def ctc_beam_search(log_probs: torch.Tensor, beam_width: int = 8, blank: int = 0):
    """Prefix beam search: the most likely LABELLINGS, each scored by the sum over all its
    alignments (best path decoding scores one alignment).

    log_probs (T, C) of one sequence -> up to beam_width (labels tuple, log p) pairs, best first.
    """
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 2:
        shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else log_probs
        raise ValueError(
            f"ctc_beam_search: expected the log_probs (T, C) of one sequence, got {shape}; "
            "decode a batch one sequence at a time (log_probs[:length, n])"
        )
    if beam_width < 1:
        raise ValueError(f"ctc_beam_search: beam_width must be ≥ 1, got {beam_width}")
    table = log_probs.detach().double().tolist()
    # BEGIN SOLUTION
    # Each prefix keeps two scores: paths ending in a blank, and paths ending in its last label.
    # They must stay apart: after a blank a repeated label is a new label, otherwise it merges.
    beams = {(): (0.0, NEG_INF)}
    for row in table:
        grown: dict[tuple, tuple[float, float]] = {}

        for prefix, (ends_blank, ends_label) in beams.items():
            total = _logaddexp(ends_blank, ends_label)
            for label, score in enumerate(row):
                if label == blank:
                    _add(grown, prefix, blank_score=total + score)
                elif prefix and label == prefix[-1]:
                    # Without a blank between, the repeat merges into the same label; after
                    # a blank it is a new one.
                    _add(grown, prefix, label_score=ends_label + score)
                    _add(grown, prefix + (label,), label_score=ends_blank + score)
                else:
                    _add(grown, prefix + (label,), label_score=total + score)
        ranked = sorted(grown.items(), key=lambda item: -_logaddexp(*item[1]))
        beams = {prefix: scores for prefix, scores in ranked[:beam_width] if max(scores) > NEG_INF}
    results = [(prefix, _logaddexp(*scores)) for prefix, scores in beams.items()]
    return sorted(results, key=lambda item: -item[1])
    # END SOLUTION


def _add(beams: dict, prefix: tuple, blank_score=NEG_INF, label_score=NEG_INF) -> None:
    """Add path scores to ``beams[prefix]`` = (log p ending in a blank, log p ending in a label)."""
    old_blank, old_label = beams.get(prefix, (NEG_INF, NEG_INF))
    beams[prefix] = (_logaddexp(old_blank, blank_score), _logaddexp(old_label, label_score))


def _logaddexp(a: float, b: float) -> float:
    """log(e^a + e^b) for Python floats, −inf allowed."""
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    top = max(a, b)
    return top + math.log1p(math.exp(-abs(a - b)))
