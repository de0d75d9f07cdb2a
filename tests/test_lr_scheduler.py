"""Learning-rate schedules against torch.optim.lr_scheduler: the same lr in every param group at
every step, and a checkpoint that resumes the schedule exactly.

The warmup schedules have no torch class; their twin is torch's LambdaLR with the documented
formula written out independently below. The schedulers drive a torch.optim.SGD (they only need
its ``param_groups``), so these tests do not depend on minimod's optimizers.

Tolerance: relative 1e-12 (the same float formulas in a different order); 1e-9 against torch's
CosineAnnealingLR and LinearLR, which compute each lr from the previous one.
"""

from __future__ import annotations

import io
import math
import re

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl

NAMES = {"cosine": "WarmupCosineLR", "linear": "WarmupLinearLR", "constant": "ConstantWarmupLR"}


def expected_factor(kind: str, t: int, warmup: int, total: int, min_ratio: float) -> float:
    """The documented schedules, written independently of minimod."""
    if t < warmup:
        return t / warmup
    if kind == "constant":
        return 1.0
    if t >= total:
        return min_ratio
    progress = (t - warmup) / (total - warmup)
    shape = (1 + math.cos(math.pi * progress)) / 2 if kind == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * shape


def flawed_factor(mistake: str, kind: str, t: int, warmup: int, total: int, r: float) -> float:
    """The same schedules with one classic mistake each."""
    if mistake == "warmup_off_by_one" and t < warmup:
        return (t + 1) / warmup
    if mistake == "progress_not_clamped" and kind != "constant" and t >= total > warmup:
        progress = (t - warmup) / (total - warmup)
        shape = (1 + math.cos(math.pi * progress)) / 2 if kind == "cosine" else 1 - progress
        return r + (1 - r) * shape
    if mistake == "progress_from_zero" and kind != "constant" and warmup <= t and total > warmup:
        progress = min(1.0, t / (total - warmup))
        shape = (1 + math.cos(math.pi * progress)) / 2 if kind == "cosine" else 1 - progress
        return r + (1 - r) * shape
    return expected_factor(kind, t, warmup, total, r)


HINTS = {
    "warmup_off_by_one": "warmup should start from 0 at step 0: factor = step / warmup_steps, "
    "not (step + 1) / warmup_steps",
    "progress_not_clamped": "after total_steps the lr should stay at min_lr_ratio * base lr: "
    "clamp the decay's progress to 1",
    "progress_from_zero": "the decay's progress is measured from the end of warmup: "
    "(step - warmup_steps) / (total_steps - warmup_steps), not step / (...)",
    "compounding": "multiply the base lr (initial_lr) by the factor, not the current lr: "
    "otherwise the factors compound from step to step",
    "one_step_ahead": "your lrs run one step ahead of torch's, so the first lr is skipped (as "
    "when scheduler.step() runs before optimizer.step()): step t uses factor(t), from t = 0",
}


def optimizer(lrs: list[float]) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs]
    )


def lr_history(scheduler, steps: int) -> list[list[float]]:
    """The lrs of every group right after construction and after each of ``steps`` steps."""
    history = [current_lrs(scheduler)]
    for _ in range(steps):
        scheduler.optimizer.step()  # no gradients: a no-op, in the order torch expects
        scheduler.step()
        history.append(current_lrs(scheduler))
    return history


def current_lrs(scheduler) -> list[float]:
    lrs = [group["lr"] for group in scheduler.optimizer.param_groups]
    assert scheduler.get_last_lr() == lrs, "get_last_lr() should return the lrs just set"
    return lrs


def same(ours: list[list[float]], theirs: list[list[float]], rel: float) -> bool:
    return len(ours) == len(theirs) and all(
        a == pytest.approx(b, rel=rel, abs=1e-15) for a, b in zip(ours, theirs, strict=True)
    )


def assert_same_history(ours, theirs, rel: float, suspects=()) -> None:
    """``suspects``: (mistake, history it would produce); a match names the mistake."""
    if same(ours, theirs, rel):
        return
    hints = [
        f"hint: {HINTS[mistake]}\n" for mistake, history in suspects if same(ours, history, rel)
    ]
    if len(ours) > 1 and same(ours[:-1], theirs[1:], rel):
        hints.append(f"hint: {HINTS['one_step_ahead']}\n")
    step = next(t for t, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b)
    raise AssertionError(
        "".join(hints) + f"first difference at step {step}: lrs {ours[step]}, expected "
        f"{theirs[step]}\nminimod: {ours}\nexpected: {theirs}"
    )


