"""SGD and AdamW against torch.optim: identical parameters, fed identical gradients for several
steps, must stay equal, and so must the optimizer state; checkpoints (state_dict) resume runs
exactly and load across the two libraries.

Tolerance: ``TOLERANCES[dtype]`` relative, with an absolute part of rtol × the largest entry of
torch's tensor (state such as Adam's second moment can be tiny; a fixed atol would hide it).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from strategies import TOLERANCES, dtypes, scales, seeds, shapes

# -- problems: parameters in groups and the gradients of every step ---------------------------


@dataclass(frozen=True)
class Problem:
    """Parameter shapes by group, a learning-rate factor per group (None: the optimizer's lr),
    and ``steps`` of random gradients; each gradient is missing (None) with ``skip_prob``."""

    dtype: torch.dtype
    group_shapes: tuple[tuple[tuple[int, ...], ...], ...]
    lr_factors: tuple[float | None, ...]
    steps: int
    seed: int
    scale: float = 1.0
    skip_prob: float = 0.0

    def initial(self) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed)
        every_shape = [shape for group in self.group_shapes for shape in group]
        return [torch.randn(shape, generator=gen, dtype=self.dtype) for shape in every_shape]

    def gradients(self) -> list[list[torch.Tensor | None]]:
        gen = torch.Generator().manual_seed(self.seed + 1)
        steps = []
        for _ in range(self.steps):
            grads = []
            for p in self.initial():
                g = torch.randn(p.shape, generator=gen, dtype=self.dtype) * self.scale
                skip = torch.rand((), generator=gen).item() < self.skip_prob
                grads.append(None if skip else g)
            steps.append(grads)
        return steps

    def groups(self, params: list[torch.Tensor], lr: float) -> list:
        """What the optimizer is given: a plain list, or dicts with per-group lrs."""
        if len(self.group_shapes) == 1 and self.lr_factors[0] is None:
            return list(params)
        groups, start = [], 0
        for group_shapes, factor in zip(self.group_shapes, self.lr_factors, strict=True):
            group = {"params": params[start : start + len(group_shapes)]}
            start += len(group_shapes)
            if factor is not None:
                group["lr"] = lr * factor
            groups.append(group)
        return groups


@st.composite
def problems(draw, max_groups: int = 3, max_steps: int = 6) -> Problem:
    n_groups = draw(st.integers(1, max_groups))
    group_shapes = tuple(
        tuple(draw(st.lists(shapes(1, 3, 4), min_size=1, max_size=2))) for _ in range(n_groups)
    )
    lr_factors = tuple(draw(st.sampled_from([None, 0.5, 3.0])) for _ in range(n_groups))
    return Problem(
        draw(dtypes),
        group_shapes,
        lr_factors,
        draw(st.integers(1, max_steps)),
        draw(seeds),
        draw(scales),
        draw(st.sampled_from([0.0, 0.3])),
    )


@st.composite
def sgd_options(draw) -> dict:
    options = dict(
        lr=draw(st.sampled_from([0.01, 0.1, 0.5])),
        momentum=draw(st.sampled_from([0.0, 0.5, 0.9])),
        dampening=draw(st.sampled_from([0.0, 0.3])),
        weight_decay=draw(st.sampled_from([0.0, 0.1])),
        maximize=draw(st.booleans()),
    )
    # Nesterov needs momentum and no dampening (both libraries reject anything else).
    options["nesterov"] = (
        options["momentum"] > 0 and options["dampening"] == 0 and draw(st.booleans())
    )
    return options


@st.composite
def adamw_options(draw) -> dict:
    return dict(
        lr=draw(st.sampled_from([1e-3, 1e-2, 0.1])),
        betas=draw(st.sampled_from([(0.9, 0.999), (0.8, 0.99), (0.0, 0.5)])),
        eps=draw(st.sampled_from([1e-8, 1e-6, 0.1])),
        weight_decay=draw(st.sampled_from([0.0, 1e-2, 0.3])),
        amsgrad=draw(st.booleans()),
        maximize=draw(st.booleans()),
    )


# -- running and comparing -----------------------------------------------------------------


def close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    rtol = TOLERANCES[expected.dtype]["rtol"]
    atol = rtol * float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(
        actual, expected, rtol=rtol, atol=atol + 1e-30, msg=lambda m: f"{what}\n{m}"
    )


def run(make: Callable, problem: Problem, lr: float, grads=None) -> tuple[list, object]:
    """Fresh copies of the problem's parameters, optimized for every step of ``grads``."""
    params = [p.clone().requires_grad_() for p in problem.initial()]
    optimizer = make(problem.groups(params, lr))
    for step_grads in problem.gradients() if grads is None else grads:
        feed(params, step_grads)
        step(optimizer, params)
    return params, optimizer


def step(optimizer, params: list[torch.Tensor]) -> None:
    """``optimizer.step()``, with the classic mistake named when a None gradient breaks it."""
    try:
        optimizer.step()
    except (TypeError, AttributeError) as error:
        if all(p.grad is not None for p in params):
            raise
        raise AssertionError(
            f"step() failed on a parameter whose .grad is None ({error}): skip such "
            "parameters (frozen layers, unused embeddings)"
        ) from error


def feed(params: list[torch.Tensor], grads: list[torch.Tensor | None]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = None if g is None else g.clone()


def assert_same_state(mine, mine_params, twin, twin_params) -> None:
    for i, (a, b) in enumerate(zip(mine_params, twin_params, strict=True)):
        ours, theirs = mine.state.get(a, {}), twin.state.get(b, {})
        assert set(ours) == set(theirs), (
            f"state of parameter {i} has keys {sorted(ours)}, torch's has {sorted(theirs)}"
        )
        for key, expected in theirs.items():
            if key == "step":
                assert float(ours[key]) == float(expected), f"state[{i}]['step'] differs"
            else:
                close(ours[key], expected, f"state of parameter {i}, '{key}', differs")


def assert_matches_torch(mine_cls, twin_cls, options: dict, problem: Problem, mistakes=()):
    """Run both optimizers on the same problem; on a difference, name the mistake if one of the
    deliberately flawed optimizers below reproduces it."""
    lr = options.get("lr", 1e-3)
    mine_params, mine = run(lambda groups: mine_cls(groups, **options), problem, lr)
    twin_params, twin = run(lambda groups: twin_cls(groups, **options), problem, lr)
    for i, (a, b) in enumerate(zip(mine_params, twin_params, strict=True)):
        try:
            close(a.detach(), b.detach(), f"parameter {i} differs after {problem.steps} steps")
        except AssertionError as error:
            hint = diagnose(mistakes, options, problem, mine_params)
            raise AssertionError(hint + str(error)) from None
    assert_same_state(mine, mine_params, twin, twin_params)


def diagnose(mistakes, options: dict, problem: Problem, mine_params) -> str:
    lr = options.get("lr", 1e-3)
    if all(torch.equal(a.detach(), b) for a, b in zip(mine_params, problem.initial(), strict=True)):
        return f"hint: {HINTS['not_in_place']}\n"
    for flawed_cls, mistake in mistakes:
        params, _ = run(lambda g, c=flawed_cls, m=mistake: c(g, m, **options), problem, lr)
        same = all(
            torch.allclose(a.detach(), b, **TOLERANCES[problem.dtype])
            for a, b in zip(mine_params, params, strict=True)
        )
        if same:
            return f"hint: {HINTS[mistake]}\n"
    return ""


HINTS = {
    "not_in_place": "no parameter changed: update each one in place (p.add_(update, "
    "alpha=-lr)); p = p - lr * g only rebinds a local name, the model never sees it",
    "l2": "weight decay was added to the gradient (that's Adam with an L2 penalty, not AdamW): "
    "AdamW shrinks the weights directly, p <- p * (1 - lr * weight_decay), outside m and v",
    "no_bias_correction": "bias correction missing: divide m by (1 - beta1**t) and v by "
    "(1 - beta2**t), with t counting steps from 1",
    "eps_in_sqrt": "eps is inside the square root: AdamW divides by sqrt(v_hat) + eps",
    "dampened_first_step": "the first step was dampened: the momentum buffer starts as the "
    "first gradient itself (b <- g), (1 - dampening) applies only from the second step",
    "decay_after_momentum": "weight decay must be added to the gradient before the momentum "
    "buffer is updated (SGD's weight_decay is an L2 penalty: g <- g + weight_decay * p)",
    "maximize_after_decay": "with maximize=True negate the gradient first, then add "
    "weight_decay * p (the decay still pulls the weights towards zero)",
}


# -- deliberately flawed optimizers: each makes one classic mistake (None: makes none) ------


class Flawed:
    def __init__(self, params, mistake, **options):
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = [{**self.defaults, **options, **group} for group in groups]
        self.mistake, self.state = mistake, {}


class FlawedAdamW(Flawed):
    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                    maximize=False)  # fmt: skip

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd, eps, (beta1, beta2) = (group[k] for k in ("lr", "weight_decay", "eps", "betas"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                if p not in self.state:
                    zeros = torch.zeros_like(p)
                    self.state[p] = dict(step=0, exp_avg=zeros, exp_avg_sq=zeros)
                    if group["amsgrad"]:
                        self.state[p]["max_exp_avg_sq"] = zeros
                s = self.state[p]
                s["step"] = t = s["step"] + 1
                if self.mistake == "l2":
                    g = g + wd * p
                else:
                    p.mul_(1 - lr * wd)
                s["exp_avg"] = m = beta1 * s["exp_avg"] + (1 - beta1) * g
                s["exp_avg_sq"] = v = beta2 * s["exp_avg_sq"] + (1 - beta2) * g * g
                if group["amsgrad"]:
                    s["max_exp_avg_sq"] = v = torch.maximum(s["max_exp_avg_sq"], v)
                if self.mistake != "no_bias_correction":
                    m, v = m / (1 - beta1**t), v / (1 - beta2**t)
                denom = (v + eps).sqrt() if self.mistake == "eps_in_sqrt" else v.sqrt() + eps
                p.sub_(lr * m / denom)


class FlawedSGD(Flawed):
    defaults = dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                    maximize=False)  # fmt: skip

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, mom, damp, wd = (group[k] for k in ("lr", "momentum", "dampening", "weight_decay"))
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.clone()
                if self.mistake == "maximize_after_decay":
                    g = g + wd * p
                    g = -g if group["maximize"] else g
                else:
                    g = -g if group["maximize"] else g
                    if self.mistake != "decay_after_momentum":
                        g = g + wd * p
                if mom != 0:
                    s = self.state.setdefault(p, {})
                    if "momentum_buffer" not in s:
                        first = (1 - damp) if self.mistake == "dampened_first_step" else 1.0
                        s["momentum_buffer"] = first * g
                    else:
                        s["momentum_buffer"] = mom * s["momentum_buffer"] + (1 - damp) * g
                    b = s["momentum_buffer"]
                    g = g + mom * b if group["nesterov"] else b
                if self.mistake == "decay_after_momentum":
                    g = g + wd * p
                p.sub_(lr * g)


ADAMW_MISTAKES = [(FlawedAdamW, m) for m in ("l2", "no_bias_correction", "eps_in_sqrt")]
SGD_MISTAKES = [
    (FlawedSGD, m) for m in ("dampened_first_step", "decay_after_momentum", "maximize_after_decay")
]

SCALAR = Problem(torch.float64, (((),),), (None,), steps=3, seed=5)  # a 0-d parameter
TINY = Problem(torch.float32, (((1,),), ((2, 1),)), (0.5, None), steps=1, seed=1, scale=10.0)


# -- the property tests --------------------------------------------------------------------


@given(problem=problems(), options=sgd_options())
@example(problem=SCALAR, options=dict(lr=0.1, momentum=0.9, nesterov=True))
@example(problem=TINY, options=dict(lr=0.5, momentum=0.5, dampening=0.3, weight_decay=0.1))
def test_sgd_matches_torch(problem, options):
    assert_matches_torch(impl.optim.SGD, torch.optim.SGD, options, problem, SGD_MISTAKES)


@given(problem=problems(), options=adamw_options())
@example(problem=SCALAR, options=dict(lr=0.1, amsgrad=True, weight_decay=0.3))
@example(problem=TINY, options=dict(lr=0.1, betas=(0.0, 0.5), eps=0.1, maximize=True))
def test_adamw_matches_torch(problem, options):
    assert_matches_torch(impl.optim.AdamW, torch.optim.AdamW, options, problem, ADAMW_MISTAKES)


@pytest.mark.parametrize("name", ["SGD", "AdamW"])
@given(problem=problems(max_steps=3))
def test_defaults_match_torch(name, problem):
    params = [torch.zeros(2, requires_grad=True)]
    ours = getattr(impl.optim, name)(params).param_groups[0]
    theirs = getattr(torch.optim, name)(params).param_groups[0]
    shared = {key: ours.get(key) for key in theirs if key in DOCUMENTED_OPTIONS[name]}
    assert shared == {key: theirs[key] for key in shared}, "default options differ from torch's"
    assert set(shared) == DOCUMENTED_OPTIONS[name], "an option is missing from param_groups"
    mistakes = SGD_MISTAKES if name == "SGD" else ADAMW_MISTAKES
    assert_matches_torch(
        getattr(impl.optim, name), getattr(torch.optim, name), {}, problem, mistakes
    )


DOCUMENTED_OPTIONS = {
    "SGD": {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"},
    "AdamW": {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"},
}


def saved_and_loaded(state_dict: dict) -> dict:
    """Through torch.save and torch.load(weights_only=True), as a checkpoint would go."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


OPTIMIZERS = [
    ("SGD", sgd_options().filter(lambda o: o["momentum"] > 0)),
    ("AdamW", adamw_options()),
]


@pytest.mark.parametrize("name, options_strategy", OPTIMIZERS, ids=["SGD", "AdamW"])
@given(data=st.data(), problem=problems())
def test_state_dict_resumes_exactly(name, options_strategy, data, problem):
    cls = getattr(impl.optim, name)
    options = data.draw(options_strategy, label="options")
    split = data.draw(st.integers(0, problem.steps), label="split")
    grads = problem.gradients()
    lr = options["lr"]
    straight_params, straight = run(lambda g: cls(g, **options), problem, lr, grads)

    first_params, first = run(lambda g: cls(g, **options), problem, lr, grads[:split])
    checkpoint = saved_and_loaded(first.state_dict())
    assert set(checkpoint) == {"state", "param_groups"}
    indices = [i for group in checkpoint["param_groups"] for i in group["params"]]
    assert indices == list(range(len(first_params))), "params should be numbered 0, 1, ... in order"

    params = [p.detach().clone().requires_grad_() for p in first_params]
    resumed = cls(problem.groups(params, lr * 7), **{**options, "lr": lr * 7})
    resumed.load_state_dict(checkpoint)
    for group, saved in zip(resumed.param_groups, first.param_groups, strict=True):
        assert group["lr"] == saved["lr"], "load_state_dict must restore each group's options"
    for step_grads in grads[split:]:
        feed(params, step_grads)
        resumed.step()
    for i, (a, b) in enumerate(zip(params, straight_params, strict=True)):
        assert torch.equal(a, b), f"parameter {i}: a resumed run differs from a straight run"
    assert_same_state(resumed, params, straight, straight_params)


@pytest.mark.parametrize("name, options_strategy", OPTIMIZERS, ids=["SGD", "AdamW"])
@pytest.mark.parametrize("direction", ["torch_to_minimod", "minimod_to_torch"])
@given(data=st.data(), problem=problems())
def test_state_dict_loads_across_libraries(name, options_strategy, direction, data, problem):
    options = data.draw(options_strategy, label="options")
    split = data.draw(st.integers(1, problem.steps), label="split")
    ours, theirs = getattr(impl.optim, name), getattr(torch.optim, name)
    first_cls, second_cls = (theirs, ours) if direction == "torch_to_minimod" else (ours, theirs)
    grads = problem.gradients()
    lr = options["lr"]
    first_params, first = run(lambda g: first_cls(g, **options), problem, lr, grads[:split])
    checkpoint = saved_and_loaded(first.state_dict())

    params = [p.detach().clone().requires_grad_() for p in first_params]
    second = second_cls(problem.groups(params, lr), **options)
    second.load_state_dict(checkpoint)
    for step_grads in grads[split:]:
        feed(params, step_grads)
        feed(first_params, step_grads)
        second.step()
        first.step()
    for i, (a, b) in enumerate(zip(params, first_params, strict=True)):
        close(a.detach(), b.detach(), f"parameter {i} differs after loading ({direction})")
    if direction == "torch_to_minimod":
        assert_same_state(second, params, first, first_params)
    else:
        assert_same_state(first, first_params, second, params)


@pytest.mark.parametrize("name", ["SGD", "AdamW"])
def test_zero_grad(name):
    params = [torch.randn(3, requires_grad=True), torch.randn(2, requires_grad=True)]
    optimizer = getattr(impl.optim, name)(params, lr=0.1)
    params[0].grad = torch.ones(3)
    grad = params[0].grad
    optimizer.zero_grad(set_to_none=False)
    assert params[0].grad is grad and torch.equal(grad, torch.zeros(3)), (
        "zero_grad(set_to_none=False) should zero each gradient in place"
    )
    assert params[1].grad is None, "a missing gradient should stay None"
    optimizer.zero_grad()
    assert params[0].grad is None, "zero_grad() sets gradients to None by default"


@pytest.mark.parametrize(
    "name, options",
    [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)), ("AdamW", dict(weight_decay=0.5))],
)
def test_parameter_without_gradient_is_skipped(name, options):
    used, unused = torch.randn(3, requires_grad=True), torch.randn(2, requires_grad=True)
    before = unused.detach().clone()
    optimizer = getattr(impl.optim, name)([used, unused], **options)
    for _ in range(3):
        used.grad = torch.randn(3)
        step(optimizer, [used, unused])
    assert torch.equal(unused.detach(), before), (
        "a parameter without a gradient must be left alone (no weight decay either)"
    )
    assert not optimizer.state.get(unused), "a parameter without a gradient gets no state"
    assert optimizer.state.get(used), "a parameter with a gradient should have state"


@pytest.mark.parametrize("name", ["SGD", "AdamW"])
def test_add_param_group_and_closure(name):
    def trained(library):
        first, second = torch.ones(3, requires_grad=True), torch.full((2,), 2.0, requires_grad=True)
        optimizer = getattr(library, name)([first], lr=0.1)
        optimizer.add_param_group({"params": [second], "lr": 0.01})

        def closure():
            optimizer.zero_grad()
            loss = (first**2).sum() + (second**3).sum()
            loss.backward()
            return loss

        with torch.no_grad():  # step() must evaluate the closure with gradients enabled
            losses = [float(optimizer.step(closure)) for _ in range(3)]
        return losses, [first.detach(), second.detach()], optimizer.param_groups[1]["lr"]

    ours, theirs = trained(impl.optim), trained(torch.optim)
    assert ours[0] == pytest.approx(theirs[0], rel=1e-6), "step(closure) should return the loss"
    assert ours[2] == theirs[2] == 0.01
    for a, b in zip(ours[1], theirs[1], strict=True):
        close(a, b, "parameters differ after add_param_group + closure steps")


# -- the hints name the mistake of each flawed optimizer --------------------------------------

HINT_PROBLEM = Problem(torch.float64, (((3, 2),), ((4,),)), (None, 2.0), steps=4, seed=3)


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "twin, mistake, options",
    [
        (torch.optim.AdamW, "l2", dict(lr=0.1, weight_decay=0.3)),
        (torch.optim.AdamW, "no_bias_correction", dict(lr=0.1)),
        (torch.optim.AdamW, "eps_in_sqrt", dict(lr=0.1, eps=0.1)),
        (torch.optim.SGD, "dampened_first_step", dict(lr=0.1, momentum=0.9, dampening=0.5)),
        (torch.optim.SGD, "decay_after_momentum", dict(lr=0.1, momentum=0.9, weight_decay=0.3)),
        (torch.optim.SGD, "maximize_after_decay", dict(lr=0.1, weight_decay=0.3, maximize=True)),
    ],
)
def test_hint_names_the_mistake(twin, mistake, options):
    flawed = FlawedAdamW if twin is torch.optim.AdamW else FlawedSGD
    mistakes = ADAMW_MISTAKES if twin is torch.optim.AdamW else SGD_MISTAKES
    # Without the mistake the flawed optimizer matches torch, so the hint is about that mistake.
    assert_matches_torch(lambda g, **o: flawed(g, None, **o), twin, options, HINT_PROBLEM)
    with pytest.raises(AssertionError, match="hint: " + re.escape(HINTS[mistake][:30])):
        assert_matches_torch(
            lambda g, **o: flawed(g, mistake, **o), twin, options, HINT_PROBLEM, mistakes
        )


# -- minimod's own error messages ----------------------------------------------------------


@pytest.mark.reference_only
def test_bad_arguments_raise_clear_errors():
    from minimod.optim import SGD, AdamW

    p, q = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    cases = [
        (lambda: SGD([p * 2]), ValueError, "non-leaf"),
        (lambda: SGD([{"params": [p]}, {"params": [p, q]}]), ValueError, "more than one"),
        (lambda: SGD([p, p]), ValueError, "twice"),
        (lambda: SGD([p], lr=-1), ValueError, "learning rate -1"),
        (lambda: SGD([{"params": [p], "lr": -0.1}], lr=0.1), ValueError, "learning rate -0.1"),
        (lambda: SGD([p], momentum=0.9, dampening=0.1, nesterov=True), ValueError, "Nesterov"),
        (lambda: SGD([p], nesterov=True), ValueError, "Nesterov"),
        (lambda: SGD([p], weight_decay=-1), ValueError, "weight_decay"),
        (lambda: SGD([]), ValueError, "empty"),
        (lambda: SGD(p), TypeError, "single tensor"),
        (lambda: SGD({p}), TypeError, "set"),
        (lambda: SGD([{"params": {p}}]), TypeError, "set"),
        (lambda: SGD([1.0]), TypeError, "tensors"),
        (lambda: AdamW([p], betas=(0.9, 1.0)), ValueError, "beta2"),
        (lambda: AdamW([p], betas=(-0.1, 0.9)), ValueError, "beta1"),
        (lambda: AdamW([p], eps=-1e-8), ValueError, "eps"),
        (lambda: AdamW([p], lr=-1e-3), ValueError, "learning rate"),
    ]
    for make, error, text in cases:
        with pytest.raises(error, match=text):
            make()


@pytest.mark.reference_only
def test_load_state_dict_rejects_mismatched_groups():
    from minimod.optim import AdamW

    p, q = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    one_group = AdamW([p, q]).state_dict()
    two_groups = AdamW([{"params": [p]}, {"params": [q]}]).state_dict()
    with pytest.raises(ValueError, match="2 parameter groups, this optimizer has 1"):
        AdamW([p, q]).load_state_dict(two_groups)
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the checkpoint, 1"):
        AdamW([{"params": [p]}, {"params": [q]}]).load_state_dict(
            {"state": {}, "param_groups": [one_group["param_groups"][0]] * 2}
        )
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        AdamW([p]).load_state_dict({"state": {}})


@pytest.mark.reference_only
def test_load_state_dict_copies_state_to_the_parameter_dtype():
    from minimod.optim import AdamW

    source = torch.ones(3, requires_grad=True)
    optimizer = AdamW([source])
    source.grad = torch.ones(3)
    optimizer.step()
    target = torch.ones(3, dtype=torch.float64, requires_grad=True)
    loaded = AdamW([target])
    loaded.load_state_dict(optimizer.state_dict())
    state = loaded.state[target]
    assert state["exp_avg"].dtype == torch.float64
    assert state["exp_avg"] is not optimizer.state[source]["exp_avg"]
    assert state["step"] == 1


@pytest.mark.reference_only
@pytest.mark.parametrize("maximize", [False, True])
def test_adamw_foreach_matches_the_loop_and_torch(maximize):
    """foreach=True (minimod's _foreach_step) gives the per-parameter loop's numbers and
    torch.optim.AdamW(foreach=True)'s, also when a parameter skips a step (no gradient)."""
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7), torch.randn(2)]
    runs = {}
    for name, make in {
        "loop": lambda ps: impl.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, maximize=maximize),
        "foreach": lambda ps: impl.optim.AdamW(
            ps, lr=1e-2, weight_decay=0.1, maximize=maximize, foreach=True
        ),
        "torch": lambda ps: torch.optim.AdamW(
            ps, lr=1e-2, weight_decay=0.1, maximize=maximize, foreach=True
        ),
    }.items():
        params = [p.clone().requires_grad_() for p in start]
        optimizer = make(params)
        for step in range(6):
            optimizer.zero_grad()
            used = params if step != 2 else params[:2]  # the last one misses step 2
            sum((p**3).sum() for p in used).backward()
            optimizer.step()
        runs[name] = params
    for a, b, c in zip(runs["loop"], runs["foreach"], runs["torch"], strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
        torch.testing.assert_close(c, a, rtol=1e-6, atol=1e-7)


def test_load_state_dict_rejects_state_of_a_parameter_no_group_lists():
    p = torch.zeros(2, requires_grad=True)
    checkpoint = impl.optim.AdamW([p]).state_dict()
    checkpoint["state"] = {5: {"step": torch.tensor(1.0)}}  # index 5: no group has it
    with pytest.raises(ValueError):
        impl.optim.AdamW([p]).load_state_dict(checkpoint)


def test_adamw_foreach_updates_each_parameter_once():
    """With foreach=True minimod's _foreach_step updates the group: the per-parameter loop must
    skip it, or every parameter moves twice a step."""
    start = [torch.randn(5, 3), torch.randn(7)]
    runs = []
    for make in (
        lambda ps: impl.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, foreach=True),
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1, foreach=True),
    ):
        params = [p.clone().requires_grad_() for p in start]
        optimizer = make(params)
        for _ in range(3):
            optimizer.zero_grad()
            sum((p**3).sum() for p in params).backward()
            optimizer.step()
        runs.append(params)
    for mine, theirs in zip(*runs, strict=True):
        torch.testing.assert_close(
            mine, theirs, rtol=1e-6, atol=1e-7, msg="AdamW(foreach=True) differs from torch's"
        )
