"""The failure messages of tests/compare.py, which most lesson tests use to compare forward
values and gradients with the torch twin: they name the tensor, give the largest errors, a
constant factor when there is one, and got vs expected on a few elements."""

from __future__ import annotations

import math

import pytest
import torch

from compare import _input_names, assert_same_forward_backward

pytestmark = pytest.mark.reference_only


def scale_gradient(t: torch.Tensor, factor: float) -> torch.Tensor:
    """``t`` in the forward pass; its gradient multiplied by ``factor`` in the backward."""
    return t * factor - (t * (factor - 1)).detach()


def attention(query, key, value):
    return torch.softmax(query @ key.transpose(-1, -2), dim=-1) @ value


def inputs():
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 4, generator=generator, dtype=torch.float64) for _ in range(3)]


def failure(mine, twin, tensors, *params) -> str:
    with pytest.raises(AssertionError) as caught:
        assert_same_forward_backward(mine, twin, tensors, *params)
    return str(caught.value)


def test_a_gradient_off_by_root_d_names_the_input_and_the_factor():
    def mine(query, key, value):
        return attention(query, scale_gradient(key, math.sqrt(8)), value)

    message = failure(mine, attention, inputs())
    first = message.splitlines()[0]
    assert first.startswith("gradient of key (input 1) differs at "), message
    assert "max abs error" in first and "max rel error" in first, message
    assert first.endswith("off by a factor ≈ 2.83 (≈ √8)"), message
    shown = message.splitlines()[1:]
    assert len(shown) == 3 and all(" got " in s and ", expected " in s for s in shown), message


def test_the_reciprocal_and_a_flipped_sign_are_named():
    def halved(query, key, value):
        return attention(scale_gradient(query, 0.5), key, value)

    def flipped(query, key, value):
        return attention(query, key, scale_gradient(value, -1.0))

    assert "query (input 0)" in failure(halved, attention, inputs())
    assert "off by a factor ≈ 0.5 (≈ 1/2)" in failure(halved, attention, inputs())
    assert "(≈ -1: the sign is flipped)" in failure(flipped, attention, inputs())


def test_no_factor_is_claimed_when_the_error_is_not_a_constant_ratio():
    def noisy(query, key, value):
        noise = torch.randn(key.shape, dtype=key.dtype, generator=torch.Generator().manual_seed(3))
        return attention(query, key + (key * noise - (key * noise).detach()), value)

    message = failure(noisy, attention, inputs())
    assert message.startswith("gradient of key (input 1) differs"), message
    assert "factor" not in message, message


def test_a_parameter_gradient_names_the_parameter():
    weight = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    twin_weight = weight.detach().clone().requires_grad_()

    def mine(x):
        return x @ scale_gradient(weight, 2.0)

    message = failure(
        mine,
        lambda x: x @ twin_weight,
        inputs()[:1],
        [("weight", weight)],
        [("weight", twin_weight)],
    )
    assert message.startswith("gradient of parameter weight differs"), message
    assert "off by a factor ≈ 2 (≈ 2)" in message, message


def test_a_wrong_forward_is_the_output_with_the_worst_elements():
    message = failure(lambda x: x * 1.5, lambda x: x, inputs()[:1])
    assert message.startswith("the output differs at 24 of 24 elements"), message
    assert "off by a factor ≈ 1.5" in message and "  at (" in message, message


def test_inputs_are_numbered_when_the_signature_cannot_be_read():
    assert _input_names(torch.tanh, 1) == ["input 0"]
    assert _input_names(lambda x, *rest: x, 2) == ["x (input 0)", "input 1"]
