"""Heads: a pretrained body plus a small new layer for the task at hand.

A fine-tuning model is ``body`` (the pretrained network, kept whole) + ``head`` (new, randomly
initialised), so its ``state_dict`` keys are ``body.*`` and ``head.*`` and ``load_pretrained``
can fill the body from a checkpoint while the head keeps its fresh initialisation.

    text, one label per sequence:  SequenceClassifier(GPT or BERT)
        ids (B, T) -> hidden (B, T, H) -> pool -> (B, H) -> head -> logits (B, num_labels)
    text, one label per token:     TokenClassifier(GPT or BERT)
        ids (B, T) -> hidden (B, T, H) -> head -> logits (B, T, num_labels)
    images / audio, one label:     FeatureClassifier (= ImageClassifier = KeywordClassifier)
        x -> body.features(x) (N, feature_dim) -> head -> logits (N, num_classes)
    images, one box:               BoxRegressor(ResNet)
        x -> body.features(x) -> Linear -> 4 raw numbers -> decode_boxes -> (N, 4) corners

Boxes are (x_min, y_min, x_max, y_max) in [0, 1], as ``minimod.data.shapes`` makes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from minimod import nn

POOLINGS = ("cls", "mean", "last")


def _check_mask(who: str, hidden: torch.Tensor, attention_mask: torch.Tensor) -> None:
    if attention_mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"{who}: attention_mask must have shape (B, T) = {tuple(hidden.shape[:2])}, "
            f"got {tuple(attention_mask.shape)}"
        )
    empty = (attention_mask == 0).all(dim=1).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"{who}: every row of attention_mask needs at least one real token (1); "
            f"rows {empty} are all padding"
        )


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
    # BEGIN SOLUTION
    batch, length, _ = hidden.shape
    if attention_mask is None:
        attention_mask = torch.ones(batch, length, device=hidden.device)
    mask = attention_mask.to(hidden.dtype)  # (B, T): 1 = token, 0 = padding
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        total = (hidden * mask[:, :, None]).sum(dim=1)  # padding positions add 0
        return total / mask.sum(dim=1, keepdim=True)  # divided by the real tokens only
    # "last": the largest position that holds a real token, row by row.
    positions = torch.arange(length, device=hidden.device)
    last = (positions * (mask > 0)).amax(dim=1)  # (B,)
    return hidden[torch.arange(batch, device=hidden.device), last]
    # END SOLUTION


class ClassificationHead(nn.Module):
    """Dropout, then one Linear layer: (..., in_features) -> (..., num_labels).

    Children ``dropout`` and ``linear``, so inside a model its keys are ``head.linear.weight``
    and ``head.linear.bias``."""

    def __init__(self, in_features: int, num_labels: int, dropout: float = 0.0) -> None:
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"ClassificationHead: num_labels must be ≥ 1, got {num_labels}")
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_features, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(x))


def _sequence_body(who: str, body: nn.Module) -> tuple[str, int]:
    """("gpt", n_embd) or ("bert", hidden_size) for a body the text heads can use."""
    config = getattr(body, "config", None)
    if callable(getattr(body, "hidden_states", None)) and hasattr(config, "n_embd"):
        return "gpt", config.n_embd
    if hasattr(config, "hidden_size") and hasattr(body, "encoder"):
        return "bert", config.hidden_size
    hint = " (for a BERTForMaskedLM pass its .bert)" if hasattr(body, "bert") else ""
    raise TypeError(
        f"{who}: body must be a GPT (with hidden_states() and config.n_embd) or a BERT "
        f"(with an encoder and config.hidden_size), got {type(body).__name__}{hint}"
    )


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
        # BEGIN SOLUTION
        hidden = self.hidden(input_ids, attention_mask, token_type_ids)  # (B, T, H)
        return self.head(pool(hidden, attention_mask, self.pooling))  # (B, num_labels)
        # END SOLUTION

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
        # BEGIN SOLUTION
        return self.head(self.hidden(input_ids, attention_mask, token_type_ids))
        # END SOLUTION


def _feature_body(who: str, body: nn.Module) -> int:
    if not (callable(getattr(body, "features", None)) and hasattr(body, "feature_dim")):
        raise TypeError(
            f"{who}: body must have features(x) -> (N, feature_dim) and feature_dim "
            f"(a ResNet or an AudioCNN), got {type(body).__name__}"
        )
    return body.feature_dim


class FeatureClassifier(nn.Module):
    """A ResNet or AudioCNN body with a new classification head: x -> logits (N, num_classes).

    The body's own (pretraining) head is replaced by ``nn.Identity()`` -- the body passed in is
    changed -- so its parameters leave the model: keys are ``body.*`` (features only) and
    ``head.linear.*``. ``ImageClassifier`` and ``KeywordClassifier`` are this class.
    """

    def __init__(self, body: nn.Module, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        feature_dim = _feature_body("FeatureClassifier", body)
        # BEGIN SOLUTION
        body.head = nn.Identity()  # the old head would be dead weight (and a stale state_dict)
        self.body = body
        self.head = ClassificationHead(feature_dim, num_classes, dropout)
        # END SOLUTION
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.head(self.body.features(x))
        # END SOLUTION


ImageClassifier = FeatureClassifier
KeywordClassifier = FeatureClassifier


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
    # BEGIN SOLUTION
    place, size = torch.sigmoid(raw[..., :2]), torch.sigmoid(raw[..., 2:])
    low = (1 - size) * place  # (x_min, y_min)
    return torch.cat([low, low + size], dim=-1)
    # END SOLUTION


def _check_boxes(who: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.shape[-1:] != (4,):
        raise ValueError(
            f"{who}: expected two box tensors of the same shape (..., 4), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Intersection over union of paired boxes: a, b (..., 4) -> (...,), each in [0, 1].

    Boxes are (x_min, y_min, x_max, y_max); box i of a is compared with box i of b (not every
    pair). A box with x_max < x_min (or y) counts as empty. Disjoint boxes give 0, and so does
    a pair whose union has no area (no division by zero, no NaN gradient)."""
    _check_boxes("box_iou", a, b)

    # BEGIN SOLUTION
    def area(box: torch.Tensor) -> torch.Tensor:
        return (box[..., 2] - box[..., 0]).clamp(min=0) * (box[..., 3] - box[..., 1]).clamp(min=0)

    low = torch.maximum(a[..., :2], b[..., :2])  # the intersection's (x_min, y_min)
    high = torch.minimum(a[..., 2:], b[..., 2:])  # and its (x_max, y_max)
    side = (high - low).clamp(min=0)  # no overlap on an axis: 0, not a negative length
    inter = side[..., 0] * side[..., 1]
    union = area(a) + area(b) - inter  # the overlap was counted twice
    positive = union > 0
    return torch.where(positive, inter / torch.where(positive, union, 1.0), 0.0)
    # END SOLUTION


