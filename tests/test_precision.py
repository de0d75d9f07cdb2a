"""Mixed precision (minimod.train.precision): GradScaler against its twin torch.amp.GradScaler
("cpu", same options) on a Linear layer trained by SGD through scripted steps, some with inf/NaN
gradients; autocast's dtypes; and a tiny GPT trained in fp32, bf16 and fp16 on the CPU.

Lesson 24's tests: autocast and GradScaler come from ``impl.precision``. Scales and parameters
of the twins must match exactly up to float32 rounding (rtol 1e-6): the same operations run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import re

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

import impl
from minimod.models.gpt import GPT, GPTConfig
from minimod.nn import Linear
from minimod.nn.utils import clip_grad_norm_
from minimod.optim import SGD, AdamW
from minimod.train import precision as reference
from minimod.workbook.implementations import Namespace

prec = getattr(impl, "precision", None) or Namespace(
    importlib.import_module("minimod.train.precision"), impl.name()
)

PARAM_TOL = dict(rtol=1e-6, atol=1e-7)

NO_SKIP_HINT = (
    "a step whose gradients hold inf or NaN must be skipped: step() must not call "
    "optimizer.step() when unscale_ found inf/NaN (the parameters would turn inf/NaN)"
)
NO_UNSCALE_HINT = (
    "the parameters moved about S times too far: unscale the gradients (multiply them by 1/S) "
    "before optimizer.step() -- step() calls unscale_ when you did not"
)
TWICE_HINT = (
    "the parameters moved about S times too little: the gradients were divided by the scale "
    "twice. After an explicit unscale_(), step() must not unscale again (look at the stage)"
)
NO_BACKOFF_HINT = "after a skipped step the scale must shrink: S ·= backoff_factor"
NO_RESET_HINT = (
    "the scale grew too early: growth_interval counts finite steps IN A ROW, so set the "
    "growth counter back to 0 when a step is skipped (and after growing)"
)
SCALE_HINT = (
    "the scale differs from torch's: on inf/NaN S ·= backoff_factor and the counter restarts; "
    "after growth_interval finite steps in a row S ·= growth_factor and the counter restarts"
)
FLOAT_SCALE_HINT = (
    "multiply by the scale as a 0-dim float32 tensor, not a Python float: a float16 loss times "
    "2.0**16 overflows to inf, while float16 × float32-tensor computes in float32"
)
NULL_CONTEXT_HINT = (
    "autocast('{p}') must run matrix products in {dtype}: return torch.autocast(device_type, "
    "dtype=...) for bf16/fp16, a null context only for fp32"
)


# -- the twins: one Linear layer, trained by SGD through a script of steps ---------------------

KINDS = ("finite", "inf", "nan", "overflow", "clip")


def one_step(model, optimizer, scaler, kind: str, step: int, clip) -> None:
    """scale(loss).backward(), a gradient made inf/NaN if the script says so, (unscale_ and
    clip), step, update."""
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(step))
    optimizer.zero_grad()
    loss = (model(x) ** 2).mean()
    if kind == "overflow":
        loss = loss * 1e38  # the scaled loss overflows float32: inf/NaN gradients everywhere
    scaler.scale(loss).backward()
    with torch.no_grad():
        if kind == "inf":
            model.weight.grad[0, 0] = float("inf")
        elif kind == "nan":
            model.bias.grad[1] = float("nan")
    if kind == "clip":
        scaler.unscale_(optimizer)
        clip(list(model.parameters()), 0.05)
    scaler.step(optimizer)
    scaler.update()


def make_twins(momentum: float, seed: int = 0):
    torch.manual_seed(seed)
    twin = torch.nn.Linear(3, 2)
    mine = Linear(3, 2)
    mine.load_state_dict(twin.state_dict())
    return (
        (mine, SGD(mine.parameters(), lr=0.1, momentum=momentum)),
        (twin, torch.optim.SGD(twin.parameters(), lr=0.1, momentum=momentum)),
    )


def params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (model.weight, model.bias)]


def close(a: list[torch.Tensor], b: list[torch.Tensor], **tol) -> bool:
    return all(torch.allclose(x, y, **(tol or PARAM_TOL)) for x, y in zip(a, b, strict=True))


def diagnose(before, mine_after, twin_before, twin_after, scale: float) -> str:
    """Name the mistake behind a parameter difference, if it is a known one."""
    if close(twin_before, twin_after, rtol=0, atol=0):  # torch skipped this step
        return NO_SKIP_HINT
    mine_delta = [a - b for a, b in zip(mine_after, before, strict=True)]
    twin_delta = [a - b for a, b in zip(twin_after, twin_before, strict=True)]
    if close(mine_delta, [d * scale for d in twin_delta], rtol=1e-3, atol=1e-9):
        return NO_UNSCALE_HINT
    if close(mine_delta, [d / scale for d in twin_delta], rtol=1e-3, atol=1e-12):
        return TWICE_HINT
    return f"the parameters differ from torch's: got {mine_after}, torch {twin_after}"


def assert_matches_twin(make_scaler, kinds, options: dict, momentum: float = 0.0) -> None:
    """Run the script on both; after every step compare skipping, parameters and the scale."""
    (mine, mine_opt), (twin, twin_opt) = make_twins(momentum)
    ours, theirs = make_scaler(**options), torch.amp.GradScaler("cpu", **options)
    assert ours.get_scale() == theirs.get_scale(), "before the first step S = init_scale"
    for step, kind in enumerate(kinds):
        where = f"step {step} ({kind}) of {list(kinds)}, options {options}"
        before, twin_before, scale = params(mine), params(twin), theirs.get_scale()
        one_step(mine, mine_opt, ours, kind, step, clip_grad_norm_)
        one_step(twin, twin_opt, theirs, kind, step, torch.nn.utils.clip_grad_norm_)
        mine_after, twin_after = params(mine), params(twin)
        if not close(mine_after, twin_after):
            hint = diagnose(before, mine_after, twin_before, twin_after, scale)
            raise AssertionError(f"{where}: {hint}")
        skipped = close(twin_before, twin_after, rtol=0, atol=0)
        assert ours.last_step_skipped == skipped, f"{where}: last_step_skipped should be {skipped}"
        got, want = ours.get_scale(), theirs.get_scale()
        if got != want:
            if skipped and got == scale:
                hint = NO_BACKOFF_HINT
            else:
                hint = NO_RESET_HINT if got > want else SCALE_HINT
            raise AssertionError(f"{where}: the scale is {got}, torch's {want}. Hint: {hint}")
    assert ours.state_dict() == theirs.state_dict(), "state_dict differs from torch's"


SCRIPT = ("finite", "finite", "inf", "finite", "clip", "nan", "finite", "finite", "overflow")
SCRIPT += ("clip", "finite", "finite", "finite")
FACTORS = st.sampled_from([(2.0, 0.5), (3.0, 0.3), (1.5, 0.25)])


@given(
    st.lists(st.sampled_from(KINDS), min_size=1, max_size=10),
    st.sampled_from([1.0, 3.0, 2.0**10, 2.0**16]),
    FACTORS,
    st.integers(1, 3),
    st.sampled_from([0.0, 0.9]),
)
@example(SCRIPT, 2.0**16, (2.0, 0.5), 2, 0.9)
@example(SCRIPT, 1000.0, (3.0, 0.3), 1, 0.0)
def test_scaler_matches_torch_grad_scaler(kinds, init_scale, factors, interval, momentum):
    growth, backoff = factors
    options = dict(
        init_scale=init_scale,
        growth_factor=growth,
        backoff_factor=backoff,
        growth_interval=interval,
    )
    assert_matches_twin(prec.GradScaler, kinds, options, momentum)


def test_default_options_match_torch():
    kinds = ("finite", "inf", "finite", "clip", "overflow", "finite")
    assert_matches_twin(prec.GradScaler, kinds, {}, momentum=0.9)
    ours, theirs = prec.GradScaler(), torch.amp.GradScaler("cpu")
    (mine, mine_opt), (twin, twin_opt) = make_twins(0.0)
    one_step(mine, mine_opt, ours, "finite", 0, clip_grad_norm_)
    one_step(twin, twin_opt, theirs, "finite", 0, torch.nn.utils.clip_grad_norm_)
    assert ours.state_dict() == theirs.state_dict(), "defaults: 2**16, 2.0, 0.5, 2000"


# -- the behaviour, step by step ---------------------------------------------------------------


class _CountingSGD(SGD):
    """SGD whose step() returns how many times it ran."""

    calls = 0

    def step(self, closure=None):
        super().step(closure)
        self.calls += 1
        return self.calls


def test_an_inf_step_is_skipped_the_scale_halves_and_training_recovers():
    (model, _), _ = make_twins(0.0)
    optimizer = _CountingSGD(model.parameters(), lr=0.1)
    scaler = prec.GradScaler(init_scale=8.0, growth_interval=1000)
    start = params(model)
    optimizer.zero_grad()
    scaler.scale((model(torch.ones(2, 3)) ** 2).mean()).backward()
    with torch.no_grad():
        model.weight.grad[1, 2] = float("inf")
    assert scaler.step(optimizer) is None, "a skipped step returns None"
    scaler.update()
    assert optimizer.calls == 0 and scaler.last_step_skipped, NO_SKIP_HINT
    assert close(params(model), start, rtol=0, atol=0), NO_SKIP_HINT
    assert scaler.get_scale() == 4.0, NO_BACKOFF_HINT
    optimizer.zero_grad()
    scaler.scale((model(torch.ones(2, 3)) ** 2).mean()).backward()
    assert scaler.step(optimizer) == 1, "step() returns optimizer.step()'s result"
    scaler.update()
    assert not scaler.last_step_skipped and not close(params(model), start, rtol=0, atol=0)
    assert all(p.isfinite().all() for p in model.parameters()), "training goes on, finite"
    assert scaler.get_scale() == 4.0, "one finite step is not growth_interval of them"


@pytest.mark.parametrize("interval", [1, 3])
def test_the_scale_grows_after_growth_interval_finite_steps_in_a_row(interval):
    (model, optimizer), _ = make_twins(0.0)
    scaler = prec.GradScaler(init_scale=4.0, growth_interval=interval)
    scales = []
    for step, kind in enumerate(["finite"] * (interval - 1) + ["inf"] + ["finite"] * interval):
        one_step(model, optimizer, scaler, kind, step, clip_grad_norm_)
        scales.append(scaler.get_scale())
    # The inf resets the count, so growth comes interval finite steps after it.
    expected = [4.0] * (interval - 1) + [2.0] + [2.0] * (interval - 1) + [4.0]
    assert scales == expected, f"{NO_RESET_HINT}\ngot scales {scales}, expected {expected}"


def test_unscale_gives_the_true_gradients_for_clipping():
    (model, optimizer), _ = make_twins(0.0)
    x = torch.randn(5, 3)
    (model(x) ** 2).mean().backward()
    true = [p.grad.clone() for p in model.parameters()]
    optimizer.zero_grad()
    scaler = prec.GradScaler(init_scale=2.0**12)
    scaler.scale((model(x) ** 2).mean()).backward()
    scaled = [p.grad.clone() for p in model.parameters()]
    torch.testing.assert_close(scaled, [g * 2.0**12 for g in true], msg="backward of S·loss")
    scaler.unscale_(optimizer)
    got = [p.grad for p in model.parameters()]
    torch.testing.assert_close(got, true, msg="unscale_ divides every gradient by S, in place")
    before = params(model)
    scaler.step(optimizer)  # must not unscale again
    expected = [p - 0.1 * g for p, g in zip(before, true, strict=True)]
    if not close(params(model), expected):
        raise AssertionError(TWICE_HINT)


class _Syncs(TorchDispatchMode):
    """Counts reads of a tensor's value into Python (.item(), bool(t), if t: ...)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_unscale_does_not_wait_for_the_device():
    """On a GPU every .item() waits for the queued work; one check per step is enough."""
    layers = [Linear(2, 2) for _ in range(4)]
    optimizer = SGD([p for layer in layers for p in layer.parameters()], lr=0.1)
    scaler = prec.GradScaler()
    x = torch.ones(1, 2)
    for layer in layers:
        x = layer(x)
    scaler.scale(x.sum()).backward()
    with _Syncs() as unscale_syncs:
        scaler.unscale_(optimizer)
    with _Syncs() as step_syncs:
        scaler.step(optimizer)
    assert unscale_syncs.count == 0, (
        f"unscale_ read {unscale_syncs.count} tensor values into Python: keep found_inf a "
        "tensor (torch.stack the per-gradient isfinite().all() flags, no .item() per gradient)"
    )
    assert step_syncs.count <= 1, f"step() should read the inf flag once, not {step_syncs.count}"


