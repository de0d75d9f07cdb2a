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

One box per image (``BoxRegressor``) lives in ``minimod.models.boxes``; ``load_pretrained`` in
``minimod.models.loading``.
"""

from __future__ import annotations

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
