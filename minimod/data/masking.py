"""Masking for BERT's masked language modelling: which tokens the model must fill in.

    input_ids (B, T) -> (inputs, labels), both (B, T)
    inputs: 15% of the non-special tokens replaced (80% [MASK], 10% a random token, 10% kept)
    labels: the original id where a token was chosen, -100 (ignored by the loss) elsewhere

Data preparation, not model code: it runs on batches before they reach ``BERTForMaskedLM``.
"""

from __future__ import annotations

import torch


def mask_tokens(
    input_ids: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    special_ids: tuple[int, ...] | list[int] = (),
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose mlm_probability of the positions that are not special tokens
    (padding, [CLS], [SEP], … given in special_ids); of those, 80% become [MASK], 10% a random
    token, 10% stay as they are. Returns (inputs, labels) with labels −100 where not chosen."""

    # BEGIN SOLUTION
    def uniform() -> torch.Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=input_ids.device)

    maskable = ~torch.isin(
        input_ids, torch.tensor(list(special_ids), dtype=input_ids.dtype, device=input_ids.device)
    )
    chosen = (uniform() < mlm_probability) & maskable
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = uniform()  # one draw decides: < 0.8 mask, < 0.9 random token, else keep
    to_mask = chosen & (action < 0.8)
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(
        vocab_size, input_ids.shape, generator=generator, device=input_ids.device
    )
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels
    # END SOLUTION
