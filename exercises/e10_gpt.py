"""Lesson 10: GPT -- the pre-LayerNorm block, weight tying, sampling and the KV cache

The model (nanoGPT's layout, GPT-2's key names: transformer.wte, transformer.h.0.attn.c_attn, ...)
    idx (B, T) token ids, T ≤ block_size
    x = drop(wte(idx) + wpe(positions))                      (B, T, C),  C = n_embd
    n_layer × Block:  x = x + attn(ln_1(x))                  causal self-attention
                      x = x + mlp(ln_2(x))                   C -> 4C -> GELU -> C (given)
    logits = lm_head(ln_f(x))                                 (B, T, vocab_size)
    loss = cross_entropy(logits as (B·T, V), targets as (B·T,), ignore_index=−1)

Causal self-attention
c_attn (C -> 3C) makes q, k and v in one matmul: .chunk(3, dim=-1), then each goes through
rearrange(t, "b t (h d) -> b h t d", h=n_head). scaled_dot_product_attention with a boolean
causal mask (query i sees keys j ≤ i), dropout on the weights only in training (self.dropout
if self.training else 0), rearrange back to (B, T, C), then c_proj and resid_dropout.

Pre-LN vs post-LN
GPT-2 normalises the INPUT of each sub-layer and adds the result to a residual stream x that
is never normalised: x = x + f(LN(x)). The original transformer (and BERT, lesson 11)
normalises AFTER the addition: x = LN(x + f(x)). Pre-LN keeps a clean identity path from the
embeddings to the output, so deep stacks train stably without a long warmup; the stream
itself is normalised once, by ln_f, before the LM head.

Weight tying and GPT-2's initialisation
lm_head.weight IS transformer.wte.weight: assign the very Parameter, one tensor with two uses.
A token's input vector and its output scores live in the same space, vocab_size × C
parameters are saved, and the gradient is the sum of both uses (autograd adds them up).
Init: every Linear and Embedding weight ~ N(0, 0.02²) and every Linear bias 0 (self.apply);
then the projections that write into the residual stream (names ending in "c_proj.weight")
get std 0.02 / √(2 · n_layer): each block adds two of them, and their variances add up.

Generating text (minimod/models/generation.py; GPT.generate calls generate(self, ...))
Feed the sequence, keep the last position's logits (B, V), draw one token per row with
sample(logits, temperature, top_k, top_p, generator), append it, repeat.
- temperature 0: argmax. Otherwise logits / temperature (< 1 sharper, > 1 flatter).
- top_k: every logit below the k-th largest -> −inf (a k above the vocabulary size keeps all).
- top_p (nucleus): sort descending, softmax, drop a token when the probabilities BEFORE it
  already sum to ≥ p (the best token always stays), scatter the drop mask back to vocabulary
  order (torch.Tensor.scatter with the sort's indices), masked_fill with −inf.
- then softmax and torch.multinomial(probs, 1, generator=generator): (B, 1).
The KV cache: the keys and values of earlier tokens never change (they cannot see later
tokens), so keep them. LayerCache.update appends the new keys and values (B, H, T, D) along
the time axis (dim 2) and returns all of them, (B, H, past + T, D) each. Not with torch.cat:
that copies the whole past at every generated token (quadratic in the length). LayerCache
keeps two buffers with room to spare, self._keys and self._values (B, H, capacity, D), None
until the first update; self.length counts the positions filled. When past + T exceeds the
capacity, move to new buffers of capacity max(2·(past + T), 16) (new_empty, then copy the
filled part over); then write the new keys and values into positions [past, past + T), add T
to self.length and return the properties self.keys and self.values (given: the buffers' first
self.length positions, views, no copy). With a cache, hidden_states gets only the new
tokens: their positions start at past = len(cache[0]), and the causal mask needs
offset = past so that each new query sees every cached key. Once the sequence is longer than
block_size the window slides, every position shifts, and the cache must be dropped.

What you write
In minimod/models/gpt.py: CausalSelfAttention.forward, Block.forward, the tying and the init in
GPT.__init__ and _init_weights, hidden_states and forward. In minimod/models/generation.py:
LayerCache.update, sample and the loop of generate(model, idx, ...). GPTConfig, the MLP,
GPT.generate (it calls generate), the layers and the argument checks are given.

Classic pitfalls
- x = self.attn(self.ln_1(x)) without "x +": no residual stream, and the model barely trains.
- Post-LN by accident: x = ln_1(x + attn(x)).
- Tying with a copy, Parameter(wte.weight.clone()): two tensors that drift apart.
- A KV cache with the new token at position 0 instead of past, or a causal mask without the
  offset (the new query then sees only the first cached key).
- top_p that keeps its mask in sorted order, or drops the token that crosses p.

Run it
Once `minimod exercises check 10` passes, your GPT -- blocks, weight tying, GPT-2
initialisation -- pretrains on Python's documentation (--use-mine swaps in every lesson that
passes and says which), then `minimod generate` continues a prompt with the weights it learnt
(generate has no --use-mine: it samples with minimod's own sampler and KV cache):
    minimod pretrain gpt --use-mine --max-steps 150 --out runs/e10
    minimod generate --from runs/e10 --prompt 'The ' --max-new-tokens 80
prints "done: step 150, held-out loss 2.639, perplexity 14" (about 20 s of training), then 80
characters that already have the shape of text -- spaces, short "words", line breaks -- but
no words yet ("The ee  hhr te s  je s)"); the baby preset's 2000 steps (`--preset baby`,
minutes) write English words and Python names, as `minimod demo` shows.
Next: lesson 11 (BERT's post-LayerNorm encoder layer)

Check it: minimod exercises check 10
Try it (python, in the repository folder):
    >>> import torch
    >>> from minimod.models.gpt import GPTConfig
    >>> from exercises.e10_gpt import GPT, sample
    >>> config = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    >>> model = GPT(config)
    >>> model.lm_head.weight is model.transformer.wte.weight
    True
    >>> idx = torch.zeros(1, 5, dtype=torch.long)
    >>> logits, loss = model(idx, targets=torch.ones(1, 5, dtype=torch.long))
    >>> tuple(logits.shape), 2.2 < loss.item() < 2.6  # ≈ log(11) = 2.4 at initialisation
    ((1, 5, 11), True)
    >>> fast = model.generate(idx, 6, temperature=0)
    >>> torch.equal(fast, model.generate(idx, 6, temperature=0, use_cache=False))
    True
    >>> sample(torch.tensor([[0.0, 5.0, 1.0]]), temperature=0).tolist()
    [[1]]
"""

