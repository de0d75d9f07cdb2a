"""Lesson 20: Heads and pooling -- a pretrained body, a new head

The idea
Pretraining teaches a body to turn inputs into useful vectors; its head (GPT's lm_head, BERT's
MLM head, the ResNet's class layer) answers the PRETRAINING question. A new task needs a new
head: a small, freshly initialised layer on top of the body. The model is body + head, so its
state_dict keys are body.* and head.*, and load_pretrained fills body.* from a checkpoint while
the head keeps its initialisation (the old head is never loaded: its shape and meaning differ).

Shapes
    text:   input_ids, attention_mask (B, T) -> body -> hidden (B, T, H)
            one label per sequence: pool -> (B, H) -> head -> (B, num_labels)
            one label per token:    head on every position -> (B, T, num_labels)
    images / audio: x -> body.features(x) (N, feature_dim) -> head -> (N, num_classes)
    boxes:  x -> body.features(x) -> Linear -> 4 raw numbers -> decode_boxes -> (N, 4)
attention_mask: 1 = real token, 0 = padding, padding on the right; every row has ≥ 1 token.

Pooling: one vector per sequence
    "cls"   hidden[:, 0]. BERT puts [CLS] first and sees the whole text from every position.
    "mean"  sum_t hidden[b, t] · mask[b, t] / sum_t mask[b, t]: the real tokens only.
    "last"  hidden[b, n_b - 1], n_b = the row's real tokens: the LAST REAL token, not T - 1.
GPT's attention is causal: token t sees tokens 0..t only, so "cls" would see one token and the
last real token is the only one that has read everything; use "last" (or "mean") for GPT and
"cls" (or "mean") for BERT. Causality also means a GPT needs no mask with right padding: no
real token ever sees a pad. BERT must get the mask, since every token attends to every other.
Padding must change nothing: a padded row's logits equal the row's own, pads' gradient is 0.

Image and audio heads
FeatureClassifier replaces body.head by nn.Identity(), so the old head's parameters leave the
model, then applies a new head to body.features(x). ImageClassifier and KeywordClassifier are
the same class.

Boxes and IoU
A box is (x_min, y_min, x_max, y_max) in [0, 1]. decode_boxes turns any 4 numbers into a
valid box: per axis, size first, then placement in the room the size leaves:
    w = σ(raw_w),  x_min = (1 - w) · σ(raw_x),  x_max = x_min + w      (same for y)
IoU of two boxes = area(intersection) / area(union):
    intersection: from max(a.x_min, b.x_min) to min(a.x_max, b.x_max), side clamped at 0
    union = area(a) + area(b) - intersection                (the overlap is counted twice)
A union of 0 (two empty boxes) gives IoU 0: torch.where with a safe denominator, so neither
the value nor the gradient is NaN. box_iou pairs box i of a with box i of b: (N, 4) -> (N,).
box_loss = mean |pred - target| + mean (1 - IoU): the IoU term weighs errors by the box's
size; the L1 term still pulls when the boxes do not overlap (then IoU has no gradient).

What you write
In minimod/models/heads.py: pool (after its checks); SequenceClassifier.forward and
TokenClassifier.forward (the hidden states come from self.hidden(...), the head is self.head);
FeatureClassifier: the head swap in FeatureClassifier.__init__ (body.head becomes Identity,
then self.body and self.head, a ClassificationHead(feature_dim, num_classes, dropout)) and
forward. In minimod/models/boxes.py: decode_boxes, box_iou
and box_loss after their checks. BoxRegressor is given; ClassificationHead, the body checks
and load_pretrained (minimod/models/loading.py) are minimod's.

Classic pitfalls
- Mean pooling that divides by T: the padding counts, and short rows shrink towards 0.
- "last" pooling at position T - 1: for every padded row that is a pad.
- "cls" pooling on a GPT: position 0 has seen only the first token.
- Forgetting BERT's attention_mask: real tokens attend to the pads and the logits drift.
- IoU without clamping the intersection's sides: two disjoint boxes get a positive "area".
- Union = area(a) + area(b): the overlap counted twice.

Run it
Once `minimod exercises check 20` passes, your FeatureClassifier swaps a 1-D CNN's head for
a new one and classifies the Free Spoken Digit Dataset's real recordings (after
`make real`; --use-mine swaps in every lesson that passes and says which; --from a
`pretrain audio --features mfcc` run instead of scratch puts a pretrained body under your
head):
    minimod finetune audio --from scratch --task spoken-digits --use-mine --out runs/e20
prints which lessons are yours, a progress bar (300 steps), then "done: step 300, test
accuracy 0.89, macro_f1 0.8889" on 300 held-out recordings, the confusion matrix and the
per-class table (about 40 s on 2 cores shared with other jobs).
Next: lesson 21 (Freezing and learning-rate groups: linear probes, layer decay, gradual unfreezing)

Check it: minimod exercises check 20
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e20_heads import box_iou, decode_boxes, pool
    >>> hidden = torch.arange(12.0).reshape(1, 4, 3)  # one sequence: 4 positions of width 3
    >>> mask = torch.tensor([[1, 1, 1, 0]])  # the last position is padding
    >>> [pool(hidden, mask, how).tolist() for how in ("cls", "mean", "last")]
    [[[0.0, 1.0, 2.0]], [[3.0, 4.0, 5.0]], [[6.0, 7.0, 8.0]]]
    >>> a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2]])
    >>> b = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.5, 0.5, 1.0, 1.0]])
    >>> [round(v, 4) for v in box_iou(a, b).tolist()]  # 0.0625 / 0.4375, then disjoint
    [0.1429, 0.0]
    >>> decode_boxes(torch.zeros(1, 4)).tolist()
    [[0.25, 0.25, 0.75, 0.75]]
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 20`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import torch

from minimod import nn
from minimod.models.boxes import _check_boxes
from minimod.models.heads import (
    POOLINGS,
    ClassificationHead,
    _check_mask,
    _feature_body,
    _sequence_body,
)

# ---- from minimod/models/heads.py ----------------------------------------


def pool(
    hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, how: str = "cls"
) -> torch.Tensor:
    """One vector per sequence: hidden (B, T, H), attention_mask (B, T) -> (B, H).

    attention_mask: 1 (or True) for a real token, 0 for padding; None = no padding. Padding is
    on the right. how:
        "cls"  - the first position's vector (BERT's [CLS] token, trained to sum up the text);
        "mean" - the mean over the real tokens only (padding does not count, above or below);
        "last" - the last real token of each row (for GPT: with causal attention, only the
                 last token has seen the whole text).
    """
    if how not in POOLINGS:
        raise ValueError(f"pool: how must be one of {POOLINGS}, got {how!r}")
    if hidden.dim() != 3:
        raise ValueError(f"pool: expected hidden states of shape (B, T, H), got {hidden.shape}")
    if attention_mask is not None:
        _check_mask("pool", hidden, attention_mask)
    # BEGIN YOUR CODE
    raise NotImplementedError("e20: pool")
    # END YOUR CODE


class _TextModel(nn.Module):
    """body (a GPT or a BERT) + head; ``hidden`` runs the body: ids (B, T) -> (B, T, H)."""

    def __init__(self, body: nn.Module, head: nn.Module, kind: str) -> None:
        super().__init__()
        self.kind = kind  # "gpt" or "bert"
        self.body = body
        self.head = head

    def hidden(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The body's last hidden states (B, T, H).

        A GPT gets no mask: its attention is causal, so with padding on the right no real
        token ever sees a pad. A BERT gets the mask, since every token sees every other."""
        name = type(self).__name__
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"{name}: attention_mask must have the shape of input_ids "
                f"{tuple(input_ids.shape)}, got {tuple(attention_mask.shape)}"
            )
        if self.kind == "gpt":
            if token_type_ids is not None:
                raise ValueError(f"{name}: a GPT body takes no token_type_ids")
            return self.body.hidden_states(input_ids)
        return self.body(input_ids, attention_mask, token_type_ids)[0]


