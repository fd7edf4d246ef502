"""The import contract between logdiag's stages, read from the source with ``ast``.

Every ``.py`` under ``logdiag/`` is read; imports at module level and inside functions count
alike, and so do imports under ``if TYPE_CHECKING:``: a type that one stage takes from another is
a dependency on it all the same (a failure message marks such an import). Imports made by name at
run time (``importlib.import_module("...")``) are seen only when called with a literal.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "logdiag"


@dataclass(frozen=True)
class Import:
    """One imported name: ``logdiag.report.json`` imports ``logdiag.pipeline.Run`` at line 11."""

    module: str
    target: str  # absolute: a module, or a module's attribute (``from m import name`` gives m.name)
    line: int
    type_checking: bool

    def __str__(self) -> str:
        where = " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.module}:{self.line} imports {self.target}{where}"

    def of(self, *names: str) -> bool:
        """Whether the import is of one of ``names`` (modules or packages) or of something in them."""
        return any(self.target == name or self.target.startswith(name + ".") for name in names)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.type_checking = False
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.stmt | ast.expr) -> None:
        self.found.append(Import(self.module, target, node.lineno, self.type_checking))

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer, self.type_checking = self.type_checking, True
        for statement in node.body:
            self.visit(statement)
        self.type_checking = outer
        for statement in node.orelse:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, base] if base else parts)
        for alias in node.names:
            self._add(base if alias.name == "*" else f"{base}.{alias.name}", node)

    def visit_Call(self, node: ast.Call) -> None:
        function = ast.unparse(node.func)
        if function in ("importlib.import_module", "import_module", "__import__") and node.args:
            name = node.args[0]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                self._add(name.value, node)
        self.generic_visit(node)


@cache
def _sources() -> dict[str, tuple[Path, ast.Module]]:
    """Every module of the package: its name, file and syntax tree."""
    return {
        _module_name(path): (path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


@cache
def _imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for module, (path, tree) in _sources().items():
        visitor = _Imports(module, path.name == "__init__.py")
        visitor.visit(tree)
        found += visitor.found
    return tuple(found)


def _imported_module(target: str) -> str | None:
    """The module of the package that an import of ``target`` loads (``logdiag.pipeline.Run``
    is of ``logdiag.pipeline``), or None for an import from elsewhere."""
    modules = _sources()
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def _in(module: str, *places: str) -> bool:
    """Whether ``module`` is one of ``places`` or inside one of those packages."""
    return any(module == place or module.startswith(place + ".") for place in places)


def _violations(places: tuple[str, ...], forbidden: tuple[str, ...], *, exempt: tuple[str, ...] = ()) -> list[str]:
    """The imports of ``forbidden`` names made in ``places`` (modules or packages) but not in ``exempt``."""
    return [
        str(imp) for imp in _imports()
        if _in(imp.module, *places) and not _in(imp.module, *exempt) and imp.of(*forbidden)
    ]


def _edges() -> dict[str, dict[str, Import]]:
    """Which modules of the package each module imports, and one import that does. An import of
    an ancestor package counts too: a module that takes a name from its package's ``__init__``,
    which imports that module, makes the same cycle as two modules importing each other."""
    edges: dict[str, dict[str, Import]] = {module: {} for module in _sources()}
    for imp in _imports():
        target = _imported_module(imp.target)
        if target is None or target == imp.module:
            continue
        edges[imp.module].setdefault(target, imp)
    return edges


def _cycles(edges: dict[str, dict[str, Import]]) -> Iterator[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(module: str) -> Iterator[list[str]]:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges[module]:
            if target not in index:
                yield from visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                yield sorted(component)

    for module in edges:
        if module not in index:
            yield from visit(module)


def test_no_import_cycles() -> None:
    """No two modules of logdiag import each other, directly or through others."""
    edges = _edges()
    problems = []
    for component in _cycles(edges):
        members = set(component)
        imports = [str(imp) for module in component for target, imp in edges[module].items() if target in members]
        problems.append("cycle " + " <-> ".join(component) + ":\n    " + "\n    ".join(imports))
    assert not problems, "\n".join(problems)


def test_polars_only_in_fastpath_and_export() -> None:
    """polars is imported only under logdiag/fastpath/ and logdiag/export/."""
    bad = _violations(("logdiag",), ("polars",), exempt=("logdiag.fastpath", "logdiag.export"))
    assert not bad, "polars outside logdiag/fastpath/ and logdiag/export/:\n" + "\n".join(bad)


def test_pglast_only_in_diagnosis_sql() -> None:
    """pglast is imported only by logdiag/diagnosis/sql.py."""
    bad = _violations(("logdiag",), ("pglast",), exempt=("logdiag.diagnosis.sql",))
    assert not bad, "pglast outside logdiag/diagnosis/sql.py:\n" + "\n".join(bad)


def test_report_depends_on_no_pipeline_fastpath_or_export() -> None:
    """logdiag/report/ imports nothing from logdiag.pipeline, logdiag.fastpath or logdiag.export."""
    bad = _violations(("logdiag.report",), ("logdiag.pipeline", "logdiag.fastpath", "logdiag.export"))
    assert not bad, "report/ reaching into other stages:\n" + "\n".join(bad)


def test_cli_does_not_import_the_fast_path() -> None:
    """logdiag/cli.py imports no module of logdiag.fastpath."""
    bad = _violations(("logdiag.cli",), ("logdiag.fastpath",))
    assert not bad, "cli.py importing the fast path:\n" + "\n".join(bad)


def test_fast_path_is_used_only_by_the_reader_and_the_export() -> None:
    """Outside logdiag/fastpath/, only logdiag/reader.py and logdiag/export/ import from logdiag.fastpath."""
    bad = _violations(
        ("logdiag",), ("logdiag.fastpath",), exempt=("logdiag.fastpath", "logdiag.reader", "logdiag.export"),
    )
    assert not bad, "the fast path used from outside its one interface's callers:\n" + "\n".join(bad)


#: What each stage (a folder, or a module at the top) may import of the others: each stage
#: imports only those below it (docs/architecture.md). ``logdiag`` is the package's
#: ``__init__``, the public API; ``version`` and ``errors`` are leaves any stage may read.
LAYERS: dict[str, frozenset[str]] = {
    "errors": frozenset(), "exitcodes": frozenset(), "records": frozenset(), "version": frozenset(),
    "lang": frozenset(),  # the server's languages: a leaf, read by the formats and the diagnosis
    "wording": frozenset(),  # plurals and did-you-mean: a leaf, read by the diagnosis, reports and CLI
    "source": frozenset({"errors"}),
    "formats": frozenset({"errors", "lang", "records", "source"}),
    "diagnosis": frozenset({"errors", "lang", "records", "wording"}),
    "fastpath": frozenset({"errors", "lang", "records", "source", "formats", "diagnosis"}),
    "reader": frozenset({"errors", "lang", "records", "source", "formats", "fastpath"}),
    "pipeline": frozenset({"errors", "lang", "records", "source", "formats", "diagnosis", "reader"}),
    "report": frozenset({"errors", "lang", "records", "source", "formats", "diagnosis", "version", "wording"}),
    "export": frozenset({"errors", "lang", "records", "source", "formats", "diagnosis", "fastpath", "reader", "pipeline"}),
    "cli": frozenset({
        "errors", "exitcodes", "lang", "records", "version", "source", "formats", "diagnosis", "reader",
        "pipeline", "report", "export", "usage", "wording",
    }),
    "usage": frozenset({"exitcodes", "report", "wording"}),  # the CLI's usage errors, in one line
    "__main__": frozenset({"cli"}),
    "logdiag": frozenset({"errors", "lang", "records", "version", "source", "formats", "diagnosis", "reader", "pipeline"}),
}


def _stage(module: str) -> str:
    """``logdiag.fastpath.scan`` is of the stage ``fastpath``; ``logdiag`` of ``logdiag``."""
    return module.split(".")[1] if "." in module else module


def test_every_module_is_in_a_stage() -> None:
    """Every module of logdiag belongs to a stage that LAYERS lists (a new folder says where it stands)."""
    unknown = sorted({_stage(module) for module in _sources()} - set(LAYERS))
    assert not unknown, f"stages missing from LAYERS: {unknown}"


def test_stages_import_only_the_stages_below_them() -> None:
    """Each stage imports only the stages LAYERS allows it; the fast path takes from diagnosis
    only messages (which errors are violations)."""
    bad = []
    for imp in _imports():
        target = _imported_module(imp.target)
        if target is None:
            continue
        here, there = _stage(imp.module), _stage(target)
        if here == there:
            continue
        if there not in LAYERS.get(here, frozenset()):
            bad.append(f"{imp} ({here} may not import {there})")
        elif here == "fastpath" and there == "diagnosis" and target != "logdiag.diagnosis.messages":
            bad.append(f"{imp} (the fast path asks diagnosis only through messages)")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def _is_format_member(node: ast.expr) -> bool:
    """``LogFormat.X`` (or ``something.LogFormat.X``)."""
    return isinstance(node, ast.Attribute) and ast.unparse(node.value).split(".")[-1] == "LogFormat"


def _format_branches(tree: ast.Module) -> Iterator[ast.Compare | ast.MatchValue]:
    """Comparisons with a LogFormat member (``is``, ``==``, ``in`` a literal of members...) and
    ``case LogFormat.X:``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            members = [node.left, *node.comparators]
            for op, right in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)):
                    members += right.elts
            if any(_is_format_member(member) for member in members):
                yield node
        elif isinstance(node, ast.MatchValue) and _is_format_member(node.value):
            yield node


