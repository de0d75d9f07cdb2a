"""CTC: ctc_loss / CTCLoss against torch.nn.functional.ctc_loss, and the two decoders.

Gradients are compared through a log-softmax of free logits -- how CTC is always used. Taken
with respect to log_probs themselves, torch's gradient has an extra exp(log_probs) (it assumes a
log-softmax before it, which cancels that term); minimod's is the exact derivative, checked
with gradcheck, and test_gradient_differs_from_torchs_by_exp_log_probs pins the relation.

Tolerance: strategies.TOLERANCES times 10 (float32 rtol 1e-3 / atol 1e-4, float64 rtol 1e-8 /
atol 1e-9): the α recursion sums up to 10 frames of log-probabilities in another order than
torch's kernel.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_forward_backward, tolerance
from strategies import dtypes, seeds

FACTOR = 10.0
REDUCTIONS = ("none", "mean", "sum")


LOSS_RULE = (
    "the CTC loss differs from torch's: read each sequence's α at its own last frame, "
    "input_lengths[n] − 1, and end in the last blank (state 2S) or the last label (state "
    "2S − 1; an empty target ends in state 0 only)"
)


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def needed_frames(targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The fewest frames each target fits in: its labels plus a blank between equal neighbours."""
    repeats = (targets[:, 1:] == targets[:, :-1]) & (
        torch.arange(1, targets.shape[1]) < lengths[:, None]
    )
    return lengths + repeats.sum(1)