@st.composite
def warmup_settings(draw) -> dict:
    total = draw(st.integers(1, 20))
    return dict(
        warmup_steps=draw(st.integers(0, total)),
        total_steps=total,
        min_lr_ratio=draw(st.sampled_from([None, 0.0, 0.1, 0.5])),  # None: the default
        lrs=draw(st.lists(st.sampled_from([1e-3, 0.1, 1.0]), min_size=1, max_size=3)),
    )


def warmup_histories(make_ours, kind: str, settings: dict, mistakes=()):
    """(ours, expected, suspects) for a warmup schedule made by ``make_ours(optimizer)``."""
    w, total = settings["warmup_steps"], settings["total_steps"]
    r = settings["min_lr_ratio"] or 0.0
    steps = total + 5

    def twin(formula):
        fn = lambda t: formula(t)  # noqa: E731
        return lr_history(torch.optim.lr_scheduler.LambdaLR(optimizer(settings["lrs"]), fn), steps)

    ours = lr_history(make_ours(optimizer(settings["lrs"])), steps)
    expected = twin(lambda t: expected_factor(kind, t, w, total, r))
    suspects = [(m, twin(lambda t, m=m: flawed_factor(m, kind, t, w, total, r))) for m in mistakes]
    # Each step's factor applied to the previous lr instead of the base lr.
    factors = [expected_factor(kind, t, w, total, r) for t in range(steps + 1)]
    compounded = [
        [lr * math.prod(factors[: t + 1]) for lr in settings["lrs"]] for t in range(steps + 1)
    ]
    suspects.append(("compounding", compounded))
    return ours, expected, suspects


def make_warmup(kind: str, settings: dict):
    kwargs = dict(warmup_steps=settings["warmup_steps"])
    if kind != "constant":
        kwargs["total_steps"] = settings["total_steps"]
        if settings["min_lr_ratio"] is not None:
            kwargs["min_lr_ratio"] = settings["min_lr_ratio"]
    return lambda opt: getattr(impl.lr_scheduler, NAMES[kind])(opt, **kwargs)


WARMUP_MISTAKES = ("warmup_off_by_one", "progress_not_clamped", "progress_from_zero")


@pytest.mark.parametrize("kind", list(NAMES))
@given(settings=warmup_settings())
@example(settings=dict(warmup_steps=0, total_steps=1, min_lr_ratio=None, lrs=[0.1]))
@example(settings=dict(warmup_steps=5, total_steps=5, min_lr_ratio=0.1, lrs=[1.0, 0.1]))
@example(settings=dict(warmup_steps=1, total_steps=10, min_lr_ratio=0.5, lrs=[1.0]))
def test_warmup_schedule_matches_formula(kind, settings):
    make = make_warmup(kind, settings)
    ours, expected, suspects = warmup_histories(make, kind, settings, WARMUP_MISTAKES)
    assert_same_history(ours, expected, 1e-12, suspects)


def test_warmup_cosine_landmarks():
    """The shape in numbers: 0 at step 0, the peak at warmup_steps, the midpoint of the cosine
    halfway through the decay, the minimum at total_steps and after."""
    scheduler = impl.lr_scheduler.WarmupCosineLR(optimizer([2.0]), 4, 12, min_lr_ratio=0.1)
    lrs = [group[0] for group in lr_history(scheduler, 15)]
    assert lrs[0] == 0.0, HINTS["warmup_off_by_one"]
    assert lrs[2] == pytest.approx(1.0), "halfway through warmup the lr is half the base lr"
    assert lrs[4] == pytest.approx(2.0), "the lr peaks at the base lr when warmup ends"
    assert lrs[8] == pytest.approx(2.0 * 0.55), "halfway through the decay: (1 + min) / 2"
    assert lrs[12] == pytest.approx(0.2) and lrs[15] == pytest.approx(0.2), HINTS[
        "progress_not_clamped"
    ]


@st.composite
def group_lrs(draw) -> list[float]:
    return draw(st.lists(st.sampled_from([1e-3, 0.05, 1.0]), min_size=1, max_size=3))


