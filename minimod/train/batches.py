"""Small helpers the training loop applies to every batch: device, loss, counting, norms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """The device to train on: "auto" picks CUDA, else Apple's MPS, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = torch.device(name)
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if device.type in available and not available[device.type]():
        raise ValueError(f"device {name!r} is not available here; use 'auto' or 'cpu'")
    return device


def move_to(batch: Any, device: torch.device) -> Any:
    """The batch with every tensor (inside tuples, lists, dicts) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(move_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: move_to(item, device) for key, item in batch.items()}
    return batch


def model_loss(model: Any, batch: Any) -> torch.Tensor:
    """The default loss_fn: ``model(*batch)`` returns (output, loss), as GPT(idx, targets) does."""
    advice = (
        "the default loss_fn calls model(*batch) and expects (output, loss) back; otherwise "
        "pass loss_fn(model, batch) -> loss, e.g. lambda m, b: F.cross_entropy(m(b[0]), b[1])"
    )
    try:
        output = model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
    except TypeError as error:
        raise TypeError(f"{type(model).__name__}: {error}; {advice}") from error
    if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], torch.Tensor):
        return output[1]
    raise TypeError(f"{type(model).__name__} returned {type(output).__name__}; {advice}")


def count_items(batch: Any) -> int:
    """What a batch trains on: the targets, i.e. the last tensor of a (inputs, targets) batch --
    B·T tokens for a language model, N examples for a classifier; else the first dimension."""
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[-1], torch.Tensor):
        return batch[-1].numel()
    return len(batch) if isinstance(batch, torch.Tensor) and batch.dim() else 0


def grad_norm(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """The joint L2 norm of all gradients (what clipping would measure), without clipping."""
    norms = [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.tensor(0.0)
