"""Build a twin from a city's data, and cache it.

The build reads the sources (:mod:`twin.osm` for OSM extracts, :mod:`twin.municipal` for
municipal GIS files), turns the street graph into road segments, then derives or imports every
asset type of the registry (:mod:`twin.registry`). The result is cached, keyed by the checksum of
every input file, the code version and the seed, so a second load is fast and a changed input
rebuilds.

How each asset type is made
---------------------------
segments
    One per undirected street edge of the simplified graph (the two directions of a two-way street
    share a segment); class, lanes, speed and ``lit`` from the tags (defaults per road class from
    :data:`twin.assets.lighting.ROAD_CLASSES` where a tag is missing); the EN 13201 design class
    from :func:`twin.assets.lighting.design_classes`.
lights
    ``highway=street_lamp`` nodes where mapped (snapped to the nearest segment within
    :data:`SNAP_M`); a municipal inventory where the city has one; otherwise placed along lit
    segments without a mapped lamp, at the road class's spacing: a segment of length ``L`` and
    spacing ``s`` gets ``floor(L/s + u)`` evenly spaced lights, ``u`` uniform from the seeded
    generator (so the expected count is exactly ``L/s`` and short segments are not all dark or
    all lit). The same seed gives the same lights.
cabinets
    Lights grouped into feeders by recursive median bisection of their positions (split along
    the wider axis until a group holds at most :data:`CABINET_MAX` lights): groups of 30-60
    neighbouring lights. Mapped ``street_cabinet=lighting`` cabinets give the position of the
    group nearest to them.
junctions
    Traffic-signal points clustered with complete linkage (no two signals of one junction more
    than :data:`JUNCTION_DIAMETER_M` apart); the junction's nodes are the drive-graph nodes
    within :data:`JUNCTION_NODE_M` of its signals, its approaches the drive edges entering them.
sensors
    Derived, as no OSM tag maps them: a loop detector on each junction approach; footfall
    counters on the walkable segments with the most points of interest nearby; road-weather
    stations spread over the main roads (one per ~25 km², at least one).
depots, vehicles
    ``defaults.depots`` depots at drive-graph nodes found by seeded k-means over the network;
    the city's published fleet size (or ~0.8 vehicles per 1,000 inhabitants) split by type.
cameras, buildings, points of interest
    From OSM features (``man_made=surveillance``, public amenities, shops, bars, transit stops).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import shapely
import shapely.ops
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.cluster.vq import kmeans2

from . import municipal, osm
from ._errors import InputValidationError
from .assets import lighting
from .assets.luminaire import load_catalogue
from .cache import CODE_VERSION, input_files, sha256_file
from .cities import City
from .crs import LAMBERT93
from .inventory import Rejection, read_inventory
from .registry import Registry, make_ids
from .settings import get_settings

__all__ = ["CABINET_MAX", "SNAP_M", "build", "lights_from_inventory"]

log = logging.getLogger(__name__)

SNAP_M = 60.0
CABINET_MAX = 60
CABINET_MIN = 20
JUNCTION_DIAMETER_M = 60.0
JUNCTION_NODE_M = 30.0
APPROACH_TAIL_M = 30.0

DRIVE_CLASSES = {
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified",
    "residential", "living_street", "service", "road", "busway",
}  # fmt: skip
NO_WALK_CLASSES = {"motorway", "motorway_link", "trunk", "trunk_link"}
PUBLIC_AMENITIES = {
    "townhall", "school", "library", "hospital", "clinic", "police", "fire_station",
    "community_centre", "kindergarten", "college", "university", "theatre", "arts_centre",
    "social_facility", "courthouse", "post_office", "marketplace", "sports_centre", "prison",
}  # fmt: skip
FOOD_DRINK = {
    "bar",
    "pub",
    "restaurant",
    "cafe",
    "fast_food",
    "nightclub",
    "biergarten",
    "ice_cream",
}
EDUCATION = {"school", "kindergarten", "college", "university"}
FLEET_SHARE = {
    "plough": 0.20,
    "salter": 0.15,
    "patrol": 0.30,
    "emergency": 0.10,
    "maintenance": 0.25,
}
VEHICLES_PER_1000 = 0.8


# ------------------------------------------------------------------------------------------------
# small parsers for OSM tag values (osmnx leaves lists where simplification merged ways)
# ------------------------------------------------------------------------------------------------
_RANK = {c: i for i, c in enumerate(reversed(list(lighting.ROAD_CLASSES.index)))}


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _main_class(value: Any) -> str:
    values = value if isinstance(value, list) else [value]
    names = [str(v) for v in values if v is not None]
    if not names:
        return "unclassified"
    return max(names, key=lambda v: _RANK.get(v, -1))


def _to_number(value: Any) -> float:
    """First number in a tag value ('50', 'FR:urban', ['30', '50'], '2;3'); NaN if none."""
    if isinstance(value, list):
        nums = [_to_number(v) for v in value]
        nums = [n for n in nums if not math.isnan(n)]
        return max(nums) if nums else math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value.lower() in {"fr:urban", "fr:zone30"}:
            return 50.0 if value.lower() == "fr:urban" else 30.0
        m = re.search(r"\d+(\.\d+)?", value)
        if m:
            num = float(m.group())
            return num * 1.609 if "mph" in value else num
    return math.nan


def _lit(value: Any) -> str:
    values = value if isinstance(value, list) else [value]
    vals = {str(v).lower() for v in values if v is not None}
    if vals & {"yes", "24/7", "automatic", "limited", "interval", "sunset-sunrise", "dusk-dawn"}:
        return "yes"
    if vals & {"no", "disused"}:
        return "no"
    return "unknown"


# ------------------------------------------------------------------------------------------------
# segments
# ------------------------------------------------------------------------------------------------
def _segments(graph: nx.MultiDiGraph) -> gpd.GeoDataFrame:
    """Road segments (undirected edges); sets ``segment`` and cleaned attributes on every edge."""
    defaults = lighting.ROAD_CLASSES
    nodes = graph.nodes
    index: dict[tuple[Any, ...], int] = {}
    rows: list[dict[str, Any]] = []
    for u, v, _k, d in graph.edges(keys=True, data=True):
        cls = _main_class(d.get("highway"))
        if cls not in defaults.index:
            cls = "unclassified" if cls in DRIVE_CLASSES else "path"
        length = float(d.get("length", 0.0))
        key = (min(u, v), max(u, v), str(d.get("osmid")), round(length, 1))
        lanes = _to_number(d.get("lanes"))
        speed = d.get("speed_kph")
        speed = _to_number(d.get("maxspeed")) if speed is None else float(speed)
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
                    "name": _first(d.get("name")),
                    "highway": cls,
                    "lanes": lanes_i,
                    "speed_kph": float(speed),
                    "oneway": oneway,
                    "lit": _lit(d.get("lit")),
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
    seg["lit_assumed"] = (seg["lit"] == "unknown") & lit_default
    in_junction = seg.pop("junction_tag").isin(["roundabout", "circular"]).to_numpy()
    seg["lighting_class"] = lighting.design_classes(
        seg["highway"].to_numpy(dtype=str),
        speed_kmh=seg["speed_kph"].to_numpy(float),
        lanes=seg["lanes"].to_numpy(float),
        junction=in_junction,
    )
    return gpd.GeoDataFrame(seg, geometry="geometry", crs=LAMBERT93)


def _is_lit(seg: pd.DataFrame) -> np.ndarray:
    return ((seg["lit"] == "yes") | seg["lit_assumed"]).to_numpy(bool)


# ------------------------------------------------------------------------------------------------
# lights
# ------------------------------------------------------------------------------------------------
def _snap(points: np.ndarray, seg: gpd.GeoDataFrame, *, max_m: float = SNAP_M) -> np.ndarray:
    """Id of the nearest segment within ``max_m`` of each point (None beyond)."""
    out = np.full(len(points), None, dtype=object)
    if len(points) == 0 or len(seg) == 0:
        return out
    tree = shapely.STRtree(seg.geometry.values)
    p_idx, s_idx = tree.query_nearest(points, max_distance=max_m, all_matches=False)
    out[p_idx] = seg["id"].to_numpy()[s_idx]
    return out


def _catalogue(design_class: np.ndarray, name: str) -> pd.DataFrame:
    """LED luminaire (power, flux, min level) for each design class, from the city's catalogue."""
    cat = load_catalogue(name)
    missing = sorted(set(design_class) - set(cat.index))
    if missing:
        msg = f"catalogue {name!r} has no luminaire for class(es) {missing}"
        raise InputValidationError(msg)
    return cat.reindex(design_class).reset_index(drop=True)