@given(lrs=group_lrs(), t_max=st.integers(1, 12), eta_min=st.sampled_from([None, 0.0, 1e-4]))
@example(lrs=[1.0], t_max=1, eta_min=None)
def test_cosine_annealing_matches_torch(lrs, t_max, eta_min):
    kwargs = {} if eta_min is None else dict(eta_min=eta_min)
    ours = lr_history(impl.lr_scheduler.CosineAnnealingLR(optimizer(lrs), t_max, **kwargs), 30)
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer(lrs), t_max, **kwargs)
    assert_same_history(ours, lr_history(theirs, 30), 1e-9)


@given(
    lrs=group_lrs(),
    start=st.sampled_from([None, 0.1, 0.5, 1.0]),
    end=st.sampled_from([None, 0.0, 0.5, 1.0]),
    total=st.sampled_from([None, 1, 3, 8]),
)
def test_linear_lr_matches_torch(lrs, start, end, total):
    given_args = dict(start_factor=start, end_factor=end, total_iters=total)
    kwargs = {key: value for key, value in given_args.items() if value is not None}
    ours = lr_history(impl.lr_scheduler.LinearLR(optimizer(lrs), **kwargs), 15)
    theirs = lr_history(torch.optim.lr_scheduler.LinearLR(optimizer(lrs), **kwargs), 15)
    assert_same_history(ours, theirs, 1e-9)


FACTORS = [lambda t: 0.9**t, lambda t: 1 / (t + 1), lambda t: t % 3 + 1]


@given(lrs=group_lrs(), choice=st.lists(st.integers(0, 2), min_size=3, max_size=3))
def test_lambda_lr_matches_torch(lrs, choice):
    # One function per group as a list, or (first choice odd) one function for all.
    fns = [FACTORS[c] for c in choice[: len(lrs)]] if choice[0] % 2 == 0 else FACTORS[choice[1]]
    ours = lr_history(impl.lr_scheduler.LambdaLR(optimizer(lrs), fns), 10)
    theirs = lr_history(torch.optim.lr_scheduler.LambdaLR(optimizer(lrs), fns), 10)
    per_group = fns if isinstance(fns, list) else [fns] * len(lrs)
    compounded = [
        [lr * math.prod(fn(s) for s in range(t + 1)) for lr, fn in zip(lrs, per_group, strict=True)]
        for t in range(11)
    ]
    assert_same_history(ours, theirs, 1e-12, [("compounding", compounded)])


def test_resume_with_last_epoch_matches_torch():
    """Constructed with last_epoch=k (groups carry initial_lr), the lr is that of step k + 1."""
    formula = lambda t: expected_factor("cosine", t, 2, 10, 0.0)  # noqa: E731
    ours_optimizer, torch_optimizer = optimizer([0.1, 1.0]), optimizer([0.1, 1.0])
    for group in ours_optimizer.param_groups + torch_optimizer.param_groups:
        group["initial_lr"], group["lr"] = group["lr"], 123.0
    ours = impl.lr_scheduler.WarmupCosineLR(ours_optimizer, 2, 10, last_epoch=4)
    theirs = torch.optim.lr_scheduler.LambdaLR(torch_optimizer, formula, last_epoch=4)
    assert_same_history(lr_history(ours, 3), lr_history(theirs, 3), 1e-12)


