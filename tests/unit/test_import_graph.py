"""No import circle anywhere in ``sluice`` and ``sluice_operator``, between modules (not only packages).

A circle makes every module on it load, change and test together with the others, and hides which one
is the lower layer. The graph is grimp's (import-linter's graph library, which checks the layer
contracts in pyproject.toml). Imports under ``if TYPE_CHECKING:`` are left out: they name a type for
mypy and never run (grimp's ``exclude_type_checking_imports``). Imports inside functions count.
"""

from __future__ import annotations

import grimp
import pytest

ROOT_PACKAGES = ("sluice", "sluice_operator")


@pytest.fixture(scope="module")
def import_graph() -> grimp.ImportGraph:
    return grimp.build_graph(*ROOT_PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (each holds at least one circle),
    modules sorted; found with Tarjan's algorithm, iteratively (the graph is hundreds of modules deep)."""
    edges = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in sorted(graph.modules)}
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            module, next_edge = work.pop()
            if next_edge == 0:
                index[module] = lowest[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            targets = edges[module]
            if next_edge < len(targets):
                work.append((module, next_edge + 1))
                target = targets[next_edge]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    lowest[module] = min(lowest[module], index[target])
                continue
            if lowest[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
            if work:
                parent = work[-1][0]
                lowest[parent] = min(lowest[parent], lowest[module])
    return sorted(circles)


def describe(graph: grimp.ImportGraph, circle: list[str]) -> str:
    members = set(circle)
    lines = [f"circle of {len(circle)} modules:"]
    for module in circle:
        imported = sorted(members & graph.find_modules_directly_imported_by(module))
        lines.append(f"  {module} -> {', '.join(imported)}")
    return "\n".join(lines)


def test_no_module_imports_itself_through_others(import_graph: grimp.ImportGraph) -> None:
    circles = import_circles(import_graph)
    assert not circles, "import circles:\n" + "\n".join(describe(import_graph, circle) for circle in circles)


def test_the_circle_finder_finds_a_circle() -> None:
    """The finder itself: a three-module circle and a module beside it (so the test above can fail)."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    graph.add_import(importer="pkg.d", imported="pkg.a")
    assert import_circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
