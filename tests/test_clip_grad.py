"""clip_grad_norm_ and clip_grad_value_ against torch.nn.utils: the same returned norm and the
same gradients afterwards, for norm types 2, 1, inf and 3, below and above max_norm.

Tolerance: ``TOLERANCES[dtype]`` relative, with an absolute part of rtol × the largest entry
(gradients are drawn at scales from 0.01 to 10).
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

import impl
from strategies import TOLERANCES, dtypes, scales, seeds, shapes


@st.composite
def gradient_sets(draw) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Parameters and their gradients; some parameters (not all) have no gradient."""
    dtype, scale = draw(dtypes), draw(scales)
    param_shapes = draw(st.lists(shapes(0, 3, 5), min_size=1, max_size=4))
    gen = torch.Generator().manual_seed(draw(seeds))
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in param_shapes]
    grads = [torch.randn(s, generator=gen, dtype=dtype) * scale for s in param_shapes]
    missing = draw(st.lists(st.booleans(), min_size=len(grads), max_size=len(grads)))
    # The first parameter always has a gradient, so there is something to clip.
    missing[0] = False
    grads = [None if skip else g for g, skip in zip(grads, missing, strict=True)]
    return params, grads


def with_grads(params, grads) -> list[torch.Tensor]:
    copies = [p.clone().requires_grad_() for p in params]
    for p, g in zip(copies, grads, strict=True):
        p.grad = None if g is None else g.clone()
    return copies


def close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    rtol = TOLERANCES[expected.dtype]["rtol"]
    finite = expected[expected.isfinite()]
    atol = rtol * float(finite.abs().max()) if finite.numel() else 0.0
    torch.testing.assert_close(
        actual, expected, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what}\n{m}"
    )


def joint_norm(grads, norm_type: float) -> float:
    present = [g.flatten() for g in grads if g is not None]
    return float(torch.linalg.vector_norm(torch.cat(present), norm_type))


# -- deliberately flawed versions, to name a mistake when one is recognised ------------------


def clip_each_separately(params, max_norm, norm_type=2.0):
    for p in params:
        if p.grad is not None:
            norm = torch.linalg.vector_norm(p.grad, norm_type)
            p.grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
    return norm


def clip_without_clamp(params, max_norm, norm_type=2.0):
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, norm_type)
                                                  for g in grads]), norm_type)  # fmt: skip
    for g in grads:
        g.mul_(max_norm / (total + 1e-6))
    return total


HINTS = {
    clip_each_separately: "each gradient was clipped by its own norm: compute one total norm "
    "over all gradients together and scale them all by the same coefficient",
    clip_without_clamp: "gradients were scaled although their norm was below max_norm: clamp "
    "the coefficient max_norm / (total + 1e-6) at 1 (clipping only ever shrinks)",
}


def assert_clips_like_torch(clip, params, grads, max_norm: float, norm_type: float) -> None:
    ours, theirs = with_grads(params, grads), with_grads(params, grads)
    ours_norm = clip(iter(ours), max_norm, norm_type)  # a generator, like model.parameters()
    theirs_norm = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if b.grad is None:
            assert a.grad is None, f"parameter {i} had no gradient; it should still have none"
            continue
        try:
            close(a.grad, b.grad, f"gradient {i} after clipping differs from torch's")
        except AssertionError as error:
            hint = diagnose(ours, params, grads, max_norm, norm_type)
            raise AssertionError(hint + str(error)) from None
    assert isinstance(ours_norm, torch.Tensor), "clip_grad_norm_ returns the total norm as a tensor"
    close(ours_norm, theirs_norm, "the returned total norm differs from torch's")


def diagnose(ours, params, grads, max_norm: float, norm_type: float) -> str:
    """The hints of the flawed versions whose gradients equal ours."""
    hints = ""
    for flawed, hint in HINTS.items():
        suspect = with_grads(params, grads)
        flawed(suspect, max_norm, norm_type)
        if all(
            a.grad is None or torch.allclose(a.grad, b.grad, **TOLERANCES[a.grad.dtype])
            for a, b in zip(ours, suspect, strict=True)
        ):
            hints += f"hint: {hint}\n"
    return hints


NORM_TYPES = [2.0, 1.0, math.inf, 3.0]


