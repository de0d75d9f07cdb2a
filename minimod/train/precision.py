"""Mixed precision: compute in 16 bits, keep the weights and their updates in 32.

    precision   compute dtype    loss scaling
    "fp32"      float32          no
    "bf16"      bfloat16         no   (float32's exponent range: gradients do not underflow)
    "fp16"      float16          yes  (small gradients underflow to 0 without it)

``autocast(precision, device)`` is the context for the forward pass and the loss: inside it,
torch.autocast runs matrix products (matmul, bmm, addmm, ...) in the compute dtype, casting
their inputs per op. The parameters stay float32 (the "master weights"), their gradients are
float32, and the optimizer updates them in float32. The backward pass needs no context: each
op's backward runs in the dtype its forward ran in (a hand-written autograd Function's backward
runs outside autocast, on the dtypes it saved).

torch.autocast casts only the ops on its lists. Products (matmul, bmm, addmm with its bias)
run in the low dtype; element-wise ops keep their inputs' dtype, and type promotion decides
mixed ones: low + float32 -> float32, so the residual stream, which starts as float32
embeddings, stays float32. Which ops autocast upcasts to float32 depends on the device (CUDA:
exp, log, sum, softmax, ...; the CPU: few), so minimod's hand-written softmax, layer_norm and
cross_entropy compute their statistics in at least float32 themselves.

``GradScaler`` is minimod's dynamic loss scaler, with torch.amp.GradScaler's API, semantics and
state_dict. One step with fp16 (and with gradient clipping, which needs true gradients):

    with autocast("fp16", device):
        loss = loss_fn(model, batch)
    scaler.scale(loss).backward()   # gradients of S·loss: S·g, large enough not to underflow
    scaler.unscale_(optimizer)      # g = (S·g) / S, and note any inf/NaN; once per step
    clip_grad_norm_(params, max_norm)
    scaler.step(optimizer)          # optimizer.step(), skipped if any gradient was inf/NaN
    scaler.update()                 # inf/NaN: S ·= backoff_factor; growth_interval good
                                    # steps in a row: S ·= growth_factor

Without clipping, leave out unscale_: step() unscales first. With gradient accumulation, scale
every micro-batch's loss and unscale once, after the last backward. ``GradScaler(enabled=False)``
passes everything through, so one training loop serves all three precisions.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_FLOAT32_MAX = torch.finfo(torch.float32).max


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype matrix products run in: fp32 -> float32, bf16 -> bfloat16, fp16 -> float16."""
    if precision not in _DTYPES:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    return _DTYPES[precision]


def _device_type(device: str | torch.device, precision: str) -> str:
    """The device type ("cuda" for "cuda:1"); ValueError if autocast cannot run there."""
    try:
        device_type = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ValueError(
            f"autocast: expected a device such as 'cpu' or 'cuda', got {device!r}"
        ) from None
    if not torch.amp.is_autocast_available(device_type):
        raise ValueError(f"autocast: torch.autocast does not support device type {device_type!r}")
    if device_type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"autocast: CUDA is not available, cannot run {precision} on {device!r}")
    if precision == "bf16" and device_type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("autocast: this CUDA device has no bfloat16 support; use fp16")
    return device_type


def autocast(
    precision: str, device: str | torch.device = "cpu"
) -> contextlib.AbstractContextManager:
    """The context to run the forward pass and the loss in: torch.autocast with the precision's
    dtype on ``device``'s type, or a context that does nothing for "fp32"."""
    dtype = compute_dtype(precision)
    device_type = None if precision == "fp32" else _device_type(device, precision)
    # BEGIN SOLUTION
    if precision == "fp32":
        return contextlib.nullcontext()
    # Parameters stay float32: autocast casts each product's inputs as the op runs.
    return torch.autocast(device_type, dtype=dtype)
    # END SOLUTION