def _derive_lights(
    seg: gpd.GeoDataFrame, *, skip: set[str], rng: np.random.Generator
) -> pd.DataFrame:
    spacing = lighting.ROAD_CLASSES["spacing_m"].reindex(seg["highway"]).to_numpy(float)
    lit = _is_lit(seg) & ~seg["id"].isin(skip).to_numpy() & np.isfinite(spacing) & (spacing > 0)
    idx = np.flatnonzero(lit)
    lengths = seg["length_m"].to_numpy(float)[idx]
    u = rng.random(len(idx))
    n = np.floor(lengths / spacing[idx] + u).astype(int)
    rep = np.repeat(np.arange(len(idx)), n)
    # position of each light: (j + 1/2) L / n for j = 0..n-1
    first = np.repeat(np.cumsum(n) - n, n)
    j = np.arange(rep.size) - first
    frac = (j + 0.5) / np.repeat(n, n)
    geoms = seg.geometry.values[idx][rep]
    pts = shapely.line_interpolate_point(geoms, frac, normalized=True)
    sid = seg["id"].to_numpy()[idx][rep]
    return pd.DataFrame(
        {
            "segment": sid,
            "source": "derived",
            "ref": None,
            "luminaire": "street light",
            "geometry": pts,
        }
    )


def _osm_lamps(feats: gpd.GeoDataFrame, seg: gpd.GeoDataFrame) -> pd.DataFrame:
    lamps = feats[(feats["highway"] == "street_lamp") & (feats.geometry.geom_type == "Point")]
    if lamps.empty:
        return pd.DataFrame(columns=["segment", "source", "ref", "luminaire", "geometry"])
    pts = lamps.geometry.values
    return pd.DataFrame(
        {
            "segment": _snap(np.asarray(pts), seg),
            "source": "osm",
            "ref": lamps["osmid"].astype(str).to_numpy(),
            "luminaire": "street lamp",
            "geometry": pts,
        }
    )


