"""Lesson 5: Embeddings, LayerNorm, RMSNorm and dropout

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

# Lesson 5 solved: minimod's own code, copied by `make workbook`.
# To change it, edit minimod and regenerate; this file is overwritten.

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import can_read_back, describe, expect_tensor, expect_trailing_shape
from minimod.nn._function import run
from minimod.nn.dropout import _check_p
from minimod.nn.embedding import _renorm_rows, _ScaleGradient
from minimod.nn.module import Module, Parameter
from minimod.nn.norm import _affine, _as_shape

# ---- from minimod/nn/embedding.py ----------------------------------------


def embedding(
    input: torch.Tensor,
    weight: torch.Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> torch.Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by ``input`` (any shape of integer ids)
    -> (*input.shape, dim). Rows at ``padding_idx`` are returned but receive no gradient.

    torch's options: ``max_norm`` first rescales, in place, every picked row whose
    ``norm_type``-norm exceeds it (as torch does: the weight itself changes);
    ``scale_grad_by_freq`` divides each row's gradient by how often its id occurs in ``input``.
    ``sparse`` gradients are not supported (minimod's gradients are dense tensors)."""
    if sparse:
        raise NotImplementedError("embedding: sparse=True is not supported (dense gradients only)")
    if padding_idx is not None:
        padding_idx %= weight.shape[0]  # -1 = the last row
    if max_norm is not None:
        _renorm_rows(weight, input, max_norm, norm_type)
    rows = run(EmbeddingFunction, input, weight, padding_idx)
    if scale_grad_by_freq and rows.requires_grad:
        counts = torch.bincount(input.reshape(-1), minlength=weight.shape[0])[input]
        rows = _ScaleGradient.apply(rows, 1.0 / counts.unsqueeze(-1).to(rows.dtype))
    return rows


class EmbeddingFunction(torch.autograd.Function):
    """Row lookup with a hand-written backward pass.

    Forward: output[i] = weight[ids[i]] for every id (any shape of ids, rows of size D).
    Backward: every row of weight collects the gradients of all positions that picked it, an
    index_add_ into zeros (an id picked k times gets the sum of its k gradients); the padding
    row gets none. (Autograd's backward of ``weight[ids]`` does the same with a slower
    accumulating index_put_.) Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, input, weight, padding_idx):
        ctx.save_for_backward(input)
        ctx.num_embeddings, ctx.padding_idx = weight.shape[0], padding_idx
        ctx.dtype = weight.dtype
        # BEGIN YOUR CODE
        rows = weight.index_select(0, input.reshape(-1))  # (number of ids, D)
        return rows.view(*input.shape, weight.shape[1])
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_output = grad_output.to(ctx.dtype)
        # BEGIN YOUR CODE
        dim = grad_output.shape[-1]
        grad_weight = grad_output.new_zeros(ctx.num_embeddings, dim)
        grad_weight.index_add_(0, input.reshape(-1), grad_output.reshape(-1, dim))
        if ctx.padding_idx is not None:
            grad_weight[ctx.padding_idx] = 0
        return None, grad_weight, None
        # END YOUR CODE


class Embedding(Module):
    """weight: (num_embeddings, embedding_dim) ~ N(0, 1); the padding row starts at zero."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: torch.Tensor | None = None,
        _freeze: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if sparse:
            raise NotImplementedError("Embedding: sparse=True is not supported (dense gradients)")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} is out of range for "
                    f"{num_embeddings} embeddings"
                )
            padding_idx %= num_embeddings  # -1 means the last row, as in torch
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        # BEGIN YOUR CODE
        self.weight = Parameter(
            torch.empty(num_embeddings, embedding_dim, device=device, dtype=dtype)
        )
        # END YOUR CODE
        if _weight is None:
            self.reset_parameters()
        else:  # torch's way of building an Embedding around given weights
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"Embedding: _weight has shape {tuple(_weight.shape)}, expected "
                    f"({num_embeddings}, {embedding_dim})"
                )
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        # BEGIN YOUR CODE
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with torch.no_grad():
                self.weight[self.padding_idx].fill_(0)
        # END YOUR CODE

    @classmethod
    def from_pretrained(
        cls, embeddings: torch.Tensor, freeze: bool = True, padding_idx: int | None = None
    ) -> Embedding:
        """An Embedding holding a copy of ``embeddings`` (trainable only if freeze=False)."""
        if embeddings.dim() != 2:
            raise ValueError(
                f"Embedding.from_pretrained: expected a 2-D tensor, "
                f"got shape {tuple(embeddings.shape)}"
            )
        layer = cls(
            *embeddings.shape,
            padding_idx=padding_idx,
            dtype=embeddings.dtype,
            device=embeddings.device,
        )
        with torch.no_grad():
            layer.weight.copy_(embeddings)
        layer.weight.requires_grad_(not freeze)
        return layer

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.is_floating_point() or input.dtype == torch.bool:
            raise TypeError(f"{describe(self)}: expected integer ids, got {input.dtype}")
        if can_read_back(input) and input.numel() > 0:
            low, high = int(input.min()), int(input.max())
            if low < 0 or high >= self.num_embeddings:
                bad = low if low < 0 else high
                raise IndexError(
                    f"{describe(self)}: id {bad} is out of range [0, {self.num_embeddings})"
                )
        return embedding(
            input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
            self.scale_grad_by_freq,
        )  # fmt: skip

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2.0:
            text += f", norm_type={self.norm_type}"
        return text + (", scale_grad_by_freq=True" if self.scale_grad_by_freq else "")


