"""Lesson 23's pitfalls: class imbalance, weighted sampling and focal loss."""

from pitfalls import Mutant, NotAMutant

T = "tests/test_imbalance.py::"

MUTANTS = [
    Mutant(
        "Weights of 1 / n_c without the n / k",
        "weights = torch.where(present, len(labels) / (k * counts.clamp(min=1)), 0.0)",
        "weights = torch.where(present, 1 / counts.clamp(min=1), 0.0)",
        "scale them by n / k",
        (T + "test_class_weights_match_scikit_learns_balanced_formula",),
    ),
    Mutant(
        "k = num_classes although some classes never occur",
        "k = present.sum()",
        "k = num_classes",
        "PRESENT in the labels",
        (T + "test_class_weights_match_scikit_learns_balanced_formula",),
    ),
    Mutant(
        "Sampling proportional to the count instead of 1 / count",
        "weights = 1.0 / counts[self.labels].double()  # each class's weights sum to 1",
        "weights = counts[self.labels].double()",
        "not to the count",
        (T + "test_weighted_sampler_draws_the_classes_equally_often",),
    ),
    Mutant(
        "Focal loss: dropping the (1 − p_t)^γ factor",
        "modulating = (-torch.expm1(logp_t)).clamp_min(tiny) ** gamma",
        "modulating = torch.ones_like(logp_t)",
        "multiplies each term by (1 - p_t) ** gamma",
        (T + "test_focal_loss_matches_the_formula_and_its_gradient",),
    ),
    Mutant(
        "Focal loss: dropping the (1 − p_t)^γ factor",
        "modulating = (-torch.expm1(logp_t)).clamp_min(tiny) ** gamma",
        "modulating = logp_t.exp() ** gamma",
        "not p_t ** gamma",
        (T + "test_focal_loss_matches_the_formula_and_its_gradient",),
    ),
]

EXCEPTIONS = [
    NotAMutant(
        "Class weights AND a balanced sampler together",
        "a mistake in how a training run combines class_weights and WeightedSampler, not in "
        "either of them: each is right on its own, so no edit of this lesson's code shows it",
    ),
    NotAMutant(
        "Rebalancing the validation or test set",
        "a mistake in an evaluation setup, not in this lesson's code (class_weights, "
        "WeightedSampler, focal loss)",
    ),
]
