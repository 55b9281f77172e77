"""Road segments: one per undirected street edge of the simplified graph.

The two directions of a two-way street share a segment. Class, lanes, speed and ``lit`` come
from the tags, with defaults per road class from :data:`twin.assets.lighting.ROAD_CLASSES` where a
tag is missing; the EN 13201 design class from :func:`twin.assets.lighting.design_classes`.

``lit`` is the OSM tag (``yes``, ``no``, ``unknown``, or ``mixed`` where a GraphML merged lit and
unlit ways into one edge); ``lit_assumed`` marks untagged (or mixed) segments of a class that is
lit by default (``lit_default`` in the road-class table). A segment is lit *by tag* when
``lit == "yes"`` and *by assumption* when ``lit_assumed``; :func:`lit_summary` gives the lengths.
"""

from __future__ import annotations

import math
from typing import Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from twin.assets import lighting
from twin.crs import geo_crs
from twin.registry import make_ids

from ._tags import first, lit_value, main_class, to_number

__all__ = ["DRIVE_CLASSES", "NO_WALK_CLASSES", "is_lit", "lit_summary", "segments"]

DRIVE_CLASSES = {
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified",
    "residential", "living_street", "service", "road", "busway",
}  # fmt: skip
NO_WALK_CLASSES = {"motorway", "motorway_link", "trunk", "trunk_link"}


def _shape(geom: shapely.LineString | None) -> bytes:
    """The same key for an edge's geometry and its reverse (the other direction's edge).

    Two parallel edges between the same nodes (the halves of a ring) differ; the two directions
    of one street do not, whatever the rounding of their lengths.
    """
    if geom is None:
        return b""
    xy = np.ascontiguousarray(shapely.get_coordinates(geom))
    return min(xy.tobytes(), np.ascontiguousarray(xy[::-1]).tobytes())


def segments(graph: nx.MultiDiGraph) -> gpd.GeoDataFrame:
    """Road segments (undirected edges); sets ``segment`` and cleaned attributes on every edge.

    The segments are in the graph's CRS (``graph.graph["crs"]``; none for a SUMO network
    without a projection).
    """
    defaults = lighting.ROAD_CLASSES
    nodes = graph.nodes
    index: dict[tuple[Any, ...], int] = {}
    rows: list[dict[str, Any]] = []
    for u, v, _k, d in graph.edges(keys=True, data=True):
        cls = main_class(d.get("highway"))
        if cls not in defaults.index:
            cls = "unclassified" if cls in DRIVE_CLASSES else "path"
        length = float(d.get("length", 0.0))
        key = (min(u, v), max(u, v), str(d.get("osmid")), _shape(d.get("geometry")))
        lanes = to_number(d.get("lanes"))
        speed = d.get("speed_kph")
        speed = to_number(d.get("maxspeed")) if speed is None else float(speed)
        oneway = bool(d.get("oneway", False)) and str(d.get("oneway")) != "False"
        # the defaults' columns are numeric; pandas-stubs type a cell as any scalar
        if math.isnan(lanes) or lanes < 1:
            lanes = float(cast(float, defaults.at[cls, "lanes"]))
        if math.isnan(speed) or not 0 < speed <= 200:  # tags like '999' or '0' are errors
            speed = float(cast(float, defaults.at[cls, "speed_kph"]))
        lanes_i = int(lanes)
        d["highway"] = cls
        d["lanes"] = lanes_i
        d["lanes_dir"] = lanes_i if oneway else max(1, lanes_i // 2)
        d["speed_kph"] = float(speed)
        d["length"] = length
        if key not in index:
            index[key] = len(rows)
            geom = d.get("geometry")
            if geom is None:
                geom = shapely.LineString(
                    [(nodes[u]["x"], nodes[u]["y"]), (nodes[v]["x"], nodes[v]["y"])]
                )
            rows.append(
                {
                    "u": int(u),
                    "v": int(v),
                    "osmid": str(d.get("osmid")),
                    "name": first(d.get("name")),
                    "highway": cls,
                    "lanes": lanes_i,
                    "speed_kph": float(speed),
                    "oneway": oneway,
                    "lit": lit_value(d.get("lit")),
                    "length_m": float(geom.length) if length <= 0 else length,
                    "drive": cls in DRIVE_CLASSES and str(d.get("access")) not in {"no", "private"},
                    "walk": cls not in NO_WALK_CLASSES,
                    "junction_tag": str(d.get("junction") or ""),
                    "geometry": geom,
                }
            )
        d["segment"] = index[key]
    seg = pd.DataFrame(rows)
    ids = make_ids("segment", len(seg))
    seg["id"] = ids
    for _, _, d in graph.edges(data=True):
        d["segment"] = ids[d["segment"]]
    lit_default = defaults["lit_default"].reindex(seg["highway"]).fillna(False).to_numpy(bool)
    seg["lit_assumed"] = seg["lit"].isin(["unknown", "mixed"]).to_numpy() & lit_default
    in_junction = seg.pop("junction_tag").isin(["roundabout", "circular"]).to_numpy()
    seg["lighting_class"] = lighting.design_classes(
        seg["highway"].to_numpy(dtype=str),
        speed_kmh=seg["speed_kph"].to_numpy(float),
        lanes=seg["lanes"].to_numpy(float),
        junction=in_junction,
    )
    return gpd.GeoDataFrame(seg, geometry="geometry", crs=geo_crs(graph.graph.get("crs")))


def is_lit(seg: pd.DataFrame) -> np.ndarray:
    """Whether each segment is lit: by its ``lit`` tag, or by assumption (``lit_assumed``)."""
    return ((seg["lit"] == "yes") | seg["lit_assumed"]).to_numpy(bool)


def lit_summary(seg: pd.DataFrame) -> dict[str, Any]:
    """Lengths (km) and counts of segments lit by tag, lit by assumption, and unlit.

    ``tag`` is ``lit=yes``; ``assumed`` is untagged (or ``mixed``) and of a class lit by
    default; ``unlit_tag`` is ``lit=no``; ``unlit_untagged`` is untagged and of a class dark
    by default; ``mixed`` counts the GraphML edges whose merged ``lit`` values disagree (they
    are in ``assumed`` or ``unlit_untagged`` too).

    >>> seg = pd.DataFrame({"lit": ["yes", "unknown", "no", "unknown"],
    ...                     "lit_assumed": [False, True, False, False],
    ...                     "length_m": [1000.0, 500.0, 250.0, 125.0]})
    >>> s = lit_summary(seg)
    >>> s["tag_km"], s["assumed_km"], s["unlit_tag_km"], s["unlit_untagged_km"]
    (1.0, 0.5, 0.25, 0.125)
    """
    length = seg["length_m"].to_numpy(float)
    tag = (seg["lit"] == "yes").to_numpy(bool)
    assumed = seg["lit_assumed"].to_numpy(bool) & ~tag
    no = (seg["lit"] == "no").to_numpy(bool)
    untagged_dark = ~(tag | assumed | no)
    mixed = (seg["lit"] == "mixed").to_numpy(bool)
    out: dict[str, Any] = {}
    for name, mask in (
        ("tag", tag),
        ("assumed", assumed),
        ("unlit_tag", no),
        ("unlit_untagged", untagged_dark),
        ("mixed", mixed),
    ):
        out[f"{name}_km"] = round(float(length[mask].sum()) / 1000.0, 3)
        out[f"{name}_segments"] = int(mask.sum())
    return out