class SequenceClassifier(_TextModel):
    """One label per sequence: input_ids (B, T), attention_mask (B, T) -> logits (B, num_labels).

    body: a GPT (``body.hidden_states``) or a BERT (``body(ids, mask)[0]``; a pooler, if the
    BERT has one, is not used: build it with ``add_pooling_layer=False``). pooling: "cls",
    "mean" or "last" (see ``pool``); None picks "last" for a GPT and "cls" for a BERT.
    The head is ``ClassificationHead(H, num_labels, dropout)``.
    """

    def __init__(
        self,
        body: nn.Module,
        num_labels: int,
        pooling: str | None = None,
        dropout: float = 0.1,
    ) -> None:
        kind, width = _sequence_body("SequenceClassifier", body)
        if pooling is None:
            pooling = "last" if kind == "gpt" else "cls"
        if pooling not in POOLINGS:
            raise ValueError(
                f"SequenceClassifier: pooling must be one of {POOLINGS} (or None), got {pooling!r}"
            )
        super().__init__(body, ClassificationHead(width, num_labels, dropout), kind)
        self.pooling = pooling
        self.num_labels = num_labels

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # BEGIN YOUR CODE
        raise NotImplementedError("e20: SequenceClassifier.forward")
        # END YOUR CODE

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}"


