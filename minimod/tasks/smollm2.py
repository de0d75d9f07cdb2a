"""SmolLM2-135M-Instruct, the real pretrained LLM ``make real`` installs, in minimod's own code:
the GGUF file read and dequantized by ``models.gguf``, the weights mapped to Hugging Face's
names (``models.weights.llama_state_dict_from_gguf``), ``models.llama.LlamaForCausalLM``, and
the tokenizer from the file's own metadata (``data.bpe.PretrainedBPETokenizer``); ``Chat``
holds a conversation with it (``minimod chat``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch

from minimod.data.bpe import PretrainedBPETokenizer
from minimod.models.generation import LayerCache, stream
from minimod.models.gguf import load_tensors, read_gguf
from minimod.models.llama import LlamaConfig, LlamaForCausalLM
from minimod.models.pretrained import MissingExtraError, smollm2_path
from minimod.models.weights import llama_state_dict_from_gguf, load_checked
from minimod.tasks.common import UsageError
from minimod.tasks.run import one_line, pick_device

NAME = "smollm2"
# A chat answer ends at the end-of-turn token (ChatML's <|im_end|>) or the end of text.
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>")


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


class Chat:
    """A conversation with a chat model: each ``reply`` renders the whole conversation with
    the tokenizer's chat template, feeds the model only what its KV cache has not seen (the
    earlier turns stay cached), and yields the answer's text as the tokens come.

    ``stats`` after a reply: (prompt tokens read, seconds to the first answer token, answer
    tokens, seconds for the rest), i.e. prefill and decode. The context is the model's
    block_size: when a new turn would not fit, the oldest turns are dropped (the system
    message stays) and the cache starts again."""

    def __init__(
        self,
        model: Any,
        tokenizer: PretrainedBPETokenizer,
        system: str | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int = 0,
    ) -> None:
        if tokenizer.chat_template is None:
            raise UsageError("this model's tokenizer has no chat template: use generate")
        self.model, self.tokenizer = model, tokenizer
        self.system = [] if system is None else [{"role": "system", "content": system}]
        self.turns: list[dict[str, str]] = []
        self.sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        self.max_new_tokens = max_new_tokens
        self.generator = torch.Generator().manual_seed(seed)
        self.stop = {tokenizer.special[t] for t in STOP_TOKENS if t in tokenizer.special}
        self.cache: list[LayerCache] = []
        self.seen: list[int] = []  # the ids the cache holds, in order
        self.stats = (0, 0.0, 0, 0.0)

    def _prompt(self, message: str) -> list[int]:
        """The ids of the conversation with ``message`` added, dropping the oldest turns
        until it fits with room for the answer."""
        room = self.model.config.block_size - self.max_new_tokens
        while True:
            messages = [*self.system, *self.turns, {"role": "user", "content": message}]
            ids = self.tokenizer.encode(self.tokenizer.apply_chat_template(messages))
            if len(ids) <= room or not self.turns:
                break
            self.turns = self.turns[2:]  # the oldest question and its answer
        if len(ids) > room:
            raise UsageError(
                f"the message is {len(ids)} tokens with the template; at most {room} fit "
                f"(block size {self.model.config.block_size} minus --max-new-tokens "
                f"{self.max_new_tokens})"
            )
        return ids

    def _reuse_cache(self, ids: list[int]) -> None:
        """Keep the cached prefix ``ids`` share with what the cache has seen (re-encoding an
        answer may split it into other tokens than were generated; dropped turns change the
        start); forget the rest."""
        if not self.cache:
            self.cache = [LayerCache() for _ in range(self.model.config.n_layer)]
        shared = 0
        for a, b in zip(self.seen, ids, strict=False):
            if a != b:
                break
            shared += 1
        shared = min(shared, len(ids) - 1)  # the model must read at least one new token
        for layer in self.cache:
            layer.length = min(layer.length, shared)
        self.seen = self.seen[:shared]

    def reply(self, message: str) -> Iterator[str]:
        """Yield the answer to ``message`` piece by piece; the answer joins the conversation
        when the generator ends (also when it is closed early, e.g. by Ctrl-C: the part
        already shown is kept)."""
        ids = self._prompt(message)
        self._reuse_cache(ids)
        device = next(iter(self.model.parameters())).device
        answer: list[int] = []
        shown = ""
        read = len(ids) - len(self.seen)
        start = first = time.perf_counter()
        try:
            tokens = stream(
                self.model, torch.tensor([ids], device=device), self.max_new_tokens,
                cache=self.cache, stop=self.stop, generator=self.generator, **self.sampling,
            )  # fmt: skip
            for token in tokens:
                if not answer:
                    first = time.perf_counter()
                if token in self.stop:
                    break
                answer.append(token)
                text = self.tokenizer.decode(answer)
                if not text.endswith("\ufffd"):  # a character still missing its last bytes
                    yield text[len(shown) :]
                    shown = text
        finally:
            self.stats = (read, first - start, len(answer), time.perf_counter() - first)
            # The cache holds every token read: not the last one sampled, and after a Ctrl-C
            # in the middle of a step, only what every layer has.
            cached = min(len(layer) for layer in self.cache)
            for layer in self.cache:
                layer.length = cached
            self.seen = (ids + answer)[:cached]
            self.turns += [
                {"role": "user", "content": message},
                {"role": "assistant", "content": self.tokenizer.decode(answer)},
            ]