def assert_scales_like_torch(scaler, loss: torch.Tensor) -> None:
    got, want = scaler.scale(loss), torch.amp.GradScaler("cpu").scale(loss)
    assert got.dtype == want.dtype and torch.equal(got, want), (
        f"scale({loss.dtype} loss of shape {tuple(loss.shape)}): got {got} ({got.dtype}), "
        f"torch {want} ({want.dtype}). Hint: {FLOAT_SCALE_HINT}"
    )


@given(st.sampled_from([torch.float16, torch.bfloat16, torch.float32]), st.booleans())
@example(torch.float16, False)  # a float16 loss times 2**16 only fits in float32
def test_scale_multiplies_like_torch(dtype, batched):
    assert_scales_like_torch(
        prec.GradScaler(), torch.tensor([3.0, 0.5] if batched else 3.0).to(dtype)
    )


def test_disabled_scaler_passes_everything_through():
    (model, optimizer), _ = make_twins(0.0)
    loss = (model(torch.ones(2, 3)) ** 2).mean()
    scaler = prec.GradScaler(init_scale=2.0**10, enabled=False)
    assert prec.GradScaler(init_scale=2.0**10).scale(loss).item() == loss.item() * 2.0**10
    assert scaler.scale(loss) is loss, "a disabled scaler returns the loss itself"
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    scaler.unscale_(optimizer)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    before = params(model)
    scaler.step(optimizer)
    scaler.update()
    expected = [p - 0.1 * g for p, g in zip(before, grads, strict=True)]
    assert close(params(model), expected), "a disabled scaler's step is optimizer.step()"
    assert not scaler.is_enabled() and scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    assert scaler.state_dict() == torch.amp.GradScaler("cpu", enabled=False).state_dict()