def _finish_lights(raw: pd.DataFrame, seg: gpd.GeoDataFrame, *, catalogue: str) -> pd.DataFrame:
    """Sort lights stably (by segment then position), number them and fill the luminaire."""
    df = raw.reset_index(drop=True)
    xy = shapely.get_coordinates(np.asarray(df["geometry"].values))
    df = df.assign(_x=xy[:, 0], _y=xy[:, 1], _s=df["segment"].fillna("~"))
    df = df.sort_values(["_s", "_x", "_y"], kind="stable").drop(columns=["_x", "_y", "_s"])
    df = df.reset_index(drop=True)
    df["id"] = make_ids("light", len(df))
    seg_cls = seg.set_index("id")["lighting_class"]
    seg_hw = seg.set_index("id")["highway"]
    design = seg_cls.reindex(df["segment"]).to_numpy(dtype=object)
    design = np.where(pd.isna(design), lighting.UNMATCHED_CLASS, design).astype(str)
    road_class = seg_hw.reindex(df["segment"]).fillna("residential").to_numpy(dtype=str)
    df["design_class"] = design
    cat = _catalogue(design, catalogue)
    if "power_w" not in df.columns:
        df["power_w"] = np.nan
    given = pd.to_numeric(df["power_w"], errors="coerce").to_numpy(float)
    df["power_defaulted"] = ~np.isfinite(given)
    df["power_w"] = np.where(np.isfinite(given), given, cat["power_w"].to_numpy(float))
    if "flux_lm" not in df.columns:
        df["flux_lm"] = np.nan
    flux = pd.to_numeric(df["flux_lm"], errors="coerce").to_numpy(float)
    efficacy = (cat["flux_lm"] / cat["power_w"]).to_numpy(float)
    df["flux_lm"] = np.where(np.isfinite(flux), flux, df["power_w"].to_numpy(float) * efficacy)
    df["min_level"] = cat["min_level"].to_numpy(float)
    if "technology" not in df.columns:
        df["technology"] = "LED"
    df["technology"] = df["technology"].fillna("LED")
    from .energy import baseline_power_w

    df["baseline_power_w"] = baseline_power_w(road_class)
    df["cabinet"] = None
    return df


