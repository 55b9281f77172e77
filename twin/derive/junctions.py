"""Signalised junctions and crossings, and their approaches.

Traffic-signal points are clustered with complete linkage (no two signals of one junction more
than :data:`JUNCTION_DIAMETER_M` apart). The signals of pedestrian crossings
(``highway=crossing`` + ``crossing=traffic_signals``) take part: one within the diameter of a
junction's signals joins that junction; the others form signalised crossings of their own
(``kind = "crossing"``).

A junction's nodes are the drive-graph nodes within :data:`JUNCTION_NODE_M` of its signals, its
approaches the drive edges entering them. A crossing stands on a street, usually between two
graph nodes: its approaches are the drive edges of the street it stands on (the nearest drive
segment within :data:`JUNCTION_NODE_M` of each of its signals), in each direction, up to the
crossing. Each approach's geometry is its last :data:`APPROACH_TAIL_M` metres before the stop
line (the node, or the crossing).
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

#: An approach shorter than this before its crossing is not one: the crossing is at its start.
_MIN_APPROACH_M = 1.0

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


def _edge_line(graph: nx.MultiDiGraph, u: Any, v: Any, d: dict[str, Any]) -> shapely.LineString:
    geom = d.get("geometry")
    if geom is None:
        geom = shapely.LineString(
            [(graph.nodes[u]["x"], graph.nodes[u]["y"]), (graph.nodes[v]["x"], graph.nodes[v]["y"])]
        )
    return geom


def _tail(geom: shapely.LineString, end_m: float) -> shapely.LineString:
    """The last :data:`APPROACH_TAIL_M` metres of ``geom`` before ``end_m`` along it."""
    tail = shapely.ops.substring(geom, max(0.0, end_m - APPROACH_TAIL_M), end_m)
    if tail.geom_type != "LineString" or tail.length == 0:
        return geom
    return tail


def junctions(
    signals: gpd.GeoDataFrame, graph: nx.MultiDiGraph, seg: gpd.GeoDataFrame, *, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Junctions and crossings (clustered signal points) and their approaches.

    Parameters
    ----------
    signals : GeoDataFrame
        Signal points in the graph's CRS; optional columns ``name`` and ``crossing`` (True for
        a pedestrian crossing's signal).
    graph : networkx.MultiDiGraph
        The street graph, its edges carrying ``segment``.
    seg : GeoDataFrame
        The road segments (:func:`twin.derive.segments.segments`).
    source : str
        Recorded as each junction's ``source``.
    """
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
    is_crossing = (
        signals["crossing"].fillna(False).to_numpy(bool)
        if "crossing" in signals.columns
        else np.zeros(len(signals), dtype=bool)
    )

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
    drive_seg = seg[seg["drive"].to_numpy(bool)]
    seg_tree = shapely.STRtree(drive_seg.geometry.values) if len(drive_seg) else None
    edges_of: dict[str, list[tuple[Any, Any, Any, dict[str, Any]]]] = {}
    if bool(is_crossing.any()):
        for u, v, k, d in graph.edges(keys=True, data=True):
            edges_of.setdefault(str(d["segment"]), []).append((u, v, k, d))

    j_rows, a_rows = [], []
    for j in range(n_j):
        members = np.flatnonzero(label == j)
        pts = shapely.points(xy[members])
        centre = shapely.centroid(shapely.multipoints(pts))
        kind = "crossing" if bool(is_crossing[members].all()) else "junction"
        nodes: set[Any] = set()
        # (u, v, key, data, distance along the edge to the stop line)
        approaches: list[tuple[Any, Any, Any, dict[str, Any], float]] = []
        if kind == "crossing" and seg_tree is not None:
            p_idx, s_idx = seg_tree.query_nearest(pts, max_distance=JUNCTION_NODE_M)
            for p, s in zip(p_idx, s_idx, strict=True):
                for u, v, k, d in edges_of.get(str(drive_seg["id"].iloc[s]), []):
                    line = _edge_line(graph, u, v, d)
                    at = float(shapely.line_locate_point(line, pts[p]))
                    if at >= _MIN_APPROACH_M and (u, v, k) not in {a[:3] for a in approaches}:
                        approaches.append((u, v, k, d, at))
            if not approaches:  # the crossing stands at a node: treat it as a junction
                kind = "junction"
        if kind == "junction" and node_tree is not None:
            _, hit = node_tree.query(pts, predicate="dwithin", distance=JUNCTION_NODE_M)
            nodes = {drive_nodes[h] for h in hit}
            if not nodes:
                near = node_tree.nearest(centre)
                nodes = {drive_nodes[int(near)]}
            for n in sorted(nodes, key=str):
                for u, v, k, d in graph.in_edges(n, keys=True, data=True):
                    if u in nodes or not seg_drive.get(d["segment"], False):
                        continue
                    approaches.append((u, v, k, d, math.inf))
        street_names = sorted(
            {
                n
                for *_, d, _ in approaches
                if isinstance(n := seg_names.get(d["segment"]), str) and n
            }
        )
        given = [str(x) for x in names[members] if isinstance(x, str) and x]
        j_rows.append(
            {
                "id": jids[j],
                "name": given[0] if given else " / ".join(street_names[:4]) or None,
                "kind": kind,
                "source": source,
                "n_signals": len(members),
                "nodes": " ".join(str(n) for n in sorted(nodes, key=str)),
                "n_approaches": len(approaches),
                "geometry": centre,
            }
        )
        for a, (u, v, k, d, at) in enumerate(approaches):
            geom = _edge_line(graph, u, v, d)
            tail = _tail(geom, min(at, geom.length))
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
