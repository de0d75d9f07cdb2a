"""Imbalanced classes: class weights, a weighted sampler and the focal loss (lesson 23), plus
minimod's confusion-matrix picture.

The references: scikit-learn's "balanced" formula written out (n / (k · n_c)); torch's
F.cross_entropy, which the focal loss must equal at gamma = 0; the focal loss formula written
out in float64 with torch.softmax and autograd for gamma > 0; torch.utils.data's
WeightedRandomSampler for the sampler's draws.
"""

from __future__ import annotations

import io
import struct
import sys

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from compare import tolerance
from strategies import dtypes, seeds

PLAIN_CE_HINT = (
    "this is plain cross-entropy: the focal loss multiplies each term by (1 - p_t) ** gamma, "
    "which shrinks the loss of examples the model already gets right"
)
P_T_HINT = "the factor is (1 - p_t) ** gamma, not p_t ** gamma (it must vanish as p_t -> 1)"
LOG_SOFTMAX_HINT = (
    "not finite for logits of ±1e4: take log_softmax (log p = x - logsumexp(x)), never "
    "log(softmax(x)), whose probabilities underflow to 0"
)
GRAD_AT_ONE_HINT = (
    "the loss is finite but its gradient is not: for gamma < 1 the derivative of "
    "(1 - p_t) ** gamma is infinite at p_t = 1, and times log p_t = 0 autograd makes nan; clamp "
    "1 - p_t to at least torch.finfo(dtype).tiny"
)
MEAN_HINT = (
    "with class weights, reduction='mean' divides by the sum of the targets' weights "
    "(sum of w[target] over the counted targets), as cross_entropy does, not by their number"
)
ONE_OVER_COUNT_HINT = (
    "the weights look like 1 / count: scale them by n / k (n labels, k classes present), so the "
    "average weight over the examples is 1 -- scikit-learn's 'balanced'"
)
ALL_CLASSES_HINT = (
    "k is the number of classes PRESENT in the labels (scikit-learn's 'balanced'), not "
    "num_classes; a class that never occurs gets weight 0"
)
PROPORTIONAL_HINT = (
    "rare classes are drawn even less often: draw each example with probability "
    "proportional to 1 / (count of its label), not to the count"
)


# -- class weights ---------------------------------------------------------------------------


def balanced(labels: list[int], num_classes: int) -> list[float]:
    """scikit-learn's compute_class_weight("balanced"), written out; 0 for an absent class."""
    counts = [labels.count(c) for c in range(num_classes)]
    present = sum(count > 0 for count in counts)
    return [len(labels) / (present * count) if count else 0.0 for count in counts]


def assert_class_weights(class_weights, labels: list[int], num_classes: int) -> None:
    got = class_weights(torch.tensor(labels), num_classes)
    expected = torch.tensor(balanced(labels, num_classes), dtype=torch.float64)
    assert got.shape == (num_classes,) and got.dtype == torch.get_default_dtype()
    if torch.allclose(got.double(), expected, rtol=1e-6):
        return
    counts = torch.bincount(torch.tensor(labels), minlength=num_classes).double()
    if torch.allclose(got.double()[counts > 0], 1 / counts[counts > 0], rtol=1e-6):
        raise AssertionError(ONE_OVER_COUNT_HINT)
    present = counts > 0
    over_all = expected * present.sum() / num_classes  # n / (num_classes * count)
    if not torch.isfinite(got).all() or torch.allclose(
        got.double()[present], over_all[present], rtol=1e-6
    ):
        raise AssertionError(ALL_CLASSES_HINT)
    raise AssertionError(f"class_weights({labels}, {num_classes}) = {got}, expected {expected}")


@given(
    labels=st.lists(st.integers(0, 4), min_size=1, max_size=30),
    extra=st.integers(0, 2),
)
@example(labels=[0, 0, 0, 1], extra=0)
@example(labels=[2], extra=0)
@example(labels=[0, 0, 0, 0, 0, 0, 0, 0, 0, 1], extra=1)
def test_class_weights_match_scikit_learns_balanced_formula(labels, extra):
    num_classes = max(labels) + 1 + extra  # extra: classes that never occur
    assert_class_weights(impl.imbalance.class_weights, labels, num_classes)
    weights = impl.imbalance.class_weights(labels, num_classes, dtype=torch.float64)
    per_example = weights[torch.tensor(labels)]
    torch.testing.assert_close(per_example.sum(), torch.tensor(float(len(labels))).double())
    none = impl.imbalance.class_weights(labels, num_classes, mode="none")
    assert torch.equal(none, torch.ones(num_classes)), "mode='none': all ones"


