"""Lesson 28's pitfalls: the CTC loss and its decoders."""

# The edits quote the solution's lines verbatim, however long they are.
# ruff: noqa: E501

from pitfalls import Mutant, NotAMutant

T = "tests/test_ctc.py::"
LOSS = (T + "test_ctc_loss_matches_torch",)

MUTANTS = [
    Mutant(
        "Reading every sequence at frame T − 1",
        "last = alpha[input_lengths - 1, :, torch.arange(batch, device=alpha.device)]",
        "last = alpha[torch.full_like(input_lengths, steps) - 1, :, "
        "torch.arange(batch, device=alpha.device)]",
        "its own last frame",
        LOSS,
    ),
    Mutant(
        "Forgetting the end in the last label",
        "nll = -torch.logaddexp(last.gather(1, ends), final_label)[:, 0]",
        "nll = -last.gather(1, ends)[:, 0]",
        "or the last label",
        LOSS,
    ),
    Mutant(
        "Greedy: dropping blanks before merging repeats",
        "    changed = torch.ones_like(best, dtype=torch.bool)\n"
        "    changed[1:] = best[1:] != best[:-1]\n"
        "    keep = changed & (best != blank)\n"
        "    decoded = [best[:n, i][keep[:n, i]].tolist() for i, n in enumerate(lengths)]\n",
        "    decoded = []\n"
        "    for i, n in enumerate(lengths):\n"
        "        labels = [c for c in best[:n, i].tolist() if c != blank]\n"
        "        decoded.append([c for j, c in enumerate(labels) if j == 0 or c != labels[j - 1]])\n",
        "merge repeats first, then drop blanks",
        (T + "test_greedy_merges_repeats_then_drops_blanks",),
    ),
    Mutant(
        "Beam search with one score per prefix",
        "                elif prefix and label == prefix[-1]:\n",
        "                elif False:\n",
        "keep two scores per prefix",
        (T + "test_beam_search_finds_the_labelling_greedy_the_path",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Allowing the skip between two EQUAL labels",
        "which states may skip is decided by the given _skips (outside the marked regions); "
        "the recursion only applies the mask it is handed",
    ),
    NotAMutant(
        "Plain probabilities instead of logs",
        "a probability-space recursion is a rewrite of alpha_recursion, not one edit of it; "
        "the tests' long-sequence cases check that the loss stays finite",
    ),
    NotAMutant(
        "torch.logsumexp or logaddexp in an autograd recursion",
        "this lesson's CTC has a hand-written backward: autograd never differentiates the "
        "recursion, so logsumexp's NaN gradient at −inf cannot arise in it",
    ),
]