# -- state_dict: resume exactly, across the two libraries ---------------------------------------


def test_state_dict_round_trips_through_torch_and_resumes_exactly():
    options = dict(init_scale=2.0**8, growth_factor=3.0, backoff_factor=0.3, growth_interval=3)
    first, second = ("finite", "inf", "finite", "finite"), ("finite", "overflow", "finite") * 2
    (straight_model, straight_optimizer), _ = make_twins(0.0)
    straight = prec.GradScaler(**options)
    for step, kind in enumerate(first + second):
        one_step(straight_model, straight_optimizer, straight, kind, step, clip_grad_norm_)

    (model, optimizer), _ = make_twins(0.0)
    scaler = prec.GradScaler(**options)
    for step, kind in enumerate(first):
        one_step(model, optimizer, scaler, kind, step, clip_grad_norm_)
    state = scaler.state_dict()
    keys = {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}
    assert set(state) == keys, "torch.amp.GradScaler's keys"
    float32_scale = torch.tensor(2.0**8 * 0.3, dtype=torch.float32).item()
    assert state["_growth_tracker"] == 2 and state["scale"] == float32_scale, state
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    twin = torch.amp.GradScaler("cpu")
    twin.load_state_dict(torch.load(buffer, weights_only=True))  # plain data
    assert twin.state_dict() == state, "torch's scaler reads minimod's state"
    resumed = prec.GradScaler()  # other options: load_state_dict restores them all
    resumed.load_state_dict(twin.state_dict())
    assert resumed.state_dict() == state and resumed.get_scale() == state["scale"]
    for step, kind in enumerate(second, start=len(first)):
        one_step(model, optimizer, resumed, kind, step, clip_grad_norm_)
    assert resumed.state_dict() == straight.state_dict(), "a resumed run continues exactly"
    assert close(params(model), params(straight_model), rtol=0, atol=0)


