"""Read municipal GIS files (shapefile, GeoJSON or CSV with a field mapping) into a city.

Montpellier's open data is the model: road centrelines with a street type and a traffic
direction, light points with a luminaire type, signalised junctions as points, and traffic counts
keyed by street name. The city definition's ``[source.*]`` tables name each file, its CRS and the
field mapping, so another city's files work by writing a definition, not code.

What is inferred, and how
-------------------------
The centrelines are bare lines: no class, lanes, speed or ``lit``.

* Graph: line end points closer than :data:`NODE_TOLERANCE_M` are merged into one node; a dangling
  end point lying within that distance of another line's interior (a T-junction the data did not
  node) splits that line there. ``DOUBLE SENS`` gives an edge each way, ``SENS UNIQUE`` one edge in
  the digitised direction, ``INTERDIT`` (no motor traffic) a pedestrian edge.
* Class: from the street type (:data:`STREET_TYPE_CLASS`: BD -> secondary, AV -> tertiary,
  RUE -> residential, PL/ESPL/SQUA -> pedestrian, ...), then raised by the street's highest
  counted daily traffic (:data:`TRAFFIC_CLASS_THRESHOLDS`: >= 20,000 veh/day primary, >= 10,000
  secondary, >= 3,000 tertiary). Roundabouts (RDPT) and junction places (CARR) take the highest
  class among the roads that meet them.
* Speed: the counted street's legal speed (``VLEGALE``) where a count matched, else the road
  class default. Lanes: inferred per direction from the class, the street type, one-way streets
  and the counted traffic (:func:`twin.derive.segments.edge_lanes`); the ``lanes`` set here is
  the class default, which that inference does not read.
* ``lit``: unknown; the light inventory says where the lights are.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ._errors import CorruptInputError, InputValidationError

__all__ = [
    "NODE_TOLERANCE_M",
    "STREET_TYPE_CLASS",
    "TRAFFIC_CLASS_THRESHOLDS",
    "normalise_name",
    "read_counts",
    "read_layer",
    "roads_to_graph",
]

NODE_TOLERANCE_M = 1.0

#: Street type (French ``TYPVOI`` abbreviations) -> OSM-like highway class.
STREET_TYPE_CLASS: dict[str, str] = {
    "AUTO": "trunk",  # autoroute urbaine
    "BD": "secondary",  # boulevard
    "AV": "tertiary",  # avenue
    "RTE": "tertiary",  # route
    "QUAI": "tertiary",
    "PONT": "tertiary",
    "VIAD": "tertiary",
    "TUN": "tertiary",
    "RDPT": "tertiary",  # rond-point: raised to its roads' class below
    "CARR": "tertiary",  # carrefour: idem
    "RUE": "residential",
    "IMP": "residential",  # impasse (dead end)
    "ALL": "residential",  # allée
    "PL": "residential",  # place (streets round a square)
    "DESC": "residential",
    "CHEM": "unclassified",  # chemin
    "VOIE": "unclassified",
    "PARK": "service",
    "PASS": "footway",  # passage
    "COUR": "pedestrian",
    "ESPL": "pedestrian",
    "ESPA": "pedestrian",
    "SQUA": "pedestrian",
    "PARC": "pedestrian",
    "PLAN": "pedestrian",
    "BASS": "pedestrian",
    "ENCL": "pedestrian",
}
_JUNCTION_TYPES = {"RDPT", "CARR"}

#: (minimum daily traffic in veh/day, class) applied in order; a count only ever raises a class.
TRAFFIC_CLASS_THRESHOLDS: tuple[tuple[float, str], ...] = (
    (20_000.0, "primary"),
    (10_000.0, "secondary"),
    (3_000.0, "tertiary"),
)
_RANK = {
    "motorway": 7,
    "trunk": 6,
    "primary": 5,
    "secondary": 4,
    "tertiary": 3,
    "unclassified": 2,
    "residential": 2,
    "service": 1,
    "living_street": 1,
    "pedestrian": 0,
    "footway": 0,
}


def normalise_name(name: object) -> str:
    """Upper-case ASCII street name without punctuation, for matching across files.

    >>> normalise_name("Avenue de l'Europe ")
    'AVENUE DE L EUROPE'
    >>> normalise_name("Rue René Grousset")
    'RUE RENE GROUSSET'
    """
    if not isinstance(name, str):
        return ""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Z0-9]+", " ", text.upper()).strip()


def read_layer(
    root_path: Path, spec: Mapping[str, Any], *, what: str, to_crs: str | None = None
) -> tuple[gpd.GeoDataFrame, dict[str, str]]:
    """Read one municipal layer named in a city definition and rename its mapped fields.

    ``spec`` holds ``path`` (shapefile, zipped shapefile, GeoJSON or CSV), optional ``crs`` (forced
    when the file has none or a wrong one), ``encoding``, ``x``/``y`` (CSV point columns) and
    ``fields`` (our name -> the file's column). The layer is projected to ``to_crs`` (the
    city's working CRS) when given, else left in its own CRS.
    """
    fields: dict[str, str] = dict(spec.get("fields", {}))
    name = root_path.name.lower()
    try:
        if name.endswith(".csv"):
            df = pd.read_csv(
                root_path,
                sep=spec.get("sep") or None,
                engine="python",
                encoding=spec.get("encoding", "utf-8"),
            )
            # dBase-style headers ("NOM,C,254") name the column before the first comma
            df.columns = [re.sub(r",[CNDLF],.*$", "", str(c)).strip() for c in df.columns]
            xcol, ycol = spec.get("x"), spec.get("y")
            if xcol and ycol:
                xs = pd.to_numeric(df[xcol].astype(str).str.replace(",", "."), errors="coerce")
                ys = pd.to_numeric(df[ycol].astype(str).str.replace(",", "."), errors="coerce")
                gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(xs, ys))
            else:
                gdf = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([None] * len(df)))
        else:
            target = f"zip://{root_path}" if name.endswith(".zip") else str(root_path)
            gdf = gpd.read_file(target, encoding=spec.get("encoding"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        msg = f"{what}: cannot read {root_path}: {exc}"
        raise CorruptInputError(msg) from exc
    except Exception as exc:  # pyogrio's DataSourceError and friends
        msg = f"{what}: cannot read {root_path}: {exc}"
        raise CorruptInputError(msg) from exc
    missing = [col for col in fields.values() if col not in gdf.columns]
    if missing:
        msg = f"{what}: {root_path.name} has no column {missing[0]!r} (fields mapping: {fields})"
        raise InputValidationError(msg)
    crs = spec.get("crs")
    if crs is not None:
        gdf = gdf.set_crs(crs, allow_override=True)
    if to_crs is not None and gdf.crs is not None and gdf.geometry.notna().any():
        gdf = gdf.to_crs(to_crs)
    gdf = gdf.rename(columns={v: k for k, v in fields.items()})
    return gdf, fields


def read_counts(path: Path, spec: Mapping[str, Any]) -> pd.DataFrame:
    """Read a traffic-count table with mapped fields (name, direction, daily, peaks, speed)."""
    df, _ = read_layer(path, spec, what="counts")
    df = pd.DataFrame(df.drop(columns="geometry"))
    for col in ("daily", "am_peak", "pm_peak", "speed_limit"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df["name_norm"] = df["name"].map(normalise_name)
    return df


def _street_traffic(counts: pd.DataFrame | None) -> tuple[dict[str, float], dict[str, float]]:
    if counts is None or counts.empty:
        return {}, {}
    grouped = counts[counts.name_norm != ""].groupby("name_norm")
    # keyed by the normalised street names (str); pandas-stubs type to_dict as Hashable -> Any
    daily = cast(dict[str, float], grouped["daily"].max().dropna().to_dict())
    speed = (
        cast(dict[str, float], grouped["speed_limit"].median().dropna().to_dict())
        if "speed_limit" in counts
        else {}
    )
    return daily, speed


def _node_points(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster line end points into nodes; returns node xy and (start, end) node per line."""
    starts = shapely.get_coordinates(shapely.get_point(lines, 0))
    ends = shapely.get_coordinates(shapely.get_point(lines, -1))
    pts = np.vstack([starts, ends])
    pairs = cKDTree(pts).query_pairs(NODE_TOLERANCE_M, output_type="ndarray")
    n = len(pts)
    adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    node_xy = np.zeros((label.max() + 1, 2))
    np.add.at(node_xy, label, pts)
    node_xy /= np.bincount(label)[:, None]
    m = len(lines)
    return node_xy, np.stack([label[:m], label[m:]], axis=1)


def _split_t_junctions(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Split lines where another line's dangling end touches their interior."""
    lines = gdf.geometry.values
    node_xy, ends = _node_points(np.asarray(lines))
    degree = np.bincount(ends.ravel(), minlength=len(node_xy))
    dangling = np.flatnonzero(degree == 1)
    if len(dangling) == 0:
        return gdf
    pts = shapely.points(node_xy[dangling])
    tree = shapely.STRtree(np.asarray(lines))
    p_idx, l_idx = tree.query(pts, predicate="dwithin", distance=NODE_TOLERANCE_M)
    cuts: dict[int, list[float]] = {}
    for p, li in zip(p_idx, l_idx, strict=True):
        line = lines[li]
        d = float(shapely.line_locate_point(line, pts[p]))
        if NODE_TOLERANCE_M < d < float(line.length) - NODE_TOLERANCE_M:
            cuts.setdefault(int(li), []).append(d)
    if not cuts:
        return gdf
    rows = []
    for li, row in enumerate(gdf.itertuples(index=False)):
        if li not in cuts:
            rows.append(row._asdict())
            continue
        line = lines[li]
        marks = [0.0, *sorted(set(cuts[li])), float(line.length)]
        for a, b in zip(marks[:-1], marks[1:], strict=True):
            piece = shapely.ops.substring(line, a, b)
            rec = row._asdict()
            rec["geometry"] = piece
            rows.append(rec)
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=gdf.crs)


def roads_to_graph(
    roads: gpd.GeoDataFrame, *, counts: pd.DataFrame | None = None, defaults: pd.DataFrame
) -> nx.MultiDiGraph:
    """Node road centrelines into a routable graph with inferred class, speed and lanes.

    Parameters
    ----------
    roads : GeoDataFrame
        Lines in a projected CRS in metres (the city's working CRS; the graph's ``crs``), with
        mapped columns ``id``, ``name``, ``street_type``, ``direction``.
    counts : DataFrame, optional
        Traffic counts from :func:`read_counts` (raises classes, gives legal speeds).
    defaults : DataFrame
        Road-class defaults indexed by class with ``speed_kph`` and ``lanes`` columns.
    """
    if roads.crs is None or not roads.crs.is_projected:
        msg = f"roads: the centrelines must be in a projected CRS in metres, not {roads.crs}"
        raise InputValidationError(msg)
    crs = roads.crs.to_string()
    roads = roads[roads.geometry.notna() & ~roads.geometry.is_empty].copy()
    roads = roads.explode(index_parts=False).reset_index(drop=True)
    roads = _split_t_junctions(roads)
    lines = np.asarray(roads.geometry.values)
    node_xy, ends = _node_points(lines)

    daily, speed_by_name = _street_traffic(counts)
    name_norm = roads["name"].map(normalise_name).to_numpy()
    stype = roads["street_type"].fillna("").astype(str).str.upper().to_numpy()
    direction = roads["direction"].fillna("DOUBLE SENS").astype(str).str.upper().to_numpy()
    highway = np.array([STREET_TYPE_CLASS.get(t, "residential") for t in stype], dtype=object)
    aadt = np.array([daily.get(n, np.nan) for n in name_norm], dtype=float)
    for threshold, cls in reversed(TRAFFIC_CLASS_THRESHOLDS):
        raise_ = (aadt >= threshold) & np.array(
            [_RANK.get(h, 0) < _RANK[cls] and h not in ("pedestrian", "footway") for h in highway]
        )
        highway[raise_] = cls
    highway[direction == "INTERDIT"] = "pedestrian"

    # roundabouts and junction places take the highest class of the roads that meet them
    junction = np.isin(stype, list(_JUNCTION_TYPES))
    best = np.zeros(len(node_xy), dtype=int)
    ranks = np.array([_RANK.get(h, 0) for h in highway])
    for side in (0, 1):
        np.maximum.at(best, ends[~junction, side], ranks[~junction])
    inv = {v: k for k, v in _RANK.items() if k not in ("living_street", "unclassified", "footway")}
    for j in np.flatnonzero(junction):
        r = max(best[ends[j, 0]], best[ends[j, 1]], ranks[j])
        highway[j] = inv.get(r, highway[j])

    graph = nx.MultiDiGraph(crs=crs)
    for n, (x, y) in enumerate(node_xy):
        graph.add_node(n, x=float(x), y=float(y))
    ids = roads["id"].to_numpy() if "id" in roads else np.arange(len(roads))
    names = roads["name"].to_numpy()
    for i, line in enumerate(lines):
        u, v = int(ends[i, 0]), int(ends[i, 1])
        cls = highway[i]
        spd = speed_by_name.get(name_norm[i])
        if cls not in defaults.index:
            msg = f"roads: no road-class defaults for inferred class {cls!r}"
            raise InputValidationError(msg)
        # the defaults' columns are numeric; pandas-stubs type a cell as any scalar
        if spd is not None and np.isfinite(spd) and 5 <= spd <= 130:
            speed = float(spd)
        else:
            speed = float(cast(float, defaults.at[cls, "speed_kph"]))
        lanes = int(cast(float, defaults.at[cls, "lanes"]))
        oneway = direction[i] == "SENS UNIQUE"
        attrs = {
            "osmid": int(ids[i]) if str(ids[i]).isdigit() else str(ids[i]),
            "name": names[i] if isinstance(names[i], str) else None,
            "highway": cls,
            "street_type": stype[i],
            "oneway": bool(oneway),
            "lanes": lanes,
            "speed_kph": speed,
            "length": float(line.length),
            "junction": "roundabout" if stype[i] == "RDPT" else None,
            "aadt": float(aadt[i]) if np.isfinite(aadt[i]) else None,
        }
        graph.add_edge(u, v, geometry=line, reversed=False, **attrs)
        if not oneway:
            graph.add_edge(v, u, geometry=line.reverse(), reversed=True, **attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph.remove_nodes_from([n for n in list(graph.nodes) if graph.degree(n) == 0])
    return graph
