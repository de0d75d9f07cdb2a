"""The layer graph of docs/architecture.md, checked on the source: every ``import`` in minimod/,
including lazy imports inside functions, points down the graph, and no module imports itself
back through others (no import cycle).

    cli -> tasks -> {train, models, data, optim} -> nn -> torch
    cli -> workbook            (the workbook reads minimod's files; no library code imports it)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.reference_only

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "minimod"

# package -> the packages its modules may import ("minimod" is the root: __version__ only).
ALLOWED = {
    "cli": {"cli", "tasks", "workbook"},
    "tasks": {"tasks", "train", "models", "data", "optim", "nn"},
    "train": {"train", "nn"},
    "models": {"models", "nn"},
    "data": {"data", "nn"},
    "optim": {"optim", "nn"},
    "nn": {"nn"},
    "workbook": {"workbook", "nn", "models", "data"},  # the book's diagrams run minimod
    "__main__": {"cli"},
    "__init__": set(),
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    """minimod.nn.linear -> nn; minimod -> __init__; minimod.__main__ -> __main__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(base: str, name: str, root: Path) -> str:
    """``from base import name``: the submodule base.name if it is a file, else base."""
    candidate = root.parent.joinpath(*f"{base}.{name}".split("."))
    if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
        return f"{base}.{name}"
    return base


def imports(source: str, module: str, root: Path, is_package: bool = False) -> list[tuple]:
    """Every (line, imported minimod module) of ``source``, at any depth in the file."""
    top = root.name
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == top]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x / from ..nn import y
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != top:
                continue
            found += [(node.lineno, _resolve(base, a.name, root)) for a in node.names]
    return found


def import_graph(root: Path = LIBRARY) -> dict[str, list[tuple[int, str]]]:
    """module -> [(line, imported module)] for every .py file under ``root``."""
    graph = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        source = path.read_text(encoding="utf-8")
        graph[name] = imports(source, name, root, path.name == "__init__.py")
    return graph


def violations(graph: dict[str, list[tuple[int, str]]]) -> list[str]:
    problems = []
    for module, edges in graph.items():
        allowed = ALLOWED.get(layer(module))
        if allowed is None:
            problems.append(f"{module}: package {layer(module)!r} is not in the layer graph")
            continue
        for line, target in edges:
            if layer(target) != "__init__" and layer(target) not in allowed:
                problems.append(
                    f"{module}:{line} imports {target} ({layer(module)} may import only "
                    f"{', '.join(sorted(allowed)) or 'nothing of minimod'})"
                )
    return problems


def cycles(graph: dict[str, list[tuple[int, str]]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for _, target in graph.get(node, []):
            if target not in graph or target == node:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_every_import_points_down_the_layer_graph():
    graph = import_graph()
    assert "minimod.nn.module" in graph and "minimod.cli" in graph, "minimod/ was not found"
    problems = violations(graph)
    assert not problems, "imports against the layer graph (docs/architecture.md):\n  " + (
        "\n  ".join(problems)
    )


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "modules that import each other (directly or through others):\n  " + (
        "\n  ".join(" <-> ".join(component) for component in found)
    )


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "minimod"
    for relpath, source in {"__init__.py": "", **files}.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    "source, target",
    [
        ("from minimod.models import gpt", "minimod.models.gpt"),
        ("def f():\n    from minimod.tasks.run import pretrain\n    return pretrain", "tasks"),
        ("import minimod.train.loop", "minimod.train.loop"),
        ("from ..models.gpt import GPT", "minimod.models.gpt"),
        ("class A:\n    def m(self):\n        import minimod.cli", "minimod.cli"),
    ],
)
def test_an_upward_import_is_caught(tmp_path, source, target):
    root = _tree(
        tmp_path,
        {
            "nn/__init__.py": "",
            "nn/linear.py": source,
            "models/__init__.py": "",
            "models/gpt.py": "",
            "tasks/__init__.py": "",
            "tasks/run.py": "",
            "train/__init__.py": "",
            "train/loop.py": "",
            "cli/__init__.py": "",
        },
    )
    problems = violations(import_graph(root))
    assert len(problems) == 1 and problems[0].startswith("minimod.nn.linear:"), problems
    assert target in problems[0] and "nn may import only nn" in problems[0]


def test_allowed_imports_pass(tmp_path):
    root = _tree(
        tmp_path,
        {
            "nn/__init__.py": "from minimod.nn.linear import Linear",
            "nn/linear.py": "from minimod.nn import init\nimport torch",
            "nn/init.py": "",
            "models/__init__.py": "",
            "models/gpt.py": "from minimod import nn\nfrom minimod.nn import functional",
            "tasks/__init__.py": "",
            "tasks/run.py": "from minimod.models.gpt import GPT\nfrom minimod import __version__",
        },
    )
    graph = import_graph(root)
    assert violations(graph) == []
    assert (1, "minimod.nn.init") in graph["minimod.nn.linear"]


def test_a_cycle_is_caught(tmp_path):
    root = _tree(
        tmp_path,
        {
            "cli/__init__.py": "from minimod.cli import finetune",
            "cli/finetune.py": "def f():\n    from minimod.cli import main",
            "nn/__init__.py": "",
            "nn/a.py": "from minimod.nn import b",
            "nn/b.py": "from minimod.nn import c",
            "nn/c.py": "",
        },
    )
    assert cycles(import_graph(root)) == [["minimod.cli", "minimod.cli.finetune"]]
