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

import logging
import math
from collections.abc import Mapping
from typing import Any, Literal, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from twin.assets import lighting
from twin.crs import geo_crs
from twin.registry import make_ids

from ._tags import first, lit_value, main_class, to_number

__all__ = [
    "COUNTED_LANES_MAX",
    "DRIVE_CLASSES",
    "LANES_MAX",
    "LANE_CAPACITY_VEH_H",
    "NO_WALK_CLASSES",
    "PEAK_HOUR_SHARE",
    "STREET_TYPE_LANES_EACH_WAY",
    "TURN_VALUES",
    "edge_lanes",
    "is_lit",
    "lit_summary",
    "parse_turn_lanes",
    "segments",
    "turn_pockets",
]

log = logging.getLogger(__name__)

DRIVE_CLASSES = {
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified",
    "residential", "living_street", "service", "road", "busway",
}  # fmt: skip
NO_WALK_CLASSES = {"motorway", "motorway_link", "trunk", "trunk_link"}


def _oneway(d: Mapping[str, Any]) -> bool:
    return bool(d.get("oneway", False)) and str(d.get("oneway")) != "False"


def _shape(geom: shapely.LineString | None) -> bytes:
    """The same key for an edge's geometry and its reverse (the other direction's edge).

    Two parallel edges between the same nodes (the halves of a ring) differ; the two directions
    of one street do not, whatever the rounding of their lengths.
    """
    if geom is None:
        return b""
    xy = np.ascontiguousarray(shapely.get_coordinates(geom))
    return min(xy.tobytes(), np.ascontiguousarray(xy[::-1]).tobytes())


LANES_MAX = 8
"""Most lanes one direction of a street may have; a tag above it (or 0) is a data error."""

LaneSource = Literal["osm", "inferred", "default"]

#: Practical capacity of one urban lane at a signalised or priority junction (veh/h): half the
#: saturation flow of 1,800 pcu/h/lane (DESIGN section 4) at a green ratio of about 0.5.
LANE_CAPACITY_VEH_H = 900.0

#: Share of a day's traffic in the peak hour (Montpellier's counts: median PHJS/TJM 0.121).
PEAK_HOUR_SHARE = 0.12

#: Most lanes each way the counted flow of a municipal street may ask for.
COUNTED_LANES_MAX = 3

#: Fewest lanes each way of a municipal street type, above its road class's default: an urban
#: motorway (``AUTO``) is a dual carriageway of two lanes each way at least (ICTAAL, the French
#: motorway design rules: 2 x 2 lanes at least).
STREET_TYPE_LANES_EACH_WAY: Mapping[str, int] = {"AUTO": 2}


def _lane_tag(d: Mapping[str, Any], key: str, where: str, issues: list[str]) -> float:
    """A lane count tag as a number; NaN if absent; out-of-range values reported, then NaN."""
    value = to_number(d.get(key))
    if math.isnan(value):
        return math.nan
    if not 1 <= value <= LANES_MAX or value != int(value):
        issues.append(f"{where}: {key}={d.get(key)!r} is not 1-{LANES_MAX} lanes")
        return math.nan
    return value


def _turn_lanes(value: Any) -> str:
    """The ``turn:lanes`` value of one direction (``left|through|through;right``) or ''."""
    v = first(value)
    return str(v) if isinstance(v, str) else ""


#: Values of one lane of a ``turn:lanes`` tag (OSM wiki, Key:turn), several joined by ``;``;
#: an empty lane (or ``none``) is an unmarked one.
TURN_VALUES = frozenset(
    {
        "", "none", "through", "left", "slight_left", "sharp_left", "right", "slight_right",
        "sharp_right", "reverse", "merge_to_left", "merge_to_right",
    }
)  # fmt: skip


