TEXT = """Lesson 5: Embeddings, LayerNorm, RMSNorm and dropout

Embedding: a learned lookup table
    weight (num_embeddings, embedding_dim) ~ N(0, 1);  ids: any shape of integers
    embedding(ids, weight) = weight[ids]  ->  (*ids.shape, embedding_dim)
Indexing is the same as multiplying a one-hot matrix by weight, without building it. Its
backward adds up the gradients of repeated ids in one row. padding_idx (e.g. the id of a
padding token) names a row that starts at zero and never gets a gradient, so it stays zero:
the output rows for it must be cut off from the graph (for instance with torch.where and a
detached copy). A negative padding_idx counts from the end, as in torch (given).

LayerNorm: normalise each feature vector
Over the last len(normalized_shape) dimensions of x (the features of one token), with
μ = mean(x) and the biased variance σ² = mean((x − μ)²) (divide by N, not N − 1):
    y = (x − μ) / √(σ² + ε) · γ + β          γ (weight) = ones, β (bias) = zeros initially
    x (*, *normalized_shape) -> y of the same shape; γ, β have shape normalized_shape
By hand: x = (2, 4, 6, 8) has μ = 5, x − μ = (−3, −1, 1, 3), σ² = (9 + 1 + 1 + 9) / 4 = 5, so
y = (−3, −1, 1, 3) / √5 = (−1.342, −0.447, 0.447, 1.342) with γ = 1, β = 0 (ε = 1e-5 moves
only the sixth digit): mean 0, mean square 1. RMSNorm (below) of x = (1, 7): mean(x²) = 25,
y = (1, 7) / 5 = (0.2, 1.4). Dropout with p = 0.5 of (1, 2, 3, 4) and the keep-mask
(1, 0, 0, 1): (2, 0, 0, 8).
ε (default 1e-5) goes inside the square root: it keeps a constant input (σ² = 0) finite.
Every token is normalised on its own, so LayerNorm works the same in training and at
inference, for any batch size (unlike batch norm, it never mixes examples).

RMSNorm: LayerNorm without the centring
    y = x / √(mean(x²) + ε) · γ       over the same trailing dimensions; no β, no mean subtracted
eps=None means the dtype's machine epsilon, torch.finfo(x.dtype).eps (given). Cheaper than
LayerNorm and used by Llama-style models.

Dropout: a regulariser that is on only while training
    training: keep each element with probability 1 − p, zero it otherwise, and scale the kept
              ones by 1 / (1 − p) ("inverted dropout"), so E[y] = x
    eval (training=False) or p = 0: y = x exactly;  p = 1: all zeros (don't divide by 0)
Draw the mask with torch.rand_like(x) >= p so it follows the global seed (torch.manual_seed),
and use the same mask for the gradient (multiplying by the mask does that for you).

Backward passes by hand: EmbeddingFunction and LayerNormFunction
(See lesson 3 for torch.autograd.Function.) Embedding: the forward is
weight.index_select(0, ids.reshape(-1)) viewed back to (*ids.shape, D); the backward adds every
position's gradient into the row it picked, grad_weight = zeros.index_add_(0, ids, dy), and
zeroes the padding row -- autograd's backward of weight[ids] does the same with a slower
accumulating index_put_.
LayerNorm, per row of N values, with x̂ = (x − μ)·r, r = 1/√(σ² + ε) and g = dy·γ:
    dβ = Σ_rows dy        dγ = Σ_rows dy·x̂        dx = r · (g − mean(g) − x̂ · mean(g·x̂))
The two means are the gradient flowing back through μ and σ², which depend on every x of the
row. Save x̂ and r only. Compute the statistics in at least float32 (x.to(promote_types(dtype,
float32))): a 16-bit input would lose them. torch.var_mean looks handy but is slow on the CPU
for short rows; ((x − μ)²).mean() is much faster. Sum γ's and β's gradients back to their
shape with Tensor.sum_to_size.
The given backward reads what your forward leaves on ctx: LayerNormFunction saves
(x̂, r, weight) with ctx.save_for_backward -- x̂ like x in the compute dtype, r with the
normalised axes kept as size 1 (keepdim=True), weight None when there is none -- and sets
ctx.dims, the tuple of normalised axes (−n_dims, ..., −1) that the means run over, ctx.dtype,
the input's dtype, and ctx.bias_shape (None without a bias).

What you write
embedding and EmbeddingFunction; Embedding's weight in Embedding.__init__ (self.weight, a
Parameter of shape (num_embeddings, embedding_dim)) and its initialisation in
Embedding.reset_parameters (N(0, 1), then the padding row zeroed); layer_norm and
LayerNormFunction; rms_norm; dropout. The modules LayerNorm, RMSNorm and Dropout are given:
they call your functions.

Classic pitfalls
- x.var() is the unbiased variance (divides by N − 1): use ((x − μ)²).mean(), or
  x.var(unbiased=False).
- ε added after the square root, or normalising over the batch axis instead of the features.
- RMSNorm that subtracts the mean (that is LayerNorm).
- Dropout that also drops in eval mode, or scales by (1 − p) at eval instead of 1 / (1 − p)
  while training.
- The padding row receiving gradient, or not starting at zero.

Run it
Once `minimod exercises check 5` passes, a tiny GPT pretrains on Python's documentation with
your Embedding (the token and position tables) and your LayerNorm, forward and backward
(--use-mine swaps in every lesson that passes and says which):
    minimod pretrain gpt --use-mine --out runs/e05
prints which lessons are yours, a progress bar, then "done: step 60, held-out loss 3.06,
perplexity 21.4" (about 20 s on 2 shared cores; every run needs a new --out).
Next: lesson 6 (Optimizers: SGD with momentum and AdamW)

Check it: minimod exercises check 5
Try it (python, in the repository folder):
    >>> import torch
    >>> from exercises.e05_embedding_norm import Dropout, LayerNorm
    >>> y = LayerNorm(4)(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    >>> bool(y.mean().abs() < 1e-6), round(y.pow(2).mean().item(), 3)
    (True, 1.0)
    >>> torch.equal(Dropout(0.5).eval()(y), y)
    True
"""
