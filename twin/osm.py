"""Read OpenStreetMap extracts: OSM XML (``.osm``), PBF (``.osm.pbf``) or an OSMnx ``.graphml``.

Whatever the format, the result is the same :class:`OsmExtract`: the street graph of every
highway (drive and walk together; the model takes views of it), projected to EPSG:2154, and a
table of the point and area features the registry needs (lamps, signals, cameras, cabinets,
amenities, transit stops, shops, admin boundaries), also in EPSG:2154.

PBF files are converted once to OSM XML with pyosmium (into the cache folder) and then read by
the same path as ``.osm`` files, so every extract goes through one code path.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import shutil
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd

from ._errors import CorruptInputError, DataMissingError
from .crs import LAMBERT93, WGS84
from .settings import get_settings

__all__ = ["FEATURE_TAGS", "OsmExtract", "read_extract", "read_features_file"]

log = logging.getLogger(__name__)

#: Tags fetched and read as features (a value of True means "any value").
FEATURE_TAGS: dict[str, bool | str | list[str]] = {
    "highway": ["street_lamp", "traffic_signals", "crossing", "bus_stop"],
    "man_made": ["surveillance", "street_cabinet"],
    "amenity": True,
    "public_transport": ["platform", "stop_position", "station"],
    "shop": True,
    "barrier": ["bollard"],
    "boundary": ["administrative"],
}

#: Way tags kept on graph edges, on top of osmnx's defaults.
EXTRA_WAY_TAGS = ["lit", "surface", "sidewalk", "junction", "bridge", "tunnel", "width"]
#: Node tags kept on graph nodes.
EXTRA_NODE_TAGS = ["highway", "crossing", "traffic_signals", "street_lamp", "ref"]

#: Feature columns carried into the registry (others are dropped to keep the cache small).
FEATURE_COLUMNS = [
    "element",
    "osmid",
    "highway",
    "crossing",
    "man_made",
    "street_cabinet",
    "surveillance",
    "surveillance:type",
    "amenity",
    "shop",
    "public_transport",
    "barrier",
    "boundary",
    "admin_level",
    "ref:INSEE",
    "population",
    "name",
    "geometry",
]


@dataclasses.dataclass
class OsmExtract:
    """A read extract.

    Attributes
    ----------
    graph : networkx.MultiDiGraph
        Every highway, simplified, projected to EPSG:2154 (``graph.graph["crs"]``).
    features : geopandas.GeoDataFrame
        Point and area features in EPSG:2154 with the columns of :data:`FEATURE_COLUMNS`.
    files : list[Path]
        The files read.
    """

    graph: nx.MultiDiGraph
    features: gpd.GeoDataFrame
    files: list[Path]


@contextlib.contextmanager
def _osmnx_tags() -> Iterator[None]:
    saved_way = list(ox.settings.useful_tags_way)
    saved_node = list(ox.settings.useful_tags_node)
    ox.settings.useful_tags_way = sorted(set(saved_way) | set(EXTRA_WAY_TAGS))
    ox.settings.useful_tags_node = sorted(set(saved_node) | set(EXTRA_NODE_TAGS))
    try:
        yield
    finally:
        ox.settings.useful_tags_way = saved_way
        ox.settings.useful_tags_node = saved_node


def _parse_error(path: Path, exc: Exception) -> CorruptInputError:
    pos = getattr(exc, "position", None)
    where = f"line {pos[0]}, column {pos[1]}" if pos else "an unknown position"
    size = path.stat().st_size
    msg = f"{path}: corrupt or truncated XML at {where} ({size} bytes read): {exc}"
    return CorruptInputError(msg)


def _empty_features() -> gpd.GeoDataFrame:
    cols = {c: pd.Series(dtype=object) for c in FEATURE_COLUMNS if c != "geometry"}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=LAMBERT93))


def _tidy_features(raw: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if raw.empty:
        return _empty_features()
    df = raw.reset_index()
    if "element" not in df.columns and "element_type" in df.columns:
        df = df.rename(columns={"element_type": "element"})
    if "id" in df.columns and "osmid" not in df.columns:
        df = df.rename(columns={"id": "osmid"})
    for col in FEATURE_COLUMNS:
        if col not in df.columns:
            df[col] = None
    out = gpd.GeoDataFrame(df[FEATURE_COLUMNS], geometry="geometry", crs=raw.crs or WGS84)
    return out.to_crs(LAMBERT93)


def _pbf_to_xml(path: Path) -> Path:
    """Convert a PBF extract to OSM XML once, into the cache folder, and give the XML's path.

    The copy is keyed by the PBF's sha256 and checked against its own sha256 (written beside it)
    each time it is used: a copy that does not match is converted again, never read and blamed
    on the input. Concurrent processes take the copy's lock; the one that converts writes a
    temporary of its own and renames it into place. Where the cache folder cannot be written,
    the copy goes to a private temporary folder removed at exit.

    Raises
    ------
    CorruptInputError
        The PBF itself cannot be read (named, with its size).
    """
    import osmium

    from . import _files

    cache = get_settings().cache
    digest = _files.sha256_file(path)[:16]
    out = cache / "pbf" / f"{path.name.split('.')[0]}-{digest}.osm"
    sums = out.with_name(f"{out.name}.sha256")
    lock = cache / "locks" / f"pbf-{out.name}.lock"
    with _files.locked(lock, folder=cache, what=f"the XML copy of {path.name}") as writable:
        if out.is_file():
            expected = (
                sums.read_bytes().decode("ascii", "replace").strip() if sums.is_file() else ""
            )
            if expected == _files.sha256_file(out):
                return out
            log.warning(
                "twin: the XML copy %s of %s does not match its checksum; converting again",
                out,
                path.name,
            )
        if writable:
            _files.remove_leftovers(out)  # of a converter that crashed
        else:
            writable.cannot_write()
            private = Path(tempfile.mkdtemp(prefix="twin-pbf-"))
            atexit.register(shutil.rmtree, private, ignore_errors=True)
            out, sums = private / out.name, private / sums.name
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _files.private_temp(out, ".osm")  # pyosmium picks the format from the suffix
        try:
            writer = osmium.SimpleWriter(str(tmp))
            try:
                for obj in osmium.FileProcessor(str(path)):
                    writer.add(obj)
            finally:
                writer.close()
        except RuntimeError as exc:
            tmp.unlink(missing_ok=True)
            msg = f"{path}: corrupt or truncated PBF ({path.stat().st_size} bytes): {exc}"
            raise CorruptInputError(msg) from exc
        tmp_sums = _files.private_temp(sums)
        tmp_sums.write_text(_files.sha256_file(tmp) + "\n", encoding="ascii")
        _files.fsync_file(tmp)
        tmp.replace(out)
        tmp_sums.replace(sums)
    return out


def _check_xml(path: Path) -> None:
    """Stream-parse the file once so truncation is reported with its line and column."""
    try:
        for _ in ET.iterparse(path, events=("end",)):
            pass
    except ET.ParseError as exc:
        raise _parse_error(path, exc) from exc


def _read_xml(path: Path) -> OsmExtract:
    _check_xml(path)
    with _osmnx_tags(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        graph = ox.graph_from_xml(path, bidirectional=False, simplify=True, retain_all=True)
        try:
            feats = ox.features_from_xml(path, tags=FEATURE_TAGS)
        except ox._errors.InsufficientResponseError:
            feats = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84))
    # graph_from_xml keeps every way of the file (buildings, railways...): keep the streets
    graph.remove_edges_from(
        [(u, v, k) for u, v, k, h in graph.edges(keys=True, data="highway") if h is None]
    )
    graph.remove_nodes_from([n for n, deg in graph.degree() if deg == 0])
    return OsmExtract(ox.project_graph(graph, to_crs=LAMBERT93), _tidy_features(feats), [path])


def _node_features(graph: nx.MultiDiGraph) -> gpd.GeoDataFrame:
    """Point features carried as graph-node tags (all a GraphML extract has)."""
    rows = [
        {"element": "node", "osmid": n, "highway": d["highway"], "x": d["x"], "y": d["y"]}
        for n, d in graph.nodes(data=True)
        if d.get("highway") in {"traffic_signals", "street_lamp", "crossing", "bus_stop"}
    ]
    if not rows:
        return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84))
    df = pd.DataFrame(rows)
    geom = gpd.points_from_xy(df.pop("x"), df.pop("y"))
    return gpd.GeoDataFrame(df, geometry=geom, crs=graph.graph.get("crs", WGS84))


def read_features_file(path: Path) -> gpd.GeoDataFrame:
    """Read a features file written by ``twin data fetch`` (GeoJSON or GeoPackage)."""
    try:
        raw = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for broken files
        msg = f"{path}: cannot read features ({exc})"
        raise CorruptInputError(msg) from exc
    return _tidy_features(raw)


def _read_graphml(path: Path, features: Path | None) -> OsmExtract:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            graph = ox.load_graphml(path)
    except ET.ParseError as exc:
        raise _parse_error(path, exc) from exc
    node_feats = _tidy_features(_node_features(graph))
    files = [path]
    feats = node_feats
    if features is not None:
        extra = read_features_file(features)
        files.append(features)
        # node tags are already in the features file when it exists; keep one copy of each
        feats = pd.concat([extra, node_feats[~node_feats.osmid.isin(extra.osmid)]])
        feats = gpd.GeoDataFrame(feats, geometry="geometry", crs=LAMBERT93)
    graph = ox.project_graph(graph, to_crs=LAMBERT93)
    return OsmExtract(graph, feats.reset_index(drop=True), files)


def read_extract(path: Path, *, features: Path | None = None) -> OsmExtract:
    """Read an OSM extract into a projected graph and a feature table.

    Parameters
    ----------
    path : Path
        ``.osm`` (XML), ``.osm.pbf`` or ``.graphml``.
    features : Path, optional
        A features file (GeoJSON/GeoPackage) beside a GraphML graph, as ``twin data fetch`` writes.

    Raises
    ------
    DataMissingError
        The file does not exist.
    CorruptInputError
        The file is truncated or malformed; the message names the file and the line (XML)
        or the size read (PBF).
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such extract"
        raise DataMissingError(msg)
    name = path.name.lower()
    if name.endswith(".graphml"):
        ext = _read_graphml(path, features)
    elif name.endswith(".pbf"):
        ext = _read_xml(_pbf_to_xml(path))
        ext.files = [path]
    else:
        ext = _read_xml(path)
    if ext.graph.number_of_edges() == 0:
        msg = f"{path}: the extract holds no highway"
        raise CorruptInputError(msg)
    ext.graph.graph["crs"] = LAMBERT93
    return ext


def graph_bounds_wgs84(graph: nx.MultiDiGraph) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in EPSG:4326 of a projected graph's nodes."""
    from .crs import to_wgs84

    xy = np.array([(d["x"], d["y"]) for _, d in graph.nodes(data=True)])
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1])
    return (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