def saved_and_loaded(state_dict: dict) -> dict:
    """Through torch.save and torch.load(weights_only=True), as a checkpoint would go."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


SCHEDULES = [
    ("WarmupCosineLR", dict(warmup_steps=3, total_steps=10, min_lr_ratio=0.1)),
    ("WarmupLinearLR", dict(warmup_steps=2, total_steps=8)),
    ("ConstantWarmupLR", dict(warmup_steps=4)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01)),
    ("LinearLR", dict(start_factor=0.2, total_iters=6)),
    ("LambdaLR", dict(lr_lambda=[lambda t: 0.9**t, lambda t: 1 / (t + 1)])),
]


@pytest.mark.parametrize("name, kwargs", SCHEDULES, ids=[name for name, _ in SCHEDULES])
@pytest.mark.parametrize("split", [0, 1, 3, 7])
def test_state_dict_resumes_exactly(name, kwargs, split):
    make = lambda lrs: getattr(impl.lr_scheduler, name)(optimizer(lrs), **kwargs)  # noqa: E731
    straight = lr_history(make([0.1, 0.02]), 12)

    first = make([0.1, 0.02])
    lr_history(first, split)
    optimizer_state = saved_and_loaded(first.optimizer.state_dict())
    scheduler_state = saved_and_loaded(first.state_dict())
    assert "optimizer" not in scheduler_state, "the optimizer saves its own state"

    resumed = make([5.0, 5.0])  # re-created as in a fresh process, then loaded
    resumed.optimizer.load_state_dict(optimizer_state)
    resumed.load_state_dict(scheduler_state)
    assert lr_history(resumed, 12 - split) == straight[split:], "the resumed schedule differs"


# -- the hints name the mistake of each flawed schedule ---------------------------------------


@pytest.mark.reference_only
@pytest.mark.parametrize("mistake", WARMUP_MISTAKES)
def test_hint_names_the_mistake(mistake):
    settings = dict(warmup_steps=3, total_steps=8, min_lr_ratio=0.1, lrs=[1.0, 0.1])

    def flawed(opt):
        fn = lambda t: flawed_factor(mistake, "cosine", t, 3, 8, 0.1)  # noqa: E731
        return torch.optim.lr_scheduler.LambdaLR(opt, fn)

    ours, expected, suspects = warmup_histories(flawed, "cosine", settings, WARMUP_MISTAKES)
    with pytest.raises(AssertionError, match="hint: " + re.escape(HINTS[mistake][:30])):
        assert_same_history(ours, expected, 1e-12, suspects)


@pytest.mark.reference_only
def test_compounding_hint_fires():
    class Compounding(torch.optim.lr_scheduler.LambdaLR):
        def get_lr(self):
            groups = self.optimizer.param_groups
            fns = self.lr_lambdas
            return [g["lr"] * fn(self.last_epoch) for g, fn in zip(groups, fns, strict=True)]

    lrs, fn = [1.0], FACTORS[0]
    ours = lr_history(Compounding(optimizer(lrs), fn), 5)
    theirs = lr_history(torch.optim.lr_scheduler.LambdaLR(optimizer(lrs), fn), 5)
    compounded = [[math.prod(fn(s) for s in range(t + 1))] for t in range(6)]
    with pytest.raises(AssertionError, match="hint: multiply the base lr"):
        assert_same_history(ours, theirs, 1e-12, [("compounding", compounded)])


# -- minimod's own error messages ----------------------------------------------------------


@pytest.mark.reference_only
def test_bad_arguments_raise_clear_errors():
    from minimod.optim import lr_scheduler as s

    opt = optimizer([0.1, 0.2])
    cases = [
        (lambda: s.WarmupCosineLR(opt, 11, 10), ValueError, r"warmup_steps \(11\) must not exceed"),
        (lambda: s.WarmupCosineLR(opt, 0, 0), ValueError, "total_steps must be positive"),
        (lambda: s.WarmupLinearLR(opt, -1, 10), ValueError, "warmup_steps must be >= 0"),
        (lambda: s.WarmupLinearLR(opt, 1, 10, min_lr_ratio=1.5), ValueError, "min_lr_ratio"),
        (lambda: s.ConstantWarmupLR(opt, -2), ValueError, "warmup_steps must be >= 0"),
        (lambda: s.CosineAnnealingLR(opt, 0), ValueError, "T_max must be positive"),
        (lambda: s.LinearLR(opt, start_factor=0), ValueError, "start_factor"),
        (lambda: s.LinearLR(opt, end_factor=2), ValueError, "end_factor"),
        (lambda: s.LinearLR(opt, total_iters=0), ValueError, "total_iters"),
        (lambda: s.LambdaLR(opt, [lambda t: 1.0]), ValueError, "expected 2 lr_lambdas"),
        (lambda: s.LambdaLR(opt, 0.5), TypeError, "callable"),
        (lambda: s.LambdaLR([1, 2], lambda t: 1.0), TypeError, "expected an optimizer"),
        (lambda: s.WarmupCosineLR(opt, 1, 5, last_epoch=3), KeyError, "initial_lr"),
    ]
    for make, error, text in cases:
        with pytest.raises(error, match=text):
            make()


@pytest.mark.reference_only
def test_schedules_drive_minimod_optimizers():
    from minimod.optim import AdamW, lr_scheduler

    opt = AdamW([torch.zeros(2, requires_grad=True)], lr=0.5)
    scheduler = lr_scheduler.WarmupLinearLR(opt, warmup_steps=2, total_steps=4)
    assert [lrs[0] for lrs in lr_history(scheduler, 5)] == [0.0, 0.25, 0.5, 0.25, 0.0, 0.0]