# ------------------------------------------------------------------------------------------------
# cabinets
# ------------------------------------------------------------------------------------------------
def _bisect(xy: np.ndarray, idx: np.ndarray, out: list[np.ndarray]) -> None:
    if len(idx) <= CABINET_MAX:
        out.append(idx)
        return
    pts = xy[idx]
    axis = int(np.argmax(pts.max(axis=0) - pts.min(axis=0)))
    order = idx[np.argsort(pts[:, axis], kind="stable")]
    half = len(order) // 2
    _bisect(xy, order[:half], out)
    _bisect(xy, order[half:], out)


def _cabinets(lights: pd.DataFrame, feats: gpd.GeoDataFrame) -> pd.DataFrame:
    if lights.empty:
        return pd.DataFrame(columns=["id", "geometry"])
    xy = shapely.get_coordinates(np.asarray(lights["geometry"].values))
    groups: list[np.ndarray] = []
    _bisect(xy, np.arange(len(lights)), groups)
    ids = make_ids("cabinet", len(groups))
    cab_of = np.empty(len(lights), dtype=object)
    centroids = np.zeros((len(groups), 2))
    for gid, members in zip(ids, groups, strict=True):
        cab_of[members] = gid
    power = lights["power_w"].to_numpy(float)
    rows = []
    for i, members in enumerate(groups):
        centroids[i] = xy[members].mean(axis=0)
        installed = float(power[members].sum())
        rows.append(
            {
                "id": ids[i],
                "source": "derived",
                "n_lights": len(members),
                "installed_power_w": installed,
                "contracted_power_w": 3000.0 * math.ceil(installed * 1.1 / 3000.0),
                "geometry": shapely.Point(centroids[i]),
            }
        )
    cabs = pd.DataFrame(rows)
    mapped = feats[
        (feats["man_made"] == "street_cabinet")
        & (feats["street_cabinet"].astype(str) == "lighting")
    ]
    if not mapped.empty:
        pts = shapely.get_coordinates(mapped.geometry.representative_point().values)
        taken: set[int] = set()
        for p in pts:
            d = np.hypot(*(centroids - p).T)
            for ci in np.argsort(d):
                if ci not in taken and d[ci] < 500:
                    taken.add(int(ci))
                    cabs.at[ci, "geometry"] = shapely.Point(p)
                    cabs.at[ci, "source"] = "osm"
                    break
    lights["cabinet"] = cab_of
    return cabs


# ------------------------------------------------------------------------------------------------
# junctions and approaches
# ------------------------------------------------------------------------------------------------
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


def _junctions(
    signals: gpd.GeoDataFrame, graph: nx.MultiDiGraph, seg: gpd.GeoDataFrame, *, source: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
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
                    "name": _first(d.get("name")),
                    "geometry": tail,
                }
            )
    return pd.DataFrame(j_rows), pd.DataFrame(a_rows)


