"""Code layout: the package's modules import each other without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import clustercls

PACKAGE = Path(clustercls.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(("clustercls", *parts)).removesuffix(".__init__")


def _runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """clustercls modules `path` imports when it runs: at module level or inside a function
    (a deferred import still ties the two together), but not under `if TYPE_CHECKING:`."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            name = getattr(test, "id", None) or getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if name in modules}


def test_modules_import_each_other_without_cycles() -> None:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _runtime_imports(path, set(paths)) - {name} for name, path in paths.items()}
    assert {"clustercls.predict", "clustercls.tracking"} <= graph.keys()
    # The graph is read off the code, not assumed: predict depends on the registry.
    assert "clustercls.registry" in graph["clustercls.predict"]
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, " -> ".join([*visiting[visiting.index(name) :], name])
        visiting.append(name)
        for imported in sorted(graph[name]):
            # A package's own submodules are its parts, not a cycle back to it.
            if not imported.startswith(f"{name}."):
                visit(imported)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
