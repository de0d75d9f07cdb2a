"""Lesson 24: Mixed precision -- autocast in bf16/fp16 and dynamic loss scaling

The idea
Matrix products dominate training time, and 16-bit numbers halve their memory traffic (GPUs
also multiply them several times faster). So run the products in 16 bits and keep everything
that accumulates small changes in 32: the parameters ("master weights"), their gradients and
the optimizer's update. In bf16 that is all; fp16 also needs the loss scaled.

The three formats (sign, exponent, mantissa bits)
    fp32  1 + 8 + 23   largest 3.4e38   smallest normal 1.2e-38   eps 1.2e-7  (~7 digits)
    bf16  1 + 8 + 7    largest 3.4e38   smallest normal 1.2e-38   eps 7.8e-3  (~2-3 digits)
    fp16  1 + 5 + 10   largest 65504    smallest normal 6.1e-5    eps 9.8e-4  (~3 digits)
bf16 is fp32 with the mantissa cut short: the same range, little precision. fp16 keeps more
precision but little range: below 6e-8 everything is 0, above 65504 it is inf. Gradients are
often 1e-6 ... 1e-9, so in fp16 many of them underflow to 0 and the model stops learning;
in bf16 they survive (coarsely). eps is the gap above 1.0: in bf16, 1 + 0.001 == 1 -- which is
why an update lr·g applied to a bf16 weight would mostly vanish, and the weights stay fp32.

What autocast does
Inside `with autocast("bf16", device):` (torch.autocast), ops on torch's lists cast their
inputs as they run: matmul / bmm / addmm / linear-like products to the low dtype (the hardware
still sums the products in fp32), a few numerically touchy ops to fp32. Other ops keep their
inputs' dtype, and type promotion decides: bf16 activations + an fp32 bias -> fp32. The
parameters are not converted; the backward runs each op in its forward's dtype, so every
parameter gets an fp32 gradient. Wrap the forward and the loss, not backward() or the step.

Loss scaling (fp16)
Multiply the loss by S before backward: every gradient is then S·g (the chain rule is linear),
lifted out of the underflow zone. Before the step, unscale: g = (S·g) / S, in fp32. If S is too
large some S·g overflow to inf (or inf − inf = NaN): then skip this step entirely and lower S.
The dynamic schedule finds the largest safe S by itself:
    inf/NaN in any gradient:  skip optimizer.step();  S ·= backoff_factor (0.5);  count = 0
    otherwise:                optimizer.step();  count += 1;
                              if count == growth_interval (2000): S ·= growth_factor (2); count = 0
Start high (2**16): the first steps may be skipped while S settles, then skips are rare.

The order, with gradient clipping (which must see the true gradients)
    with autocast(precision, device):
        loss = loss_fn(model, batch)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)          # once per step, after the last backward
    clip_grad_norm_(params, max_norm)
    scaler.step(optimizer)              # unscale_ here if you did not; skip on inf/NaN
    scaler.update()
With accumulation, scale each micro-batch's loss; unscale once. GradScaler(enabled=False)
passes everything through, so one loop serves fp32, bf16 (no scaler needed) and fp16.

What you write
autocast: a null context for fp32, else torch.autocast(device_type, dtype=...).
GradScaler.scale: loss times the scale, a 0-dim float32 tensor (made for you by _scale_on).
GradScaler.unscale_: multiply each gradient by 1/S in place; store in state["found_inf"] a
0-dim bool tensor, True when any gradient held inf/NaN -- one torch.stack of the per-gradient
isfinite().all() flags, checked before unscaling, and no .item() (each waits for the GPU).
GradScaler.step (unscale_ has run by then): read found_inf once, set last_step_skipped, and
call optimizer.step() only when no inf/NaN was found; return its result, or None when skipped.
GradScaler.update: the schedule above (the flags are in `found`; compute with Python floats
and write S back with self._scale.fill_). The argument checks and bookkeeping are minimod's.

Classic pitfalls
- Stepping on still-scaled gradients: an update S times too large.
- Unscaling twice (unscale_ for clipping, then again in step): updates S times too small.
- Not skipping an inf step: one bad batch turns every weight into NaN.
- Not resetting the growth counter after a skip: S grows back too soon and overflows again.
- Clipping before unscale_: the threshold is compared with S times the true norm.
- loss * 65536.0 on an fp16 loss overflows; multiply by a float32 tensor (the result is fp32).
- Converting the model with .half(): no fp32 master weights, updates round away.
- Saving checkpoints without the scaler's state_dict(): a resumed run restarts at 2**16.

Run it
Once `minimod exercises check 24` passes, a tiny GPT pretrains in bfloat16 under your autocast
(--use-mine swaps in every lesson that passes and says which; bf16 needs no loss scaling:
--precision fp16 on a GPU is where your GradScaler runs):
    minimod pretrain gpt --precision bf16 --use-mine --out runs/e24
prints which lessons are yours, a progress bar, then "done: step 60, held-out loss 3.065,
perplexity 21.43", next to fp32's 3.063 and 21.38 for the same run (lesson 5's command): the
matrix products in bf16 cost almost nothing in loss (about 20 s on 2 shared cores).
Next: lesson 25 (Activation checkpointing: recompute instead of remember)

Check it: minimod exercises check 24
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e24_mixed_precision import GradScaler, autocast
    >>> from minimod.optim import SGD
    >>> torch.tensor(1e-8).half().item(), torch.tensor(1.001).bfloat16().item()  # underflow, eps
    (0.0, 1.0)
    >>> with autocast("bf16", "cpu"):
    ...     (torch.randn(2, 3) @ torch.randn(3, 2)).dtype
    torch.bfloat16
    >>> w = torch.ones(2, requires_grad=True); opt = SGD([w], lr=0.1)
    >>> scaler = GradScaler(init_scale=1024.0)
    >>> scaler.scale((w * 3).sum()).backward(); w.grad
    tensor([3072., 3072.])
    >>> scaler.step(opt); scaler.update(); w.detach(), scaler.get_scale()
    (tensor([0.7000, 0.7000]), 1024.0)
    >>> opt.zero_grad(); scaler.scale((w * float("inf")).sum()).backward()
    >>> scaler.step(opt); scaler.update(); w.detach(), scaler.get_scale(), scaler.last_step_skipped
    (tensor([0.7000, 0.7000]), 512.0, True)
"""