# -- autocast and training in low precision ----------------------------------------------------


def assert_autocast_dtypes(autocast, precision: str) -> None:
    """Under autocast(precision): products in the compute dtype, parameters and their
    gradients float32 (autocast casts per op, it does not convert the model)."""
    dtype = reference.compute_dtype(precision)
    layer = Linear(4, 3)
    with autocast(precision, "cpu"):
        product = torch.randn(2, 4) @ torch.randn(4, 3)
        out = layer(torch.randn(2, 4))
    assert product.dtype == dtype, NULL_CONTEXT_HINT.format(p=precision, dtype=dtype)
    assert not torch.is_autocast_enabled("cpu"), "autocast ends with its with block"
    out.sum().backward()
    assert layer.weight.dtype == layer.weight.grad.dtype == torch.float32


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_autocast_runs_products_in_the_compute_dtype_with_float32_master_weights(precision):
    assert_autocast_dtypes(prec.autocast, precision)


def tiny_gpt_curve(precision: str, steps: int = 30, **scaler_options):
    """Loss per step of a tiny GPT memorising a fixed batch, trained the way the Trainer does
    it: autocast around the forward and loss, a scaler (enabled for fp16 only) around the rest.
    Returns (losses, skipped steps)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32))
    optimizer = AdamW(model.parameters(), lr=3e-3)
    data = torch.randint(0, 65, (4, 17), generator=torch.Generator().manual_seed(1))
    x, y = data[:, :-1], data[:, 1:]
    scaler = prec.GradScaler(enabled=precision == "fp16", **scaler_options)
    losses, skipped = [], 0
    for _ in range(steps):
        optimizer.zero_grad()
        with prec.autocast(precision, "cpu"):
            _, loss = model(x, y)
        assert loss.isfinite(), f"{precision}: the loss is {loss.item()}"
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
        skipped += scaler.last_step_skipped
    return losses, skipped


@functools.cache
def fp32_curve() -> tuple[float, ...]:
    # (torch.manual_seed inside: the same weights and data every call)
    return tuple(tiny_gpt_curve("fp32")[0])


@pytest.mark.slow
def test_bf16_training_follows_the_fp32_loss_curve():
    """Tolerance: |loss_bf16 − loss_fp32| < 5% of the fp32 loss at every step (measured: 0.5%;
    the loss is itself a bf16 number on the CPU, 8 significant bits)."""
    reference_curve = fp32_curve()
    curve, skipped = tiny_gpt_curve("bf16")
    assert skipped == 0, "bf16 needs no loss scaling: its scaler is disabled"
    assert curve != list(reference_curve), NULL_CONTEXT_HINT.format(p="bf16", dtype="bfloat16")
    worst = max(abs(a - b) / b for a, b in zip(curve, reference_curve, strict=True))
    assert worst < 0.05, f"bf16 and fp32 curves differ by up to {worst:.1%} of the loss"
    for c in (curve, reference_curve):
        assert c[-1] < 0.6 * c[0], f"the loss should fall: {c[0]:.3f} -> {c[-1]:.3f}"


@pytest.mark.slow
def test_fp16_training_with_the_scaler_trains():
    """fp16 with the default scaler (S = 2**16 at first) on the CPU: any overflowing step is
    skipped and S halves, after that the curve follows fp32's (final loss within 10%)."""
    curve, skipped = tiny_gpt_curve("fp16")
    assert skipped <= 2, f"{skipped} of 30 steps skipped: the scale should settle at once"
    assert curve[-1] < 0.6 * curve[0], f"the loss should fall: {curve[0]:.3f} -> {curve[-1]:.3f}"
    final = fp32_curve()[-1]
    assert abs(curve[-1] - final) < 0.1 * final, f"fp16 ends at {curve[-1]:.3f}, fp32 {final:.3f}"


