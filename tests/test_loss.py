"""Losses (F.cross_entropy, mse_loss, binary_cross_entropy_with_logits and their modules) against
torch.nn.functional and torch.nn.

Tolerances: strategies.TOLERANCES (float32 rtol 1e-4 / atol 1e-5, float64 rtol 1e-9 /
atol 1e-10) for values and gradients; the losses sum at most a few hundred terms of one sign,
so no extra factor. Gradients are compared w.r.t. the input and every floating target (torch
gives none w.r.t. weight or pos_weight, which are passed as constants). Logits go up to ±1e4:
torch stays finite there and so must the implementation.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import assert_same_forward_backward, assert_same_state_dict_layout, tolerance
from strategies import batch_shapes, dtypes, seeds, shapes, sides

WEIGHT_MEAN_HINT = (
    "with a class weight, reduction='mean' divides by the sum of the weights of the counted "
    "targets, Σ weight[target] over targets != ignore_index, not by their number"
)
IGNORE_MEAN_HINT = (
    "targets equal to ignore_index must not count in the mean: divide by the number of "
    "non-ignored targets, not by all of them"
)
UNSTABLE_CE_HINT = (
    "cross_entropy is not finite for large logits where torch's is: log(softmax(x)) gives "
    "log(0) = -inf; use log_softmax (x - m - log Σ exp(x - m), m = max over classes)"
)
UNSTABLE_BCE_HINT = (
    "binary_cross_entropy_with_logits is not finite for large logits where torch's is: "
    "log(sigmoid(x)) underflows to log(0); use the stable form "
    "(1 - y)·x + softplus(-x), softplus(z) = log(1 + e^z) = logaddexp(0, z)"
)
DOUBLE_SOFTMAX_HINT = (
    "your loss equals torch's cross_entropy of softmax(x): cross_entropy takes raw logits and "
    "applies log_softmax itself; a softmax before it is a double softmax"
)
SMOOTHING_HINT = (
    "without label smoothing your loss is right, with it not: torch spreads ε over all C "
    "classes (ε/C each, the target's class included), not over C - 1"
)
CLASS_DIM_HINT = (
    "your loss is right for (N, C) inputs but not for (N, C, d1, ...): the classes are on dim 1 "
    "there too, not on the last axis"
)
POS_WEIGHT_HINT = (
    "pos_weight multiplies only the positive term: -[pos_weight·y·log σ(x) + (1 - y)·log(1 - σ(x))]"
)

REDUCTIONS = st.sampled_from(["none", "sum", "mean"])
SMOOTHINGS = st.sampled_from([0.0, 0.1, 0.5, 0.95])
# ±1e4 logits on top of the shared scales: the stability cases.
LOGIT_SCALES = st.sampled_from([1.0, 0.01, 10.0, 1e4])
MIXED_LOGITS = [
    [1e4, -1e4, 0.0, 1.0],
    [-1e4, -1e4, 5.0, -5.0],
    [1e4, 1e4, -1e4, 3.0],
    [-1e4, -1e4, -1e4, -1e4],
]


def randn(shape, dtype, seed, scale=1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def rand(shape, dtype, seed) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@st.composite
def ce_input_shapes(draw, max_classes: int = 5):
    """Logit shapes torch accepts: unbatched (C,), (N, C) and (N, C, d1[, d2])."""
    classes = draw(st.integers(1, max_classes))
    kind = draw(st.sampled_from(["unbatched", "batched", "spatial"]))
    if kind == "unbatched":
        return (classes,)
    batch = draw(st.integers(1, 4))
    if kind == "batched":
        return (batch, classes)
    return (batch, classes, *draw(shapes(1, 2, 3)))


def class_axis(shape: tuple) -> int:
    return 0 if len(shape) == 1 else 1


def target_shape(shape: tuple) -> tuple:
    return () if len(shape) == 1 else (shape[0], *shape[2:])


def index_targets(
    shape: tuple, seed: int, ignore_index: int = -100, ignore_p: float = 0.0, keep_one: bool = True
) -> torch.Tensor:
    """Class indices for logits of ``shape``; a fraction ignore_p set to ignore_index."""
    generator = torch.Generator().manual_seed(seed + 1)
    classes = shape[class_axis(shape)]
    target = torch.randint(0, classes, target_shape(shape), generator=generator)
    ignored = torch.rand(target.shape, generator=generator) < ignore_p
    target = torch.where(ignored, ignore_index, target)
    if keep_one and target.view(-1)[0] == ignore_index:  # at least one counted target
        counted_class = (ignore_index + 1) % classes if 0 <= ignore_index < classes else 0
        assert counted_class != ignore_index, "ignore_index is the only class: nothing counted"
        target.view(-1)[0] = counted_class
    return target


def probability_targets(shape: tuple, dtype, seed: int, one_hot: bool) -> torch.Tensor:
    axis = class_axis(shape)
    if one_hot:
        return F.one_hot(index_targets(shape, seed), shape[axis]).movedim(-1, axis).to(dtype)
    return torch.softmax(randn(shape, dtype, seed + 2, 2.0), axis)


def class_weight(classes: int, dtype, seed: int) -> torch.Tensor:
    return rand((classes,), dtype, seed + 3) * 2 + 0.05


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, equal_nan=True, **tolerance(b.dtype))


def assert_same_loss(fn, twin, inputs, nan_ok: bool = False) -> None:
    """Forward and gradients like compare.assert_same_forward_backward, but NaN may match NaN
    (the mean over zero counted targets is NaN in torch)."""
    if not nan_ok:
        assert_same_forward_backward(fn, twin, inputs)
        return
    ours_in = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    theirs_in = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    ours, theirs = fn(*ours_in), twin(*theirs_in)
    tol = dict(equal_nan=True, **tolerance(theirs.dtype))
    torch.testing.assert_close(ours, theirs, **tol, msg=lambda m: f"forward differs\n{m}")
    ours.sum().backward(), theirs.sum().backward()
    for i, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        if b.grad is not None:
            torch.testing.assert_close(
                a.grad, b.grad, **tol, msg=lambda m, i=i: f"gradient of input {i} differs\n{m}"
            )


# -- cross_entropy -------------------------------------------------------------------------


def cross_entropy_hint(x, target, out, **kwargs) -> str | None:
    """Name the classic cross-entropy mistake that ``out`` shows, if any."""
    with torch.no_grad():
        expected = F.cross_entropy(x, target, **kwargs)
        if _close(out, expected):
            return None
        if torch.isfinite(expected).all() and not torch.isfinite(out).all():
            return UNSTABLE_CE_HINT
        if x.numel() and _close(
            out, F.cross_entropy(x.softmax(min(1, x.dim() - 1)), target, **kwargs)
        ):
            return DOUBLE_SOFTMAX_HINT
        if target.is_floating_point() or kwargs.get("reduction", "mean") != "mean":
            return None
        per_target = F.cross_entropy(x, target, **{**kwargs, "reduction": "none"})
        counted = target != kwargs.get("ignore_index", -100)
        weighted = kwargs.get("weight") is not None
        if weighted and _close(out, per_target.sum() / counted.sum()):
            return f"{WEIGHT_MEAN_HINT}; yours divides by the number of counted targets"
        if not counted.all() and _close(out, per_target.sum() / target.numel()):
            return (
                f"{WEIGHT_MEAN_HINT}; {IGNORE_MEAN_HINT} (it looks like a plain .mean())"
                if weighted
                else f"{IGNORE_MEAN_HINT}; yours divides by {target.numel()}"
            )
    return None


def check_cross_entropy(fn, x, target, nan_ok: bool = False, **kwargs) -> None:
    """Hint for a recognisable mistake, then values and gradients (input, float targets)."""
    with torch.no_grad():
        out = fn(x, target, **kwargs)
    hint = cross_entropy_hint(x, target, out, **kwargs)
    assert hint is None, hint
    if not _close(out, F.cross_entropy(x, target, **kwargs)):
        # A mistake in one feature only: the same call without it, or on (N, C), is right.
        plain = {**kwargs, "label_smoothing": 0.0}
        with torch.no_grad():
            unsmoothed = fn(x, target, **plain)
        smoothing = kwargs.get("label_smoothing", 0.0) > 0
        assert not smoothing or not _close(unsmoothed, F.cross_entropy(x, target, **plain)), (
            SMOOTHING_HINT
        )
        if x.dim() > 2 and kwargs.get("reduction", "mean") != "none":
            flat_x = x.movedim(1, -1).reshape(-1, x.shape[1])
            flat_t = (
                target.movedim(1, -1).reshape(-1, x.shape[1])
                if target.is_floating_point()
                else target.reshape(-1)
            )
            with torch.no_grad():
                flat = fn(flat_x, flat_t, **kwargs)
            assert not _close(flat, F.cross_entropy(flat_x, flat_t, **kwargs)), CLASS_DIM_HINT
    assert_same_loss(
        lambda i, t: fn(i, t, **kwargs),
        lambda i, t: F.cross_entropy(i, t, **kwargs),
        [x, target],
        nan_ok,
    )


@given(
    shape=ce_input_shapes(),
    dtype=dtypes,
    seed=seeds,
    scale=LOGIT_SCALES,
    reduction=REDUCTIONS,
    weighted=st.booleans(),
    label_smoothing=SMOOTHINGS,
)
@example(
    shape=(3, 1),
    dtype=torch.float64,
    seed=0,
    scale=1.0,
    reduction="mean",
    weighted=True,
    label_smoothing=0.1,
)  # one class
@example(
    shape=(4,),
    dtype=torch.float32,
    seed=1,
    scale=1e4,
    reduction="none",
    weighted=False,
    label_smoothing=0.0,
)  # unbatched, huge logits
@example(
    shape=(2, 3, 2, 2),
    dtype=torch.float32,
    seed=2,
    scale=1e4,
    reduction="mean",
    weighted=True,
    label_smoothing=0.5,
)
@example(
    shape=(1, 4, 1),
    dtype=torch.float64,
    seed=3,
    scale=10.0,
    reduction="sum",
    weighted=True,
    label_smoothing=0.0,
)
def test_cross_entropy_class_indices_match_torch(
    shape, dtype, seed, scale, reduction, weighted, label_smoothing
):
    x = randn(shape, dtype, seed, scale)
    weight = class_weight(shape[class_axis(shape)], dtype, seed) if weighted else None
    check_cross_entropy(
        impl.F.cross_entropy,
        x,
        index_targets(shape, seed),
        weight=weight,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


@given(
    shape=ce_input_shapes(),
    dtype=dtypes,
    seed=seeds,
    ignore_index=st.sampled_from([-100, 0, 1]),
    ignore_p=st.sampled_from([0.3, 0.7]),
    reduction=REDUCTIONS,
    weighted=st.booleans(),
    label_smoothing=SMOOTHINGS,
)
@example(
    shape=(6, 3),
    dtype=torch.float64,
    seed=0,
    ignore_index=-100,
    ignore_p=0.7,
    reduction="mean",
    weighted=False,
    label_smoothing=0.0,
)
@example(
    shape=(6, 3),
    dtype=torch.float64,
    seed=0,
    ignore_index=1,
    ignore_p=0.7,
    reduction="mean",
    weighted=True,
    label_smoothing=0.0,
)
@example(
    shape=(4, 3, 2),
    dtype=torch.float32,
    seed=1,
    ignore_index=0,
    ignore_p=0.3,
    reduction="mean",
    weighted=True,
    label_smoothing=0.5,
)
def test_cross_entropy_ignore_index_matches_torch(
    shape, dtype, seed, ignore_index, ignore_p, reduction, weighted, label_smoothing
):
    """Some targets ignored (at least one counted), with and without weight and smoothing."""
    classes = shape[class_axis(shape)]
    if classes == 1 and ignore_index == 0:
        ignore_index = -100  # the only class ignored would leave nothing to count
    x = randn(shape, dtype, seed)
    target = index_targets(shape, seed, ignore_index, ignore_p)
    weight = class_weight(classes, dtype, seed) if weighted else None
    check_cross_entropy(
        impl.F.cross_entropy,
        x,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


@given(
    shape=ce_input_shapes(),
    dtype=dtypes,
    seed=seeds,
    scale=LOGIT_SCALES,
    reduction=REDUCTIONS,
    weighted=st.booleans(),
    label_smoothing=SMOOTHINGS,
    one_hot=st.booleans(),
)
@example(
    shape=(2, 1),
    dtype=torch.float64,
    seed=0,
    scale=1.0,
    reduction="mean",
    weighted=False,
    one_hot=True,
    label_smoothing=0.5,
)  # one class
@example(
    shape=(5,),
    dtype=torch.float32,
    seed=1,
    scale=1e4,
    reduction="none",
    weighted=True,
    one_hot=False,
    label_smoothing=0.1,
)
@example(
    shape=(2, 4, 3),
    dtype=torch.float64,
    seed=2,
    scale=1e4,
    reduction="mean",
    weighted=True,
    one_hot=False,
    label_smoothing=0.0,
)
def test_cross_entropy_probability_targets_match_torch(
    shape, dtype, seed, scale, reduction, weighted, label_smoothing, one_hot
):
    """Targets are class probabilities shaped like the input; gradients w.r.t. them too."""
    x = randn(shape, dtype, seed, scale)
    weight = class_weight(shape[class_axis(shape)], dtype, seed) if weighted else None
    check_cross_entropy(
        impl.F.cross_entropy,
        x,
        probability_targets(shape, dtype, seed, one_hot),
        weight=weight,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )


@given(shape=ce_input_shapes(), dtype=dtypes, seed=seeds, probabilities=st.booleans())
def test_cross_entropy_defaults_match_torch(shape, dtype, seed, probabilities):
    """No options: weight=None, ignore_index=-100, reduction='mean', label_smoothing=0."""
    x = randn(shape, dtype, seed)
    target = (
        probability_targets(shape, dtype, seed, False)
        if probabilities
        else index_targets(shape, seed)
    )
    check_cross_entropy(impl.F.cross_entropy, x, target)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_all_targets_ignored(reduction, weighted, label_smoothing):
    """Nothing counted: torch gives NaN for 'mean' (0 / 0), 0 for 'sum', zeros for 'none', and
    a gradient of all zeros even where the 'mean' loss is NaN (a batch made only of padding
    must not put NaN into the weights). The unweighted (N, C) case is CrossEntropy's."""
    target = torch.full((3,), -100)
    weight = class_weight(4, torch.float64, 0) if weighted else None
    kwargs = dict(weight=weight, reduction=reduction, label_smoothing=label_smoothing)
    x = randn((3, 4), torch.float64, 0).requires_grad_()
    out = impl.F.cross_entropy(x, target, **kwargs)
    expected = F.cross_entropy(x, target, **kwargs)
    torch.testing.assert_close(
        out,
        expected,
        equal_nan=True,
        **tolerance(torch.float64),
        msg=lambda m: f"with every target ignored torch gives {expected} ({reduction=})\n{m}",
    )
    out.sum().backward()
    torch.testing.assert_close(
        x.grad,
        torch.zeros_like(x),
        rtol=0,
        atol=0,
        msg=lambda m: (
            f"with every target ignored torch's gradient is all zeros ({reduction=}), "
            f"even for 'mean' whose value is NaN (0/0 in the mean's backward gives NaN)\n{m}"
        ),
    )


