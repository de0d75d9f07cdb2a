"""Imbalanced classes: loss weights per class and a sampler that draws rare classes as often
as common ones.

    cross_entropy(logits, y, weight=class_weights(train_labels, k))   rare classes weigh more
    WeightedSampler(train_labels)                                     or are drawn more often

The third tool is a loss, ``minimod.nn.functional.focal_loss``, which down-weights the examples
the model already gets right.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


def _labels(labels: Any, where: str, num_classes: int | None = None) -> torch.Tensor:
    """A 1-D int64 CPU tensor of class indices (>= 0, < num_classes when given), non-empty."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() == 0:
        raise ValueError(
            f"{where}: labels must be a non-empty 1-D sequence of class indices, got shape "
            f"{tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{where}: labels must be integer class indices, got {labels.dtype}")
    labels = labels.long().cpu()
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or (num_classes is not None and high >= num_classes):
        upper = "" if num_classes is None else f", < num_classes={num_classes}"
        raise ValueError(f"{where}: labels must be >= 0{upper}; got values {low} to {high}")
    return labels


def class_weights(
    labels: Any, num_classes: int, mode: str = "auto", dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Per-class loss weights (num_classes,) for ``cross_entropy(..., weight=...)``.

    mode="auto": inverse frequency, w_c = n / (k · n_c), with n labels, n_c of class c and k
        the number of classes present -- scikit-learn's "balanced". Each class then carries
        the same total weight, n / k, and the average weight over the examples is 1. A class
        absent from ``labels`` gets weight 0 (scikit-learn refuses; it has nothing to weigh).
    mode="none": all ones.
    dtype: default torch.get_default_dtype().
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"class_weights: num_classes must be an int >= 1, got {num_classes!r}")
    if mode not in ("auto", "none"):
        raise ValueError(f"class_weights: mode must be 'auto' or 'none', got {mode!r}")
    labels = _labels(labels, "class_weights", num_classes)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if mode == "none":
        return torch.ones(num_classes, dtype=dtype)
    # BEGIN SOLUTION
    counts = torch.bincount(labels, minlength=num_classes).double()
    present = counts > 0
    k = present.sum()
    weights = torch.where(present, len(labels) / (k * counts.clamp(min=1)), 0.0)
    return weights.to(dtype)
    # END SOLUTION


class WeightedSampler:
    """Example indices drawn with probability ∝ 1 / (how often their label occurs), so every
    class is drawn equally often on average: ``for i in sampler: ... dataset[i]``.

    labels: the dataset's labels, one per example (1-D integer class indices).
    num_samples: indices per pass (an "epoch"); default len(labels).
    generator: the torch.Generator drawn from; default a new one seeded from torch's global
        generator (so ``seed_everything`` makes runs repeat).
    replacement: draw with replacement (default); without, num_samples <= len(labels).

    ``state_dict()`` / ``load_state_dict()`` save the generator's state at the start of the
    current pass and how many indices it has given, so a resumed run continues exactly where
    the interrupted one was (plain tensors and ints: a checkpoint can hold them).
    """

    def __init__(
        self,
        labels: Any,
        num_samples: int | None = None,
        generator: torch.Generator | None = None,
        replacement: bool = True,
    ) -> None:
        self.labels = _labels(labels, "WeightedSampler")
        num_samples = len(self.labels) if num_samples is None else num_samples
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"WeightedSampler: num_samples must be an int >= 1, got {num_samples}")
        if not replacement and num_samples > len(self.labels):
            raise ValueError(
                f"WeightedSampler: without replacement num_samples ({num_samples}) cannot "
                f"exceed the number of labels ({len(self.labels)})"
            )
        if generator is None:
            seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
            generator = torch.Generator().manual_seed(seed)
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator
        self._pass_start: torch.Tensor | None = None  # generator state when this pass began
        self._position = 0  # indices given in this pass (or to skip, after load_state_dict)

    def draw(self) -> torch.Tensor:
        """One pass: ``num_samples`` indices (int64), example i drawn ∝ 1 / count[labels[i]]."""
        # BEGIN SOLUTION
        counts = torch.bincount(self.labels)
        weights = 1.0 / counts[self.labels].double()  # each class's weights sum to 1
        return torch.multinomial(
            weights, self.num_samples, self.replacement, generator=self.generator
        )
        # END SOLUTION

    def __iter__(self) -> Iterator[int]:
        start, skip = self.generator.get_state(), self._position
        indices = self.draw()
        self._pass_start, self._position = start, skip
        for index in indices[skip:].tolist():
            self._position += 1
            yield index
        self._pass_start, self._position = None, 0

    def __len__(self) -> int:
        return self.num_samples

    def state_dict(self) -> dict[str, Any]:
        state = self.generator.get_state() if self._pass_start is None else self._pass_start
        return {"generator": state.clone(), "position": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or {"generator", "position"} - state.keys():
            raise ValueError(
                "WeightedSampler.load_state_dict: expected a dict with 'generator' and "
                "'position' (what state_dict() returns)"
            )
        position = int(state["position"])
        if not 0 <= position <= self.num_samples:
            raise ValueError(f"WeightedSampler.load_state_dict: bad position {position}")
        self.generator.set_state(state["generator"])
        self._pass_start, self._position = None, position
