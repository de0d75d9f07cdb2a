"""Reading minimod's own code: a module's imports and top-level definitions, the line span of
a definition, the function that holds a marked region, and regions that no lesson covers."""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from minimod.workbook.catalogue import LESSONS, Lesson
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
        return cls.parse(module, path, path.read_text(encoding="utf-8"))

    @classmethod
    def parse(cls, module: str, path: Path, text: str) -> Source:
        """``text`` read as the module ``module``, a file at ``path`` inside the repository."""
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


# -- what a lesson's text must name ----------------------------------------------------------

# Code reaches the state a marked region leaves behind through these objects: the
# autograd context of a Function and the module (or optimizer, ...) itself.
_CARRIERS = ("ctx", "self")


def _attribute_uses(node: ast.AST, regions: list[tuple[int, int]]):
    """(carrier.attr, stored, inside a region) for every ``ctx.X`` / ``self.X`` in ``node``."""
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Attribute)
            and isinstance(child.value, ast.Name)
            and child.value.id in _CARRIERS
        ):
            marked = any(begin < child.lineno < end for begin, end in regions)
            stored = isinstance(child.ctx, (ast.Store, ast.Del))
            yield f"{child.value.id}.{child.attr}", stored, marked


def names_to_explain(source: Source, definitions: list[str]) -> list[str]:
    """The names a learner must be told to fill in the marked regions of ``definitions`` (top-level
    names in ``source``): the functions and methods whose bodies are marked ("Attention.forward"),
    and the ``ctx.X`` / ``self.X`` attributes that only marked code sets but given code reads (the
    contract between a marked forward and a given backward, or a marked ``__init__`` and a given
    method)."""
    functions: list[str] = []
    nodes = [source.toplevel[name] for name in definitions]
    regions = [
        (region.begin, region.end)
        for region in source.regions()
        if any(node.lineno <= region.begin <= last_line(source, node) for node in nodes)
    ]
    for begin, _ in regions:
        where = enclosing_function(source.tree, begin)
        if where is not None and where not in functions:
            functions.append(where)
    set_in_marked, set_in_given, read_in_given = [], set(), set()
    for node in nodes:
        for name, stored, marked in _attribute_uses(node, regions):
            if stored and marked and name not in set_in_marked:
                set_in_marked.append(name)
            elif stored:
                set_in_given.add(name)
            elif not marked:
                read_in_given.add(name)
    attributes = [n for n in set_in_marked if n in read_in_given and n not in set_in_given]
    return functions + attributes


def is_named(name: str, text: str) -> bool:
    """Whether ``text`` names ``name``: "ctx.scale" as ``ctx.scale`` (a context attribute is
    part of a contract between two methods, and a bare "scale" says nothing about it),
    "self.weight" as ``weight`` or ``self.weight``, "Attention.forward" as ``Attention`` and
    ``forward`` ("Attention's forward")."""
    parts = name.split(".")
    if parts[0] == "self":
        parts = parts[1:]
    elif parts[0] == "ctx":
        parts = [name]
    return all(re.search(rf"(?<!\w){re.escape(part)}(?!\w)", text) for part in parts)


def unnamed_in_text(lesson: Lesson) -> list[str]:
    """The names ``lesson``'s marked regions depend on that its text never mentions."""
    by_module: dict[str, list[str]] = {}
    for qualified in lesson.definitions:
        module, name = split_definition(qualified)
        by_module.setdefault(module, []).append(name)
    missing = []
    for module, names in by_module.items():
        source = Source.load(module)
        names = [name for name in names if name in source.toplevel]
        missing += [n for n in names_to_explain(source, names) if not is_named(n, lesson.text)]
    return missing
