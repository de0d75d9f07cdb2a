"""Embedding: a lookup table from integer ids to learned vectors."""

from __future__ import annotations

import torch

from minimod.nn import init
from minimod.nn._checks import can_read_back, describe
from minimod.nn.module import Module, Parameter


def embedding(
    input: torch.Tensor, weight: torch.Tensor, padding_idx: int | None = None
) -> torch.Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by ``input`` (any shape of integer ids)
    -> (*input.shape, dim). Rows at ``padding_idx`` are returned but receive no gradient."""
    # BEGIN SOLUTION
    output = weight[input]  # indexing's backward adds up the gradient of repeated ids
    if padding_idx is not None:
        keep = (input != padding_idx % weight.shape[0]).unsqueeze(-1)  # -1 = the last row
        output = torch.where(keep, output, output.detach())
    return output
    # END SOLUTION


class Embedding(Module):
    """weight: (num_embeddings, embedding_dim) ~ N(0, 1); the padding row starts at zero."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} is out of range for "
                    f"{num_embeddings} embeddings"
                )
            padding_idx %= num_embeddings  # -1 means the last row, as in torch
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        # BEGIN SOLUTION
        self.weight = Parameter(
            torch.empty(num_embeddings, embedding_dim, device=device, dtype=dtype)
        )
        # END SOLUTION
        self.reset_parameters()

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
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