@given(
    problem=gradient_sets(),
    norm_type=st.sampled_from(NORM_TYPES),
    ratio=st.sampled_from([0.1, 0.5, 2.0, 10.0]),  # max_norm = ratio × the joint norm
)
@example(problem=([torch.ones(())], [torch.full((), 3.0)]), norm_type=2.0, ratio=0.5)
@example(problem=([torch.ones(1, 1)], [torch.full((1, 1), -4.0)]), norm_type=math.inf, ratio=0.1)
def test_clip_grad_norm_matches_torch(problem, norm_type, ratio):
    params, grads = problem
    max_norm = ratio * joint_norm(grads, norm_type)
    assert_clips_like_torch(impl.utils.clip_grad_norm_, params, grads, max_norm, norm_type)


def test_clip_grad_norm_defaults_and_single_tensor():
    param = torch.zeros(4, requires_grad=True)
    param.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    twin = param.detach().clone().requires_grad_()
    twin.grad = param.grad.clone()
    ours = impl.utils.clip_grad_norm_(param, 1.0)  # one tensor, norm_type 2 by default
    theirs = torch.nn.utils.clip_grad_norm_(twin, 1.0)
    close(ours, theirs, "the returned norm differs")
    close(param.grad, twin.grad, "the clipped gradient differs")


def test_clip_grad_norm_without_gradients_returns_zero():
    params = [torch.zeros(3, requires_grad=True)]
    norm = impl.utils.clip_grad_norm_(params, 1.0)
    assert isinstance(norm, torch.Tensor) and float(norm) == 0.0
    assert float(torch.nn.utils.clip_grad_norm_(params, 1.0)) == 0.0
    assert params[0].grad is None


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_nonfinite_gradients(bad, norm_type):
    params = [torch.zeros(2), torch.zeros(3)]
    grads = [torch.tensor([1.0, bad]), torch.ones(3)]
    # By default both scale by the non-finite norm anyway.
    ours, theirs = with_grads(params, grads), with_grads(params, grads)
    close(
        impl.utils.clip_grad_norm_(ours, 1.0, norm_type),
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type),
        "the returned non-finite norm differs",
    )
    for a, b in zip(ours, theirs, strict=True):
        close(a.grad, b.grad, "gradients scaled by a non-finite norm differ")
    # With error_if_nonfinite=True both refuse, and leave the gradients alone.
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_(with_grads(params, grads), 1.0, norm_type, True)
    ours = with_grads(params, grads)
    with pytest.raises(RuntimeError):
        impl.utils.clip_grad_norm_(ours, 1.0, norm_type, error_if_nonfinite=True)
    for a, g in zip(ours, grads, strict=True):
        torch.testing.assert_close(
            a.grad, g, rtol=0, atol=0, equal_nan=True,
            msg="error_if_nonfinite=True: raise before scaling any gradient",
        )  # fmt: skip


@given(problem=gradient_sets(), clip_value=st.sampled_from([0.0, 0.01, 0.5, 1.0, 100.0]))
def test_clip_grad_value_matches_torch(problem, clip_value):
    params, grads = problem
    ours, theirs = with_grads(params, grads), with_grads(params, grads)
    assert impl.utils.clip_grad_value_(iter(ours), clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if b.grad is None:
            assert a.grad is None, f"parameter {i} had no gradient; it should still have none"
        else:
            assert torch.equal(a.grad, b.grad), f"gradient {i}: entries must be clamped"


# -- the hints name each flawed version's mistake --------------------------------------------


@pytest.mark.reference_only
@pytest.mark.parametrize("flawed, ratio", [(clip_each_separately, 0.5), (clip_without_clamp, 3.0)])
def test_hint_names_the_mistake(flawed, ratio):
    params = [torch.zeros(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)]
    grads = [
        torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64),
        torch.ones(2, dtype=torch.float64),
    ]
    max_norm = ratio * joint_norm(grads, 2.0)
    with pytest.raises(AssertionError, match="hint: " + re.escape(HINTS[flawed][:30])):
        assert_clips_like_torch(flawed, params, grads, max_norm, 2.0)


@pytest.mark.reference_only
def test_bad_arguments_raise_clear_errors():
    from minimod.nn.utils import clip_grad_norm_, clip_grad_value_

    param = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        clip_grad_norm_([param], -1.0)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        clip_grad_value_([param], -0.5)
