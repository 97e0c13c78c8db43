"""The package's layers point one way: operations never import a face, and no import cycles.

Read with ``ast`` only (nothing is imported), so it runs without Redis. An import counts when
it runs: at module level, inside a function or method, or in a ``try``; an import under
``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) is for type checkers only and does not
count, while the ``else:`` branch of such an ``if`` does.

* faces: ``job``, ``queue``, ``worker``, ``flow``, ``events`` and the worker's own parts
  (``worker_parts/``); they hold state and delegate.
* surfaces: ``cli/``, ``contrib/``, ``dashboard/``, ``__main__`` and the package
  ``__init__`` (which re-exports every face): they use the public API.
* every other module is below the faces (operations such as ``producer``, ``getters``,
  ``management``, ``job_ops``, ``worker_steps``, ``schedulers``, ``manual``, ``display``, and
  the pure and transport modules under them): it never imports a face or a surface.
"""

from __future__ import annotations

import ast
import os
import textwrap
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "bullmq_sync"
PACKAGE_DIR = Path(
    os.environ.get("LAYERS_PACKAGE_DIR") or Path(__file__).resolve().parents[2] / PACKAGE
)
"""The package read: this checkout's (``LAYERS_PACKAGE_DIR`` reads another one)."""

FACES = frozenset({"job", "queue", "worker", "flow", "events"})
FACE_PACKAGES = ("worker_parts",)
SURFACE_PACKAGES = ("cli", "contrib", "dashboard")
SURFACE_MODULES = frozenset({"", "__main__"})  # "" is the package __init__


@dataclass(frozen=True)
class Edge:
    """One import that runs: ``source`` imports ``target`` (dotted names below the package)."""

    source: str
    target: str
    line: int
    where: str  # "<module>" or the enclosing function, e.g. "Job.get_state"

    def __str__(self) -> str:
        source, target = self.source or PACKAGE, self.target or PACKAGE
        return f"{source} -> {target}  (line {self.line}, {self.where})"


def module_name(path: Path, package_dir: Path) -> str:
    """``job`` for ``bullmq_sync/job.py``, ``cli`` for ``cli/__init__.py``, "" for the root."""
    parts = list(path.relative_to(package_dir).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest known module a dotted name lies in ("job.Job" -> "job"), or None."""
    while True:
        if name in known:
            return name
        if not name:
            return None
        name = name.rpartition(".")[0]


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]
) -> Iterator[str]:
    """The package modules an import statement loads (imports from outside are skipped)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                target = _resolve(alias.name[len(PACKAGE) + 1 :], known)
                if target is not None:
                    yield target
        return
    if node.level == 0:
        if node.module is None or not (
            node.module == PACKAGE or node.module.startswith(PACKAGE + ".")
        ):
            return
        base = node.module[len(PACKAGE) + 1 :]
    else:
        here = module.split(".") if module else []
        if not is_package:
            here = here[:-1]
        if node.level - 1 > len(here):
            return  # above the package
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([node.module] if node.module else []))
    for alias in node.names:
        # "from . import job" loads the module job; "from .job import Job" loads job
        target = _resolve(f"{base}.{alias.name}" if base else alias.name, known)
        if target is not None:
            yield target


def runtime_edges(source: str, module: str, is_package: bool, known: set[str]) -> list[Edge]:
    """Every import of a package module that runs when ``module`` is imported or used."""
    edges: list[Edge] = []

    def visit_node(node: ast.AST, where: str) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for branch in node.orelse:  # the body is for type checkers only
                visit_node(branch, where)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in dict.fromkeys(_targets(node, module, is_package, known)):
                edges.append(Edge(module, target, node.lineno, where))
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            where = node.name if where == "<module>" else f"{where}.{node.name}"
        for child in ast.iter_child_nodes(node):
            visit_node(child, where)

    visit_node(ast.parse(source), "<module>")
    return edges


def package_edges(package_dir: Path) -> list[Edge]:
    files = {module_name(path, package_dir): path for path in sorted(package_dir.rglob("*.py"))}
    known = set(files)
    edges: list[Edge] = []
    for module, path in files.items():
        is_package = path.name == "__init__.py"
        edges += runtime_edges(path.read_text(encoding="utf-8"), module, is_package, known)
    return [edge for edge in edges if edge.source != edge.target]


def is_face(module: str) -> bool:
    top = module.split(".")[0]
    return module in FACES or top in FACE_PACKAGES


def is_surface(module: str) -> bool:
    return module in SURFACE_MODULES or module.split(".")[0] in SURFACE_PACKAGES


def upward_imports(edges: list[Edge]) -> list[Edge]:
    """Imports of a face or a surface by a module below the faces, and of a surface by a face."""
    wrong = []
    for edge in edges:
        if is_surface(edge.source):
            continue
        if is_surface(edge.target) or (not is_face(edge.source) and is_face(edge.target)):
            wrong.append(edge)
    return wrong