# ---- from minimod/nn/norm.py ----------------------------------------


def layer_norm(
    input: torch.Tensor,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """y = (x − μ) / √(σ² + ε) · γ + β over the last len(normalized_shape) dimensions, with the
    biased variance σ² = mean((x − μ)²)."""
    normalized_shape = _as_shape(normalized_shape)
    expect_trailing_shape(
        f"layer_norm(normalized_shape={normalized_shape})", input, normalized_shape
    )
    # BEGIN YOUR CODE
    return run(LayerNormFunction, input, weight, bias, len(normalized_shape), eps)
    # END YOUR CODE


class LayerNormFunction(torch.autograd.Function):
    """layer_norm with a hand-written backward pass, over the last ``n_dims`` dimensions.

    Forward, per row of N values (the last n_dims dimensions):
        μ = mean(x),  σ² = mean((x − μ)²) (biased),  r = 1/√(σ² + ε),  x̂ = (x − μ)·r,  y = x̂·γ + β
    Backward, given dy (g = dy·γ, means over the row's N values):
        dβ = Σ_rows dy,    dγ = Σ_rows dy·x̂
        dx = r · (g − mean(g) − x̂ · mean(g·x̂))
    (μ and σ² depend on every x of the row: the two means are what flows back through them.)
    Keeps x̂ and r only. Statistics in at least float32. Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, input, weight, bias, n_dims, eps):
        dims = tuple(range(-n_dims, 0))
        compute = torch.promote_types(input.dtype, torch.float32)
        # BEGIN YOUR CODE
        x = input.to(compute)
        centered = x - x.mean(dims, keepdim=True)
        variance = (centered * centered).mean(dims, keepdim=True)  # biased: divide by N
        rstd = torch.rsqrt(variance + eps)
        normalized = centered.mul_(rstd)  # x̂, in place of the centered values
        if weight is not None and bias is not None:
            output = torch.addcmul(bias, normalized, weight)  # x̂·γ + β in one pass
        elif weight is not None:
            output = normalized * weight
        else:
            output = normalized if bias is None else normalized + bias
        ctx.save_for_backward(normalized, rstd, weight)
        ctx.dims, ctx.dtype = dims, input.dtype
        ctx.bias_shape = None if bias is None else bias.shape
        return output.to(torch.promote_types(input.dtype, output.dtype))
        # END YOUR CODE

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        normalized, rstd, weight = ctx.saved_tensors
        dims = ctx.dims
        grad_output = grad_output.to(normalized.dtype)
        grad_weight = grad_bias = None
        # BEGIN YOUR CODE
        # dy·x̂ serves twice: summed over the rows it is dγ, times γ it is g·x̂.
        gx = grad_output * normalized
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = gx.sum_to_size(weight.shape)
        if ctx.needs_input_grad[2]:  # False when there is no bias
            grad_bias = grad_output.sum_to_size(ctx.bias_shape)
        if weight is not None:  # (a single row: dγ is gx itself, not to be overwritten)
            gx = gx * weight if gx.shape == weight.shape else gx.mul_(weight)
        mean_gx = gx.mean(dims, keepdim=True)
        g = grad_output * weight if weight is not None else grad_output.clone()
        grad_input = g.sub_(g.mean(dims, keepdim=True))  # in place: one (rows, N) buffer in all
        grad_input.addcmul_(normalized, mean_gx, value=-1).mul_(rstd)
        return grad_input.to(ctx.dtype), grad_weight, grad_bias, None, None
        # END YOUR CODE


def rms_norm(
    input: torch.Tensor,
    normalized_shape: Sequence[int],
    weight: torch.Tensor | None = None,
    eps: float | None = None,
) -> torch.Tensor:
    """y = x / √(mean(x²) + ε) · γ over the trailing dimensions; no mean is subtracted.
    eps=None uses the dtype's machine epsilon, as torch does."""
    normalized_shape = _as_shape(normalized_shape)
    expect_trailing_shape(f"rms_norm(normalized_shape={normalized_shape})", input, normalized_shape)
    if eps is None:
        eps = torch.finfo(input.dtype).eps
    # BEGIN YOUR CODE
    dims = tuple(range(-len(normalized_shape), 0))
    output = input * torch.rsqrt((input * input).mean(dims, keepdim=True) + eps)
    if weight is not None:
        output = output * weight
    return output
    # END YOUR CODE


class LayerNorm(Module):
    """weight γ (ones) and bias β (zeros) of shape normalized_shape, if elementwise_affine."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine(self, "weight", elementwise_affine, device, dtype)
        _affine(self, "bias", elementwise_affine and bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        expect_trailing_shape(self, input, self.normalized_shape)
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class RMSNorm(Module):
    """weight γ (ones) of shape normalized_shape, if elementwise_affine."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine(self, "weight", elementwise_affine, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # torch's RMSNorm names it x too
        expect_trailing_shape(self, x, self.normalized_shape)
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


# ---- from minimod/nn/dropout.py ----------------------------------------


def dropout(input: torch.Tensor, p: float = 0.5, training: bool = True) -> torch.Tensor:
    """Inverted dropout: keep each element with probability 1 − p and scale survivors by
    1/(1 − p), so the expected value is unchanged and evaluation needs no rescaling."""
    _check_p("dropout", p)
    expect_tensor("dropout", input)
    # BEGIN YOUR CODE
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = torch.rand_like(input) >= p  # True with probability 1 − p
    return input * keep * (1.0 / (1.0 - p))
    # END YOUR CODE


class Dropout(Module):
    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        _check_p("Dropout", p)
        self.p = p

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
