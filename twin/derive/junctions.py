"""Signalised junctions and their approaches.

Traffic-signal points are clustered with complete linkage (no two signals of one junction more
than :data:`JUNCTION_DIAMETER_M` apart); the junction's nodes are the drive-graph nodes within
:data:`JUNCTION_NODE_M` of its signals, its approaches the drive edges entering them, each with
its last :data:`APPROACH_TAIL_M` metres as geometry.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from scipy.cluster.hierarchy import fcluster, linkage

from twin.registry import make_ids

from ._tags import first

__all__ = ["APPROACH_TAIL_M", "JUNCTION_DIAMETER_M", "JUNCTION_NODE_M", "junctions"]

JUNCTION_DIAMETER_M = 60.0
JUNCTION_NODE_M = 30.0
APPROACH_TAIL_M = 30.0


def _cluster_points(xy: np.ndarray, diameter: float) -> np.ndarray:
    if len(xy) == 1:
        return np.zeros(1, dtype=int)
    z = linkage(xy, method="complete")
    labels: np.ndarray = fcluster(z, t=diameter, criterion="distance") - 1
    return labels


def _bearing(line: shapely.LineString) -> float:
    coords = np.asarray(line.coords)
    (x0, y0), (x1, y1) = coords[-2], coords[-1]
    return float((math.degrees(math.atan2(x1 - x0, y1 - y0)) + 360.0) % 360.0)


def junctions(
    signals: gpd.GeoDataFrame, graph: nx.MultiDiGraph, seg: gpd.GeoDataFrame, *, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Junctions (clustered signal points) and their approaches (drive edges entering them)."""
    if signals.empty:
        return pd.DataFrame(columns=["id", "geometry"]), pd.DataFrame(columns=["id", "geometry"])
    xy = shapely.get_coordinates(np.asarray(signals.geometry.values))
    label = _cluster_points(xy, JUNCTION_DIAMETER_M)
    # order clusters by first appearance along x then y, for stable ids
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    first_seen: dict[int, int] = {}
    for i in order:
        first_seen.setdefault(int(label[i]), len(first_seen))
    label = np.array([first_seen[int(c)] for c in label])
    n_j = label.max() + 1
    jids = make_ids("junction", n_j)

    drive_nodes = [
        n
        for n in graph.nodes
        if any(d.get("drive", True) for *_, d in graph.in_edges(n, data=True))
    ]
    seg_drive = seg.set_index("id")["drive"]
    node_xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in drive_nodes])
    node_tree = shapely.STRtree(shapely.points(node_xy)) if len(node_xy) else None
    seg_names = seg.set_index("id")["name"]
    names = signals["name"].to_numpy() if "name" in signals.columns else np.full(len(signals), None)

    j_rows, a_rows = [], []
    for j in range(n_j):
        members = np.flatnonzero(label == j)
        pts = shapely.points(xy[members])
        nodes: set[Any] = set()
        if node_tree is not None:
            _, hit = node_tree.query(pts, predicate="dwithin", distance=JUNCTION_NODE_M)
            nodes = {drive_nodes[h] for h in hit}
            if not nodes:
                near = node_tree.nearest(shapely.centroid(shapely.multipoints(pts)))
                nodes = {drive_nodes[int(near)]}
        approaches = []
        for n in sorted(nodes, key=str):
            for u, v, k, d in graph.in_edges(n, keys=True, data=True):
                if u in nodes or not seg_drive.get(d["segment"], False):
                    continue
                approaches.append((u, v, k, d))
        street_names = sorted(
            {n for *_, d in approaches if isinstance(n := seg_names.get(d["segment"]), str) and n}
        )
        given = [str(x) for x in names[members] if isinstance(x, str) and x]
        centre = shapely.centroid(shapely.multipoints(pts))
        j_rows.append(
            {
                "id": jids[j],
                "name": given[0] if given else " / ".join(street_names[:4]) or None,
                "source": source,
                "n_signals": len(members),
                "nodes": " ".join(str(n) for n in sorted(nodes, key=str)),
                "n_approaches": len(approaches),
                "geometry": centre,
            }
        )
        for a, (u, v, k, d) in enumerate(approaches):
            geom = d.get("geometry") or shapely.LineString(
                [
                    (graph.nodes[u]["x"], graph.nodes[u]["y"]),
                    (graph.nodes[v]["x"], graph.nodes[v]["y"]),
                ]
            )
            tail = shapely.ops.substring(geom, max(0.0, geom.length - APPROACH_TAIL_M), geom.length)
            if tail.geom_type != "LineString" or tail.length == 0:
                tail = geom
            a_rows.append(
                {
                    "id": f"approach:{j}.{a}",
                    "junction": jids[j],
                    "segment": d["segment"],
                    "u": int(u),
                    "v": int(v),
                    "key": int(k),
                    "bearing_deg": _bearing(tail),
                    "lanes": int(d.get("lanes_dir", 1)),
                    "name": first(d.get("name")),
                    "geometry": tail,
                }
            )
    return pd.DataFrame(j_rows), pd.DataFrame(a_rows)
