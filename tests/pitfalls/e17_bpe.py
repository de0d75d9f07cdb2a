"""Lesson 17's pitfalls: byte-pair encoding."""

from pitfalls import Mutant

T = "tests/test_tokenizers.py::"

MUTANTS = [
    Mutant(
        "Overlapping merges",
        "i += 2  # both ids are used up by this merge",
        "i += 1",
        "[256, 9]",
        (T + "test_merge_pair_replaces_each_occurrence_left_to_right",),
    ),
    Mutant(
        "Counting each chunk once instead of frequency times",
        "counts[pair] += frequency",
        "counts[pair] += 1",
        "each distinct chunk counted once",
        (T + "test_count_pairs_weights_each_chunk_by_its_frequency",),
    ),
    Mutant(
        "Ties broken by dictionary order",
        "best = min(counts, key=lambda pair: (-counts[pair], pair))",
        "best = max(counts, key=counts.get)",
        "among equally frequent pairs take the smallest",
        (T + "test_learn_merges_matches_the_naive_reference",),
    ),
    Mutant(
        "Encoding by applying merges left to right",
        "pair = min(pairwise(ids), key=lambda p: ranks.get(p, len(ranks)))",
        "pair = next((p for p in pairwise(ids) if p in ranks), None)",
        "merge the pair of LOWEST rank",
        (T + "test_apply_merges_equals_applying_every_merge_in_order",),
    ),
]
