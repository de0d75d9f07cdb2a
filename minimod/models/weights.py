"""Moving weights between minimod models and other checkpoints, by explicit key names.

Loading never relies on the order of parameters: each key is mapped by name, the load is strict,
and every shape is checked. When a checkpoint and a model disagree, ``parameter_table`` shows
the two side by side so the mismatch is easy to see.
"""

from __future__ import annotations

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
    result = model.load_state_dict(state_dict, strict=False)
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