class TokenClassifier(_TextModel):
    """One label per token: input_ids (B, T) -> logits (B, T, num_labels).

    body: a GPT or a BERT, as for ``SequenceClassifier``. (A GPT token sees only the tokens
    before it, so a BERT usually suits tagging better.) Score padding positions out of the loss
    with ignore_index, e.g. labels of -100 and ``cross_entropy(..., ignore_index=-100)``.
    """

    def __init__(self, body: nn.Module, num_labels: int, dropout: float = 0.1) -> None:
        kind, width = _sequence_body("TokenClassifier", body)
        super().__init__(body, ClassificationHead(width, num_labels, dropout), kind)
        self.num_labels = num_labels

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # BEGIN YOUR CODE
        raise NotImplementedError("e20: TokenClassifier.forward")
        # END YOUR CODE


class FeatureClassifier(nn.Module):
    """A ResNet or AudioCNN body with a new classification head: x -> logits (N, num_classes).

    The body's own (pretraining) head is replaced by ``nn.Identity()`` -- the body passed in is
    changed -- so its parameters leave the model: keys are ``body.*`` (features only) and
    ``head.linear.*``. ``ImageClassifier`` and ``KeywordClassifier`` are this class.
    """

    def __init__(self, body: nn.Module, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        feature_dim = _feature_body("FeatureClassifier", body)
        # BEGIN YOUR CODE
        raise NotImplementedError("e20: FeatureClassifier.__init__")
        # END YOUR CODE
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN YOUR CODE
        raise NotImplementedError("e20: FeatureClassifier.forward")
        # END YOUR CODE


# ---- from minimod/models/boxes.py ----------------------------------------


def decode_boxes(raw: torch.Tensor) -> torch.Tensor:
    """Any real numbers raw (..., 4) -> valid boxes (..., 4) (x_min, y_min, x_max, y_max).

    raw's columns are (place x, place y, size w, size h). Per axis, first the size, then where
    the box sits in the room the size leaves:
        w = σ(raw_w)                  in (0, 1)
        x_min = (1 - w) · σ(raw_x)    in (0, 1 - w)
        x_max = x_min + w             in (w, 1)
    so 0 ≤ x_min ≤ x_max ≤ 1 for every input, and every box of size in (0, 1) is reachable.
    raw = 0 gives the centred box of half the side: (0.25, 0.25, 0.75, 0.75).
    """
    if raw.shape[-1:] != (4,):
        raise ValueError(f"decode_boxes: expected raw of shape (..., 4), got {tuple(raw.shape)}")
    # BEGIN YOUR CODE
    raise NotImplementedError("e20: decode_boxes")
    # END YOUR CODE


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of paired boxes: a, b (..., 4) -> (...,), each in [0, 1].

    Boxes are (x_min, y_min, x_max, y_max); box i of a is compared with box i of b (not every
    pair). A box with x_max < x_min (or y) counts as empty. Disjoint boxes give 0, and so does
    a pair whose union has no area (no division by zero, no NaN gradient)."""
    _check_boxes("box_iou", a, b)

    # BEGIN YOUR CODE
    raise NotImplementedError("e20: box_iou")
    # END YOUR CODE


def box_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A scalar loss for box regression: pred, target (N, 4) -> mean L1 + mean (1 - IoU).

        loss = mean over boxes and coordinates of |pred - target|
             + mean over boxes of (1 - box_iou(pred, target))

    The L1 term pulls every corner towards its target even when the boxes do not overlap (the
    IoU term has no gradient then); the IoU term weighs errors by the box's size, so a few
    pixels off a small box cost more than off a large one. Both terms lie in [0, 1]."""
    _check_boxes("box_loss", pred, target)
    # BEGIN YOUR CODE
    raise NotImplementedError("e20: box_loss")
    # END YOUR CODE


class BoxRegressor(nn.Module):
    """One box per image: x -> boxes (N, 4) (x_min, y_min, x_max, y_max) in [0, 1].

    body: a ResNet (anything with features(x) and feature_dim); its own head is replaced by
    ``nn.Identity()`` as in ``FeatureClassifier``. head: ``Linear(feature_dim, 4)`` giving raw
    numbers, which ``decode_boxes`` turns into boxes that are valid by construction."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        feature_dim = _feature_body("BoxRegressor", body)
        body.head = nn.Identity()
        self.body = body
        self.head = nn.Linear(feature_dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return decode_boxes(self.head(self.body.features(x)))
