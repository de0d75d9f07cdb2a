"""``minimod.train.metrics.calibration``: the expected calibration error and the reliability
diagram's bins, against a plain loop over the examples and on cases whose answer is known."""

from __future__ import annotations

import pytest
import torch

from minimod.train.metrics import calibration

pytestmark = pytest.mark.reference_only


def loop_ece(probabilities: torch.Tensor, target: torch.Tensor, bins: int) -> float:
    """Guo et al.'s definition, one example at a time."""
    groups: dict[int, list[tuple[float, float]]] = {}
    for row, truth in zip(probabilities.tolist(), target.tolist(), strict=True):
        confidence = max(row)
        b = min(bins - 1, max(0, -(-confidence * bins // 1) - 1))  # ceil, then 0-based
        groups.setdefault(int(b), []).append((confidence, float(row.index(confidence) == truth)))
    n = len(target)
    return sum(
        len(g) / n * abs(sum(c for _, c in g) / len(g) - sum(p for p, _ in g) / len(g))
        for g in groups.values()
    )


@pytest.mark.parametrize("bins", [1, 5, 10, 15])
def test_ece_equals_the_definition(bins):
    g = torch.Generator().manual_seed(bins)
    probabilities = torch.randn(500, 4, generator=g).mul(2).softmax(-1)
    target = torch.randint(0, 4, (500,), generator=g)
    found = calibration(probabilities, target, bins)
    assert found["ece"] == pytest.approx(loop_ece(probabilities, target, bins), abs=1e-12)
    assert sum(found["count"]) == 500 and len(found["accuracy"]) == bins


def test_known_answers():
    sure = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert calibration(sure, torch.tensor([0, 1]))["ece"] == 0.0
    wrong = torch.tensor([[0.9, 0.1]] * 4)  # 90% sure, always wrong
    found = calibration(wrong, torch.tensor([1, 1, 1, 1]))
    assert found["ece"] == pytest.approx(0.9)
    assert found["count"][8] == 4 and found["accuracy"][8] == 0.0 and found["accuracy"][0] is None
    half = torch.tensor([[0.75, 0.25]] * 4)  # 75% sure, right 3 times in 4: calibrated
    assert calibration(half, torch.tensor([0, 0, 0, 1]))["ece"] == pytest.approx(0.0)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        calibration(torch.ones(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="same number"):
        calibration(torch.ones(3, 2) / 2, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        calibration(torch.ones(2, 2) / 2, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="bins"):
        calibration(torch.ones(2, 2) / 2, torch.tensor([0, 1]), bins=0)