# -- minimod's own checks and messages --------------------------------------------------------


@pytest.mark.reference_only
def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"precision: expected one of .*'fp16'.*got 'float16'"):
        reference.compute_dtype("float16")
    with pytest.raises(ValueError, match="precision: expected one of"):
        reference.autocast("fp8", "cpu")
    with pytest.raises(ValueError, match="autocast: expected a device"):
        reference.autocast("bf16", "not-a-device")
    with pytest.raises(ValueError, match="does not support device type 'meta'"):
        reference.autocast("bf16", "meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            reference.autocast("fp16", "cuda")
    assert reference.PRECISIONS == ("fp32", "bf16", "fp16")
    for options, message in (
        (dict(growth_factor=1.0), "growth_factor must be > 1"),
        (dict(backoff_factor=1.0), r"backoff_factor must be in \(0, 1\)"),
        (dict(growth_interval=0), "growth_interval must be ≥ 1"),
        (dict(init_scale=0.0), "init_scale must be positive"),
    ):
        with pytest.raises(ValueError, match=message):
            reference.GradScaler(**options)
    with pytest.raises(TypeError, match="growth_interval must be an int"):
        reference.GradScaler(growth_interval=2.5)


@pytest.mark.reference_only
def test_calls_out_of_order_are_errors():
    (model, optimizer), _ = make_twins(0.0)
    scaler = reference.GradScaler()
    with pytest.raises(RuntimeError, match="call scaler.scale"):
        scaler.unscale_(optimizer)
    scaler.scale(model(torch.ones(1, 3)).sum()).backward()
    with pytest.raises(RuntimeError, match="call scaler.step"):
        scaler.update()
    scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="unscale_: already called"):
        scaler.unscale_(optimizer)
    scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="step\\(\\) was already called"):
        scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="closure"):
        reference.GradScaler().step(optimizer, closure=lambda: None)
    scaler.update()
    with pytest.raises(TypeError, match="expected a tensor"):
        scaler.scale(1.0)
    with pytest.raises(RuntimeError, match="saved from a disabled scaler"):
        scaler.load_state_dict({})
    with pytest.raises(KeyError, match="missing keys"):
        scaler.load_state_dict({"scale": 2.0})
    half = Linear(3, 2, dtype=torch.float16)
    half_opt = SGD(half.parameters(), lr=0.1)
    scaler.scale(half(torch.ones(1, 3, dtype=torch.float16)).float().sum()).backward()
    with pytest.raises(ValueError, match="float16 gradients; keep the parameters in float32"):
        scaler.unscale_(half_opt)
    scaler.update(new_scale=8.0)
    assert scaler.get_scale() == 8.0
    assert "GradScaler(scale=8.0" in repr(scaler)


