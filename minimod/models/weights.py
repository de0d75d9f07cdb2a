"""Moving weights between minimod models and other checkpoints, by explicit key names.

minimod names its modules for the reader; each foreign checkpoint format has an explicit key map
here, one function each way, tested both ways:

    GPT-2 (Hugging Face GPT2LMHeadModel)             gpt2_to_minimod / minimod_to_gpt2
    BERT (Hugging Face BertModel, BertForMaskedLM)   hf_bert_to_minimod / minimod_to_hf_bert

Loading never relies on the order of parameters: each key is mapped by name, the load is strict,
and every shape is checked (``load_checked``). When a checkpoint and a model disagree,
``parameter_table`` shows the two side by side so the mismatch is easy to see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

# GPT-2 stores these as Conv1D weights, (in_features, out_features): the transpose of Linear's.
GPT2_TRANSPOSED = (
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
)
# Buffers some GPT-2 checkpoints carry (the causal mask); minimod builds its mask on the fly.
GPT2_IGNORED = (".attn.bias", ".attn.masked_bias")


def parameter_table(
    model_state: Mapping[str, torch.Tensor], checkpoint_state: Mapping[str, torch.Tensor]
) -> str:
    """Every key of either side with its shape on each side; rows that disagree are marked."""
    keys = list(model_state) + [k for k in checkpoint_state if k not in model_state]
    width = max((len(k) for k in keys), default=3)
    rows = [f"  {'key':<{width}}  {'model':>16}  {'checkpoint':>16}"]
    for key in keys:
        ours = tuple(model_state[key].shape) if key in model_state else "-"
        theirs = tuple(checkpoint_state[key].shape) if key in checkpoint_state else "-"
        flag = "" if ours == theirs else "   <-- differs"
        rows.append(f"  {key:<{width}}  {ours!s:>16}  {theirs!s:>16}{flag}")
    return "\n".join(rows)


def load_checked(model, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Strict load; on any missing, unexpected or mis-shaped key, raise with both tables."""
    result = model.load_state_dict(state_dict, strict=False, skip_mismatched=True)
    if any(result):
        raise RuntimeError(
            f"checkpoint does not fit {type(model).__name__}: {len(result.missing_keys)} missing, "
            f"{len(result.unexpected_keys)} unexpected, {len(result.mismatched_keys)} mis-shaped "
            f"keys\n" + parameter_table(model.state_dict(), state_dict)
        )


def gpt2_to_minimod(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Hugging Face GPT2LMHeadModel state_dict -> minimod GPT keys (same names; Conv1D
    weights transposed; mask buffers dropped)."""
    converted = {}
    for key, value in state_dict.items():
        if key.endswith(GPT2_IGNORED):
            continue
        converted[key] = value.t().contiguous() if key.endswith(GPT2_TRANSPOSED) else value
    return converted


def minimod_to_gpt2(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reverse of ``gpt2_to_minimod``."""
    return {
        key: value.t().contiguous() if key.endswith(GPT2_TRANSPOSED) else value
        for key, value in state_dict.items()
    }


# Hugging Face's BERT mirrors the module tree of Google's TensorFlow code; minimod's is plainer.
# Module paths (a key without its ".weight" / ".bias"), Hugging Face -> minimod. Outside the
# encoder layers (after the "bert." of a BertForMaskedLM checkpoint):
HF_BERT_MODULES = {
    "embeddings.LayerNorm": "embeddings.ln",
    "cls.predictions.transform.dense": "lm_head.dense",
    "cls.predictions.transform.LayerNorm": "lm_head.ln",
    "cls.predictions.decoder": "lm_head.decoder",
}
# ... and inside each encoder layer, after "encoder.layer.N.":
HF_BERT_LAYER_MODULES = {
    "attention.self.query": "attn.query",
    "attention.self.key": "attn.key",
    "attention.self.value": "attn.value",
    "attention.output.dense": "attn.out",
    "attention.output.LayerNorm": "ln_1",
    "intermediate.dense": "mlp.up",
    "output.dense": "mlp.down",
    "output.LayerNorm": "ln_2",
}
# Every other module has the same path on both sides: embeddings.word_embeddings,
# embeddings.position_embeddings, embeddings.token_type_embeddings, pooler.dense.
# Hugging Face keeps the MLM output bias under two names for one tensor; minimod keeps it once,
# as lm_head.decoder.bias (the decoder's weight is tied to the word embeddings on both sides).
HF_BERT_ALIASES = {"cls.predictions.bias": "cls.predictions.decoder.bias"}
# Buffers Hugging Face checkpoints may carry and minimod computes on the fly (positions 0..T-1).
HF_BERT_IGNORED = ("embeddings.position_ids",)
_LAYER = re.compile(r"(encoder\.layer\.\d+)\.(.+)")


def _rename_bert(key: str, outer: Mapping[str, str], inner: Mapping[str, str]) -> str:
    """One key through the module tables; a module the tables do not name keeps its path, so a
    strict load reports the key as unexpected."""
    prefix = "bert." if key.startswith("bert.") else ""
    module, _, leaf = key[len(prefix) :].rpartition(".")
    if not module:
        return key
    layer = _LAYER.fullmatch(module)
    if layer:
        module = f"{layer[1]}.{inner.get(layer[2], layer[2])}"
    else:
        module = outer.get(module, module)
    return f"{prefix}{module}.{leaf}"


def hf_bert_to_minimod(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Hugging Face BertModel or BertForMaskedLM state_dict -> minimod BERT /
    BERTForMaskedLM keys (renamed by HF_BERT_MODULES and HF_BERT_LAYER_MODULES; the
    position_ids buffer dropped; the MLM bias's two names merged into one). Raises ValueError
    when two keys that become one minimod key hold different values."""
    converted: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}  # minimod key -> the Hugging Face key it came from
    for key, value in state_dict.items():
        if key.endswith(HF_BERT_IGNORED):
            continue
        ours = _rename_bert(HF_BERT_ALIASES.get(key, key), HF_BERT_MODULES, HF_BERT_LAYER_MODULES)
        if ours in converted and not torch.equal(converted[ours], value):
            raise ValueError(
                f"hf_bert_to_minimod: {origin[ours]!r} and {key!r} both become {ours!r} but "
                "hold different values"
            )
        converted[ours], origin[ours] = value, key
    return converted


def minimod_to_hf_bert(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reverse of ``hf_bert_to_minimod``: the keys of Hugging Face's BertModel /
    BertForMaskedLM state_dict (the MLM bias under both of its names)."""
    outer = {ours: theirs for theirs, ours in HF_BERT_MODULES.items()}
    inner = {ours: theirs for theirs, ours in HF_BERT_LAYER_MODULES.items()}
    converted = {_rename_bert(key, outer, inner): value for key, value in state_dict.items()}
    for alias, key in HF_BERT_ALIASES.items():
        if key in converted:
            converted[alias] = converted[key]
    return converted