# ------------------------------------------------------------------------------------------------
# features: cameras, buildings, points of interest
# ------------------------------------------------------------------------------------------------
def _points(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(frame.geometry.representative_point().values)


def _features(feats: gpd.GeoDataFrame, seg: gpd.GeoDataFrame) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    cams = feats[feats["man_made"] == "surveillance"]
    out["camera"] = pd.DataFrame(
        {
            "id": make_ids("camera", len(cams)),
            "source": "osm",
            "ref": cams["osmid"].astype(str).to_numpy(),
            "surveillance": cams["surveillance"].to_numpy(),
            "camera_type": cams["surveillance:type"].to_numpy(),
            "geometry": _points(cams),
        }
    )
    pub = feats[feats["amenity"].isin(PUBLIC_AMENITIES)]
    out["building"] = pd.DataFrame(
        {
            "id": make_ids("building", len(pub)),
            "source": "osm",
            "ref": pub["osmid"].astype(str).to_numpy(),
            "amenity": pub["amenity"].to_numpy(),
            "name": pub["name"].to_numpy(),
            "geometry": _points(pub),
        }
    )
    category = np.full(len(feats), None, dtype=object)
    tag = np.full(len(feats), None, dtype=object)
    shop = feats["shop"].notna().to_numpy()
    category[shop], tag[shop] = "shop", feats["shop"].to_numpy()[shop]
    amen = feats["amenity"].to_numpy(dtype=object)
    for cat, values in (("food_drink", FOOD_DRINK), ("school", EDUCATION)):
        m = np.isin(amen, list(values))
        category[m], tag[m] = cat, amen[m]
    transit = (
        feats["public_transport"].isin(["platform", "stop_position", "station"])
        | (feats["highway"] == "bus_stop")
    ).to_numpy()
    category[transit & (category == None)] = "transit"  # noqa: E711
    tag[transit & (tag == None)] = "stop"  # noqa: E711
    other = (
        pd.isna(category)
        & feats["amenity"].notna().to_numpy()
        & (feats["boundary"].isna().to_numpy())
    )
    category[other], tag[other] = "amenity", amen[other]
    keep = category != None  # noqa: E711
    poi = feats[keep]
    pts = _points(poi)
    walk = seg[seg["walk"]]
    out["poi"] = pd.DataFrame(
        {
            "id": make_ids("poi", len(poi)),
            "category": category[keep],
            "tag": tag[keep],
            "ref": poi["osmid"].astype(str).to_numpy(),
            "segment": _snap(pts, walk, max_m=150.0),
            "geometry": pts,
        }
    )
    return out


# ------------------------------------------------------------------------------------------------
# sensors, depots, vehicles
# ------------------------------------------------------------------------------------------------
def _sensors(
    seg: gpd.GeoDataFrame,
    approaches: pd.DataFrame,
    poi: pd.DataFrame,
    lights: pd.DataFrame,
    *,
    rng: np.random.Generator,
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for a in approaches.itertuples(index=False):
        rows.append(
            {
                "sensor_type": "loop",
                "segment": a.segment,
                "approach": a.id,
                "geometry": shapely.get_point(a.geometry, 0),
            }
        )
    walk = seg[seg["walk"] & (seg["length_m"] > 20)]
    if len(walk):
        mids = shapely.line_interpolate_point(walk.geometry.values, 0.5, normalized=True)
        tree = shapely.STRtree(mids)
        score = np.zeros(len(walk))
        src = poi if len(poi) else lights
        if len(src):
            _, hit = tree.query(
                np.asarray(src["geometry"].values), predicate="dwithin", distance=150.0
            )
            score += np.bincount(hit, minlength=len(walk))
        score += np.isin(walk["highway"], ["pedestrian", "living_street"]) * (score.max() + 1) * 0.5
        n_foot = int(np.clip(round(len(seg) / 250), 3, 200))
        best = np.argsort(-score, kind="stable")[:n_foot]
        for i in best:
            rows.append(
                {
                    "sensor_type": "footfall",
                    "segment": walk["id"].iloc[i],
                    "approach": None,
                    "geometry": mids[i],
                }
            )
    main = seg[seg["highway"].isin(["motorway", "trunk", "primary", "secondary", "tertiary"])]
    if len(main) == 0:
        main = seg[seg["drive"]]
    if len(main):
        hull = shapely.convex_hull(
            shapely.multipoints(shapely.get_coordinates(seg.geometry.values))
        )
        k = int(max(1, min(len(main), round(hull.area / 25e6))))
        mids = shapely.line_interpolate_point(main.geometry.values, 0.5, normalized=True)
        xy = shapely.get_coordinates(mids)
        centres, _ = (
            kmeans2(xy, k, seed=rng, minit="++")
            if k > 1
            else (xy.mean(axis=0, keepdims=True), None)
        )
        for c in centres:
            i = int(np.argmin(np.hypot(*(xy - c).T)))
            rows.append(
                {
                    "sensor_type": "weather",
                    "segment": main["id"].iloc[i],
                    "approach": None,
                    "geometry": mids[i],
                }
            )
    df = pd.DataFrame(rows, columns=["sensor_type", "segment", "approach", "geometry"])
    df.insert(0, "id", make_ids("sensor", len(df)))
    df["source"] = "derived"
    return df


def _fleet(
    graph: nx.MultiDiGraph, seg: gpd.GeoDataFrame, city: City, *, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    drive_nodes = sorted({n for s in seg[seg["drive"]].itertuples() for n in (s.u, s.v)})
    if not drive_nodes:
        return pd.DataFrame(columns=["id", "geometry"]), pd.DataFrame(columns=["id", "geometry"])
    xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in drive_nodes])
    k = int(max(1, min(len(drive_nodes), city.defaults.get("depots", 1))))
    centres = kmeans2(xy, k, seed=rng, minit="++")[0] if k > 1 else xy.mean(axis=0, keepdims=True)
    gates = [int(np.argmin(np.hypot(*(xy - c).T))) for c in centres]
    n_veh = int(city.expected.get("vehicle") or round(city.population * VEHICLES_PER_1000 / 1000))
    types = []
    for t, share in FLEET_SHARE.items():
        types += [t] * int(round(share * n_veh))
    types = (types + ["patrol"] * n_veh)[:n_veh]
    dep_ids = make_ids("depot", k)
    veh_depot = [dep_ids[i % k] for i in range(n_veh)]
    depots = pd.DataFrame(
        {
            "id": dep_ids,
            "source": "derived",
            "node": [int(drive_nodes[g]) for g in gates],
            "n_vehicles": [veh_depot.count(d) for d in dep_ids],
            "geometry": [shapely.Point(xy[g]) for g in gates],
        }
    )
    pos = dict(zip(dep_ids, depots["geometry"], strict=True))
    vehicles = pd.DataFrame(
        {
            "id": make_ids("vehicle", n_veh),
            "vehicle_type": types,
            "depot": veh_depot,
            "geometry": [pos[d] for d in veh_depot],
        }
    )
    return depots, vehicles


# ------------------------------------------------------------------------------------------------
# sources
# ------------------------------------------------------------------------------------------------
def _source_date(files: dict[str, Path], graph: nx.MultiDiGraph) -> str | None:
    dates: list[str] = []
    if graph.graph.get("created_date"):
        dates.append(str(graph.graph["created_date"])[:10])
    for path in files.values():
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                dates.append(max(dt.date(*i.date_time[:3]).isoformat() for i in zf.infolist()))
        elif path.suffix == ".osm":
            with path.open("rb") as fh:
                stamps = re.findall(rb'timestamp="(\d{4}-\d{2}-\d{2})', fh.read())
            if stamps:
                dates.append(max(stamps).decode())
    return max(dates) if dates else None


def _read(city: City, files: dict[str, Path]) -> dict[str, Any]:
    out = _read_source(city, files)
    if "inventory" in files:  # an inventory imported with `twin import-inventory`
        out["inventory"] = gpd.read_file(files["inventory"]).to_crs(LAMBERT93)
        out["inventory_rejected"] = []
    return out


def _read_source(city: City, files: dict[str, Path]) -> dict[str, Any]:
    src = city.source
    if src["kind"] == "sumo":
        from .sumo import read_sumo_net

        graph, _plans = read_sumo_net(files["net"])
        # integer node ids like OSM's; the SUMO junction id stays as the node's `sumo_id`
        ids = {n: i for i, n in enumerate(sorted(graph.nodes, key=str))}
        nx.set_node_attributes(graph, {n: str(n) for n in graph.nodes}, "sumo_id")
        graph = nx.relabel_nodes(graph, ids)
        graph.graph["junctions"] = {
            tls: [ids[n] for n in members]
            for tls, members in graph.graph.get("junctions", {}).items()
        }
        if graph.graph.get("crs") not in (None, LAMBERT93) and str(graph.graph["crs"]).startswith(
            "EPSG"
        ):
            graph = ox.project_graph(graph, to_crs=LAMBERT93)
        nodes = [n for members in graph.graph.get("junctions", {}).values() for n in members]
        signals = gpd.GeoDataFrame(
            {"name": [None] * len(nodes)},
            geometry=gpd.points_from_xy(
                [graph.nodes[n]["x"] for n in nodes], [graph.nodes[n]["y"] for n in nodes]
            ),
            crs=LAMBERT93,
        )
        return {
            "graph": graph,
            "features": osm._empty_features(),
            "signals": signals,
            "inventory": None,
            "inventory_rejected": [],
            "counts": None,
            "signal_source": "sumo",
        }
    if src["kind"] == "osm":
        main = files.get("osm") or files["graph"]
        ext = osm.read_extract(main, features=files.get("features"))
        signals = ext.features[
            (ext.features["highway"] == "traffic_signals")
            & (ext.features.geometry.geom_type == "Point")
        ]
        return {
            "graph": ext.graph,
            "features": ext.features,
            "signals": signals,
            "inventory": None,
            "inventory_rejected": [],
            "counts": None,
            "signal_source": "osm",
        }
    roads, _ = municipal.read_layer(files["roads"], src["roads"], what="roads")
    counts = municipal.read_counts(files["counts"], src["counts"]) if "counts" in files else None
    graph = municipal.roads_to_graph(roads, counts=counts, defaults=lighting.ROAD_CLASSES)
    inventory: gpd.GeoDataFrame | None = None
    rejected: list[Rejection] = []
    if "lights" in files:
        spec = src["lights"]
        inventory, rejected, _ = read_inventory(
            files["lights"], fields=spec.get("fields"), crs=spec.get("crs")
        )
    signals = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=LAMBERT93))
    if "signals" in files:
        signals, _ = municipal.read_layer(files["signals"], src["signals"], what="signals")
    return {
        "graph": graph,
        "features": osm._empty_features(),
        "signals": signals,
        "inventory": inventory,
        "inventory_rejected": rejected,
        "counts": counts,
        "signal_source": "municipal",
    }