# Σ weight[target] over the counted targets of [0, 1, 2] (and of [0, -100, 2]): below zero, or
# exactly zero with a loss that is not (±inf) or is (0/0 = nan).
NON_POSITIVE_WEIGHTS = {
    "negative": [-1.0, -2.0, -0.5, -1.0],
    "mixed, negative sum": [0.5, -2.0, 0.25, 1.0],
    "zero sum": [1.0, -1.0, 0.0, 3.0],
    "all zero": [0.0, 0.0, 0.0, 0.0],
}


@pytest.mark.parametrize("weights", NON_POSITIVE_WEIGHTS.values(), ids=NON_POSITIVE_WEIGHTS)
@pytest.mark.parametrize("ignored", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_weights_summing_to_at_most_zero_match_torch(
    weights, ignored, label_smoothing
):
    """torch divides by Σ weight[target] whatever its sign: a negative sum gives a value and
    its gradient, a zero sum ±inf or nan. Only "every target ignored" is NaN with a zero
    gradient; weights that merely sum to ≤ 0 must not be mistaken for it."""
    x = randn((3, 4), torch.float64, 0)
    target = torch.tensor([0, -100, 2] if ignored else [0, 1, 2])
    weight = torch.tensor(weights, dtype=torch.float64)
    kwargs = dict(weight=weight, label_smoothing=label_smoothing)
    expected = F.cross_entropy(x, target, **kwargs)
    if expected.isfinite():
        check_cross_entropy(impl.F.cross_entropy, x, target, **kwargs)
    else:  # torch's gradient there is inf/nan too, in a pattern not worth copying
        torch.testing.assert_close(
            impl.F.cross_entropy(x, target, **kwargs), expected, equal_nan=True
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("probabilities", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_one_class(dtype, probabilities, label_smoothing):
    """C = 1: log_softmax is 0, so the loss and its gradient are 0 (as in torch)."""
    x = randn((5, 1), dtype, 0, 3.0)
    target = torch.ones(5, 1, dtype=dtype) if probabilities else torch.zeros(5, dtype=torch.long)
    check_cross_entropy(impl.F.cross_entropy, x, target, label_smoothing=label_smoothing)
    assert impl.F.cross_entropy(x, target, label_smoothing=label_smoothing).item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("probabilities", [False, True])
@pytest.mark.parametrize(
    "options", [{}, {"label_smoothing": 0.1, "weight": True}, {"reduction": "none"}]
)
def test_cross_entropy_huge_logits_stay_finite(dtype, probabilities, options):
    x = torch.tensor(MIXED_LOGITS, dtype=dtype)
    target = (
        torch.softmax(randn((4, 4), dtype, 0), 1) if probabilities else torch.tensor([1, 0, 2, 3])
    )
    kwargs = dict(options)
    if kwargs.pop("weight", False):
        kwargs["weight"] = class_weight(4, dtype, 0)
    check_cross_entropy(impl.F.cross_entropy, x, target, **kwargs)
    x = x.clone().requires_grad_()
    loss = impl.F.cross_entropy(x, target, **kwargs)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(x.grad).all(), UNSTABLE_CE_HINT


# -- mse_loss ------------------------------------------------------------------------------


@given(
    shape=shapes(0, 4, 5),
    dtype=dtypes,
    seed=seeds,
    scale=st.sampled_from([1.0, 0.01, 10.0]),
    reduction=st.sampled_from([None, "none", "sum", "mean"]),
)
@example(shape=(), dtype=torch.float32, seed=0, scale=1.0, reduction=None)
@example(shape=(1, 1), dtype=torch.float64, seed=1, scale=10.0, reduction="sum")
def test_mse_loss_matches_torch(shape, dtype, seed, scale, reduction):
    """reduction=None means the default ('mean'); gradients w.r.t. input and target."""
    kwargs = {} if reduction is None else {"reduction": reduction}
    x, y = randn(shape, dtype, seed, scale), randn(shape, dtype, seed + 1, scale)
    assert_same_forward_backward(
        lambda a, b: impl.F.mse_loss(a, b, **kwargs),
        lambda a, b: F.mse_loss(a, b, **kwargs),
        [x, y],
    )


# -- binary_cross_entropy_with_logits ------------------------------------------------------


def _bce_terms(x, y, pos_weight):
    """log σ(x) and log(1 - σ(x)) = log σ(-x), computed stably."""
    return F.logsigmoid(x), F.logsigmoid(-x), (1 if pos_weight is None else pos_weight)


def _reduce(loss, weight, reduction):
    loss = loss if weight is None else loss * weight
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def bce_hint(x, y, out, weight=None, reduction="mean", pos_weight=None) -> str | None:
    """Name the classic BCE-with-logits mistake that ``out`` shows, if any."""
    kwargs = dict(weight=weight, reduction=reduction, pos_weight=pos_weight)
    with torch.no_grad():
        expected = F.binary_cross_entropy_with_logits(x, y, **kwargs)
        if _close(out, expected):
            return None
        if torch.isfinite(expected).all() and not torch.isfinite(out).all():
            return UNSTABLE_BCE_HINT
        if pos_weight is not None:
            log_p, log_not_p, p = _bce_terms(x, y, pos_weight)
            on_negative = -(y * log_p + p * (1 - y) * log_not_p)
            on_both = -p * (y * log_p + (1 - y) * log_not_p)
            for wrong, where in ((on_negative, "the negative term"), (on_both, "both terms")):
                if _close(out, _reduce(wrong, weight, reduction)):
                    return f"{POS_WEIGHT_HINT}; yours weights {where}"
    return None


def check_bce(fn, x, y, **kwargs) -> None:
    with torch.no_grad():
        out = fn(x, y, **kwargs)
    hint = bce_hint(x, y, out, **kwargs)
    assert hint is None, hint
    assert_same_forward_backward(
        lambda a, b: fn(a, b, **kwargs),
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, **kwargs),
        [x, y],
    )


def bce_extra(kind, shape, dtype, seed):
    """weight / pos_weight: None, shaped like the input, over the last dim only, or one value."""
    if kind is None:
        return None
    sizes = {"full": shape, "last": shape[-1:], "one": (1,)}[kind]
    return rand(sizes, dtype, seed) * 3 + 0.1


@given(
    batch=batch_shapes(3, 4),
    classes=sides(5),
    dtype=dtypes,
    seed=seeds,
    scale=LOGIT_SCALES,
    weight=st.sampled_from([None, "full", "last", "one"]),
    pos_weight=st.sampled_from([None, "last", "one"]),
    reduction=REDUCTIONS,
    hard=st.booleans(),
)
@example(
    batch=(),
    classes=1,
    dtype=torch.float32,
    seed=0,
    scale=1e4,
    weight=None,
    pos_weight=None,
    reduction="mean",
    hard=True,
)
@example(
    batch=(3,),
    classes=4,
    dtype=torch.float64,
    seed=1,
    scale=1.0,
    weight="last",
    pos_weight="last",
    reduction="none",
    hard=True,
)
@example(
    batch=(2, 2),
    classes=3,
    dtype=torch.float32,
    seed=2,
    scale=1e4,
    weight="full",
    pos_weight="last",
    reduction="sum",
    hard=False,
)
def test_bce_with_logits_matches_torch(
    batch, classes, dtype, seed, scale, weight, pos_weight, reduction, hard
):
    """pos_weight broadcasts over the last (class) dim; targets hard {0, 1} or soft in [0, 1]."""
    shape = (*batch, classes)
    x = randn(shape, dtype, seed, scale)
    y = rand(shape, dtype, seed + 1)
    y = (y > 0.5).to(dtype) if hard else y
    check_bce(
        impl.F.binary_cross_entropy_with_logits,
        x,
        y,
        weight=bce_extra(weight, shape, dtype, seed + 2),
        reduction=reduction,
        pos_weight=bce_extra(pos_weight, shape, dtype, seed + 3),
    )


@given(shape=shapes(1, 3, 5), dtype=dtypes, seed=seeds)
def test_bce_with_logits_defaults_match_torch(shape, dtype, seed):
    x, y = randn(shape, dtype, seed), rand(shape, dtype, seed + 1)
    check_bce(impl.F.binary_cross_entropy_with_logits, x, y)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits_huge_logits_stay_finite(dtype, pos_weight):
    x = torch.tensor(MIXED_LOGITS, dtype=dtype)
    y = torch.tensor([[1.0, 0.0, 1.0, 0.5]] * 4, dtype=dtype)
    kwargs = {"pos_weight": torch.tensor([2.0, 0.5, 1.0, 3.0], dtype=dtype)} if pos_weight else {}
    check_bce(impl.F.binary_cross_entropy_with_logits, x, y, reduction="none", **kwargs)
    x = x.clone().requires_grad_()
    loss = impl.F.binary_cross_entropy_with_logits(x, y, **kwargs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all(), UNSTABLE_BCE_HINT


# -- modules -------------------------------------------------------------------------------


def assert_loss_module_matches(mine, twin, inputs) -> None:
    """Same options, same state_dict keys (weight/pos_weight are buffers), loading both ways,
    same values and gradients."""
    assert list(mine.parameters()) == [], "losses have no parameters"
    assert_same_state_dict_layout(mine, twin)
    assert list(mine.state_dict()) == list(twin.state_dict()), "state_dict key order differs"
    for key, value in twin.state_dict().items():
        torch.testing.assert_close(mine.state_dict()[key], value, rtol=0, atol=0)
    twin.load_state_dict(mine.state_dict())
    mine.load_state_dict(twin.state_dict())
    assert_same_forward_backward(mine, twin, inputs)


CE_OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"ignore_index": 1},
    {"label_smoothing": 0.25},
    {"weight": True},
    {"weight": True, "ignore_index": 1, "label_smoothing": 0.1, "reduction": "mean"},
]


@pytest.mark.parametrize("options", CE_OPTIONS)
@given(shape=ce_input_shapes(), dtype=dtypes, seed=seeds)
@example(shape=(2, 3, 4), dtype=torch.float64, seed=0)
def test_cross_entropy_loss_module_matches_torch(options, shape, dtype, seed):
    kwargs = dict(options)
    classes = shape[class_axis(shape)]
    if kwargs.pop("weight", False):
        kwargs["weight"] = class_weight(classes, dtype, seed)
    mine = impl.nn.CrossEntropyLoss(**kwargs)
    twin = torch.nn.CrossEntropyLoss(**kwargs)
    for name in ("ignore_index", "reduction", "label_smoothing"):
        assert getattr(mine, name) == getattr(twin, name), (
            f"CrossEntropyLoss.{name} should be {getattr(twin, name)!r} (torch's default)"
        )
    x = randn(shape, dtype, seed)
    target = index_targets(shape, seed, kwargs.get("ignore_index", -100), 0.3)
    with torch.no_grad():
        hint = cross_entropy_hint(x, target, mine(x, target), **kwargs)
    assert hint is None, hint
    assert_loss_module_matches(mine, twin, [x, target])


def test_cross_entropy_loss_weight_is_a_buffer_and_loads_both_ways():
    x, target = randn((4, 3), torch.float32, 0), torch.tensor([0, 1, 2, 1])
    mine = impl.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    twin = torch.nn.CrossEntropyLoss(weight=torch.tensor([0.5, 4.0, 0.25]))
    assert list(mine.state_dict()) == list(twin.state_dict()) == ["weight"], (
        "CrossEntropyLoss registers weight as a buffer: it belongs in state_dict"
    )
    mine.load_state_dict(twin.state_dict())
    torch.testing.assert_close(mine(x, target), twin(x, target), **tolerance(torch.float32))
    twin.load_state_dict(
        impl.nn.CrossEntropyLoss(weight=torch.tensor([3.0, 1.0, 1.0])).state_dict()
    )
    torch.testing.assert_close(twin.weight, torch.tensor([3.0, 1.0, 1.0]))
    assert dict(impl.nn.CrossEntropyLoss().state_dict()) == {}, "no weight: an empty state_dict"


@pytest.mark.parametrize("reduction", [None, "none", "sum", "mean"])
@given(shape=shapes(0, 4, 5), dtype=dtypes, seed=seeds)
def test_mse_loss_module_matches_torch(reduction, shape, dtype, seed):
    kwargs = {} if reduction is None else {"reduction": reduction}
    mine, twin = impl.nn.MSELoss(**kwargs), torch.nn.MSELoss(**kwargs)
    assert mine.reduction == twin.reduction
    assert_loss_module_matches(
        mine, twin, [randn(shape, dtype, seed), randn(shape, dtype, seed + 1)]
    )


BCE_OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"weight": "last"},
    {"pos_weight": "last"},
    {"weight": "one", "pos_weight": "last", "reduction": "none"},
]


