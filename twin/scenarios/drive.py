"""The drive network of a twin as the simulations read it: a plain graph.

:func:`drive_graph` is shared by the traffic DES and SUMO export (:mod:`twin.scenarios.network`)
and the static assignment (:mod:`twin.scenarios.assignment`); it lives here, below both, so that
neither imports the other for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import networkx as nx

from twin._errors import InputValidationError

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["drive_graph"]

#: Turn-pocket attributes of an approach edge (:func:`twin.derive.pockets.pockets`), for the DES.
_POCKET_ATTRS = (
    "pocket_left",
    "pocket_left_m",
    "pocket_right",
    "pocket_right_m",
    "pocket_source",
    "lanes_line",
)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list | tuple) else value


def drive_graph(tw: Twin) -> nx.MultiDiGraph:
    """Plain copy of a twin's drive network, as the traffic DES and SUMO read it.

    Parameters
    ----------
    tw : twin.model.Twin

    Returns
    -------
    networkx.MultiDiGraph
        Same node ids and edge keys as ``tw.graph``. Nodes keep ``x``, ``y`` (EPSG:2154);
        edges ``length`` (m), ``speed_kph``, ``lanes`` (lanes in the edge's direction, from
        ``lanes_dir``), ``lanes_total`` (lanes of the whole way), ``highway``, ``segment``,
        ``name``, and where an approach has turn pockets ``pocket_left``, ``pocket_left_m``,
        ``pocket_right``, ``pocket_right_m``, ``pocket_source`` and ``lanes_line``
        (:mod:`twin.derive.pockets`). ``graph.graph`` holds ``crs``, ``city`` and
        ``sumo_edge_ids`` (the SUMO id of each edge, ``"<u>_<v>_<key>"``, as
        :func:`twin.scenarios.network.export_twin` writes it and
        :func:`twin.sumo.read_sumo_routes` reads it back).
    """
    view = tw.drive
    if view.number_of_edges() == 0:
        msg = f"twin {tw.city.name!r}: the drive network has no edges"
        raise InputValidationError(msg)
    g = nx.MultiDiGraph(crs=str(tw.graph.graph.get("crs", "EPSG:2154")), city=tw.city.name)
    for n, d in view.nodes(data=True):
        g.add_node(n, x=float(d["x"]), y=float(d["y"]))
    for u, v, k, d in view.edges(keys=True, data=True):
        total = int(float(_first(d.get("lanes", 1)) or 1))
        per_dir = int(float(_first(d.get("lanes_dir", total)) or 1))
        name = _first(d.get("name"))
        g.add_edge(
            u,
            v,
            key=k,
            length=float(d["length"]),
            speed_kph=float(_first(d["speed_kph"])),
            lanes=max(per_dir, 1),
            lanes_total=max(total, 1),
            highway=str(_first(d.get("highway", "unclassified"))),
            segment=str(d["segment"]),
            name=name if isinstance(name, str) else "",
        )
        if d.get("pocket_left") or d.get("pocket_right"):  # turn pockets at its end
            g.edges[u, v, k].update({a: d[a] for a in _POCKET_ATTRS if a in d})
    g.graph["sumo_edge_ids"] = {f"{u}_{v}_{k}": (u, v, k) for u, v, k in g.edges(keys=True)}
    return g
