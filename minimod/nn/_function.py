"""Running minimod's hand-written autograd Functions.

Each Function (LayerNormFunction, Attention, ...) pairs a forward with a backward written by
hand. When no gradient can flow (inside ``torch.no_grad()``, or no input requires one), the
autograd machinery around ``Function.apply`` is pure overhead -- noticeable in token-by-token
generation, where every call is small -- so ``run`` then calls the forward alone.
"""

from __future__ import annotations

from typing import Any

import torch


class _Unrecorded:
    """Stands in for autograd's ctx when nothing is recorded: saves nothing."""

    needs_input_grad: tuple[bool, ...] = ()

    def save_for_backward(self, *tensors: Any) -> None:
        pass


def run(function: type[torch.autograd.Function], *args: Any) -> Any:
    """``function.apply(*args)``, or ``function.forward`` alone when no gradient is needed."""
    if torch.is_grad_enabled() and any(
        isinstance(arg, torch.Tensor) and arg.requires_grad for arg in args
    ):
        return function.apply(*args)
    return function.forward(_Unrecorded(), *args)
