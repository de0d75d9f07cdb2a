"""Helpers to compare a minimod module or function with its torch twin."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import torch

from strategies import TOLERANCES


def tolerance(dtype: torch.dtype, factor: float = 1.0) -> dict:
    tol = TOLERANCES[dtype]
    return dict(rtol=tol["rtol"] * factor, atol=tol["atol"] * factor)


# A gradient off by one of these factors is a classic slip (a missing √d, a doubled term, a
# flipped sign); the message names it.
_NAMED_FACTORS = sorted(
    [(float(k), str(k)) for k in range(2, 65)]
    + [(math.sqrt(k), f"√{k}") for k in range(2, 1025) if math.isqrt(k) ** 2 != k]
    + [(-1.0, "-1: the sign is flipped")]
)
SHOWN_ELEMENTS = 3


def _factor_hint(got: torch.Tensor, expected: torch.Tensor) -> str:
    """ ", off by a factor ≈ 2.83 (≈ √8)" when got / expected is nearly one constant, else ""."""
    got, expected = got.detach().double().flatten(), expected.detach().double().flatten()
    scale = expected.abs().max() if expected.numel() else 0
    big = expected.abs() > 1e-3 * scale
    if not scale or not torch.isfinite(got).all() or int(big.sum()) < 2:
        return ""
    ratios = got[big] / expected[big]
    factor = ratios.median().item()
    if factor == 0 or abs(factor - 1) < 1e-3 or (ratios - factor).abs().max() > 1e-3 * abs(factor):
        return ""
    names = [f"1/{n}" for v, n in _NAMED_FACTORS if v > 0 and abs(1 / v - factor) < 1e-3 * factor]
    names += [n for v, n in _NAMED_FACTORS if abs(v - factor) < 1e-3 * abs(factor)]
    return f", off by a factor ≈ {factor:.3g}" + (f" (≈ {names[0]})" if names else "")


def _difference(
    what: str, got: torch.Tensor, expected: torch.Tensor, tol: dict, detail: str
) -> str:
    """Why ``got`` is not ``expected``, in plain words: which tensor, the largest errors, a
    constant factor if there is one, and got vs expected where they differ most."""
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return f"{what} differs: {detail}"
    a, b = got.detach().double(), expected.detach().double()
    error = (a - b).abs().nan_to_num(nan=math.inf)
    nonzero = b != 0  # a relative error against an expected 0 says nothing
    relative = (error[nonzero] / b[nonzero].abs()).max().item() if nonzero.any() else math.inf
    bad = ~torch.isclose(got.detach(), expected.detach(), **tol)
    lines = [
        f"{what} differs at {int(bad.sum())} of {bad.numel()} elements: max abs error "
        f"{error.max().item():.3g}, max rel error {relative:.3g}{_factor_hint(got, expected)}"
    ]
    for flat in error.flatten().argsort(descending=True)[:SHOWN_ELEMENTS].tolist():
        index = tuple(torch.unravel_index(torch.tensor(flat), a.shape)) if a.dim() else ()
        where = "(" + ", ".join(str(int(i)) for i in index) + ")"
        lines.append(f"  at {where}: got {a.flatten()[flat]:.6g}, expected {b.flatten()[flat]:.6g}")
    return "\n".join(lines)


def _input_names(function: Callable, count: int) -> list[str]:
    """The names of ``function``'s first ``count`` positional parameters ("input 0" ... where
    its signature cannot be read), so a message can say "gradient of key (input 1)"."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = []
    for i in range(count):
        if i < len(parameters) and parameters[i].kind in positional:
            names.append(f"{parameters[i].name} (input {i})")
        else:
            names.append(f"input {i}")
    return names


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
    torch.testing.assert_close(
        ours, theirs, **tol, msg=lambda m: _difference("the output", ours, theirs, tol, m)
    )
    if not theirs.requires_grad:
        return
    weights = torch.randn(
        theirs.shape, dtype=theirs.dtype, generator=torch.Generator().manual_seed(1234)
    )
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    names = _input_names(twin, len(inputs))
    for name, a, b in zip(names, ours_in, theirs_in, strict=True):
        if b.grad is not None:
            assert a.grad is not None, f"{name} got no gradient"
            torch.testing.assert_close(
                a.grad,
                b.grad,
                **tol,
                msg=lambda m, n=name, a=a, b=b: _difference(
                    f"gradient of {n}", a.grad, b.grad, tol, m
                ),
            )
    theirs_by_name = dict(twin_params)
    for name, param in mine_params:
        expected = theirs_by_name[name].grad
        if expected is None:
            assert param.grad is None, f"parameter {name} got a gradient, torch's did not"
            continue
        assert param.grad is not None, f"parameter {name} got no gradient"
        torch.testing.assert_close(
            param.grad,
            expected,
            **tol,
            msg=lambda m, n=name, p=param, e=expected: _difference(
                f"gradient of parameter {n}", p.grad, e, tol, m
            ),
        )


def assert_module_matches_twin(
    mine, twin, inputs: Sequence[torch.Tensor], factor: float = 1.0
) -> None:
    """Load minimod's weights into the twin, then compare forward and all gradients."""
    load_into_twin(mine, twin)
    assert_same_forward_backward(
        mine, twin, inputs, list(mine.named_parameters()), list(twin.named_parameters()), factor
    )