def parse_turn_lanes(turn: str, *, where: str, issues: list[str]) -> tuple[frozenset[str], ...]:
    """The lanes of a ``turn:lanes`` value (left to right), each as its set of turn values.

    A value with more than :data:`LANES_MAX` lanes, or with a turn value OSM does not define
    (:data:`TURN_VALUES`), is reported in ``issues`` with ``where`` and read as absent (``()``),
    never dropped silently.

    >>> issues = []
    >>> [sorted(lane) for lane in parse_turn_lanes("left|through|through;right", where="s",
    ...                                             issues=issues)]
    [['left'], ['through'], ['right', 'through']]
    >>> parse_turn_lanes("left|lfet", where="segment:000007", issues=issues)
    ()
    >>> issues
    ["segment:000007: turn:lanes='left|lfet' has an unknown turn value 'lfet'"]
    """
    if not turn:
        return ()
    lanes = tuple(frozenset(x.strip() for x in lane.split(";")) for lane in turn.split("|"))
    if len(lanes) > LANES_MAX:
        issues.append(f"{where}: turn:lanes={turn!r} has {len(lanes)} lanes, not 1-{LANES_MAX}")
        return ()
    unknown = sorted(set().union(*lanes) - TURN_VALUES)
    if unknown:
        issues.append(f"{where}: turn:lanes={turn!r} has an unknown turn value {unknown[0]!r}")
        return ()
    return lanes


def turn_pockets(turn: str) -> int:
    """Lanes of a ``turn:lanes`` value that serve only turns (a left or right turn pocket).

    >>> turn_pockets("left|through|through;right"), turn_pockets(""), turn_pockets("|")
    (1, 0, 0)
    """
    if not turn:
        return 0
    return sum(
        1
        for lane in turn.split("|")
        if lane and "through" not in lane and ("left" in lane or "right" in lane)
    )


