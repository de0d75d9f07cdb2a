"""Generating text with a GPT: the KV cache, drawing one token from logits, and the loop.

    idx (B, T) -> model.hidden_states -> the last position (B, C) -> lm_head -> logits (B, V)
    -> sample -> next token (B, 1) -> appended to idx -> repeat max_new_tokens times

With a KV cache (one ``LayerCache`` per block) each step feeds only the new token: the keys and
values of the earlier tokens never change, so every attention layer keeps them.
``GPT.generate`` calls ``generate`` here; ``stream`` yields the tokens one by one, for a chat.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from minimod import nn
from minimod.nn import functional as F


class LayerCache:
    """The keys and values one attention layer has seen so far: (B, H, T_past, D) each.

    Stored in buffers with room to spare, which double when full: appending one token then
    copies one token, where concatenating would copy the whole past every time."""

    def __init__(self) -> None:
        self._keys: torch.Tensor | None = None  # (B, H, capacity, D)
        self._values: torch.Tensor | None = None
        self.length = 0

    def __len__(self) -> int:
        return self.length

    @property
    def keys(self) -> torch.Tensor | None:
        return None if self._keys is None else self._keys[:, :, : self.length]

    @property
    def values(self) -> torch.Tensor | None:
        return None if self._values is None else self._values[:, :, : self.length]

    def update(self, keys: torch.Tensor, values: torch.Tensor):
        """Append the new keys/values (B, H, T, D); return all of them (B, H, past + T, D)."""
        # BEGIN SOLUTION
        end = self.length + keys.shape[2]
        if self._keys is None or end > self._keys.shape[2]:  # full: move to buffers twice as big
            capacity = max(2 * end, 16)
            grown = [x.new_empty(*x.shape[:2], capacity, x.shape[3]) for x in (keys, values)]
            if self._keys is not None:
                grown[0][:, :, : self.length] = self.keys
                grown[1][:, :, : self.length] = self.values
            self._keys, self._values = grown
        self._keys[:, :, self.length : end] = keys
        self._values[:, :, self.length : end] = values
        self.length = end
        return self.keys, self.values
        # END SOLUTION


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row from logits (B, V) -> (B, 1).

    temperature divides the logits (< 1 sharper, > 1 flatter, 0 = argmax); top_k keeps the k
    most likely tokens; top_p keeps the smallest set of most likely tokens whose probabilities
    add up to at least p (nucleus sampling). Everything else gets probability 0.
    """
    if temperature < 0:
        raise ValueError(f"sample: temperature must be ≥ 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"sample: top_k must be ≥ 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"sample: top_p must be in (0, 1], got {top_p}")
    # BEGIN SOLUTION
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth_best = torch.topk(logits, min(top_k, logits.shape[-1])).values[..., -1:]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    if top_p is not None:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = F.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens before it already reach top_p (the best one stays).
        drop_sorted = probs.cumsum(dim=-1) - probs >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
    # END SOLUTION


def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Append max_new_tokens tokens sampled from ``model`` (a GPT) to idx (B, T) -> (B, T + new).

    temperature, top_k, top_p and generator go to ``sample`` (temperature 0 = greedy). With
    use_cache, each step feeds only the new token and reuses the keys and values of the earlier
    ones. Once the sequence is longer than block_size the window slides, every position shifts,
    and the cache cannot be reused: then each step recomputes the window.
    """
    # inference_mode: no_grad without autograd's per-tensor bookkeeping (version counters,
    # view tracking): it shows when every step is small. The result is cloned outside, so
    # it is an ordinary tensor that later training may use.
    with torch.inference_mode():
        # BEGIN SOLUTION
        block_size = model.config.block_size
        cache = None
        for _ in range(max_new_tokens):
            if use_cache and idx.shape[1] <= block_size:
                if cache is None:
                    cache = [LayerCache() for _ in range(model.config.n_layer)]
                hidden = model.hidden_states(idx[:, len(cache[0]) :], cache)
            else:
                cache = None
                hidden = model.hidden_states(idx[:, -block_size:])
            logits = model.lm_head(hidden[:, -1])  # (B, vocab_size)
            next_token = sample(logits, temperature, top_k, top_p, generator)
            idx = torch.cat([idx, next_token], dim=1)
        # END SOLUTION
    return idx.clone()


def stream(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    cache: list[LayerCache] | None = None,
    stop: Iterable[int] = (),
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Yield the tokens sampled after idx (1, T) one at a time, as they are made (a chat shows
    each at once), until max_new_tokens or a token of ``stop`` (yielded too, then the end).

    ``cache`` (one LayerCache per layer) may already hold a prefix of idx -- the earlier turns
    of a conversation -- so only the tokens after it are read; it is updated in place, so the
    next call continues from it. The sequence must fit block_size: a chat model's context is
    long, and the window of ``generate`` would silently forget the conversation.
    """
    if idx.dim() != 2 or idx.shape[0] != 1:
        raise ValueError(f"stream: expected idx of shape (1, T), got {tuple(idx.shape)}")
    if cache is None:
        cache = [LayerCache() for _ in range(model.config.n_layer)]
    stop = set(stop)
    with torch.inference_mode():
        new = idx[:, len(cache[0]) :]
        for _ in range(max_new_tokens):
            logits = model.lm_head(model.hidden_states(new, cache)[:, -1])
            new = sample(logits, temperature, top_k, top_p, generator)
            token = int(new)
            yield token
            if token in stop:
                return