def box_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A scalar loss for box regression: pred, target (N, 4) -> mean L1 + mean (1 - IoU).

        loss = mean over boxes and coordinates of |pred - target|
             + mean over boxes of (1 - box_iou(pred, target))

    The L1 term pulls every corner towards its target even when the boxes do not overlap (the
    IoU term has no gradient then); the IoU term weighs errors by the box's size, so a few
    pixels off a small box cost more than off a large one. Both terms lie in [0, 1]."""
    _check_boxes("box_loss", pred, target)
    # BEGIN SOLUTION
    l1 = (pred - target).abs().mean()
    return l1 + (1 - box_iou(pred, target)).mean()
    # END SOLUTION


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


# -- loading a pretrained body --------------------------------------------------------------


@dataclass
class LoadReport:
    """What ``load_pretrained`` did.

    loaded: the model keys filled from the checkpoint (a tied tensor under all its names);
    skipped: checkpoint key -> why it was
    not loaded; initialised: the model keys that kept their fresh initialisation (the new head,
    and any body tensor the checkpoint did not have)."""

    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    initialised: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} checkpoint keys, "
            f"{len(self.initialised)} model tensors keep their initialisation"
        )

    def __str__(self) -> str:
        lines = [f"load_pretrained: {self.summary()}"]
        lines += [f"  skipped {key}: {reason}" for key, reason in self.skipped.items()]
        if self.initialised:
            lines.append("  initialised: " + ", ".join(self.initialised))
        return "\n".join(lines)


def load_pretrained(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    source_prefix: str = "",
    target_prefix: str = "body.",
) -> LoadReport:
    """Fill a fine-tuning model's body from a pretrained checkpoint, by key name.

    Each checkpoint key k that starts with source_prefix becomes the model key
    target_prefix + k[len(source_prefix):] and is copied in (in place, so tied weights stay
    tied) when the model has that key with the same shape. Everything else is skipped with the
    reason -- outside the body, not in this model, or a different shape -- so an old head
    never slips into the new model. Examples:
        GPT pretraining checkpoint -> SequenceClassifier(GPT):   source_prefix ""
        BERTForMaskedLM checkpoint -> SequenceClassifier(BERT):  source_prefix "bert."
        ResNet checkpoint -> FeatureClassifier(ResNet):          source_prefix ""
        fine-tuned model -> the same body with a new head:       source_prefix "body."
    Raises ValueError when nothing matches (a wrong prefix, most likely) and when two
    checkpoint keys that land on one tied tensor hold different values.
    """
    own = model.state_dict(keep_vars=True)
    skipped: dict[str, str] = {}
    plan: dict[str, str] = {}  # model key -> checkpoint key
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"load_pretrained: checkpoint entry {key!r} is a {type(value).__name__}, not a "
                "tensor (for a training checkpoint pass its 'model' entry)"
            )
        if not key.startswith(source_prefix):
            skipped[key] = f"outside the pretrained body (source_prefix {source_prefix!r})"
            continue
        target = target_prefix + key[len(source_prefix) :]
        if target not in own:
            skipped[key] = f"not in this model (no {target!r})"
        elif value.shape != own[target].shape:
            skipped[key] = (
                f"shape {tuple(value.shape)} in the checkpoint, "
                f"{tuple(own[target].shape)} in the model"
            )
        else:
            plan[target] = key
    if not plan:
        raise ValueError(
            f"load_pretrained: no checkpoint key matched the model (source_prefix "
            f"{source_prefix!r}, target_prefix {target_prefix!r}); checkpoint keys start "
            f"{list(state_dict)[:3]}, model keys {list(own)[:3]}"
        )
    # Tied tensors appear under several names: the checkpoint must agree on their value.
    writer: dict[int, str] = {}  # id of a model tensor -> the checkpoint key written into it
    for target, key in plan.items():
        first = writer.setdefault(id(own[target]), key)
        if first != key and not torch.equal(state_dict[first], state_dict[key]):
            raise ValueError(
                f"load_pretrained: {first!r} and {key!r} load into one tied tensor of the "
                "model but hold different values in the checkpoint"
            )
    with torch.no_grad():
        for target, key in plan.items():
            own[target].copy_(state_dict[key])
    loaded = [target for target in own if id(own[target]) in writer]
    initialised = [target for target in own if id(own[target]) not in writer]
    return LoadReport(loaded, skipped, initialised)