def _inventory_lights(inv: gpd.GeoDataFrame, seg: gpd.GeoDataFrame) -> pd.DataFrame:
    """Light rows from validated inventory rows (see :func:`twin.inventory.read_inventory`)."""
    pts = np.asarray(inv.geometry.values)
    return pd.DataFrame(
        {
            "segment": _snap(pts, seg),
            "source": "inventory",
            "ref": inv["ref"].astype(str).to_numpy(),
            "luminaire": inv["luminaire"].to_numpy(),
            "power_w": inv["power_w"].to_numpy(float),
            "technology": inv["technology"].to_numpy(),
            "flux_lm": inv["flux_lm"].to_numpy(float),
            "geometry": pts,
        }
    )


def lights_from_inventory(tw: Any, inv: gpd.GeoDataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lights and cabinets of a twin rebuilt from validated inventory rows."""
    seg = tw.registry["segment"]
    catalogue = tw.city.defaults.get("catalogue", "led-2018")
    lights = _finish_lights(_inventory_lights(inv, seg), seg, catalogue=catalogue)
    cabinets = _cabinets(lights, osm._empty_features())
    return lights, cabinets


def build(city: City, *, seed: int | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Build a city's graph, registry and metadata from its data files (no cache).

    Returns a dict with ``graph``, ``registry``, ``meta`` and ``counts_table`` (traffic counts of
    municipal cities, for calibration), which :class:`twin.model.Twin` wraps.
    """
    settings = get_settings()
    seed = settings.seed if seed is None else seed
    show = settings.progress if progress is None else progress
    rng = np.random.default_rng(seed)
    files = input_files(city)
    timings: dict[str, float] = {}
    steps: list[tuple[str, Callable[[], None]]] = []
    state: dict[str, Any] = {}

    def step(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
        def deco(fn: Callable[[], None]) -> Callable[[], None]:
            steps.append((name, fn))
            return fn

        return deco

    @step("read")
    def _() -> None:
        state.update(_read(city, files))

    @step("segments")
    def _() -> None:
        state["seg"] = _segments(state["graph"])

    @step("lights")
    def _() -> None:
        seg = state["seg"]
        if state["inventory"] is not None:
            raw = _inventory_lights(state["inventory"], seg)
        else:
            lamps = _osm_lamps(state["features"], seg)
            raw = pd.concat(
                [lamps, _derive_lights(seg, skip=set(lamps["segment"].dropna()), rng=rng)],
                ignore_index=True,
            )
        state["lights"] = _finish_lights(
            raw, seg, catalogue=city.defaults.get("catalogue", "led-2018")
        )

    @step("cabinets")
    def _() -> None:
        state["cabinets"] = _cabinets(state["lights"], state["features"])

    @step("junctions")
    def _() -> None:
        state["junctions"], state["approaches"] = _junctions(
            state["signals"], state["graph"], state["seg"], source=state["signal_source"]
        )

    @step("features")
    def _() -> None:
        state.update(_features(state["features"], state["seg"]))

    @step("sensors")
    def _() -> None:
        state["sensors"] = _sensors(
            state["seg"], state["approaches"], state["poi"], state["lights"], rng=rng
        )
        state["depots"], state["vehicles"] = _fleet(state["graph"], state["seg"], city, rng=rng)

    @step("registry")
    def _() -> None:
        for _, _, d in state["graph"].edges(data=True):
            d["drive"] = True
        seg_drive = state["seg"].set_index("id")["drive"]
        for _, _, d in state["graph"].edges(data=True):
            d["drive"] = bool(seg_drive[d["segment"]])
        state["registry"] = Registry(
            {
                "segment": state["seg"],
                "light": state["lights"],
                "cabinet": state["cabinets"],
                "junction": state["junctions"],
                "approach": state["approaches"],
                "camera": state["camera"],
                "building": state["building"],
                "poi": state["poi"],
                "sensor": state["sensors"],
                "depot": state["depots"],
                "vehicle": state["vehicles"],
            }
        )

    bar = None
    if show:
        from .progress import progress_bar

        bar = progress_bar(total=len(steps), desc=f"building {city.name}", unit="step", leave=False)
    for name, fn in steps:
        t0 = time.perf_counter()
        if bar is not None:
            bar.set_postfix_str(name)
        fn()
        timings[name] = round(time.perf_counter() - t0, 3)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()

    graph = state["graph"]
    lights = state["lights"]
    meta = {
        "city": city.name,
        "title": city.title,
        "source_kind": city.source["kind"],
        "files": {
            role: {
                "path": str(p),
                "name": p.name,
                "sha256": sha256_file(p),
                "bytes": p.stat().st_size,
            }
            for role, p in files.items()
        },
        "source_date": _source_date(files, graph),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": CODE_VERSION,
        "seed": seed,
        "attribution": city.attribution,
        "licence": city.licence,
        "timings_s": timings,
        "lights_by_source": lights["source"].value_counts().to_dict(),
        "lights_power_defaulted": int(lights["power_defaulted"].sum()),
        "lights_unmatched": int(lights["segment"].isna().sum()),
        "lights_rejected": [str(r) for r in state["inventory_rejected"]],
        "signals": int(len(state["signals"])),
        "signal_points": shapely.get_coordinates(np.asarray(state["signals"].geometry.values)),
    }
    return {
        "graph": graph,
        "registry": state["registry"],
        "meta": meta,
        "counts_table": state["counts"],
    }
