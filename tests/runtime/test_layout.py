"""The shape of ``runtime/``, read from the source with ``ast``: entry points on top, one subpackage per
concern below them, and imports that run one way down.

A new subpackage must be declared in :data:`MAY_IMPORT`, and an import that goes up, sideways into a
subpackage not listed, or into an entry point fails here, before it can grow into a cycle.
"""

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"

MAY_IMPORT: dict[str, set[str]] = {
    "model": set(),
    "sbc": set(),
    "engines": {"model"},
    "store": {"model"},
    "aws": {"store"},
    "ensemble": {"model", "sbc", "engines", "store"},
    "fitting": {"model", "sbc", "engines", "store", "ensemble"},
    "executors": {"engines", "store", "aws", "fitting"},
    "report": {"model", "sbc", "store", "aws", "ensemble", "executors"},
    "pipeline": {"model", "sbc", "engines", "store", "aws", "ensemble", "fitting", "executors", "report"},
}
"""For each subpackage of ``runtime``, the other subpackages its modules may import."""
SHARED_LEAVES = {"errors", "arviz_quiet"}
"""Top-level modules that import nothing from ``runtime`` and that every subpackage may import."""
ENTRY_POINTS = {"api", "submit", "collect", "compare", "cancel", "worker", "trigger"}


def runtime_imports(path: Path, *, import_time_only: bool = False) -> set[str]:
    """The ``runtime.*`` modules a file imports (anywhere, or only in its top-level statements)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if import_time_only else list(ast.walk(tree))
    modules: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {module for module in modules if module.startswith("runtime.")}


def module_name(path: Path) -> str:
    parts = path.relative_to(RUNTIME.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def subpackages() -> list[str]:
    return sorted(path.parent.name for path in RUNTIME.glob("*/__init__.py"))


def test_every_subpackage_is_declared_and_the_declared_order_has_no_cycle() -> None:
    assert subpackages() == sorted(MAY_IMPORT)
    assert set(MAY_IMPORT).isdisjoint(SHARED_LEAVES | ENTRY_POINTS)
    list(TopologicalSorter(MAY_IMPORT).static_order())  # raises CycleError on a cycle


def test_the_top_level_holds_only_entry_points_and_shared_leaves() -> None:
    top = {path.stem for path in RUNTIME.glob("*.py")} - {"__init__"}
    assert top == ENTRY_POINTS | SHARED_LEAVES
    for leaf in SHARED_LEAVES:
        assert not runtime_imports(RUNTIME / f"{leaf}.py"), f"runtime.{leaf} must import nothing from runtime"


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_subpackage_imports_only_what_it_may(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package} | SHARED_LEAVES
    for path in sorted((RUNTIME / package).glob("*.py")):
        reached = {module.split(".")[1] for module in runtime_imports(path)}
        assert reached <= allowed, (
            f"{path.relative_to(RUNTIME.parent)} imports runtime.{', runtime.'.join(sorted(reached - allowed))}; "
            f"runtime.{package} may import {', '.join(sorted(MAY_IMPORT[package])) or 'no other subpackage'}"
        )


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_subpackage_init_holds_only_its_docstring(package: str) -> None:
    body = ast.parse((RUNTIME / package / "__init__.py").read_text()).body
    assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    named = set(re.findall(r"``runtime\.(\w+)``", body[0].value.value)) & set(MAY_IMPORT)
    assert named == MAY_IMPORT[package], "the docstring names the subpackages it may import"


def test_no_import_cycle_between_modules_at_import_time() -> None:
    modules = {module_name(path): path for path in RUNTIME.rglob("*.py")}
    graph = {
        name: {imported for imported in runtime_imports(path, import_time_only=True) if imported in modules}
        for name, path in modules.items()
    }
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def test_no_entry_point_imports_another() -> None:
    for entry in ENTRY_POINTS:
        imported = {module.split(".")[1] for module in runtime_imports(RUNTIME / f"{entry}.py")}
        assert not imported & (ENTRY_POINTS - {entry}), f"runtime.{entry} imports another entry point"