# Lesson 24 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from minimod.train.precision import _FLOAT32_MAX, _device_type, compute_dtype

# ---- from minimod/train/precision.py ----------------------------------------


def autocast(
    precision: str, device: str | torch.device = "cpu"
) -> contextlib.AbstractContextManager:
    """The context to run the forward pass and the loss in: torch.autocast with the precision's
    dtype on ``device``'s type, or a context that does nothing for "fp32"."""
    dtype = compute_dtype(precision)
    device_type = None if precision == "fp32" else _device_type(device, precision)
    # BEGIN YOUR CODE
    if precision == "fp32":
        return contextlib.nullcontext()
    # Parameters stay float32: autocast casts each product's inputs as the op runs.
    return torch.autocast(device_type, dtype=dtype)
    # END YOUR CODE


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
        # BEGIN YOUR CODE
        return outputs * scale  # the 0-dim float32 tensor, not a Python float (see above)
        # END YOUR CODE

    def unscale_(self, optimizer: Any) -> None:
        """Divide the optimizer's gradients by S in place and note whether any holds inf/NaN.

        Call it once per step, after the last backward and before clipping or inspecting the
        gradients; step() calls it when you did not. No device sync: the check stays a tensor.
        """
        if not self._enabled:
            return
        state = self._state(optimizer, "unscale_")
        grads = self._grads(optimizer)
        # BEGIN YOUR CODE
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
        # END YOUR CODE
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
        # BEGIN YOUR CODE
        # Reading the flag waits for the device: the one sync per step.
        self.last_step_skipped = bool(found_inf)
        if self.last_step_skipped:
            return None  # the parameters stay as they were
        return optimizer.step(*args, **kwargs)
        # END YOUR CODE

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
        # BEGIN YOUR CODE
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
        # END YOUR CODE

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
