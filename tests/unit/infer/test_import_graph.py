"""The modules of birdcall.infer import one another one way: no cycle, not even through a lazy import inside a
function (the engine was split so that a reader can follow it, and a cycle would tie two modules back together)."""

import ast
from pathlib import Path

import birdcall.infer


def _imports() -> dict[str, set[str]]:
    folder = Path(birdcall.infer.__file__).parent
    modules = {p.stem: p for p in folder.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:  # from .x import y, from . import x
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("birdcall.infer."):
                found.add(node.module.split(".")[2])
        graph[name] = found & set(modules) - {name}
    return graph


def test_no_import_cycle_inside_birdcall_infer():
    graph = _imports()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, "import cycle: " + " -> ".join([*path[path.index(name) :], name])
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert "long_recording" in graph and not graph["long_recording"]  # the windowing module is a leaf
