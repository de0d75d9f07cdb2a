"""Lesson 4's pitfalls: cross-entropy, MSE, BCE with logits."""

from pitfalls import Mutant

T = "tests/test_loss.py::"

MUTANTS = [
    Mutant(
        "Softmax before cross_entropy",
        "logp = log_softmax(input, dim=1)",
        "logp = log_softmax(input.softmax(1), dim=1)",
        "double softmax",
        (T + "test_cross_entropy_class_indices_match_torch",),
    ),
    Mutant(
        '"mean" dividing by N when there are ignored targets or class weights',
        "loss = loss.sum() / count",
        "loss = loss.sum() / loss.numel()",
        "must not count in the mean",
        (T + "test_cross_entropy_ignore_index_matches_torch",),
    ),
    Mutant(
        "Label smoothing spread over C − 1 classes",
        "(label_smoothing / num_classes) * reduce(smooth)",
        "(label_smoothing / (num_classes - 1)) * reduce(smooth)",
        "over all C classes",
        (T + "test_cross_entropy_class_indices_match_torch",),
    ),
    Mutant(
        "sigmoid(x).log() in BCE",
        "softplus_neg = torch.logaddexp(torch.zeros_like(input), -input)",
        "softplus_neg = -torch.sigmoid(input).log()",
        "log(sigmoid(x)) underflows",
        (T + "test_bce_with_logits_matches_torch",),
    ),
    Mutant(
        "Classes on the last axis for (N, C, d1) inputs",
        "logp = log_softmax(input, dim=1)",
        "logp = log_softmax(input, dim=-1)",
        "the classes are on dim 1",
        (T + "test_cross_entropy_class_indices_match_torch",),
    ),
]
