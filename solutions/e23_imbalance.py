"""Lesson 23: Evaluating and imbalanced data

The idea
When one class is rare -- 1 fraud in 100 payments, 1 keyword in 50 audio clips -- a model
can reach 99% accuracy by never predicting it. Two things help: measure what matters (macro-F1
and the confusion matrix, lesson 19: minimod's format_confusion_matrix prints it and
plot_confusion_matrix draws it to a PNG with matplotlib), and make the rare class count in
training. Three ways to make it count, each written here:

Class weights: reweigh the loss
    w_c = n / (k · n_c)      n labels, n_c of them of class c, k classes present
scikit-learn's "balanced": every class carries the same total weight n / k, and the average
weight over the examples is 1, so the loss keeps its usual scale. Pass them as
cross_entropy(logits, y, weight=w): its mean divides by the sum of the targets' weights. A
class absent from the labels gets 0 (it has no examples to weigh; n / 0 would be inf).
    labels (N,) int64 -> weights (num_classes,) float; torch.bincount(labels, minlength=C)

A weighted sampler: resample the data
Draw example i with probability proportional to 1 / count[labels[i]]: each class's examples
together have weight 1, so every class is drawn equally often on average.
torch.multinomial(weights, num_samples, replacement, generator=g) draws the indices (it
normalises the weights itself). With replacement the few rare examples repeat many times
per pass: watch for overfitting to them. Drawing from its own generator, and saving that
generator's state at the start of each pass with the position in it, lets a checkpoint
resume the exact same stream (state_dict / load_state_dict are given).

The focal loss: spend the gradient on the hard examples (Lin et al. 2017)
    FL = −w_t · (1 − p_t)^γ · log p_t        p_t = softmax(x)[target], w_t = weight[target]
γ = 0 is cross-entropy. With γ = 2 an easy example (p_t = 0.95) keeps (0.05)² = 1/400 of its
loss, a hard one (p_t = 0.27) more than half: the thousands of easy majority examples stop
drowning the rare, hard ones. Shapes and reductions are cross_entropy's: input (N, C),
(N, C, d1, ...) or (C,), class-index targets, ignore_index, mean = Σ loss / Σ w_t over the
counted targets (all ignored: nan, as torch).
Computing it stably:
- log p_t from log_softmax, never log(softmax(x)): at logits ±1e4, p underflows to 0, log 0.
- 1 − p_t = −expm1(log p_t) is exact near p_t = 1, where 1 − exp(·) cancels.
- For γ < 1, d/dp (1 − p)^γ is infinite at p_t = 1 and log p_t is 0: autograd makes 0 · ∞ =
  nan. Clamp 1 − p_t to at least torch.finfo(dtype).tiny: the value stays 0, the gradient too.

What you write
class_weights' "auto" weights; WeightedSampler.draw (one pass of indices); focal_loss after
the given checks. FocalLoss (the module), the sampler's iteration and state are minimod's.

Classic pitfalls
- Weights of 1 / n_c without the n / k: the loss shrinks by orders of magnitude, and so
  does the effective learning rate.
- k = num_classes although some classes never occur (scikit-learn counts present classes).
- Sampling proportional to the count instead of 1 / count: the rare class gets rarer.
- Class weights AND a balanced sampler together: the rare class is boosted twice.
- Rebalancing the validation or test set: evaluate on the real distribution, with macro-F1.
- Focal loss: dropping the (1 − p_t)^γ factor, or writing p_t^γ (it must vanish as p_t -> 1).

Run it
Once `minimod exercises check 23` passes, your class weights, weighted sampler and focal loss
take on 1:9 imbalanced sentiment (100 positive reviews of 1,000; the test set too) with the
pretrained tiny BERT of lesson 21's Run it (--use-mine swaps in every lesson that passes and
says which; the first command makes runs/bert, skip it if you have it):
    minimod pretrain bert --max-steps 2000 --batch-size 32 --out runs/bert
    minimod finetune bert --from runs/bert --task sentiment --imbalance 9 --sampler weighted
        --use-mine --out runs/e23
prints "test accuracy 0.963, macro_f1 0.8939": balanced batches found the rare class. Against
it, with --imbalance 9 and nothing else: accuracy 0.914 but macro_F1 0.674 (28 of the 100
positive reviews found: accuracy flatters a model that mostly says "negative"); --loss focal:
0.920 and 0.680; --class-weights auto (weights 0.56 and 5): 0.828 and 0.596, worse here, as
in the README's imbalance study.
Measured with OMP_NUM_THREADS=1 (torch's default two threads per process ran the same steps
many times slower on these 2 busy shared cores): the body in about 50 s, each fine-tuning in
about 15 s.
Next: lesson 24 (Mixed precision: autocast and loss scaling)

Check it: minimod exercises check 23
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e23_imbalance import WeightedSampler, class_weights, focal_loss
    >>> labels = torch.tensor([0] * 9 + [1])  # 9 : 1, and class 2 never occurs
    >>> [round(w, 4) for w in class_weights(labels, 3).tolist()]
    [0.5556, 5.0, 0.0]
    >>> generator = torch.Generator().manual_seed(0)
    >>> drawn = torch.tensor(list(WeightedSampler(labels, 1000, generator)))
    >>> 400 < int((labels[drawn] == 1).sum()) < 600  # about half, not a tenth
    True
    >>> logits = torch.tensor([[3.0, 0.0], [0.0, 1.0]])  # p_t = 0.95 (easy) and 0.27 (hard)
    >>> target = torch.tensor([0, 0])
    >>> [round(v, 4) for v in focal_loss(logits, target, gamma=0.0, reduction="none").tolist()]
    [0.0486, 1.3133]
    >>> [round(v, 4) for v in focal_loss(logits, target, reduction="none").tolist()]
    [0.0001, 0.7019]
    >>> huge = torch.tensor([[1e4, -1e4]])
    >>> focal_loss(huge, torch.tensor([1])).item(), focal_loss(huge, torch.tensor([0])).item()
    (20000.0, 0.0)
"""