def test_class_weights_balance_the_cross_entropy_gradient_of_each_class():
    """With the weights, every class contributes the same total weight to the loss."""
    labels = torch.tensor([0] * 9 + [1] * 3 + [2] * 1)
    weights = impl.imbalance.class_weights(labels, 3)
    totals = torch.zeros(3).index_add_(0, labels, weights[labels])
    torch.testing.assert_close(totals, torch.full((3,), len(labels) / 3))


# -- the weighted sampler ------------------------------------------------------------------------


def assert_balanced_draws(sampler_class) -> None:
    labels = torch.tensor([0] * 90 + [1] * 10)  # 1 : 9
    sampler = sampler_class(labels, 4000, torch.Generator().manual_seed(0))
    drawn = torch.tensor(list(sampler))
    assert len(drawn) == len(sampler) == 4000
    share = (labels[drawn] == 1).double().mean().item()
    if share < 0.05:
        raise AssertionError(f"{PROPORTIONAL_HINT} (class 1: {share:.1%} of the draws)")
    # Balanced: 50% ± 4% is 5 standard deviations of a binomial share over 4000 draws.
    assert abs(share - 0.5) < 0.04, f"the rare class is {share:.1%} of the draws, expected ~50%"
    counts = torch.bincount(drawn, minlength=100).double()
    for members in (counts[:90], counts[90:]):  # within a class, every example alike
        expected = members.mean()
        assert members.max() < expected + 6 * expected.sqrt() + 3, "examples of a class: uniform"


def test_weighted_sampler_draws_the_classes_equally_often():
    assert_balanced_draws(impl.imbalance.WeightedSampler)


@given(seed=seeds, taken=st.integers(0, 12), replacement=st.booleans())
def test_weighted_sampler_resumes_exactly(seed, taken, replacement):
    labels = torch.tensor([0, 0, 0, 1, 2, 2, 0, 1, 0, 0])
    sampler = impl.imbalance.WeightedSampler(
        labels, 8, torch.Generator().manual_seed(seed), replacement
    )
    stream = (index for _ in range(3) for index in sampler)  # three passes
    first = [next(stream) for _ in range(taken)]
    state = sampler.state_dict()  # interrupted after `taken` indices
    first += list(stream)
    assert len(first) == 24 and all(0 <= i < 10 for i in first)
    if not replacement:
        assert all(len(set(first[i : i + 8])) == 8 for i in (0, 8, 16)), "no repeats in a pass"

    resumed = impl.imbalance.WeightedSampler(
        labels, 8, torch.Generator().manual_seed(seed + 1), replacement
    )
    resumed.load_state_dict(state)
    rest = [index for _ in range(3) for index in resumed][: 24 - taken]
    assert rest == first[taken:], "a resumed sampler continues where the run was interrupted"


def test_weighted_sampler_is_seeded_by_the_global_generator():
    labels = [0] * 5 + [1]
    torch.manual_seed(3)
    a = list(impl.imbalance.WeightedSampler(labels))
    torch.manual_seed(3)
    b = list(impl.imbalance.WeightedSampler(labels))
    assert a == b and len(a) == 6


# -- the focal loss ----------------------------------------------------------------------------


