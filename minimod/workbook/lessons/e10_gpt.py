TEXT = """Lesson 10: GPT -- the pre-LayerNorm block, weight tying, sampling and the KV cache

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