@pytest.mark.parametrize("options", BCE_OPTIONS)
@given(batch=batch_shapes(2, 4), classes=sides(4), dtype=dtypes, seed=seeds)
def test_bce_with_logits_loss_module_matches_torch(options, batch, classes, dtype, seed):
    shape = (*batch, classes)
    kwargs = {
        k: bce_extra(v, shape, dtype, seed) if k != "reduction" else v for k, v in options.items()
    }
    mine = impl.nn.BCEWithLogitsLoss(**kwargs)
    twin = torch.nn.BCEWithLogitsLoss(**kwargs)
    assert mine.reduction == twin.reduction
    x, y = randn(shape, dtype, seed, 3.0), rand(shape, dtype, seed + 1)
    with torch.no_grad():
        hint = bce_hint(x, y, mine(x, y), **kwargs)
    assert hint is None, hint
    assert_loss_module_matches(mine, twin, [x, y])


@pytest.mark.parametrize("weight", [None, torch.tensor([1.0, 2.0])])
@pytest.mark.parametrize("pos_weight", [None, torch.tensor([3.0, 0.5])])
def test_bce_with_logits_buffers_match_torch(weight, pos_weight):
    kwargs = dict(weight=weight, pos_weight=pos_weight)
    mine, twin = impl.nn.BCEWithLogitsLoss(**kwargs), torch.nn.BCEWithLogitsLoss(**kwargs)
    assert list(mine.state_dict()) == list(twin.state_dict()), (
        f"BCEWithLogitsLoss registers weight and pos_weight as buffers: state_dict keys "
        f"{list(mine.state_dict())}, torch's {list(twin.state_dict())}"
    )


