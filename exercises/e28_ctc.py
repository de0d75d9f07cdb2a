"""Lesson 28: CTC -- the alignment lattice, the α and β recursions, greedy and beam decoding

The idea
A speech model emits one distribution over C classes per frame: log_probs (T, N, C), T frames
(100 per second of audio) for a transcript of S ≪ T characters. Nobody tells us which frames
belong to which character. Connectionist temporal classification (Graves et al. 2006) sums
over every alignment instead: a PATH π is one class per frame; the collapse B(π) merges
repeated symbols and then drops a special class, the blank ∅:
    B(a a ∅ b b ∅ ∅ b) = a b b          p(l | x) = Σ_{π: B(π) = l} Π_t y_t(π_t)
and the loss is −log p(l | x). y_t = exp(log_probs[t]) (a log-softmax over C).

Why a blank
Without it, "frames of nothing" (silence, between letters) would have to be some letter, and
a double letter could not exist: a a collapses to a. With it, "ll" in "hello" needs l ∅ l.
So a target with r adjacent repeats needs at least S + r frames; fewer and p = 0, loss = inf.

The lattice
Write l' = (∅, l1, ∅, l2, ..., ∅, lS, ∅): 2S + 1 states. A valid path walks through l' from
left to right, one state per frame, and from state s it may go to
    s      (stay: repeat the symbol)
    s + 1  (advance to the next blank or label)
    s + 2  (skip a blank) -- only if l'_{s+2} is a label different from l'_s.
It starts in state 0 or 1 and ends in state 2S or 2S − 1.

A worked example you can check by hand: classes (∅, a), T = 2 frames, both y_t = (0.4, 0.6),
target l = a, so l' = (∅, a, ∅). The paths that collapse to a are a a, a ∅ and ∅ a:
p = 0.6 · 0.6 + 0.6 · 0.4 + 0.4 · 0.6 = 0.84, loss = −ln 0.84 = 0.174. The α recursion below
gets there without listing paths: α_0 = (0.4, 0.6, 0); α_1(0) = 0.4 · 0.4 = 0.16,
α_1(1) = (0.6 + 0.4) · 0.6 = 0.6, α_1(2) = (0 + 0.6) · 0.4 = 0.24; p = α_1(1) + α_1(2) = 0.84.
The target a a needs a blank between its two a's (three frames): with T = 2, p = 0, loss = inf.

The α recursion (forward)
α_t(s) = total probability of all path prefixes that are in state s at frame t:
    α_0(0) = y_0(∅),  α_0(1) = y_0(l1),  α_0(s) = 0 otherwise
    α_t(s) = (α_{t-1}(s) + α_{t-1}(s − 1) + [skip allowed] α_{t-1}(s − 2)) · y_t(l'_s)
    p(l | x) = α_{T-1}(2S) + α_{T-1}(2S − 1)
alpha_recursion: one loop over t; every s and every sequence of the batch at once. The
lattice is laid out (T, S', N), S' = 2S + 1 -- states before sequences, so that one frame is one
contiguous (S', N) block -- and α lives in a (T, S' + 2, N) buffer with two −inf states before
s = 0: then α_{t-1}(s − 1) and α_{t-1}(s − 2) for EVERY s are slices of row t − 1 (views that
copy nothing, no concatenation per step), and the skip mask becomes, once, a (S', N) tensor of
0 and −inf added to the s − 2 term. Four operations per frame write the whole row α_t: two
torch.logaddexp, the mask, the emissions (a 3-way torch.logsumexp over a stacked window is
one call too, but measured slower: reductions over 3 elements cost more than two element-wise
calls). Each sequence is read at its own last frame input_lengths[n] − 1.

Why log space
α_t is a product of t probabilities: with 500 frames of y ≈ 0.1 it is 1e-500, which is 0 in
float64 (below 1e-308), let alone float32 (1e-38). In log space products become sums and the
sum of three terms becomes a logsumexp: log(e^a + e^b + e^c) = m + log(e^(a−m) + e^(b−m) +
e^(c−m)), m = max. Unreachable states are −inf; when all terms are −inf, m = 0 must be used
instead (−inf − (−inf) is NaN): torch.logaddexp(a, b) = max + log1p(e^−|a−b|) does exactly
that. The recursions run in float64 whatever the input's dtype: the loop then takes ~0.5 ms
more at T = 100 (float64 logaddexp is slower), and over 500 frames torch's float32 recursion
is off by 1e-3 in the gradient, ours by 4e-7.

The gradient: β and the state occupancies
β_t(s) is the same sum from the other end: paths that are in state s at frame t and finish
validly (it also includes y_t(l'_s)); it runs from each sequence's last frame down to 0 with
the mirrored moves (s, s + 1, s + 2). That is the α recursion of the problem read backwards:
each sequence's frames reversed within its own length (t <-> L − 1 − t) and its lattice too
(s <-> 2S − s), so the end states become the start states -- no second recursion to write.
When a gradient will be needed (any(ctx.needs_input_grad)), CTCFunction.forward puts the
reversed sequences beside the batch (columns N ... 2N − 1: the given _reversal gives the index
maps, _read_backwards applies them, _skips of the reversed l') and runs alpha_recursion ONCE for
both: the loop's cost is per frame, hardly per sequence. backward reads the second half back
with _read_backwards and has β. Then α_t(s) · β_t(s) / y_t(l'_s) is the probability of all
complete paths through (t, s), and with γ_t(s) = that / p(l | x) (a posterior, in [0, 1]):
    ∂(−log p) / ∂ log y_t(c) = −Σ_{s: l'_s = c} γ_t(s)
computed as exp(α + β − log y + nll) -- 0 outside each sequence's lattice (frames ≥ L,
states > 2S) -- and added into the classes with scatter_add_. Autograd through the α loop
would also work, but −inf states give NaN gradients (the derivative of a logsumexp of −infs)
and it keeps every intermediate. torch's own gradient differs from this exact one by
+ exp(log_probs): it assumes a log-softmax before it, which cancels the term.
The speed: the loop costs ~15 µs of Python and kernel launches per frame, however small the
rows; torch's C++ kernel has no such overhead, and at T = 100, N = 32 it is still 2.5 to 3
times faster than this ctc_loss, forward and backward (benchmarks/bench.py --models ctc).

Reductions, as torch: "none" gives (N,); "sum"; "mean" divides EACH loss by its target
length (at least 1), then averages. zero_infinity=True turns inf losses (targets that cannot fit)
into 0 with a zero gradient -- useful when a few utterances are too fast for the frame rate.
Targets are padded (N, S) with target_lengths, or concatenated (Σ target_lengths,).

Decoding
Greedy (best path): argmax class per frame, collapse. Fast, and usually close, but it finds
the most likely PATH, not the most likely LABELLING. Two frames with y(∅) = 0.6, y(a) = 0.4:
the best path ∅ ∅ (0.36) reads "", yet "a" has three paths a a, a ∅, ∅ a: 0.16 + 0.24 + 0.24
= 0.64. Prefix beam search keeps the beam_width best PREFIXES, each with two scores: p_b
(paths that end in a blank) and p_nb (paths that end in the prefix's last label). At each
frame, for each prefix and class c:
    c = ∅                 -> same prefix,    p_b  += (p_b + p_nb) · y(∅)
    c = last label        -> same prefix,    p_nb += p_nb · y(c)   (a repeat merges)
                          -> prefix + c,     p_nb += p_b · y(c)    (after a blank: new label)
    any other c           -> prefix + c,     p_nb += (p_b + p_nb) · y(c)
then keep the beam_width prefixes with the largest p_b + p_nb (in log space, logaddexp).
With a wide enough beam the scores are exactly p(l | x) = exp(−ctc_loss). A language model
can join the score here; greedy has nowhere to put it.

What you write
alpha_recursion (emit (T, S', N) of log y_t(l'_s), the skips (S', N) -> α (T, S', N));
CTCFunction.forward (the emissions, the reversed problem beside the batch when a gradient is
needed, alpha_recursion, reading the loss off, saving what backward unpacks, zero_infinity)
and CTCFunction.backward (β from the reversed half, the occupancies, the gradient);
ctc_greedy_decode and ctc_beam_search's search. extend_targets, the skip helper, the reversal
maps (_reversal, _read_backwards), the checks, the padding of concatenated targets, the
reductions and CTCLoss are given.

Classic pitfalls
- Allowing the skip between two EQUAL labels: "aa" then also matches a single run of a.
- Reading every sequence at frame T − 1 instead of input_lengths[n] − 1.
- Forgetting the end in the last label (state 2S − 1), or reading state 2S − 1 = −1 for an
  empty target (it ends in state 0 only).
- Plain probabilities instead of logs: 0 after a few hundred frames, loss inf.
- torch.logsumexp or logaddexp in an autograd recursion over −inf states: NaN gradients.
- Greedy: dropping blanks before merging repeats (a ∅ a must give "aa", not "a").
- Beam search with one score per prefix: a repeat after a blank and without one must differ.

Run it
Once `minimod exercises check 28` passes, a speech recogniser trains on synthetic spoken
keyword sentences through your CTC loss and its hand-written backward (--use-mine swaps in
every lesson that passes and says which; transcribe decodes with minimod's greedy and beam
search):
    minimod pretrain audio --task asr --use-mine --out runs/e28
prints which lessons are yours, the training loss every 10 steps (about 30 at step 10, 2.8 at
step 40), then "done: step 40, held-out wer 1, cer 1" (about 2 min 15 s on 2 busy shared
cores). Forty steps are not enough to hear anything: `minimod transcribe --from runs/e28
--held-out 3` shows an empty transcript for every utterance -- CTC learns the blank first.
A recogniser that does hear is `--task asr-digits --preset baby` (1000 steps: minutes, not
seconds; the README's speech-recognition table gives its word error rate).
Next: lesson 29 (Sound: the STFT, mel filterbanks, and the phase Griffin-Lim puts back)

Check it: minimod exercises check 28
Try it (python, in the repository folder):
    >>> import math
    >>> import torch
    >>> from exercises.e28_ctc import ctc_beam_search, ctc_greedy_decode, ctc_loss
    >>> log_probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()  # 2 frames, classes ∅, a
    >>> loss = ctc_loss(log_probs, torch.tensor([1]), 2, 1, reduction="sum")
    >>> round(math.exp(-loss.item()), 4)  # p("a") over its three paths
    0.64
    >>> ctc_greedy_decode(log_probs)  # the best path is ∅ ∅
    []
    >>> [(labels, round(math.exp(score), 4)) for labels, score in ctc_beam_search(log_probs)]
    [((1,), 0.64), ((), 0.36)]
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 28`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from minimod.nn._checks import can_read_back
from minimod.nn._function import run
from minimod.nn.ctc import (
    NEG_INF,
    REDUCTIONS,
    _add,
    _check_lengths,
    _frames,
    _logaddexp,
    _padded_targets,
)
from minimod.nn.module import Module

# ---- from minimod/nn/ctc.py ----------------------------------------


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e28: alpha_recursion")
    # END YOUR CODE


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e28: CTCFunction.forward")
        # END YOUR CODE

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
        # BEGIN YOUR CODE
        raise NotImplementedError("e28: CTCFunction.backward")
        # END YOUR CODE


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e28: ctc_greedy_decode")
    # END YOUR CODE


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e28: ctc_beam_search")
    # END YOUR CODE
