"""Lesson 15's pitfalls: batch normalisation."""

from pitfalls import Mutant, NotAMutant

T = "tests/test_batchnorm.py::"
TWIN = (T + "test_batch_norm_matches_torch_over_training_and_eval",)
GRADIENTS = (T + "test_training_gradients_match_torch_with_hints",)

MUTANTS = [
    Mutant(
        "x.var() is unbiased",
        "var = (centered * centered).mean(dims, keepdim=True)  # biased: divide by n",
        "var = x.var(dims, keepdim=True)",
        "normalised with the unbiased variance",
        TWIN,
    ),
    Mutant(
        "x.var() is unbiased",
        "unbiased = var * (count / (count - 1))",
        "unbiased = var",
        "running_var looks updated with the biased batch variance",
        TWIN,
    ),
    Mutant(
        "Momentum backwards",
        "running_mean.lerp_(mean.to(running_mean.dtype), momentum)",
        "running_mean.lerp_(mean.to(running_mean.dtype), 1 - momentum)",
        "momentum is applied the wrong way round",
        TWIN,
    ),
    Mutant(
        "Statistics over the batch axis only",
        "        mean = x.mean(dims, keepdim=True)\n"
        "        centered = x - mean\n"
        "        var = (centered * centered).mean(dims, keepdim=True)",
        "        mean = x.mean(0, keepdim=True)\n"
        "        centered = x - mean\n"
        "        var = (centered * centered).mean(0, keepdim=True)",
        "n = N · H · W",
        GRADIENTS,
    ),
    Mutant(
        "Updating the running statistics in eval mode",
        "use_batch_stats = self.training or not self.track_running_stats",
        "use_batch_stats = True",
        "normalise with running_mean and running_var",
        TWIN,
    ),
    Mutant(
        "momentum=None computed as 1 / (num_batches_tracked + 1)",
        "momentum = 1.0 / float(self.num_batches_tracked)",
        "momentum = 1.0 / float(self.num_batches_tracked + 1)",
        "cumulative average",
        TWIN,
    ),
    Mutant(
        "A hand-written backward that treats μ and σ² as constants",
        "grad_input = (centered * b).add_(c).addcmul_(dy, a)",
        "grad_input = dy * a",
        "μ and σ² depend on every x of the channel",
        GRADIENTS,
    ),
    Mutant(
        "A hand-written backward that treats μ and σ² as constants",
        "b = -a * rstd * rstd * sum_dy_xc / count",
        "b = 0 * a",
        "misses the path through σ²",
        GRADIENTS,
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "In your own projects: forgetting model.eval()",
        "a mistake in code that uses the layer (an evaluation loop), not in the layer this "
        "lesson writes: the lesson's tests check that eval mode uses the running statistics",
    ),
]