# -- the hints name the mistake of each flawed scaler ---------------------------------------


class _NoSkip(reference.GradScaler):
    def step(self, optimizer, *args, **kwargs):
        if self._optimizer_states.get(id(optimizer), {}).get("stage") != "unscaled":
            self.unscale_(optimizer)
        self._optimizer_states[id(optimizer)]["stage"] = "stepped"
        return optimizer.step()


class _NoUnscale(reference.GradScaler):
    def unscale_(self, optimizer):
        state = self._state(optimizer, "unscale_")
        grads = self._grads(optimizer)
        state["found_inf"] = ~torch.stack([g.isfinite().all() for g in grads]).all()
        state["stage"] = "unscaled"


class _UnscaleTwice(reference.GradScaler):
    def step(self, optimizer, *args, **kwargs):
        if self._optimizer_states.get(id(optimizer), {}).get("stage") == "unscaled":
            for grad in self._grads(optimizer):
                grad.div_(self._scale)
        return super().step(optimizer, *args, **kwargs)


class _NoBackoff(reference.GradScaler):
    def update(self, new_scale=None):
        found = any(bool(s["found_inf"]) for s in self._optimizer_states.values())
        scale = self.get_scale()
        super().update()
        if found:
            self._scale.fill_(scale)


class _NoReset(reference.GradScaler):
    def update(self, new_scale=None):
        tracker = self._growth_tracker
        found = any(bool(s["found_inf"]) for s in self._optimizer_states.values())
        super().update()
        if found:
            self._growth_tracker = tracker