def cycles(edges: list[Edge]) -> list[tuple[set[str], list[Edge]]]:
    """Each group of modules that import each other, with one shortest cycle through it."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        graph.setdefault(edge.target, {})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:  # iterative would be longer; the graph is small
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    found = []
    for group in groups:
        start = min(group)
        came: dict[str, Edge] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for succ, edge in sorted(graph[node].items()):
                if succ not in group or succ in came:
                    continue
                came[succ] = edge
                if succ == start:
                    queue.clear()
                    break
                queue.append(succ)
        path = [came[start]]
        while path[-1].source != start:
            path.append(came[path[-1].source])
        found.append((group, list(reversed(path))))
    return found


# -- the package -----------------------------------------------------------------------------


def test_no_module_below_the_faces_imports_a_face_at_runtime() -> None:
    wrong = upward_imports(package_edges(PACKAGE_DIR))
    assert not wrong, (
        "imports that point up (take a QueueContext and return plain data instead, or put the "
        "import under `if TYPE_CHECKING:` if it is for annotations only):\n  "
        + "\n  ".join(map(str, wrong))
    )


def test_the_import_graph_has_no_cycle() -> None:
    found = cycles(package_edges(PACKAGE_DIR))
    assert not found, "import cycles (function-level imports count):\n  " + "\n  ".join(
        f"{len(group)} modules ({', '.join(sorted(group))}), e.g. " + " ; ".join(map(str, cycle))
        for group, cycle in found
    )


def test_the_package_was_read() -> None:
    edges = package_edges(PACKAGE_DIR)
    sources = {edge.source for edge in edges}
    assert {"queue", "job", "getters", "producer"} <= sources
    assert any(edge.source == "queue" and edge.target == "job" for edge in edges)


# -- the checker itself ----------------------------------------------------------------------

KNOWN = {"", "job", "queue", "getters", "keys", "cli", "cli.main", "worker_parts", "worker_parts.x"}


def _edges(source: str, module: str = "getters", is_package: bool = False) -> set[tuple[str, int]]:
    found = runtime_edges(textwrap.dedent(source), module, is_package, KNOWN)
    return {(edge.target, edge.line) for edge in found}


def test_checker_sees_module_function_and_try_imports() -> None:
    source = """
        from .keys import QueueKeys
        import bullmq_sync.queue

        def load():
            from .job import Job
            return Job

        class Reader:
            def read(self):
                try:
                    from . import queue
                except ImportError:
                    pass
    """
    assert _edges(source) == {("keys", 2), ("queue", 3), ("job", 6), ("queue", 12)}


def test_checker_skips_type_checking_blocks_but_not_their_else() -> None:
    source = """
        import typing
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from .job import Job
        if typing.TYPE_CHECKING:
            from .queue import Queue
        else:
            from .keys import QueueKeys

        def f():
            if TYPE_CHECKING:
                from .job import Job
    """
    assert _edges(source) == {("keys", 10)}


def test_checker_resolves_relative_imports_in_subpackages() -> None:
    assert _edges("from ..job import Job", module="worker_parts.x") == {("job", 1)}
    assert _edges("from .x import y", module="worker_parts", is_package=True) == {
        ("worker_parts.x", 1)
    }
    assert _edges("from . import main", module="cli", is_package=True) == {("cli.main", 1)}
    assert _edges("from . import Queue", module="cli.main") == {("cli", 1)}
    assert _edges("from bullmq_sync import Queue", module="keys") == {("", 1)}


def test_checker_flags_upward_imports_and_cycles() -> None:
    edges = [
        Edge("getters", "job", 3, "<module>"),  # an operation importing a face
        Edge("job", "getters", 9, "Job.refresh"),  # a face using an operation: fine
        Edge("queue", "job", 1, "<module>"),  # face to face: fine
        Edge("keys", "cli.main", 1, "<module>"),  # below the faces importing a surface
        Edge("worker_parts.x", "job", 1, "<module>"),  # a worker part is a face
        Edge("cli.main", "queue", 1, "<module>"),  # a surface uses faces
    ]
    assert upward_imports(edges) == [edges[0], edges[3]]
    found = cycles(edges)
    assert [(group, [(e.source, e.target) for e in cycle]) for group, cycle in found] == [
        ({"getters", "job"}, [("getters", "job"), ("job", "getters")])
    ]
    assert cycles(edges[1:]) == []


@pytest.mark.parametrize("module", ["job", "queue", "worker", "flow", "events", "worker_parts.x"])
def test_faces_are_classified(module: str) -> None:
    assert is_face(module) and not is_surface(module)