# Generated by `make workbook` from minimod's own code. Write your code between
# the BEGIN YOUR CODE and END YOUR CODE lines, then run `minimod exercises check 10`.
# The imports are what the finished code uses, so some are unused until then:
# ruff: noqa: F401, F841

from __future__ import annotations

import math

import torch
from einops import rearrange

from minimod import nn
from minimod.models.gpt import GPTConfig
from minimod.nn import functional as F
from minimod.nn.attention import causal_mask

# ---- from minimod/models/gpt.py ----------------------------------------


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        # BEGIN YOUR CODE
        raise NotImplementedError("e10: CausalSelfAttention.forward")
        # END YOUR CODE


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate=config.gelu_approximate)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm: normalise, transform, add back (the residual path stays un-normalised)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        # BEGIN YOUR CODE
        raise NotImplementedError("e10: Block.forward")
        # END YOUR CODE


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # BEGIN YOUR CODE
        raise NotImplementedError("e10: GPT.__init__")
        # END YOUR CODE

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # BEGIN YOUR CODE
        raise NotImplementedError("e10: GPT._init_weights")
        # END YOUR CODE

    def num_parameters(self, trainable_only: bool = False, non_embedding: bool = True) -> int:
        """As nanoGPT reports it: position embeddings excluded unless non_embedding=False (the
        token embedding is counted, because it is also the output layer)."""
        total = super().num_parameters(trainable_only)
        return total - self.transformer.wpe.weight.numel() if non_embedding else total

    def hidden_states(self, idx: torch.Tensor, cache: list[LayerCache] | None = None):
        """idx (B, T) -> the final LayerNorm's output (B, T, C)."""
        if idx.dim() != 2:
            raise ValueError(f"GPT: expected token ids of shape (B, T), got {tuple(idx.shape)}")
        past = 0 if cache is None else len(cache[0])
        length = idx.shape[1]
        if past + length > self.config.block_size:
            raise ValueError(
                f"GPT: sequence of length {past + length} is longer than "
                f"block_size {self.config.block_size}"
            )
        # BEGIN YOUR CODE
        raise NotImplementedError("e10: GPT.hidden_states")
        # END YOUR CODE

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx, targets (B, T) -> logits (B, T, vocab_size) and the mean cross-entropy loss
        (None without targets; targets of −1 are ignored)."""
        # BEGIN YOUR CODE
        raise NotImplementedError("e10: GPT.forward")
        # END YOUR CODE

    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Append max_new_tokens sampled tokens to idx (B, T). temperature 0 = greedy; the loop,
        the sampling and the KV cache are in ``minimod.models.generation``."""
        return generate(self, idx, max_new_tokens, temperature, top_k, top_p, use_cache, generator)


# ---- from minimod/models/generation.py ----------------------------------------


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e10: LayerCache.update")
        # END YOUR CODE


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
    # BEGIN YOUR CODE
    raise NotImplementedError("e10: sample")
    # END YOUR CODE


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
        # BEGIN YOUR CODE
        raise NotImplementedError("e10: generate")
        # END YOUR CODE
    return idx.clone()