@st.composite
def classification(draw, max_classes: int = 5):
    """(logits, targets, weight or None, ignore_index) over shapes (C,), (N, C), (N, C, d)."""
    dtype = draw(dtypes)
    classes = draw(st.integers(1, max_classes))
    layout = draw(st.sampled_from(["unbatched", "batched", "spatial"]))
    n, d = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    shape = {"unbatched": (classes,), "batched": (n, classes), "spatial": (n, classes, d)}[layout]
    generator = torch.Generator().manual_seed(draw(seeds))
    scale = draw(st.sampled_from([0.1, 1.0, 4.0]))
    logits = torch.randn(shape, generator=generator, dtype=dtype) * scale
    target_shape = shape[:1] + shape[2:] if layout != "unbatched" else ()
    target = torch.randint(0, classes, target_shape, generator=generator)
    ignore_index = draw(st.sampled_from([-100, 0]))
    if draw(st.booleans()) and target.dim():  # some ignored targets
        drop = torch.rand(target_shape, generator=generator) < 0.3
        target = torch.where(drop, torch.full_like(target, -100), target)
        ignore_index = -100
    weight = None
    if draw(st.booleans()):
        weight = torch.rand(classes, generator=generator, dtype=dtype) + 0.1
    return logits, target, weight, ignore_index


def reference_focal(logits, target, gamma, weight, ignore_index, reduction):
    """−w_t (1 − p_t)^γ log p_t in float64 with torch.softmax (moderate logits only)."""
    if logits.dim() == 1:
        out = reference_focal(logits[None], target[None], gamma, weight, ignore_index, reduction)
        return out[0] if reduction == "none" else out
    p = torch.softmax(logits.double(), dim=1)
    counted = target != ignore_index
    index = torch.where(counted, target, 0)
    p_t = p.gather(1, index.unsqueeze(1)).squeeze(1)
    w_t = torch.ones_like(p_t) if weight is None else weight.double()[index]
    w_t = w_t * counted
    # With one class p_t is exactly 1 and the loss 0 for every logit; the clamp keeps autograd
    # from turning d/dp (1 - p)^γ = ∞ (γ < 1) times log p = 0 into nan.
    loss = -((1 - p_t).clamp_min(1e-300) ** gamma) * torch.log(p_t) * w_t
    if reduction == "mean":
        return loss.sum() / w_t.sum()
    return loss.sum() if reduction == "sum" else loss


def loss_and_grad(fn, logits, *args):
    x = logits.detach().clone().requires_grad_(True)
    out = fn(x, *args)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def focal_hint(focal_loss) -> str | None:
    """Name the classic mistake of ``focal_loss``, checked on three small cases."""
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], dtype=torch.float64)
    target = torch.tensor([0, 2])
    got = focal_loss(logits, target, 2.0, None, -100, "none")
    if torch.allclose(got, TF.cross_entropy(logits, target, reduction="none")):
        return PLAIN_CE_HINT
    p_t = torch.softmax(logits, 1)[[0, 1], target]
    if torch.allclose(got, -(p_t**2) * p_t.log()):
        return P_T_HINT
    huge = torch.tensor([[1e4, -1e4], [-1e4, 1e4]], dtype=torch.float32)
    if not torch.isfinite(focal_loss(huge, torch.tensor([1, 1]), 2.0, None, -100, "none")).all():
        return LOG_SOFTMAX_HINT
    weight = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    mean = focal_loss(logits, target, 2.0, weight, -100, "mean")
    terms = reference_focal(logits, target, 2.0, weight, -100, "none")
    if torch.allclose(mean, terms.mean()) and not torch.allclose(mean, terms.sum() / 6):
        return MEAN_HINT
    return None


def assert_focal_matches(focal_loss, case, gamma, reduction) -> None:
    logits, target, weight, ignore_index = case
    args = (target, gamma, weight, ignore_index, reduction)
    got, grad = loss_and_grad(focal_loss, logits, *args)
    if gamma == 0:  # exactly cross-entropy: torch is the twin

        def twin(x, *_):
            return TF.cross_entropy(
                x, target, weight, ignore_index=ignore_index, reduction=reduction
            )

        expected, expected_grad = loss_and_grad(twin, logits)
    else:
        expected, expected_grad = loss_and_grad(reference_focal, logits.double(), *args)
    expected, expected_grad = expected.to(logits.dtype), expected_grad.to(logits.dtype)
    where = f"gamma={gamma}, reduction={reduction!r}"
    try:
        assert got.shape == expected.shape, f"{where}: shape {got.shape}, expected {expected.shape}"
        if reduction == "mean" and not torch.isfinite(expected):  # every target ignored: nan
            assert torch.isnan(got), f"{where}: every target ignored, the mean is nan (0 / 0)"
            assert torch.equal(grad, torch.zeros_like(grad)), "all targets ignored: no gradient"
            return
        torch.testing.assert_close(got, expected, **tolerance(logits.dtype, 10), msg=where)
        torch.testing.assert_close(grad, expected_grad, **tolerance(logits.dtype, 10), msg=where)
    except AssertionError as error:
        hint = focal_hint(focal_loss)
        if hint is None:
            raise
        raise AssertionError(f"{where}: {hint}\n{error}") from None