def _null_autocast(precision, device):
    return contextlib.nullcontext()


def _always_bf16_autocast(precision, device):
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


class _FloatScale(reference.GradScaler):
    def scale(self, outputs):
        self._scale_on(outputs.device)
        return outputs * self.get_scale()


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "flawed, kinds, hint",
    [
        (_NoSkip, ("finite", "inf"), NO_SKIP_HINT),
        (_NoUnscale, ("finite", "finite"), NO_UNSCALE_HINT),
        (_UnscaleTwice, ("finite", "clip"), TWICE_HINT),
        (_NoBackoff, ("finite", "nan"), NO_BACKOFF_HINT),
        (_NoReset, ("finite", "inf", "finite"), NO_RESET_HINT),
    ],
)
def test_hints_name_the_mistake(flawed, kinds, hint):
    options = dict(init_scale=64.0, growth_interval=2)
    with pytest.raises(AssertionError, match=re.escape(hint[:40])):
        assert_matches_twin(flawed, kinds, options)
    assert_matches_twin(reference.GradScaler, kinds, options)  # the hint is about the mistake


@pytest.mark.reference_only
@pytest.mark.parametrize(
    "flawed, precision", [(_null_autocast, "bf16"), (_always_bf16_autocast, "fp16")]
)
def test_autocast_hint_fires(flawed, precision):
    with pytest.raises(AssertionError, match=re.escape(f"autocast('{precision}') must run")):
        assert_autocast_dtypes(flawed, precision)
    assert_autocast_dtypes(reference.autocast, precision)


@pytest.mark.reference_only
def test_float_scale_hint_fires():
    loss = torch.tensor(3.0, dtype=torch.float16)
    with pytest.raises(AssertionError, match=re.escape(FLOAT_SCALE_HINT[:40])):
        assert_scales_like_torch(_FloatScale(), loss)
    assert_scales_like_torch(reference.GradScaler(), loss)


def test_a_step_where_no_parameter_has_a_gradient_is_taken():
    """No gradient at all (every parameter frozen this step) is not an overflow: unscale_
    finds nothing infinite, the step runs and the scale stays."""
    (model, _), _ = make_twins(0.0)
    optimizer = _CountingSGD(model.parameters(), lr=0.1)
    scaler = prec.GradScaler(init_scale=8.0, growth_interval=1000)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(torch.ones(()))  # a loss that reaches no parameter
    scaler.unscale_(optimizer)
    assert scaler.step(optimizer) == 1, "with no gradients the step is taken, not skipped"
    scaler.update()
    assert not scaler.last_step_skipped
    assert scaler.get_scale() == 8.0, "no gradient is no overflow: the scale must not back off"
