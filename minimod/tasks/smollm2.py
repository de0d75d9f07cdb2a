"""SmolLM2-135M-Instruct, the real pretrained LLM ``make real`` installs, in minimod's own code:
the GGUF file read and dequantized by ``models.gguf``, the weights mapped to Hugging Face's
names (``models.weights.llama_state_dict_from_gguf``), ``models.llama.LlamaForCausalLM``, and
the tokenizer from the file's own metadata (``data.bpe.PretrainedBPETokenizer``)."""

from __future__ import annotations

from typing import Any

from minimod.data.bpe import PretrainedBPETokenizer
from minimod.models.gguf import load_tensors, read_gguf
from minimod.models.llama import LlamaConfig, LlamaForCausalLM
from minimod.models.pretrained import MissingExtraError, smollm2_path
from minimod.models.weights import llama_state_dict_from_gguf, load_checked
from minimod.tasks.common import UsageError
from minimod.tasks.run import one_line, pick_device

NAME = "smollm2"


def load_smollm2(device: str = "cpu") -> tuple[Any, PretrainedBPETokenizer]:
    """(the model in eval mode on ``device``, its tokenizer); one UsageError without
    ``make real``."""
    try:
        file = read_gguf(smollm2_path())
    except MissingExtraError as error:
        raise UsageError(one_line(error)) from None
    config = LlamaConfig.from_gguf_metadata(file.metadata)
    model = LlamaForCausalLM(config)
    load_checked(model, llama_state_dict_from_gguf(load_tensors(file), config))
    tokenizer = PretrainedBPETokenizer.from_gguf_metadata(file.metadata)
    return model.to(pick_device(device)).eval(), tokenizer
