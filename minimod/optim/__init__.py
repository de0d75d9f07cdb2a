"""Optimizers and learning-rate schedules, with torch.optim's names and semantics."""

from minimod.optim import lr_scheduler
from minimod.optim.adamw import AdamW
from minimod.optim.optimizer import Optimizer
from minimod.optim.sgd import SGD

__all__ = ["SGD", "AdamW", "Optimizer", "lr_scheduler"]
