"""Helpers to compare a minimod module or function with its torch twin."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from strategies import TOLERANCES


def tolerance(dtype: torch.dtype, factor: float = 1.0) -> dict:
    tol = TOLERANCES[dtype]
    return dict(rtol=tol["rtol"] * factor, atol=tol["atol"] * factor)


def assert_same_state_dict_layout(mine, twin) -> None:
    """Identical keys (in any order) and identical shapes."""
    ours = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in twin.state_dict().items()}
    assert ours == theirs, f"state_dict layout differs:\n minimod: {ours}\n torch:   {theirs}"


def load_into_twin(mine, twin) -> None:
    """Give the twin minimod's weights (checks the layout and that loading works)."""
    assert_same_state_dict_layout(mine, twin)
    twin.load_state_dict(mine.state_dict())


def assert_same_forward_backward(
    mine: Callable,
    twin: Callable,
    inputs: Sequence[torch.Tensor],
    mine_params: Sequence[tuple[str, torch.Tensor]] = (),
    twin_params: Sequence[tuple[str, torch.Tensor]] = (),
    factor: float = 1.0,
) -> None:
    """Same outputs, same gradients for every floating input and every named parameter.

    Gradients are taken of ``(out * w).sum()`` with a fixed random ``w`` so that every output
    element matters differently (a plain ``sum`` hides permuted outputs).
    """
    ours_in = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    theirs_in = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    ours, theirs = mine(*ours_in), twin(*theirs_in)
    assert ours.shape == theirs.shape, f"output shape {tuple(ours.shape)} != {tuple(theirs.shape)}"
    assert ours.dtype == theirs.dtype, f"output dtype {ours.dtype} != {theirs.dtype}"
    tol = tolerance(theirs.dtype, factor)
    torch.testing.assert_close(ours, theirs, **tol, msg=lambda m: f"forward differs\n{m}")
    if not theirs.requires_grad:
        return
    weights = torch.randn(
        theirs.shape, dtype=theirs.dtype, generator=torch.Generator().manual_seed(1234)
    )
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    for i, (a, b) in enumerate(zip(ours_in, theirs_in, strict=True)):
        if b.grad is not None:
            assert a.grad is not None, f"input {i} got no gradient"
            torch.testing.assert_close(
                a.grad, b.grad, **tol, msg=lambda m, i=i: f"gradient of input {i} differs\n{m}"
            )
    theirs_by_name = dict(twin_params)
    for name, param in mine_params:
        expected = theirs_by_name[name].grad
        if expected is None:
            assert param.grad is None, f"parameter {name} got a gradient, torch's did not"
            continue
        assert param.grad is not None, f"parameter {name} got no gradient"
        torch.testing.assert_close(
            param.grad, expected, **tol, msg=lambda m, n=name: f"gradient of {n} differs\n{m}"
        )


def assert_module_matches_twin(
    mine, twin, inputs: Sequence[torch.Tensor], factor: float = 1.0
) -> None:
    """Load minimod's weights into the twin, then compare forward and all gradients."""
    load_into_twin(mine, twin)
    assert_same_forward_backward(
        mine, twin, inputs, list(mine.named_parameters()), list(twin.named_parameters()), factor
    )
