"""Lesson 34's pitfalls: FlashAttention's forward and backward by blocks."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_flash_attention.py::"
RESCALE = (T + "test_blocks_rescale_the_running_output",)
SEVERAL = (T + "test_the_default_block_with_several_blocks",)
BACKWARD = (T + "test_the_backward_adds_up_over_several_key_blocks",)

MUTANTS = [
    Mutant(
        "Forgetting to rescale the running output",
        "output[..., first:, :].mul_(rescale).add_(",
        "output[..., first:, :].add_(",
        "the running sum AND the running output",
        RESCALE,
    ),
    Mutant(
        "Forgetting to rescale the running output",
        "row_sum[..., first:, :].mul_(rescale).add_(",
        "row_sum[..., first:, :].add_(",
        "the running sum AND the running output",
        RESCALE,
    ),
    Mutant(
        "The 1/√d scale in the backward",
        "grad_query[..., first:, :] += (grad_scores @ key[..., block, :]).mul_(scale)",
        "grad_query[..., first:, :] += grad_scores @ key[..., block, :]",
        "off by a factor ≈ 4",
        SEVERAL,
    ),
    Mutant(
        "The 1/√d scale in the backward",
        "(grad_scores.transpose(-2, -1) @ query[..., first:, :]).mul_(\n                scale\n            )",
        "grad_scores.transpose(-2, -1) @ query[..., first:, :]",
        "off by a factor ≈ 4",
        SEVERAL,
    ),
    Mutant(
        "The 1/√d scale in the backward",
        "scores = _block_scores(query, key[..., block, :], start, is_causal, scale, compute)\n"
        "            weights = scores.sub_(log_sum_exp",
        "scores = _block_scores(query, key[..., block, :], start, is_causal, 1.0, compute)\n"
        "            weights = scores.sub_(log_sum_exp",
        "the SCALED scores",
        (T + "test_recomputed_weights_sum_to_one",),
    ),
    Mutant(
        "Recomputing P from the raw scores with the row max m instead of lse",
        "log_sum_exp = row_max + row_sum.log()",
        "log_sum_exp = row_max",
        "exp(S − m) is not normalised",
        (T + "test_recomputed_weights_sum_to_one",),
    ),
    Mutant(
        "Computing D as rowsum(dP ∘ P) inside the loop",
        "grad_scores = grad_weights.sub_(delta[..., first:, :]).mul_(weights).to(low)",
        "grad_scores = grad_weights.sub_((grad_weights * weights).sum(-1, keepdim=True)).mul_(weights).to(low)",
        "D must be rowsum(dO ∘ O)",
        BACKWARD,
    ),
    Mutant(
        "Overwriting dQ per block",
        "grad_query[..., first:, :] += (grad_scores @ key[..., block, :]).mul_(scale)",
        "grad_query[..., first:, :] = (grad_scores @ key[..., block, :]).mul_(scale)",
        "dQ += ...",
        BACKWARD,
    ),
    Mutant(
        'Saving the scores or P "just for the backward"',
        "ctx.save_for_backward(query, key, value, output, log_sum_exp)\n        return output",
        "ctx.save_for_backward(query, key, value, output, log_sum_exp, weights)\n        return output",
        "must keep only Q, K, V, the output and the log-sum-exp",
        (T + "test_saves_only_linear_memory",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "−inf rows under a causal mask",
        "masking the rows above a block instead of slicing them away changes _block_scores and "
        "the row ranges of both loops together, not one edit; the causal examples (T = 1, a "
        "partial last block) check that no row turns NaN",
    ),
]