REDUCTIONS = st.sampled_from(["mean", "sum", "none"])


ONE_CLASS = (torch.tensor([[0.3], [-1.0]]), torch.tensor([0, 0]), None, -100)
ALL_IGNORED = (torch.tensor([[0.3, 2.0], [-1.0, 0.5]]), torch.tensor([-100, -100]), None, -100)
WEIGHTED = (
    torch.tensor([[0.3, 2.0, -1.0], [-1.0, 0.5, 0.0]], dtype=torch.float64),
    torch.tensor([2, 0]),
    torch.tensor([0.5, 1.0, 4.0], dtype=torch.float64),
    -100,
)


@given(case=classification(), reduction=REDUCTIONS)
@example(case=ONE_CLASS, reduction="mean")
@example(case=ALL_IGNORED, reduction="mean")
@example(case=WEIGHTED, reduction="mean")
def test_focal_loss_with_gamma_zero_is_torch_cross_entropy(case, reduction):
    assert_focal_matches(impl.F.focal_loss, case, 0.0, reduction)


@given(case=classification(), gamma=st.sampled_from([0.5, 1.0, 2.0, 3.5]), reduction=REDUCTIONS)
@example(case=ONE_CLASS, gamma=0.5, reduction="none")
@example(case=ALL_IGNORED, gamma=2.0, reduction="mean")
@example(case=WEIGHTED, gamma=2.0, reduction="mean")
def test_focal_loss_matches_the_formula_and_its_gradient(case, gamma, reduction):
    assert_focal_matches(impl.F.focal_loss, case, gamma, reduction)


def assert_stable(focal_loss, dtype, gamma) -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0], [5.0, 5.0, -1e4]], dtype=dtype)
    target = torch.tensor([0, 0, 2])
    loss, grad = loss_and_grad(focal_loss, logits, target, gamma, None, -100, "none")
    assert torch.isfinite(loss).all(), LOG_SOFTMAX_HINT
    assert torch.isfinite(grad).all(), GRAD_AT_ONE_HINT
    expected = torch.tensor([0.0, 2e4, 1e4 + 5 + torch.log(torch.tensor(2.0)).item()])
    torch.testing.assert_close(loss, expected.to(dtype), rtol=1e-6, atol=1e-6)
    assert grad[0].abs().max() == 0, "a certain, correct prediction has no gradient"


@given(dtype=dtypes, gamma=st.sampled_from([0.0, 0.5, 2.0]))
def test_focal_loss_is_stable_for_huge_logits(dtype, gamma):
    assert_stable(impl.F.focal_loss, dtype, gamma)


def test_focal_loss_down_weights_easy_examples():
    """The point of it: an easy example's loss shrinks far more than a hard one's."""
    logits = torch.tensor([[4.0, 0.0], [0.0, 1.0]])  # easy (p_t ≈ 0.98), hard (p_t ≈ 0.27)
    target = torch.tensor([0, 0])
    ratio = impl.F.focal_loss(logits, target, reduction="none") / TF.cross_entropy(
        logits, target, reduction="none"
    )
    p_t = torch.softmax(logits, 1)[:, 0]
    torch.testing.assert_close(ratio, (1 - p_t) ** 2)  # gamma=2 by default
    assert ratio[0] < 0.001 < 0.5 < ratio[1]


def test_focal_loss_module_matches_the_function_and_saves_its_weight():
    weight = torch.tensor([1.0, 3.0, 0.5])
    module = impl.nn.FocalLoss(gamma=1.5, weight=weight, ignore_index=2)
    logits = torch.randn(6, 3)
    target = torch.tensor([0, 1, 2, 1, 0, 2])
    torch.testing.assert_close(
        module(logits, target), impl.F.focal_loss(logits, target, 1.5, weight, 2, "mean")
    )
    assert list(module.state_dict()) == list(torch.nn.CrossEntropyLoss(weight).state_dict())
    default = impl.nn.FocalLoss()
    torch.testing.assert_close(
        default(logits, torch.tensor([0, 1, 1, 1, 0, 2])),
        impl.F.focal_loss(logits, torch.tensor([0, 1, 1, 1, 0, 2]), 2.0),
    )
    assert list(default.state_dict()) == []