def concatenated(targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return torch.cat([row[:n] for row, n in zip(targets, lengths.tolist(), strict=True)])


@st.composite
def ctc_problems(draw):
    """(logits (T, N, C), targets (N, S), input_lengths, target_lengths, blank), all feasible
    unless ``feasible`` is False (then some targets may be too long for their inputs)."""
    seed = draw(seeds)
    generator = torch.Generator().manual_seed(seed)
    batch, classes, longest = (
        draw(st.integers(1, 3)),
        draw(st.integers(2, 5)),
        draw(st.integers(1, 4)),
    )
    blank = draw(st.integers(0, classes - 1))
    labels = torch.randint(1, classes, (batch, longest), generator=generator)
    targets = (blank + labels) % classes  # every class but the blank
    target_lengths = torch.randint(0, longest + 1, (batch,), generator=generator)
    steps = draw(st.integers(1, 10))
    input_lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    return seed, steps, targets, input_lengths, target_lengths, blank, classes


@given(
    problem=ctc_problems(),
    reduction=st.sampled_from(REDUCTIONS),
    zero_infinity=st.booleans(),
    concatenate=st.booleans(),
    dtype=dtypes,
)
@example(
    problem=(0, 5, torch.tensor([[1, 1, 2]]), torch.tensor([5]), torch.tensor([3]), 0, 3),
    reduction="none",
    zero_infinity=False,
    concatenate=False,
    dtype=torch.float64,
)
def test_ctc_loss_matches_torch(problem, reduction, zero_infinity, concatenate, dtype):
    seed, steps, targets, input_lengths, target_lengths, blank, classes = problem
    if not zero_infinity:  # inf losses have NaN gradients: make every target fit
        need = needed_frames(targets, target_lengths)
        steps = max(steps, int(need.max()))
        input_lengths = torch.maximum(input_lengths, need).clamp(max=steps)
    logits = randn((steps, targets.shape[0], classes), dtype, seed)
    if concatenate:
        targets = concatenated(targets, target_lengths)
    args = (targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    with torch.no_grad():
        torch.testing.assert_close(
            impl.ctc.ctc_loss(logits.log_softmax(-1), *args),
            torch.nn.functional.ctc_loss(logits.log_softmax(-1), *args),
            **tolerance(dtype, FACTOR),
            msg=lambda m: f"{LOSS_RULE}\n{m}",
        )
    assert_same_forward_backward(
        lambda x: impl.ctc.ctc_loss(x.log_softmax(-1), *args),
        lambda x: torch.nn.functional.ctc_loss(x.log_softmax(-1), *args),
        [logits],
        factor=FACTOR,
    )


def test_gradcheck_float64():
    log_probs = randn((6, 3, 4), torch.float64, 0).log_softmax(-1).requires_grad_()
    targets = torch.tensor([[1, 2, 2], [3, 3, 0], [1, 0, 0]])

    def loss(x):
        return impl.ctc.ctc_loss(x, targets, [6, 5, 2], [3, 2, 1], reduction="none")

    assert torch.autograd.gradcheck(loss, (log_probs,))


def test_gradient_differs_from_torchs_by_exp_log_probs():
    """torch's ∂/∂log_probs = minimod's + exp(log_probs) on each sequence's frames."""
    log_probs = randn((5, 2, 4), torch.float64, 1).log_softmax(-1)
    targets, input_lengths, target_lengths = torch.tensor([[1, 2], [3, 0]]), [5, 3], [2, 1]
    grads = []
    for ctc in (impl.ctc.ctc_loss, torch.nn.functional.ctc_loss):
        x = log_probs.clone().requires_grad_()
        ctc(x, targets, input_lengths, target_lengths, reduction="sum").backward()
        grads.append(x.grad)
    inside = (torch.arange(5)[:, None] < torch.tensor(input_lengths))[..., None]
    expected = grads[1] - log_probs.exp() * inside
    torch.testing.assert_close(grads[0], expected, **tolerance(torch.float64))


def test_repeated_labels_need_a_blank_between():
    """[1, 1] in 3 frames has one alignment, 1 ∅ 1; in 2 frames none (it would read [1])."""
    log_probs = randn((3, 1, 3), torch.float64, 2).log_softmax(-1)
    lp = log_probs[:, 0]
    loss = impl.ctc.ctc_loss(log_probs, torch.tensor([[1, 1]]), [3], [2], reduction="none")
    torch.testing.assert_close(loss, -(lp[0, 1] + lp[1, 0] + lp[2, 1])[None])
    short = impl.ctc.ctc_loss(log_probs[:2], torch.tensor([[1, 1]]), [2], [2], reduction="none")
    assert torch.isinf(short).all(), "[1, 1] cannot fit in 2 frames: the loss must be inf"
    different = impl.ctc.ctc_loss(log_probs[:2], torch.tensor([[1, 2]]), [2], [2], 0, "none")
    torch.testing.assert_close(different, -(lp[0, 1] + lp[1, 2])[None])


def test_lengths_of_one_and_empty_targets():
    log_probs = randn((4, 2, 3), torch.float64, 3).log_softmax(-1)
    loss = impl.ctc.ctc_loss(log_probs, torch.tensor([[2], [1]]), [1, 4], [1, 0], reduction="none")
    expected = torch.stack([-log_probs[0, 0, 2], -log_probs[:, 1, 0].sum()])
    torch.testing.assert_close(loss, expected, **tolerance(torch.float64))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_impossible_targets_cost_inf_or_zero(reduction):
    """A target longer than its input: inf; with zero_infinity 0, and no gradient from it."""
    logits = randn((3, 2, 4), torch.float64, 4)
    targets, input_lengths, target_lengths = (
        torch.tensor([[1, 2, 3, 1], [2, 0, 0, 0]]),
        [2, 3],
        [4, 1],
    )
    loss = impl.ctc.ctc_loss(
        logits.log_softmax(-1), targets, input_lengths, target_lengths, 0, "none"
    )
    assert torch.isinf(loss[0]) and torch.isfinite(loss[1])
    args = (targets, input_lengths, target_lengths, 0, reduction, True)
    assert_same_forward_backward(
        lambda x: impl.ctc.ctc_loss(x.log_softmax(-1), *args),
        lambda x: torch.nn.functional.ctc_loss(x.log_softmax(-1), *args),
        [logits],
    )
    x = logits.clone().requires_grad_()
    impl.ctc.ctc_loss(x.log_softmax(-1), *args).sum().backward()
    assert bool((x.grad[:, 0] == 0).all()), (
        "zero_infinity: the impossible sequence gets no gradient"
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unbatched_and_module_match_torch(dtype):
    logits = randn((6, 5), dtype, 5)
    target = torch.tensor([1, 4, 4])
    args = (target, torch.tensor(6), torch.tensor(3))
    assert_same_forward_backward(
        lambda x: impl.ctc.ctc_loss(x.log_softmax(-1), *args, reduction="none"),
        lambda x: torch.nn.functional.ctc_loss(x.log_softmax(-1), *args, reduction="none"),
        [logits],
    )
    mine, twin = (
        impl.nn.CTCLoss(blank=2, zero_infinity=True),
        torch.nn.CTCLoss(2, zero_infinity=True),
    )
    batched = (torch.tensor([[1, 4, 4], [3, 0, 1]]), [6, 4], [3, 3])
    log_probs = randn((6, 2, 5), dtype, 6).log_softmax(-1)
    torch.testing.assert_close(
        mine(log_probs, *batched), twin(log_probs, *batched), **tolerance(dtype)
    )
    assert repr(mine) == repr(twin)


def test_long_inputs_stay_finite_in_float32():
    """500 frames: the path probabilities are ~e^-1000, far below float32's range; log space
    keeps the loss finite and equal to the exact one at float32's tolerance. The reference is
    torch's recursion in float64: its float32 one is off by up to 1.4e-3 in the gradient here."""
    logits = randn((500, 2, 6), torch.float32, 7, scale=3.0)
    targets = torch.randint(1, 6, (2, 40), generator=torch.Generator().manual_seed(0))
    args = (targets, [500, 480], [40, 35], 0, "none")
    assert_same_forward_backward(
        lambda x: impl.ctc.ctc_loss(x.log_softmax(-1), *args),
        lambda x: torch.nn.functional.ctc_loss(x.double().log_softmax(-1), *args).float(),
        [logits],
    )


# -- decoding --------------------------------------------------------------------------------


def table(probabilities) -> torch.Tensor:
    return torch.tensor(probabilities, dtype=torch.float64).log()


def collapse(path, blank=0) -> tuple:
    """Merge repeats, then drop blanks."""
    return tuple(c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1]))


def test_beam_search_finds_the_labelling_greedy_the_path():
    """Two frames, p(∅) = 0.6, p(a) = 0.4 each: the best path is ∅∅ (0.36, the empty labelling)
    but "a" has three paths, a a, a ∅, ∅ a: 0.16 + 0.24 + 0.24 = 0.64."""
    log_probs = table([[0.6, 0.4], [0.6, 0.4]])
    assert impl.ctc.ctc_greedy_decode(log_probs) == []
    results = impl.ctc.ctc_beam_search(log_probs, beam_width=4)
    labels = [labels for labels, _ in results]
    assert labels == [(1,), ()], (
        f"beam search gave {labels}, expected [(1,), ()]: keep two scores per prefix (paths "
        "ending in a blank, paths ending in its last label): a repeat after a blank is a new "
        "label, without one it merges into the same label"
    )
    assert [math.exp(score) for _, score in results] == pytest.approx([0.64, 0.36])


def test_greedy_merges_repeats_then_drops_blanks():
    path = [1, 1, 0, 1, 2, 2, 0, 0, 2]
    log_probs = torch.nn.functional.one_hot(torch.tensor(path), 3).double().clamp(min=0.01).log()
    got = impl.ctc.ctc_greedy_decode(log_probs)
    assert got == [1, 1, 2, 2], (
        f"{got} for the path {path}: merge repeats first, then drop blanks (a ∅ a is 'aa', not 'a')"
    )
    assert impl.ctc.ctc_greedy_decode(log_probs, blank=2) == [1, 0, 1, 0]
    batch = torch.stack([log_probs, log_probs.flip(0)], dim=1)
    assert impl.ctc.ctc_greedy_decode(batch, lengths=[9, 3]) == [[1, 1, 2, 2], [2]]


@given(
    steps=st.integers(1, 4),
    classes=st.integers(2, 3),
    blank=st.integers(0, 2),
    seed=seeds,
)
def test_beam_search_scores_are_the_sums_over_alignments(steps, classes, blank, seed):
    """With a beam wide enough to keep every prefix, the results are every labelling, scored
    exactly: the brute-force sum over all C^T paths, and exp(−ctc_loss)."""
    blank = blank % classes
    log_probs = randn((steps, classes), torch.float64, seed, scale=2.0).log_softmax(-1)
    exact: dict[tuple, float] = {}
    for path in itertools.product(range(classes), repeat=steps):
        p = math.exp(sum(log_probs[t, c].item() for t, c in enumerate(path)))
        labels = collapse(path, blank)
        exact[labels] = exact.get(labels, 0.0) + p
    results = impl.ctc.ctc_beam_search(log_probs, beam_width=classes**steps, blank=blank)
    found = {labels: math.exp(score) for labels, score in results}
    assert found.keys() == exact.keys()
    for labels, p in exact.items():
        assert found[labels] == pytest.approx(p, rel=1e-9)
    best = max(exact, key=exact.get)
    assert results[0][0] == best
    if best:
        loss = impl.ctc.ctc_loss(log_probs, torch.tensor(best), steps, len(best), blank, "none")
        assert math.exp(-loss.item()) == pytest.approx(exact[best], rel=1e-9)


def test_narrow_beam_keeps_the_best():
    log_probs = randn((12, 5), torch.float64, 8, scale=2.0).log_softmax(-1)
    wide = impl.ctc.ctc_beam_search(log_probs, beam_width=64)
    narrow = impl.ctc.ctc_beam_search(log_probs, beam_width=2)
    assert len(narrow) <= 2 and narrow[0][0] == wide[0][0]
    assert [s for _, s in wide] == sorted((s for _, s in wide), reverse=True)


# -- error messages --------------------------------------------------------------------------


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(reduction="avg"), r"reduction must be one of"),
        (dict(input_lengths=[5, 6]), r"input_lengths must be in \[1, 5\]"),
        (dict(input_lengths=[5]), r"input_lengths must be 2 integers"),
        (dict(target_lengths=[3, 1]), r"target_lengths must be in \[0, 2\]"),
        (dict(blank=4), r"blank must be a class in \[0, 4\)"),
        (dict(targets=torch.tensor([[1, 0], [2, 3]])), r"may not contain the blank"),
        (dict(targets=torch.tensor([[1, 7], [2, 3]])), r"classes in \[0, 4\)"),
        (dict(targets=torch.tensor([1, 2])), r"sum\(target_lengths\) = 3"),
        (dict(log_probs=torch.zeros(5, 2, 4, 1)), r"\(T, N, C\) or unbatched \(T, C\)"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    args = dict(
        log_probs=torch.zeros(5, 2, 4),
        targets=torch.tensor([[1, 2], [3, 3]]),
        input_lengths=[5, 4],
        target_lengths=[2, 1],
    )
    with pytest.raises(ValueError, match=message):
        impl.ctc.ctc_loss(**{**args, **kwargs})


@pytest.mark.reference_only
def test_bad_types_and_decoder_input():
    with pytest.raises(TypeError, match="integer labels"):
        impl.ctc.ctc_loss(torch.zeros(5, 1, 3), torch.ones(1, 2), [5], [2])
    with pytest.raises(ValueError, match=r"one sequence, got \(5, 2, 3\)"):
        impl.ctc.ctc_beam_search(torch.zeros(5, 2, 3))
    with pytest.raises(ValueError, match=r"lengths must be 2 values in \[0, 5\]"):
        impl.ctc.ctc_greedy_decode(torch.zeros(5, 2, 3), lengths=[6, 1])