def edge_lanes(
    d: Mapping[str, Any], cls: str, *, oneway: bool, where: str, issues: list[str]
) -> tuple[int, int, LaneSource, str]:
    """Lanes of a street (both directions) and of one directed edge, with their provenance.

    OpenStreetMap first (``lanes:forward``/``lanes:backward``, else ``lanes`` split evenly on a
    two-way street, else the lanes of the edge's ``turn:lanes``): ``osm``. Otherwise the road
    class's default: ``default``.

    A municipal centreline (an edge with a ``street_type``) has no lane tag (its ``lanes`` is
    the class default the reader put there, not read): its lanes are ``inferred``, in this order:

    1. street type: the road class it gives (:mod:`twin.municipal`), and that class's default
       lanes (``ROAD_CLASSES``), split evenly on a two-way street (one lane each way at least),
       or the type's own minimum each way (:data:`STREET_TYPE_LANES_EACH_WAY`: two on an urban
       motorway) where it is higher;
    2. one-way street: the class's whole default on its one direction;
    3. counted flow: where the street's busiest counted direction (``aadt``, the largest daily
       count of one direction, TJM) has a peak hour (:data:`PEAK_HOUR_SHARE` of it, the median
       PHJS/TJM ratio of Montpellier's counts) above :data:`LANE_CAPACITY_VEH_H` per lane, each
       direction gets the lanes that peak hour needs, up to :data:`COUNTED_LANES_MAX`; a count
       never takes lanes away. Both directions of a two-way street get the same lanes, since
       the count names the street, not a direction of it.

    Montpellier's centrelines give no carriageway width, so none is read. Its counted main
    streets carry two or three lanes each way: lighting design reads the same lanes, so those
    streets are multilane routes for EN 13201 (:mod:`twin.derive.lighting`).

    Returns
    -------
    (total, this direction, source, turn lanes)

    Examples
    --------
    >>> issues = []
    >>> edge_lanes({"lanes": "3"}, "primary", oneway=False, where="w1", issues=issues)
    (3, 1, 'osm', '')
    >>> edge_lanes({"lanes": "3", "lanes:backward": "2", "reversed": True}, "primary",
    ...            oneway=False, where="w1", issues=issues)
    (3, 2, 'osm', '')
    >>> edge_lanes({"lanes": "0"}, "residential", oneway=False, where="w2", issues=issues)
    (2, 1, 'default', '')
    >>> issues
    ["w2: lanes='0' is not 1-8 lanes"]
    >>> edge_lanes({"street_type": "BD", "lanes": 2}, "primary", oneway=True, where="m",
    ...            issues=issues)
    (2, 2, 'inferred', '')
    >>> edge_lanes({"street_type": "BD", "aadt": 12000.0}, "primary", oneway=False,
    ...            where="m", issues=issues)  # 1,440 veh/h in the peak hour: two lanes
    (4, 2, 'inferred', '')
    """
    defaults = lighting.ROAD_CLASSES
    default_total = int(cast(float, defaults.at[cls, "lanes"]))
    backward = bool(d.get("reversed", False)) and str(d.get("reversed")) != "False"
    side = "backward" if backward else "forward"
    if d.get("street_type") is not None:  # a municipal centreline: its lanes are not tags
        d = {k: d.get(k) for k in ("street_type", "aadt")}
    total = _lane_tag(d, "lanes", where, issues)
    fwd = _lane_tag(d, "lanes:forward", where, issues)
    bwd = _lane_tag(d, "lanes:backward", where, issues)
    turn = _turn_lanes(d.get(f"turn:lanes:{side}") or (d.get("turn:lanes") if oneway else None))
    parsed = parse_turn_lanes(turn, where=where, issues=issues)
    if not parsed:
        turn = ""
    this = bwd if backward else fwd
    if not math.isnan(this):
        other = fwd if backward else bwd
        if math.isnan(total):
            total = this + (0 if oneway else (other if not math.isnan(other) else this))
        return int(total), int(this), "osm", turn
    if not math.isnan(total):
        per_dir = total if oneway else max(1.0, total // 2)
        return int(total), int(per_dir), "osm", turn
    if turn:
        n = len(parsed)
        return (n if oneway else 2 * n), n, "osm", turn
    per_dir = default_total if oneway else max(1, default_total // 2)
    street_type = d.get("street_type")
    if street_type is None:
        return default_total, per_dir, "default", turn
    need = STREET_TYPE_LANES_EACH_WAY.get(str(street_type).upper(), 0)
    aadt = to_number(d.get("aadt"))
    if math.isfinite(aadt) and aadt > 0:
        peak = PEAK_HOUR_SHARE * aadt
        need = max(need, min(COUNTED_LANES_MAX, math.ceil(peak / LANE_CAPACITY_VEH_H)))
    if need > per_dir:
        return (need if oneway else 2 * need), need, "inferred", turn
    return default_total, per_dir, "inferred", turn


def segments(graph: nx.MultiDiGraph) -> gpd.GeoDataFrame:
    """Road segments (undirected edges); sets ``segment`` and cleaned attributes on every edge.

    The segments are in the graph's CRS (``graph.graph["crs"]``; none for a SUMO network
    without a projection).
    """
    defaults = lighting.ROAD_CLASSES
    nodes = graph.nodes
    index: dict[tuple[Any, ...], int] = {}
    rows: list[dict[str, Any]] = []
    issues: list[str] = []
    for u, v, _k, d in graph.edges(keys=True, data=True):
        cls = main_class(d.get("highway"))
        if cls not in defaults.index:
            cls = "unclassified" if cls in DRIVE_CLASSES else "path"
        length = float(d.get("length", 0.0))
        key = (min(u, v), max(u, v), str(d.get("osmid")), _shape(d.get("geometry")))
        sid = f"segment:{index.get(key, len(rows)):06d}"  # the id make_ids gives it below
        where = f"{sid} of way {first(d.get('osmid'))} ({u}->{v})"
        lanes_i, lanes_dir, lanes_src, turn = edge_lanes(
            d, cls, oneway=_oneway(d), where=where, issues=issues
        )
        speed = d.get("speed_kph")
        speed = to_number(d.get("maxspeed")) if speed is None else float(speed)
        oneway = _oneway(d)
        # the defaults' columns are numeric; pandas-stubs type a cell as any scalar
        if math.isnan(speed) or not 0 < speed <= 200:  # tags like '999' or '0' are errors
            speed = float(cast(float, defaults.at[cls, "speed_kph"]))
        d["highway"] = cls
        d["lanes"] = lanes_i
        d["lanes_dir"] = lanes_dir
        d["lanes_source"] = lanes_src
        d["turn_pockets"] = turn_pockets(turn)
        d["turn_lanes"] = turn  # this direction's, checked ('' where absent or in error)
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
                    "lanes_forward": lanes_dir,
                    "lanes_backward": 0 if oneway else lanes_i - lanes_dir,
                    "lanes_source": lanes_src,
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
    if issues:
        log.warning(
            "%d lane tag(s) out of range or unreadable, class defaults used instead: %s",
            len(issues),
            "; ".join(issues[:10]),
        )
    graph.graph["lane_issues"] = issues
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
