"""Embedding: a lookup table from integer ids to learned vectors."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from minimod.nn import init
from minimod.nn._checks import can_read_back, describe
from minimod.nn._function import run
from minimod.nn.module import Module, Parameter


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


@torch.no_grad()
def _renorm_rows(weight: torch.Tensor, input: torch.Tensor, max_norm: float, norm_type: float):
    """torch's embedding_renorm_: rows picked by ``input`` with a norm over ``max_norm`` are
    scaled to it (with torch's 1e-7 in the denominator)."""
    ids = input.reshape(-1).unique()
    norms = weight[ids].norm(p=norm_type, dim=-1, keepdim=True)
    scale = torch.where(norms > max_norm, max_norm / (norms + 1e-7), torch.ones_like(norms))
    weight[ids] = weight[ids] * scale


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``scale`` (broadcast)."""

    @staticmethod
    def forward(ctx, input, scale):
        ctx.save_for_backward(scale)
        return input.view_as(input)

    @staticmethod
    def backward(ctx, grad_output):
        (scale,) = ctx.saved_tensors
        return grad_output * scale, None


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
        # BEGIN SOLUTION
        rows = weight.index_select(0, input.reshape(-1))  # (number of ids, D)
        return rows.view(*input.shape, weight.shape[1])
        # END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_output = grad_output.to(ctx.dtype)
        # BEGIN SOLUTION
        dim = grad_output.shape[-1]
        grad_weight = grad_output.new_zeros(ctx.num_embeddings, dim)
        grad_weight.index_add_(0, input.reshape(-1), grad_output.reshape(-1, dim))
        if ctx.padding_idx is not None:
            grad_weight[ctx.padding_idx] = 0
        return None, grad_weight, None
        # END SOLUTION


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
        # BEGIN SOLUTION
        self.weight = Parameter(
            torch.empty(num_embeddings, embedding_dim, device=device, dtype=dtype)
        )
        # END SOLUTION
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
        # BEGIN SOLUTION
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with torch.no_grad():
                self.weight[self.padding_idx].fill_(0)
        # END SOLUTION

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