# -- minimod's own error messages ----------------------------------------------------------


@pytest.mark.reference_only
def test_bad_arguments_raise():
    from minimod.nn import CrossEntropyLoss, MSELoss
    from minimod.nn.functional import binary_cross_entropy_with_logits, cross_entropy, mse_loss

    with pytest.raises(ValueError, match=r"mse_loss: input shape \(2, 3\) and target shape \(3,\)"):
        mse_loss(torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"reduction must be one of .*'avg'"):
        MSELoss(reduction="avg")
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: input shape"):
        binary_cross_entropy_with_logits(torch.zeros(2, 3), torch.zeros(2, 1))
    with pytest.raises(IndexError, match=r"target 5 is out of range for 3 classes"):
        cross_entropy(torch.zeros(2, 3), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match=r"needs targets of shape \(2,\), got \(3,\)"):
        cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match="class-index targets must be integers"):
        CrossEntropyLoss()(torch.zeros(2, 3), torch.tensor([True, False]))


# -- the hints fire on deliberately wrong implementations ------------------------------------


def _ce_plain_mean(
    x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
):
    """Per-target losses right, but the mean is a plain .mean() over every target."""
    per_target = F.cross_entropy(
        x,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction="none",
        label_smoothing=label_smoothing,
    )
    return per_target.mean() if reduction == "mean" else per_target.sum()


