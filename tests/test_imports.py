"""The import graph of the three packages has no circle, and the dependency rule holds.

Built with grimp (every ``import``, inside functions too; ``if TYPE_CHECKING:`` ones left out).
Importing ``a.b.c`` from outside ``a.b`` also runs ``a/b/__init__.py``, so that counts as an
import of the package ``a.b`` as well.
"""

from __future__ import annotations

import grimp
import networkx as nx
import pytest

PACKAGES = ("twin", "optimize", "live")


@pytest.fixture(scope="module")
def imports() -> nx.DiGraph:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    g = nx.DiGraph()
    for importer in graph.modules:
        g.add_node(importer)
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported == importer:
                continue
            g.add_edge(importer, imported)
            # a subpackage's __init__ runs when one of its modules is imported from outside it
            parts = imported.split(".")
            for i in range(2, len(parts)):
                package = ".".join(parts[:i])
                if not importer.startswith(package + ".") and importer != package:
                    g.add_edge(importer, package)
    return g


def test_the_graph_is_read(imports: nx.DiGraph) -> None:
    # a graph that missed the imports could not fail the cycle test below
    assert imports.has_edge("twin.build", "twin.sources")
    assert imports.has_edge("twin.inventory", "twin.derive.lights")
    assert imports.has_edge("twin.inventory", "twin.derive")


def test_no_import_cycle(imports: nx.DiGraph) -> None:
    cycles = sorted(nx.simple_cycles(imports), key=len)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + c[:1]) for c in cycles[:5])


def test_dependencies_point_one_way(imports: nx.DiGraph) -> None:
    # twin <- optimize <- live; the CLI (twin.cli) is the composition root above all three
    for importer, imported in imports.edges:
        top_from, top_to = importer.split(".")[0], imported.split(".")[0]
        if importer == "twin.cli":
            continue
        if top_from == "twin":
            assert top_to == "twin", f"{importer} imports {imported}"
        if top_from == "optimize":
            assert top_to != "live", f"{importer} imports {imported}"


def test_nothing_imports_the_cli(imports: nx.DiGraph) -> None:
    assert list(imports.predecessors("twin.cli")) == []
