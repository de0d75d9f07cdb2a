"""The purity rule (docs/architecture.md §2): minimod/, exercises/ and solutions/ never use
torch.nn, torch.nn.functional or torch.optim -- neither by import nor by attribute
(``torch.nn.X``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.reference_only

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("minimod", "exercises", "solutions")
FORBIDDEN = ("torch.nn", "torch.optim")


def _forbidden(dotted: str) -> bool:
    return any(dotted == name or dotted.startswith(name + ".") for name in FORBIDDEN)


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``torch.nn.functional`` for the Attribute chain torch -> nn -> functional (else None);
    a name bound by ``import torch as t`` counts as ``torch``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([aliases.get(node.id, node.id), *reversed(parts)])


def scan(source: str, filename: str = "<source>") -> list[str]:
    """Every use of torch.nn / torch.optim in ``source``, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    inner = set()  # Attributes that are part of a longer chain: report the chain once
    aliases = {}  # import torch as t
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            inner.add(id(node.value))
        if isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname})
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _forbidden(node.module):
                found.append((node.lineno, f"from {node.module} import ..."))
            elif node.module == "torch":
                found += [
                    (node.lineno, f"from torch import {a.name}")
                    for a in node.names
                    if a.name in ("nn", "optim")
                ]
        elif isinstance(node, ast.Attribute) and id(node) not in inner:
            dotted = _dotted(node, aliases)
            if dotted and _forbidden(dotted):
                found.append((node.lineno, dotted))
    return [f"{filename}:{line}: {what}" for line, what in sorted(found)]


def python_files() -> list[Path]:
    return sorted(
        p for folder in CHECKED if (ROOT / folder).is_dir() for p in (ROOT / folder).rglob("*.py")
    )


def test_minimod_exercises_and_solutions_do_not_use_torch_nn_or_optim():
    files = python_files()
    assert any(p.parts[-2:] == ("nn", "module.py") for p in files), "minimod/ was not found"
    problems = []
    for path in files:
        problems += scan(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not problems, (
        "torch.nn / torch.optim used where only tensor ops and autograd are allowed "
        "(docs/architecture.md §2):\n  " + "\n  ".join(problems)
    )


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import torch.nn", "import torch.nn"),
        ("import torch.nn.functional as F", "import torch.nn.functional"),
        ("import torch.optim", "import torch.optim"),
        ("import os, torch.optim.lr_scheduler", "import torch.optim.lr_scheduler"),
        ("from torch.nn import Linear", "from torch.nn import ..."),
        ("from torch.nn.functional import relu", "from torch.nn.functional import ..."),
        ("from torch.optim import SGD", "from torch.optim import ..."),
        ("from torch.optim.lr_scheduler import LambdaLR", "from torch.optim.lr_scheduler"),
        ("from torch import nn", "from torch import nn"),
        ("from torch import optim", "from torch import optim"),
        ("from torch import tensor, nn as tnn", "from torch import nn"),
        ("import torch\ny = torch.nn.functional.relu(x)", "torch.nn.functional.relu"),
        ("import torch\nclass M(torch.nn.Module): pass", "torch.nn.Module"),
        ("import torch\nopt = torch.optim.AdamW(ps)", "torch.optim.AdamW"),
        ("import torch\np = torch.nn.Parameter", "torch.nn.Parameter"),
        ("import torch\nf = torch.nn", "torch.nn"),
        ("def f(x):\n    import torch.nn\n    return x", "import torch.nn"),
        ("import torch as t\ny = t.nn.functional.relu(x)", "torch.nn.functional.relu"),
    ],
)
def test_scanner_catches(source, expected):
    found = scan(source, "x.py")
    assert len(found) == 1 and expected in found[0], found
    line = next(
        i for i, text in enumerate(source.splitlines(), 1) if "nn" in text or "optim" in text
    )
    assert found[0].startswith(f"x.py:{line}:"), f"wrong line: {found}"


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ny = torch.relu(x)",
        "import torch\nfrom torch import autograd\ng = torch.autograd.grad",
        "from minimod import nn\nlayer = nn.Linear(2, 2)",
        "from minimod.nn import functional as F",
        "import torch\nx = torch.nnz",  # a different name that merely starts with nn
        "import torch\ns = 'torch.nn.functional is banned'  # only code counts",
        "from . import nn",
        "import torch\nn = torch.compile",
    ],
)
def test_scanner_allows(source):
    assert scan(source, "x.py") == []