def _ce_count_mean(
    x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
):
    """Ignores ignored targets, but divides a weighted sum by the number of counted targets."""
    per_target = F.cross_entropy(
        x,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction="none",
        label_smoothing=label_smoothing,
    )
    return per_target.sum() / (target != ignore_index).sum()


def _ce_log_of_softmax(x, target, **kwargs):
    return F.nll_loss(torch.softmax(x, 1).log(), target)


def _bce_naive(x, y, weight=None, reduction="mean", pos_weight=None):
    p = torch.sigmoid(x)
    return _reduce(-(y * p.log() + (1 - y) * (1 - p).log()), weight, reduction)


def _bce_pos_weight_on_negative(x, y, weight=None, reduction="mean", pos_weight=None):
    log_p, log_not_p, p = _bce_terms(x, y, pos_weight)
    return _reduce(-(y * log_p + p * (1 - y) * log_not_p), weight, reduction)


@pytest.mark.reference_only
def test_hint_weighted_mean_denominator_fires():
    x, target = randn((6, 3), torch.float64, 0), torch.tensor([0, 1, 2, 2, -100, 1])
    weight = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    with pytest.raises(AssertionError, match="divides by the number of counted targets"):
        check_cross_entropy(_ce_count_mean, x, target, weight=weight)
    with pytest.raises(AssertionError, match=r"Σ weight\[target\].*plain \.mean\(\)"):
        check_cross_entropy(_ce_plain_mean, x, target, weight=weight, label_smoothing=0.1)