class GradScaler:
    """A dynamic loss scaler for fp16 training: torch.amp.GradScaler's API and state_dict.

    init_scale: the first scale S; growth_factor (> 1): S grows by it after growth_interval
    steps in a row without inf/NaN gradients; backoff_factor (in (0, 1)): S shrinks by it when
    a step's gradients hold inf/NaN (that step is skipped). enabled=False: every method passes
    through (scale returns the loss, step calls optimizer.step()).

    The scale is a 0-dim float32 tensor on the loss's device, made by the first scale() call.
    ``last_step_skipped`` says whether the latest step() skipped optimizer.step().
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        if not (math.isfinite(init_scale) and init_scale > 0):
            raise ValueError(f"GradScaler: init_scale must be positive, got {init_scale}")
        if not growth_factor > 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int):
            raise TypeError(f"GradScaler: growth_interval must be an int, got {growth_interval!r}")
        if growth_interval < 1:
            raise ValueError(f"GradScaler: growth_interval must be ≥ 1, got {growth_interval}")
        self._enabled = bool(enabled)
        self._init_scale = float(init_scale)
        self._scale: torch.Tensor | None = None  # made on the loss's device by scale()
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._growth_tracker = 0  # steps in a row without inf/NaN gradients
        # Per optimizer (by id), this step: {"stage": "ready" | "unscaled" | "stepped",
        # "found_inf": a 0-dim bool tensor once unscale_ has looked at the gradients}.
        self._optimizer_states: dict[int, dict[str, Any]] = {}
        self.last_step_skipped = False

    # -- bookkeeping ---------------------------------------------------------------------------
    def _scale_on(self, device: torch.device) -> torch.Tensor:
        """The scale as a 0-dim float32 tensor on ``device`` (made there on the first call)."""
        if self._scale is None:
            self._scale = torch.full((), self._init_scale, dtype=torch.float32, device=device)
        return self._scale.to(device)

    def _state(self, optimizer: Any, action: str) -> dict[str, Any]:
        """This step's record for ``optimizer``; RuntimeError when ``action`` is out of order."""
        if self._scale is None:
            raise RuntimeError(
                f"GradScaler.{action}: no scale yet; call scaler.scale(loss).backward() first"
            )
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(
                f"GradScaler.{action}: expected an optimizer with param_groups, got "
                f"{type(optimizer).__name__}"
            )
        state = self._optimizer_states.setdefault(
            id(optimizer), {"stage": "ready", "found_inf": None}
        )
        if state["stage"] == "stepped":
            raise RuntimeError(
                f"GradScaler.{action}: step() was already called this step; call update() "
                "before the next step"
            )
        if action == "unscale_" and state["stage"] == "unscaled":
            raise RuntimeError(
                "GradScaler.unscale_: already called on this optimizer since the last update() "
                "(unscaling twice would divide the gradients by the scale twice)"
            )
        return state

    @staticmethod
    def _grads(optimizer: Any) -> list[torch.Tensor]:
        """The gradients of the optimizer's parameters (those that have one)."""
        grads = []
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.dtype == torch.float16:
                    raise ValueError(
                        "GradScaler.unscale_: float16 gradients; keep the parameters in float32 "
                        "(master weights) and compute in float16 with autocast('fp16', device)"
                    )
                if param.grad.is_sparse:
                    raise ValueError("GradScaler.unscale_: sparse gradients are not supported")
                grads.append(param.grad)
        return grads

    # -- one step ------------------------------------------------------------------------------
    def scale(self, outputs: torch.Tensor) -> torch.Tensor:
        """outputs · S (a tensor, usually the loss). A 0-dim float16 loss times the float32
        scale tensor gives a float32 result, which does not overflow."""
        if not self._enabled:
            return outputs
        if not isinstance(outputs, torch.Tensor):
            raise TypeError(f"GradScaler.scale: expected a tensor, got {type(outputs).__name__}")
        scale = self._scale_on(outputs.device)
        # BEGIN SOLUTION
        return outputs * scale  # the 0-dim float32 tensor, not a Python float (see above)
        # END SOLUTION

    def unscale_(self, optimizer: Any) -> None:
        """Divide the optimizer's gradients by S in place and note whether any holds inf/NaN.

        Call it once per step, after the last backward and before clipping or inspecting the
        gradients; step() calls it when you did not. No device sync: the check stays a tensor.
        """
        if not self._enabled:
            return
        state = self._state(optimizer, "unscale_")
        grads = self._grads(optimizer)
        # BEGIN SOLUTION
        device = self._scale.device
        # 1/S in float64, rounded once to float32 (as torch): exact when S is a power of 2.
        inv_scale = self._scale.double().reciprocal().float()
        if grads:
            # One flag per gradient, stacked and reduced: a single result, no sync per param.
            finite = torch.stack([g.isfinite().all().to(device) for g in grads]).all()
        else:
            finite = torch.ones((), dtype=torch.bool, device=device)
        state["found_inf"] = ~finite  # checked on the scaled gradients, before unscaling
        with torch.no_grad():
            for grad in grads:
                grad.mul_(inv_scale.to(grad.device))
        # END SOLUTION
        state["stage"] = "unscaled"

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """optimizer.step(*args, **kwargs) on unscaled gradients (unscale_ first if it was not
        called), or nothing when they hold inf/NaN: returns None then, else step's result."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step: a closure is not supported with loss scaling")
        state = self._state(optimizer, "step")
        if state["stage"] == "ready":
            self.unscale_(optimizer)  # not called explicitly this step
        state["stage"] = "stepped"
        found_inf = state["found_inf"]  # a 0-dim bool tensor
        # BEGIN SOLUTION
        # Reading the flag waits for the device: the one sync per step.
        self.last_step_skipped = bool(found_inf)
        if self.last_step_skipped:
            return None  # the parameters stay as they were
        return optimizer.step(*args, **kwargs)
        # END SOLUTION

    def update(self, new_scale: float | torch.Tensor | None = None) -> None:
        """Adjust S for the next step: backoff after inf/NaN gradients (in any optimizer this
        step), growth after growth_interval good steps in a row. ``new_scale`` sets S instead.
        The products are computed in float64 and stored as float32, as torch does."""
        if not self._enabled:
            return
        if self._scale is None:
            raise RuntimeError("GradScaler.update: no scale yet; call scaler.scale(loss) first")
        found = [
            s["found_inf"] for s in self._optimizer_states.values() if s["found_inf"] is not None
        ]
        self._optimizer_states = {}
        if new_scale is not None:
            self._scale.fill_(float(new_scale))
            return
        if not found:
            raise RuntimeError(
                "GradScaler.update: no inf/NaN check this step; call scaler.step(optimizer) "
                "(or unscale_) before update()"
            )
        # BEGIN SOLUTION
        scale = self._scale.item()
        if any(bool(flag) for flag in found):
            scale *= self._backoff_factor  # too large: the gradients overflowed
            self._growth_tracker = 0  # growth needs growth_interval good steps IN A ROW
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                grown = scale * self._growth_factor  # try a larger scale (if float32 holds it)
                scale = grown if grown <= _FLOAT32_MAX else scale
                self._growth_tracker = 0
        self._scale.fill_(scale)
        # END SOLUTION

    # -- reading and saving the state ----------------------------------------------------------
    def get_scale(self) -> float:
        """S as a Python float (1.0 when disabled; init_scale before the first scale())."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else self._scale.item()

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """torch.amp.GradScaler's keys: scale, growth_factor, backoff_factor, growth_interval,
        _growth_tracker (plain numbers); {} when disabled. Call it after update()."""
        if not self._enabled:
            return {}
        return {
            "scale": self.get_scale(),
            "growth_factor": self._growth_factor,
            "backoff_factor": self._backoff_factor,
            "growth_interval": self._growth_interval,
            "_growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore state_dict() (minimod's or torch.amp.GradScaler's); no-op when disabled."""
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError(
                "GradScaler.load_state_dict: the state dict is empty; it was probably saved "
                "from a disabled scaler"
            )
        keys = ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")
        missing = [key for key in keys if key not in state_dict]
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing keys {missing}")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale.fill_(self._init_scale)
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])

    def __repr__(self) -> str:
        if not self._enabled:
            return "GradScaler(enabled=False)"
        return (
            f"GradScaler(scale={self.get_scale()}, growth_factor={self._growth_factor}, "
            f"backoff_factor={self._backoff_factor}, growth_interval={self._growth_interval})"
        )
