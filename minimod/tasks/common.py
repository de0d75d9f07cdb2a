"""What every task hands the runner, and the error that means "bad input, not a bug"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from minimod.train.batches import model_loss


class UsageError(ValueError):
    """Bad input from the command line (a missing file, a wrong option): the CLI prints the
    message as one line and exits with status 2."""


@dataclass
class TaskData:
    """A task wired up: the model's config and a builder, the training batches (a callable
    ``batches(index)`` drawing from the generator ``data_state``), the loss, and
    ``evaluate(model, batches=None) -> {"name": number}`` on held-out data."""

    config: Any
    build: Callable[[], Any]
    batches: Callable[[int], Any]
    data_state: torch.Generator
    evaluate: Callable[..., dict[str, float]]
    loss_fn: Callable[[Any, Any], torch.Tensor] = model_loss
    tokenizer: Any = None
    eval_metric: str = "loss"
    eval_mode: str = "min"
    class_names: tuple[str, ...] = ()
    confusion: Callable[[Any], str] | None = None  # model -> the confusion matrix as text


def device_of(model: Any) -> torch.device:
    return next(iter(model.parameters())).device