@pytest.mark.reference_only
def test_hint_ignored_targets_in_mean_fires():
    x, target = randn((5, 4), torch.float32, 0), torch.tensor([3, -100, 1, -100, 0])
    with pytest.raises(AssertionError, match="must not count in the mean.*divides by 5"):
        check_cross_entropy(_ce_plain_mean, x, target)


@pytest.mark.reference_only
def test_hint_unstable_losses_fire():
    x = torch.tensor(MIXED_LOGITS)
    with pytest.raises(AssertionError, match=r"log\(softmax\(x\)\) gives log\(0\)"):
        check_cross_entropy(_ce_log_of_softmax, x, torch.tensor([1, 0, 2, 3]))
    with pytest.raises(AssertionError, match="use the stable form"):
        check_bce(_bce_naive, x, torch.tensor([[1.0, 0.0, 1.0, 0.0]] * 4))


@pytest.mark.reference_only
def test_hint_pos_weight_on_wrong_term_fires():
    x, y = randn((3, 4), torch.float64, 0), (rand((3, 4), torch.float64, 1) > 0.5).double()
    pos_weight = torch.tensor([2.0, 0.5, 3.0, 4.0], dtype=torch.float64)
    with pytest.raises(AssertionError, match="multiplies only the positive term.*negative term"):
        check_bce(_bce_pos_weight_on_negative, x, y, pos_weight=pos_weight)


@pytest.mark.reference_only
def test_checks_accept_torch_itself():
    """The hint logic must not reject torch's own losses (no false alarms)."""
    x, target = torch.tensor(MIXED_LOGITS), torch.tensor([1, -100, 2, 3])
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0])
    check_cross_entropy(F.cross_entropy, x, target, weight=weight, label_smoothing=0.2)
    check_bce(
        F.binary_cross_entropy_with_logits,
        x,
        torch.rand(4, 4),
        pos_weight=torch.tensor([2.0, 1.0, 1.0, math.pi]),
    )


# -- the hand-written backward (CrossEntropy) ----------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_backward_passes_gradcheck(reduction):
    """Finite differences in float64 against CrossEntropy's backward, with an ignored row."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, dtype=torch.float64, generator=g).requires_grad_()
    target = torch.tensor([0, 4, -100, 2, 2, 1])
    torch.autograd.gradcheck(
        lambda x: impl.F.cross_entropy(x, target, ignore_index=-100, reduction=reduction),
        (logits,),
    )