# -- minimod's own behaviour -------------------------------------------------------------------


@pytest.mark.reference_only
def test_sampler_draws_like_torchs_weighted_random_sampler():
    from torch.utils.data import WeightedRandomSampler

    from minimod.train.imbalance import WeightedSampler

    labels = torch.tensor([0, 0, 0, 1, 2, 2, 0, 1, 0, 0])
    weights = 1.0 / torch.bincount(labels)[labels].double()
    mine = WeightedSampler(labels, 20, torch.Generator().manual_seed(5))
    twin = WeightedRandomSampler(weights, 20, generator=torch.Generator().manual_seed(5))
    assert list(mine) == list(twin)


@pytest.mark.reference_only
def test_errors_name_the_function():
    from minimod.nn import FocalLoss
    from minimod.nn.functional import focal_loss
    from minimod.train.imbalance import WeightedSampler, class_weights

    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="focal_loss: gamma must be >= 0"):
        focal_loss(x, torch.tensor([0, 1, 2, 0]), gamma=-1.0)
    with pytest.raises(TypeError, match="focal_loss: class-index targets must be integers"):
        focal_loss(x, torch.rand(4, 3))
    with pytest.raises(IndexError, match="focal_loss: target 3 is out of range for 3 classes"):
        focal_loss(x, torch.tensor([0, 1, 3, 0]))
    with pytest.raises(ValueError, match=r"focal_loss: weight must have shape \(3,\)"):
        focal_loss(x, torch.tensor([0, 1, 2, 0]), weight=torch.ones(2))
    with pytest.raises(ValueError, match="FocalLoss: reduction must be one of"):
        FocalLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"class_weights: labels must be >= 0, < num_classes=2"):
        class_weights([0, 2], 2)
    with pytest.raises(TypeError, match="class_weights: labels must be integer class indices"):
        class_weights(torch.tensor([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="class_weights: mode must be 'auto' or 'none'"):
        class_weights([0, 1], 2, mode="balanced")
    with pytest.raises(ValueError, match="WeightedSampler: without replacement num_samples"):
        WeightedSampler([0, 1], 3, replacement=False)
    with pytest.raises(ValueError, match="WeightedSampler: labels must be a non-empty 1-D"):
        WeightedSampler([])
    assert repr(FocalLoss(gamma=1.0)) == "FocalLoss(gamma=1.0)"


def _png_signature(path) -> bytes:
    return path.read_bytes()[:8]


@pytest.mark.reference_only
def test_plot_confusion_matrix_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from minimod.train.metrics import plot_confusion_matrix

    path = tmp_path / "plots" / "confusion.png"
    line = plot_confusion_matrix(torch.tensor([[5, 1], [0, 7]]), ["cat", "dog"], path)
    assert line == f"confusion matrix: {path}"
    assert _png_signature(path) == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    assert width > 100 and height > 100
    normalized = tmp_path / "n.png"
    plot_confusion_matrix(torch.eye(3, dtype=torch.long), None, normalized, normalize=True)
    assert _png_signature(normalized) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="plot_confusion_matrix: 3 labels for 2 classes"):
        plot_confusion_matrix(torch.eye(2), ["a", "b", "c"], path)


@pytest.mark.reference_only
def test_plot_confusion_matrix_without_matplotlib_says_how_to_get_it(tmp_path, monkeypatch):
    from minimod.train.metrics import plot_confusion_matrix

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = tmp_path / "confusion.png"
    line = plot_confusion_matrix(torch.eye(2, dtype=torch.long), ["a", "b"], path)
    assert line == "no confusion.png: matplotlib is not installed (pip install 'minimod[plot]')"
    assert "\n" not in line and not path.exists()


# The hints fire on deliberately wrong implementations.


def _focal_with(mistake):
    def wrong(input, target, gamma=2.0, weight=None, ignore_index=-100, reduction="mean"):
        if mistake == "softmax then log":
            logp = torch.log(torch.softmax(input, 1))
        else:
            logp = torch.log_softmax(input, 1)
        counted = target != ignore_index
        index = torch.where(counted, target, 0)
        logp_t = logp.gather(1, index.unsqueeze(1)).squeeze(1)
        p_t = logp_t.exp()
        factor = {"no factor": 1.0, "p_t": p_t**gamma}.get(mistake, (1 - p_t) ** gamma)
        w_t = counted.to(logp.dtype) * (1.0 if weight is None else weight[index])
        loss = -factor * logp_t * w_t
        if reduction == "mean":
            return loss.sum() / (counted.sum() if mistake == "count mean" else w_t.sum())
        return loss.sum() if reduction == "sum" else loss

    return wrong


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("no factor", "plain cross-entropy"),
        ("p_t", r"not p_t \*\* gamma"),
        ("count mean", "sum of the targets' weights"),
    ],
)
def test_focal_hints_fire_on_wrong_implementations(mistake, hint):
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, -2.0, 0.0]])
    case = (logits, torch.tensor([0, 2, 1]), torch.tensor([1.0, 2.0, 5.0]), -100)
    with pytest.raises(AssertionError, match=hint):
        assert_focal_matches(_focal_with(mistake), case, 2.0, "mean")


