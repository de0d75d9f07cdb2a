"""Reading minimod's own code: a module's imports and top-level definitions, the line span of
a definition, the function that holds a marked region, and regions that no lesson covers."""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from minimod.workbook.catalogue import LESSONS
from minimod.workbook.markers import SOLUTION, find_regions


class GenerationError(ValueError):
    """The catalogue and minimod's code disagree (a missing definition, a stray marker, ...)."""


@dataclass
class Source:
    """One minimod module file, parsed: its top-level imports, definitions and regions."""

    module: str  # "minimod.nn.linear"
    path: Path
    relpath: str  # "minimod/nn/linear.py", for messages and headers
    lines: list[str]
    tree: ast.Module
    imports: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    toplevel: dict[str, ast.stmt] = field(default_factory=dict)

    @classmethod
    @cache
    def load(cls, module: str) -> Source:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise GenerationError(f"no module {module!r}")
        path = Path(spec.origin)
        text = path.read_text(encoding="utf-8")
        relpath = path.relative_to(repo_root()).as_posix()
        source = cls(module, path, relpath, text.splitlines(), ast.parse(text, relpath))
        for node in source.tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    source.imports[bound] = ("", alias.name if alias.asname else bound, bound)
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    package = module.split(".")[: -node.level]
                    base = ".".join([*package, base] if base else package)
                for alias in node.names:
                    source.imports[alias.asname or alias.name] = (
                        base,
                        alias.name,
                        alias.asname or alias.name,
                    )
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                source.toplevel[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            source.toplevel[name.id] = node
        return source

    def regions(self):
        return find_regions("\n".join(self.lines), self.relpath, SOLUTION)


def repo_root() -> Path:
    """The folder holding the minimod package (and exercises/, solutions/, tests/)."""
    return Path(__file__).resolve().parents[2]


def split_definition(qualified: str) -> tuple[str, str]:
    module, _, name = qualified.rpartition(".")
    if not module.startswith("minimod.") or not name:
        raise GenerationError(f"{qualified!r} is not a definition in minimod")
    return module, name


def first_line(source: Source, node: ast.stmt) -> int:
    """The definition's first line, decorators and comments directly above it included."""
    start = min([d.lineno for d in getattr(node, "decorator_list", [])] + [node.lineno])
    while start > 1 and source.lines[start - 2].lstrip().startswith("#"):
        start -= 1
    return start


def _functions(node: ast.AST, prefix: tuple[str, ...] = ()):
    """(qualified name, node) of every function in ``node``: ``("Linear.forward", <def>)``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = (*prefix, child.name)
            if not isinstance(child, ast.ClassDef):
                yield ".".join(name), child
            yield from _functions(child, name)
        else:
            yield from _functions(child, prefix)


def last_line(source: Source, node: ast.stmt) -> int:
    """The definition's last line, trailing comments inside its body (an END marker) included."""
    stop = node.end_lineno
    while stop < len(source.lines):
        line = source.lines[stop]
        indent = len(line) - len(line.lstrip())
        if not (line.lstrip().startswith("#") and indent > node.col_offset):
            break
        stop += 1
    return stop


def enclosing_function(tree: ast.Module, line: int) -> str | None:
    """The innermost function whose body holds ``line`` (a region's BEGIN marker)."""
    holding = [
        (node.lineno, name)
        for name, node in _functions(tree)
        if node.lineno < line <= node.end_lineno
    ]
    return max(holding)[1] if holding else None


def used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def uncovered_regions() -> list[str]:
    """Marked regions in minimod that belong to no lesson (so no learner would ever write them)."""
    covered: dict[str, list[tuple[int, int]]] = {}
    for lesson in LESSONS:
        for qualified in lesson.definitions:
            module, name = split_definition(qualified)
            source = Source.load(module)
            node = source.toplevel.get(name)
            if node is not None:
                span = (node.lineno, last_line(source, node))
                covered.setdefault(source.relpath, []).append(span)
    problems = []
    for path in sorted((repo_root() / "minimod").rglob("*.py")):
        relpath = path.relative_to(repo_root()).as_posix()
        if relpath.startswith("minimod/workbook/"):
            continue
        for region in find_regions(path.read_text(encoding="utf-8"), relpath, SOLUTION):
            if not any(a < region.begin and region.end <= b for a, b in covered.get(relpath, [])):
                problems.append(
                    f"{relpath}:{region.begin}: this marked region is in no lesson; add its "
                    "definition to a lesson in minimod/workbook/catalogue.py"
                )
    return problems