def _source_text(node: ast.Compare | ast.MatchValue) -> str:
    return ast.unparse(node) if isinstance(node, ast.Compare) else f"case {ast.unparse(node)}:"


#: Places outside formats/ that may name a format: the polars readers of whole record frames
#: (for the export) are the fast path's, one per format that has one, and polars may not be
#: imported in formats/.
NAMES_FORMATS = {"logdiag.fastpath.record_frames": "its polars frame readers, by format"}
#: The formats' names as strings, which a comparison could use instead of the members.
_FORMAT_NAMES = frozenset({"csvlog", "jsonlog", "stderr", "syslog", "logplex", "cloudsql", "cnpg"})


def test_no_format_named_outside_formats() -> None:
    """Outside logdiag/formats/, no code names a format (``LogFormat.X``, or its name as a
    string in a comparison): it asks the format's object."""
    bad = []
    for module, (_, tree) in _sources().items():
        if _in(module, "logdiag.formats") or module in NAMES_FORMATS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_format_member(node):
                bad.append(f"{module}:{node.lineno} names a format: {ast.unparse(node)}")
            elif isinstance(node, ast.Compare) and any(
                isinstance(side, ast.Constant) and side.value in _FORMAT_NAMES for side in (node.left, *node.comparators)
            ):
                bad.append(f"{module}:{node.lineno} compares with a format's name: {ast.unparse(node)}")
    assert not bad, "ask the format's own objects instead:\n" + "\n".join(sorted(bad))


def test_no_branch_on_a_format_outside_formats() -> None:
    """No module outside logdiag/formats/ branches on a format's identity (``is``/``==``/``in`` LogFormat.X)."""
    bad = [
        f"{module}:{node.lineno} branches on a format's identity: {_source_text(node)}"
        for module, (_, tree) in _sources().items() if not _in(module, "logdiag.formats")
        for node in sorted(_format_branches(tree), key=lambda node: node.lineno)
    ]
    assert not bad, "ask the format's own objects instead:\n" + "\n".join(bad)


def test_every_format_has_its_object() -> None:
    """Every LogFormat name has one Format object in the registry, and it says it is that format."""
    from logdiag.formats import LogFormat
    from logdiag.formats.registry import FORMATS

    assert set(FORMATS) == set(LogFormat)
    assert all(fmt.kind is kind for kind, fmt in FORMATS.items())