# Lesson 23 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from minimod.nn._checks import expect_tensor
from minimod.nn.activation import log_softmax
from minimod.nn.loss import _check_reduction, _check_targets, _reduce, _weighted_mean
from minimod.nn.module import Module
from minimod.train.imbalance import _labels

# ---- from minimod/nn/loss.py ----------------------------------------


def focal_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    gamma: float = 2.0,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): −w_t · (1 − p_t)^γ · log p_t, p_t = softmax(input)[target].

    Cross-entropy scaled down for examples the model already gets right (p_t near 1), so the
    many easy examples of a common class stop drowning the few hard ones. gamma=0 is exactly
    ``cross_entropy``; gamma=2 is the paper's default. w_t = weight[target] (the α of the paper).
    input: logits (N, C) or (N, C, d1, ...) or unbatched (C,); target: class indices (N,) /
    (N, d1, ...) / (); targets equal to ignore_index count for nothing. reduction="mean"
    divides the sum by Σ w_t over the counted targets, as ``cross_entropy`` does.
    """
    _check_reduction("focal_loss", reduction)
    expect_tensor("focal_loss", input)
    if not gamma >= 0:
        raise ValueError(f"focal_loss: gamma must be >= 0, got {gamma}")
    if input.dim() == 0:
        raise ValueError(
            "focal_loss: expected logits (C,), (N, C) or (N, C, d1, ...), got a scalar"
        )
    if input.dim() == 1:  # unbatched: add a batch axis, remove it again at the end
        loss = focal_loss(input[None], target[None], gamma, weight, ignore_index, reduction)
        return loss[0] if reduction == "none" else loss
    num_classes = input.shape[1]
    if weight is not None and weight.shape != (num_classes,):
        raise ValueError(
            f"focal_loss: weight must have shape ({num_classes},), got {tuple(weight.shape)}"
        )
    _check_targets(input, target, ignore_index, "focal_loss")
    # BEGIN YOUR CODE
    logp = log_softmax(input, dim=1)  # never log(softmax(x)): that is -inf once p underflows
    counted = target != ignore_index
    safe_target = torch.where(counted, target, torch.zeros_like(target))
    logp_t = logp.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    # 1 − p_t = −expm1(log p_t), exact even when p_t is near 1. The clamp keeps the gradient of
    # (1 − p_t)^γ finite (0 · ∞ would be nan) when p_t rounds to exactly 1.
    tiny = torch.finfo(logp_t.dtype).tiny
    modulating = (-torch.expm1(logp_t)).clamp_min(tiny) ** gamma
    target_weight = counted.to(logp.dtype)
    if weight is not None:
        target_weight = target_weight * weight[safe_target]
    loss = -modulating * logp_t * target_weight
    if reduction == "mean":
        return _weighted_mean(loss, target_weight, counted)
    return _reduce(loss, reduction)
    # END YOUR CODE


class FocalLoss(Module):
    """``FocalLoss(gamma=2.0, weight=None, ignore_index=-100, reduction="mean")``: the module
    form of ``focal_loss``; ``weight`` (per class) is a buffer, so ``.to()`` moves it."""

    def __init__(
        self,
        gamma: float = 2.0,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        _check_reduction("FocalLoss", reduction)
        if not gamma >= 0:
            raise ValueError(f"FocalLoss: gamma must be >= 0, got {gamma}")
        self.register_buffer("weight", weight)
        self.gamma, self.ignore_index, self.reduction = gamma, ignore_index, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(input, target, self.gamma, self.weight, self.ignore_index, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


# ---- from minimod/train/imbalance.py ----------------------------------------


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
    # BEGIN YOUR CODE
    counts = torch.bincount(labels, minlength=num_classes).double()
    present = counts > 0
    k = present.sum()
    weights = torch.where(present, len(labels) / (k * counts.clamp(min=1)), 0.0)
    return weights.to(dtype)
    # END YOUR CODE


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
        # BEGIN YOUR CODE
        counts = torch.bincount(self.labels)
        weights = 1.0 / counts[self.labels].double()  # each class's weights sum to 1
        return torch.multinomial(
            weights, self.num_samples, self.replacement, generator=self.generator
        )
        # END YOUR CODE

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