@pytest.mark.reference_only
def test_stability_hints_fire_on_wrong_implementations():
    with pytest.raises(AssertionError, match="never log\\(softmax"):
        assert_stable(_focal_with("softmax then log"), torch.float32, 2.0)
    assert focal_hint(_focal_with("softmax then log")) == LOG_SOFTMAX_HINT
    with pytest.raises(AssertionError, match="clamp 1 - p_t"):
        assert_stable(_focal_with("none"), torch.float64, 0.5)  # log_softmax, but no clamp


@pytest.mark.reference_only
def test_hints_accept_a_correct_hand_written_focal_loss():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, -2.0, 0.0]])
    case = (logits, torch.tensor([0, 2, 1]), torch.tensor([1.0, 2.0, 5.0]), -100)
    for reduction in ("mean", "sum", "none"):
        assert_focal_matches(_focal_with("none"), case, 2.0, reduction)
    assert focal_hint(_focal_with("none")) is None
    assert_stable(_focal_with("none"), torch.float32, 2.0)


def _weights_one_over_count(labels, num_classes, mode="auto", dtype=None):
    counts = torch.bincount(torch.as_tensor(labels), minlength=num_classes).float()
    return torch.where(counts > 0, 1 / counts.clamp(min=1), 0.0)


def _weights_over_all_classes(labels, num_classes, mode="auto", dtype=None):
    labels = torch.as_tensor(labels)
    counts = torch.bincount(labels, minlength=num_classes).float()
    return len(labels) / (num_classes * counts)


class _SamplerProportionalToCount:
    def __init__(self, labels, num_samples, generator):
        self.labels, self.num_samples, self.generator = labels, num_samples, generator

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        weights = torch.bincount(self.labels)[self.labels].double()
        draws = torch.multinomial(weights, self.num_samples, True, generator=self.generator)
        return iter(draws.tolist())


@pytest.mark.reference_only
def test_imbalance_hints_fire_on_wrong_implementations():
    with pytest.raises(AssertionError, match="scale them by n / k"):
        assert_class_weights(_weights_one_over_count, [0, 0, 0, 1, 2, 2], 3)
    with pytest.raises(AssertionError, match="number of classes PRESENT"):
        assert_class_weights(_weights_over_all_classes, [0, 0, 0, 1, 3], 4)
    with pytest.raises(AssertionError, match="proportional to 1 / \\(count of its label\\)"):
        assert_balanced_draws(_SamplerProportionalToCount)


@pytest.mark.reference_only
def test_saved_sampler_state_is_plain_data():
    from minimod.train.imbalance import WeightedSampler

    sampler = WeightedSampler([0, 0, 1], generator=torch.Generator().manual_seed(1))
    iterator = iter(sampler)
    next(iterator)
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["position"] == 1 and state["generator"].dtype == torch.uint8
