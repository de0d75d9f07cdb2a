"""Lesson 26's pitfalls: data parallelism."""

from pitfalls import Mutant, NotAMutant

T = "tests/test_distributed.py::"

MUTANTS = [
    Mutant(
        "Summing the gradients without dividing by the world size",
        "            flat /= world\n",
        "",
        "not averaged",
        (T + "test_gradients_are_averaged_over_the_ranks",),
    ),
    Mutant(
        "Buckets that depend on which grads exist",
        "            if not p.requires_grad:\n                continue\n",
        "            if p.grad is None:\n                continue\n",
        "buckets that depend on which grads exist",
        (T + "test_buckets_fill_greedily_per_dtype",),
    ),
    Mutant(
        "Shuffling with a per-rank seed",
        "generator = torch.Generator().manual_seed(self.seed + epoch)",
        "generator = torch.Generator().manual_seed(self.seed + epoch + self.rank)",
        "the ranks' shards overlap",
        (T + "test_sampler_matches_torch",),
    ),
    Mutant(
        "Forgetting set_epoch with torch's sampler",
        "generator = torch.Generator().manual_seed(self.seed + epoch)",
        "generator = torch.Generator().manual_seed(self.seed)",
        "set_epoch did not change the order",
        (T + "test_sampler_matches_torch",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Every rank writing the checkpoint",
        "a mistake in the training run's rank-0 bookkeeping (the Trainer, lesson 18), not in "
        "this lesson's broadcast, buckets, sampler or batch sharding",
    ),
]
