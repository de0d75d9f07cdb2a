"""Moving weights between minimod models and other checkpoints, by explicit key names.

minimod names its modules for the reader; each foreign checkpoint format has an explicit key map
here, one function each way, tested both ways:

    GPT-2 (Hugging Face GPT2LMHeadModel)             gpt2_to_minimod / minimod_to_gpt2
    BERT (Hugging Face BertModel, BertForMaskedLM)   hf_bert_to_minimod / minimod_to_hf_bert
    Llama (a GGUF file of llama.cpp, one way)        llama_state_dict_from_gguf

Loading never relies on the order of parameters: each key is mapped by name, the load is strict,
and every shape is checked (``load_checked``). When a checkpoint and a model disagree,
``parameter_table`` shows the two side by side so the mismatch is easy to see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from minimod.models.llama import LlamaConfig

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


# llama.cpp's GGUF tensor names -> Hugging Face's Llama names (minimod's LlamaForCausalLM uses
# the latter). Module paths, a key without its ".weight"; outside the layers:
GGUF_LLAMA_MODULES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
}
# ... and inside each layer, "blk.N." -> "model.layers.N.":
GGUF_LLAMA_LAYER_MODULES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_GGUF_LAYER = re.compile(r"blk\.(\d+)\.(.+)")


def rope_rows_to_interleaved(weight: torch.Tensor, n_head: int) -> torch.Tensor:
    """Hugging Face's q_proj / k_proj rows -> llama.cpp's, as its convert script does.

    RoPE rotates pairs of features of each head (head_dim D). Hugging Face pairs feature i with
    i + D/2 ("rotate half"); llama.cpp pairs 2i with 2i + 1 (interleaved). So llama.cpp reorders
    each head's output rows of q_proj and k_proj, (n_head·D, in): viewed as (n_head, 2, D/2, in),
    axes 1 and 2 swap. n_head is n_kv_head for k_proj."""
    return weight.unflatten(0, (n_head, 2, -1)).transpose(1, 2).flatten(0, 2)


def rope_rows_to_half(weight: torch.Tensor, n_head: int) -> torch.Tensor:
    """The reverse of ``rope_rows_to_interleaved``: llama.cpp's rows (n_head, D/2, 2, in) ->
    Hugging Face's (n_head, 2, D/2, in)."""
    return weight.unflatten(0, (n_head, -1, 2)).transpose(1, 2).flatten(0, 2)


def llama_state_dict_from_gguf(
    tensors: Mapping[str, torch.Tensor], config: LlamaConfig
) -> dict[str, torch.Tensor]:
    """A GGUF file's llama tensors (name -> dequantized tensor, (out, in) for matrices) ->
    minimod's / Hugging Face's LlamaForCausalLM state_dict.

    Renamed by GGUF_LLAMA_MODULES and GGUF_LLAMA_LAYER_MODULES; q_proj and k_proj rows put back
    in Hugging Face's rotate-half order (``rope_rows_to_half``), since minimod's RoPE is that
    one; lm_head.weight is token_embd.weight (tied). A tensor the tables do not name keeps its
    name, so a strict load reports it as unexpected. Raises ValueError when the file has an
    output.weight of its own (an untied head, which this model cannot hold)."""
    embedding = tensors.get("token_embd.weight")
    output = tensors.get("output.weight")
    if output is not None and (embedding is None or not torch.equal(output, embedding)):
        raise ValueError(
            "llama_state_dict_from_gguf: the file's output.weight differs from token_embd.weight, "
            "but minimod's LlamaForCausalLM ties its LM head to the embedding"
        )
    heads = {"attn_q": config.n_head, "attn_k": config.n_kv_head}
    converted: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key == "output.weight":
            continue
        module, _, leaf = key.rpartition(".")
        layer = _GGUF_LAYER.fullmatch(module)
        if layer and layer[2] in GGUF_LLAMA_LAYER_MODULES:
            if layer[2] in heads:
                value = rope_rows_to_half(value, heads[layer[2]])
            key = f"model.layers.{layer[1]}.{GGUF_LLAMA_LAYER_MODULES[layer[2]]}.{leaf}"
        elif module in GGUF_LLAMA_MODULES:
            key = f"{GGUF_LLAMA_MODULES[module]}.{leaf}"
        converted[key] = value
    if embedding is not None:
        converted["lm_head.weight"] = embedding
    return converted
