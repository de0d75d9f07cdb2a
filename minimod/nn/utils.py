"""Gradient clipping: keep one bad batch from throwing the weights far away (as torch.nn.utils)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

TensorsT = torch.Tensor | Iterable[torch.Tensor]


def _with_grads(parameters: TensorsT) -> list[torch.Tensor]:
    """The gradients of ``parameters`` (one tensor or an iterable), skipping those without."""
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters: TensorsT,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> torch.Tensor:
    """Scale all gradients together, in place, so their joint norm is at most ``max_norm``.

        total = ‖(‖g_1‖, ‖g_2‖, ...)‖    (= the norm of all gradients concatenated; p = norm_type)
        g_i ← g_i · min(1, max_norm / (total + 1e-6))

    One coefficient for all gradients keeps the update's direction. Parameters without a
    gradient are skipped; ``norm_type`` may be ``inf`` (the largest absolute entry). Returns
    ``total`` (before clipping) as a tensor -- worth logging. With ``error_if_nonfinite``, an
    inf/NaN total raises RuntimeError instead of scaling. ``foreach`` is accepted for torch
    compatibility; minimod always loops over the gradients.
    """
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    grads = _with_grads(parameters)
    norm_type = float(norm_type)
    # BEGIN SOLUTION
    if not grads:
        return torch.tensor(0.0)
    device = grads[0].device
    norms = [torch.linalg.vector_norm(g, norm_type).to(device) for g in grads]
    total = torch.linalg.vector_norm(torch.stack(norms), norm_type)
    if error_if_nonfinite and not torch.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the "
            "gradients is non-finite, so it cannot be clipped (set "
            "error_if_nonfinite=False to scale by it anyway)"
        )
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.device))
    return total
    # END SOLUTION


def clip_grad_value_(parameters: TensorsT, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient entry, in place, to [-clip_value, clip_value].

    Parameters without a gradient are skipped; ``foreach`` is accepted for torch compatibility.
    """
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    grads = _with_grads(parameters)
    # BEGIN SOLUTION
    for g in grads:
        g.clamp_(min=-clip_value, max=clip_value)
    # END SOLUTION
