"""Loading a pretrained body into a fine-tuning model, by key name, never a stale head.

A fine-tuning model is ``body`` + ``head`` (``minimod.models.heads``, ``minimod.models.boxes``):
``load_pretrained`` fills ``body.*`` from a pretraining checkpoint and reports every checkpoint
key it skipped and why, while the new head keeps its fresh initialisation. (For an exact,
strict load of a whole model see ``minimod.models.weights.load_checked``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from minimod import nn


@dataclass
class LoadReport:
    """What ``load_pretrained`` did.

    loaded: the model keys filled from the checkpoint (a tied tensor under all its names);
    skipped: checkpoint key -> why it was not loaded; initialised: the model keys that kept
    their fresh initialisation (the new head, and any body tensor the checkpoint did not have).
    """

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
