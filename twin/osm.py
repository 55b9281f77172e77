"""Read OpenStreetMap extracts: OSM XML (``.osm``), PBF (``.osm.pbf``) or an OSMnx ``.graphml``.

Whatever the format, the result is the same :class:`OsmExtract`: the street graph of every
highway (drive and walk together; the model takes views of it), projected to the working CRS
(given, or chosen from the data's position by :func:`twin.crs.working_crs`), and a table of the
point and area features the registry needs (lamps, signals, cameras, cabinets, amenities,
transit stops, shops, admin boundaries), in the same CRS.

PBF files are converted once to OSM XML with pyosmium (into the cache folder) and then read by
the same path as ``.osm`` files, so every extract goes through one code path.

The XML is read unsimplified, then simplified with osmnx's ``edge_attrs_differ=["lit"]``, so
that a lit way and an untagged one never merge into one "lit" edge.

Clipped extracts
----------------
An extract cut by a bounding box or a polygon (Overpass without recursion, ``osmium extract``
with its ``simple`` strategy, most downloads) holds ways whose nodes lie outside the file. Each
such way keeps its contiguous runs of present nodes, each run a way of its own with the
original way id (never joined across a missing node); a way with no two consecutive nodes left
is dropped. :class:`ClipReport` counts them; area features (buildings, amenities) whose outline
is clipped are left out by osmnx and counted as ``other_ways``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import math
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
import shapely
import shapely.errors

from ._errors import CorruptInputError, DataMissingError
from .crs import WGS84, check_crs, geo_crs, to_lonlat, working_crs
from .settings import get_settings

__all__ = [
    "FEATURE_TAGS",
    "ClipReport",
    "DataDate",
    "OsmExtract",
    "graph_bounds_wgs84",
    "read_extract",
    "read_features_file",
]

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
EXTRA_WAY_TAGS = [
    "lit",
    "surface",
    "sidewalk",
    "junction",
    "bridge",
    "tunnel",
    "width",
    "lanes:forward",
    "lanes:backward",
    "turn:lanes",
    "turn:lanes:forward",
    "turn:lanes:backward",
]
#: Node tags kept on graph nodes.
EXTRA_NODE_TAGS = [
    "highway",
    "crossing",
    "crossing:signals",
    "traffic_signals",
    "street_lamp",
    "ref",
]

#: Feature columns carried into the registry (others are dropped to keep the cache small).
FEATURE_COLUMNS = [
    "element",
    "osmid",
    "highway",
    "crossing",
    "crossing:signals",
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


@dataclasses.dataclass(frozen=True)
class ClipReport:
    """What an extract cut out of a larger map lost at its edge.

    Attributes
    ----------
    ways : int
        Highway ways that reference nodes absent from the file.
    dropped : int
        Of those, ways with no two consecutive nodes left: nothing of them is kept.
    parts : int
        Contiguous pieces kept from the clipped highway ways (a way cut once at the edge keeps
        one piece; a way that leaves the area and comes back keeps two).
    missing_nodes : int
        Distinct nodes referenced by highway ways but absent from the file.
    other_ways : int
        Other ways (buildings, areas, railways) with nodes absent; features among them are left
        out.
    """

    ways: int = 0
    dropped: int = 0
    parts: int = 0
    missing_nodes: int = 0
    other_ways: int = 0

    def to_dict(self) -> dict[str, int]:
        """The counts as a dict (for the build metadata and ``twin info``)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DataDate:
    """The date of a data set, and what it is the date of.

    Attributes
    ----------
    date : str
        ``YYYY-MM-DD``.
    basis : str
        Where the date comes from: ``osm_base`` (the database state an Overpass answer was cut
        from), ``newest OSM timestamp`` (the last edit in the file: the data is at least that
        recent), ``GraphML created_date`` (when osmnx made the graph), ``fetch manifest`` (when
        ``twin data fetch`` ran), ``newest zip entry`` (municipal files).
    """

    date: str
    basis: str


@dataclasses.dataclass
class OsmExtract:
    """A read extract.

    Attributes
    ----------
    graph : networkx.MultiDiGraph
        Every highway, simplified, projected to ``crs`` (``graph.graph["crs"]``).
    features : geopandas.GeoDataFrame
        Point and area features in ``crs`` with the columns of :data:`FEATURE_COLUMNS`.
    files : list[Path]
        The files read.
    crs : str
        The working CRS the graph and features are in.
    clipped : ClipReport
        What the extract's edge cut off (all zero for a complete extract).
    date : DataDate or None
        The data's date, when the file tells it.
    """

    graph: nx.MultiDiGraph
    features: gpd.GeoDataFrame
    files: list[Path]
    crs: str
    clipped: ClipReport = dataclasses.field(default_factory=ClipReport)
    date: DataDate | None = None


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


def _empty_features(crs: str) -> gpd.GeoDataFrame:
    cols = {c: pd.Series(dtype=object) for c in FEATURE_COLUMNS if c != "geometry"}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=geo_crs(crs)))


def _tidy_features(raw: gpd.GeoDataFrame, crs: str) -> gpd.GeoDataFrame:
    if raw.empty:
        return _empty_features(crs)
    df = raw.reset_index()
    if "element" not in df.columns and "element_type" in df.columns:
        df = df.rename(columns={"element_type": "element"})
    if "id" in df.columns and "osmid" not in df.columns:
        df = df.rename(columns={"id": "osmid"})
    for col in FEATURE_COLUMNS:
        if col not in df.columns:
            df[col] = None
    out = gpd.GeoDataFrame(df[FEATURE_COLUMNS], geometry="geometry", crs=raw.crs or WGS84)
    return out.to_crs(crs)


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


def _root_tag(path: Path) -> str:
    """Local name of the file's root element (``osm``, ``graphml``, ...)."""
    try:
        for _, elem in ET.iterparse(path, events=("start",)):
            return str(elem.tag).rsplit("}", 1)[-1]
    except (ET.ParseError, LookupError) as exc:  # LookupError: an unknown encoding
        raise _parse_error(path, exc) from exc
    msg = f"{path}: empty XML file"  # pragma: no cover - iterparse raises on an empty file
    raise CorruptInputError(msg)


@dataclasses.dataclass
class _Scan:
    """One streaming pass over an OSM XML file: what is there, and what is missing."""

    nodes: set[int]
    ways: list[tuple[int, list[int], bool]]  # (way id, node refs, tagged highway)
    newest: str
    osm_base: str | None

    def date(self) -> DataDate | None:
        if self.osm_base:
            return DataDate(self.osm_base[:10], "osm_base")
        if self.newest:
            return DataDate(self.newest[:10], "newest OSM timestamp")
        return None


def _int(elem: ET.Element, attr: str, path: Path) -> int:
    value = elem.get(attr)
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        msg = f"{path}: <{elem.tag}> with {attr}={value!r}, not an integer id"
        raise CorruptInputError(msg) from None


def _lonlat(elem: ET.Element, path: Path) -> None:
    """Check a node's ``lat`` and ``lon``: both present, numbers, on the Earth."""
    for attr, limit in (("lat", 90.0), ("lon", 180.0)):
        value = elem.get(attr)
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = float("nan")
        if not -limit <= number <= limit:
            msg = f"{path}: node {elem.get('id')!r} has {attr}={value!r}, not a {attr}itude"
            raise CorruptInputError(msg)


def _tags(elem: ET.Element, path: Path) -> set[str]:
    """The keys of an element's ``<tag k= v=>`` children; a tag without both is an error."""
    keys: set[str] = set()
    for t in elem.iter("tag"):
        k, v = t.get("k"), t.get("v")
        if k is None or v is None:
            what = "k" if k is None else "v"
            msg = f"{path}: <{elem.tag} id={elem.get('id')!r}> has a <tag> without {what}="
            raise CorruptInputError(msg)
        keys.add(k)
    return keys


#: What a third-party reader raises on a file it cannot make sense of (osmnx, networkx,
#: shapely): caught around those readers only, and reported as the file's fault.
_READER_ERRORS = (
    LookupError,  # KeyError, IndexError, and an unknown encoding in the XML declaration
    ValueError,
    TypeError,
    AttributeError,
    nx.NetworkXError,
    shapely.errors.GEOSException,
)


def _scan_xml(path: Path) -> _Scan:
    """Stream-parse the file once: node ids, way refs, dates; errors name the line."""
    nodes: set[int] = set()
    ways: list[tuple[int, list[int], bool]] = []
    newest = ""
    osm_base: str | None = None
    root: str | None = None
    try:
        for event, elem in ET.iterparse(path, events=("start", "end")):
            if root is None:
                root = elem.tag.rsplit("}", 1)[-1]
                if root != "osm":
                    msg = f"{path}: not OSM XML (its root element is <{root}>, expected <osm>)"
                    raise CorruptInputError(msg)
                continue
            if event == "start":
                continue
            tag = elem.tag
            if tag == "node":
                if elem.get("lat") is not None or elem.get("lon") is not None:
                    _lonlat(elem, path)
                    nodes.add(_int(elem, "id", path))
                _tags(elem, path)
            elif tag == "way":
                refs = [_int(nd, "ref", path) for nd in elem.iter("nd")]
                highway = "highway" in _tags(elem, path)
                ways.append((_int(elem, "id", path), refs, highway))
            elif tag == "meta":
                osm_base = elem.get("osm_base") or osm_base
                continue
            elif tag != "relation":
                continue
            stamp = elem.get("timestamp") or ""
            if stamp > newest:
                newest = stamp
            elem.clear()
    except (ET.ParseError, LookupError) as exc:  # LookupError: an unknown encoding
        raise _parse_error(path, exc) from exc
    return _Scan(nodes, ways, newest, osm_base)


def _runs(refs: list[int], present: set[int]) -> list[list[int]]:
    """Contiguous runs of present nodes, of two nodes or more.

    >>> _runs([1, 2, 3, 4, 5], {1, 2, 4, 5})
    [[1, 2], [4, 5]]
    >>> _runs([1, 2, 3], {2})
    []
    """
    out: list[list[int]] = []
    run: list[int] = []
    for r in refs:
        if r in present:
            run.append(r)
            continue
        if len(run) >= 2:
            out.append(run)
        run = []
    if len(run) >= 2:
        out.append(run)
    return out


def _clip(path: Path, scan: _Scan) -> tuple[ClipReport, dict[int, list[list[int]]]]:
    """Count what the file's edge cut off; the runs kept of each way that lost nodes."""
    present = scan.nodes
    runs: dict[int, list[list[int]]] = {}
    ways = dropped = parts = other = 0
    missing: set[int] = set()
    n_highway = 0
    for wid, refs, highway in scan.ways:
        n_highway += highway
        absent = [r for r in refs if r not in present]
        if not absent:
            continue
        kept = _runs(refs, present)
        runs[wid] = kept
        if not highway:
            other += 1
            continue
        ways += 1
        parts += len(kept)
        dropped += not kept
        missing.update(absent)
    if n_highway == 0:
        msg = (
            f"{path}: the extract holds no highway (none of its {len(scan.ways)} ways is tagged "
            "highway=*)"
        )
        raise CorruptInputError(msg)
    if dropped == n_highway:
        msg = (
            f"{path}: the extract holds no highway: each of its {n_highway} highway ways "
            "references nodes that are not in the file (a clipped extract without its nodes)"
        )
        raise CorruptInputError(msg)
    return ClipReport(ways, dropped, parts, len(missing), other), runs


def _write_unclipped(
    src: Path, out: Path, runs: dict[int, list[list[int]]], *, first_free_id: int
) -> dict[int, int]:
    """Copy the nodes and ways of ``src``, each clipped way as its runs; new id -> way id.

    The first run of a way keeps its id; the others get fresh ids from ``first_free_id`` (above
    every way id of the file), mapped back to the way's id once the graph is made. Relations are
    left out (the street graph does not use them).
    """
    mapping: dict[int, int] = {}
    next_id = first_free_id
    with out.open("wb") as fh:
        fh.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n')
        for _, elem in ET.iterparse(src, events=("end",)):
            if elem.tag == "node":
                if elem.get("lat") is not None and elem.get("lon") is not None:
                    fh.write(ET.tostring(elem))
                elem.clear()
            elif elem.tag == "way":
                wid = int(elem.get("id", "0"))
                kept = runs.get(wid)
                if kept is None:
                    fh.write(ET.tostring(elem))
                else:
                    tags = [t for t in elem if t.tag == "tag"]
                    for i, run in enumerate(kept):
                        part_id = wid
                        if i:
                            part_id, next_id = next_id, next_id + 1
                            mapping[part_id] = wid
                        part = ET.Element("way", {"id": str(part_id)})
                        for ref in run:
                            ET.SubElement(part, "nd", {"ref": str(ref)})
                        part.extend(tags)
                        fh.write(ET.tostring(part) + b"\n")
                elem.clear()
            elif elem.tag == "relation":
                elem.clear()
        fh.write(b"</osm>\n")
    return mapping


def _lonlat_centre(graph: nx.MultiDiGraph) -> tuple[float, float]:
    """(lon, lat) of the centre of a graph's node bounds, whatever its CRS."""
    xy = np.array([(d["x"], d["y"]) for _, d in graph.nodes(data=True)], dtype=float)
    x = np.array([(xy[:, 0].min() + xy[:, 0].max()) / 2])
    y = np.array([(xy[:, 1].min() + xy[:, 1].max()) / 2])
    src = str(graph.graph.get("crs") or WGS84)
    if src.lower() not in ("epsg:4326", "wgs84"):
        x, y = to_lonlat(x, y, crs=src)
    return float(x[0]), float(y[0])


def _project(graph: nx.MultiDiGraph, crs: str | None) -> tuple[nx.MultiDiGraph, str]:
    """Project a graph to ``crs``, or to the working CRS of its position when None."""
    target = crs or working_crs(*_lonlat_centre(graph))
    graph = ox.project_graph(graph, to_crs=target)
    graph.graph["crs"] = target
    return graph, target


def _read_xml(path: Path, crs: str | None) -> OsmExtract:
    scan = _scan_xml(path)
    clipped, runs = _clip(path, scan)
    with contextlib.ExitStack() as stack:
        source = path
        mapping: dict[int, int] = {}
        if runs:  # osmnx cannot make edges to absent nodes: read a copy without them
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="twin-clip-")))
            source = tmp / path.name
            first_free = 1 + max((wid for wid, _, _ in scan.ways), default=0)
            mapping = _write_unclipped(path, source, runs, first_free_id=first_free)
        with _osmnx_tags(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                graph = ox.graph_from_xml(
                    source, bidirectional=False, simplify=False, retain_all=True
                )
            except _READER_ERRORS as exc:
                msg = f"{path}: malformed OSM XML ({type(exc).__name__}: {exc})"
                raise CorruptInputError(msg) from exc
    if mapping:
        for _, _, d in graph.edges(data=True):
            d["osmid"] = mapping.get(d["osmid"], d["osmid"])
    # graph_from_xml keeps every way of the file (buildings, railways, fences...): keep the
    # streets before simplifying, or a street would absorb a line that merely shares its end
    graph.remove_edges_from(
        [(u, v, k) for u, v, k, h in graph.edges(keys=True, data="highway") if h is None]
    )
    graph.remove_nodes_from([n for n, deg in graph.degree() if deg == 0])
    # simplify, never merging across a change of `lit`
    graph = ox.simplify_graph(graph, edge_attrs_differ=["lit"])
    if graph.number_of_edges() == 0:
        msg = f"{path}: the extract holds no highway with two nodes in the file"
        raise CorruptInputError(msg)
    graph, target = _project(graph, crs)
    with _osmnx_tags(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            feats = ox.features_from_xml(path, tags=FEATURE_TAGS)
        except ox._errors.InsufficientResponseError:
            feats = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84))
        except _READER_ERRORS as exc:
            msg = f"{path}: malformed OSM XML features ({type(exc).__name__}: {exc})"
            raise CorruptInputError(msg) from exc
    return OsmExtract(
        graph, _tidy_features(feats, target), [path], target, clipped=clipped, date=scan.date()
    )


_NODE_FEATURES = {"traffic_signals", "street_lamp", "crossing", "bus_stop"}


def _node_features(graph: nx.MultiDiGraph) -> gpd.GeoDataFrame:
    """Point features carried as graph-node tags (all a GraphML extract has)."""
    rows = [
        {
            "element": "node",
            "osmid": n,
            "highway": d["highway"],
            "crossing": d.get("crossing"),
            "crossing:signals": d.get("crossing:signals"),
            "x": d["x"],
            "y": d["y"],
        }
        for n, d in graph.nodes(data=True)
        if d.get("highway") in _NODE_FEATURES
    ]
    if not rows:
        return gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=WGS84))
    df = pd.DataFrame(rows)
    geom = gpd.points_from_xy(df.pop("x"), df.pop("y"))
    return gpd.GeoDataFrame(df, geometry=geom, crs=graph.graph.get("crs", WGS84))


def read_features_file(path: Path, *, crs: str) -> gpd.GeoDataFrame:
    """Read a features file written by ``twin data fetch`` (GeoJSON or GeoPackage) into ``crs``."""
    try:
        raw = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for broken files
        msg = f"{path}: cannot read features ({exc})"
        raise CorruptInputError(msg) from exc
    return _tidy_features(raw, crs)


def _check_graphml_nodes(graph: nx.MultiDiGraph, path: Path) -> None:
    """Every node of a loaded GraphML graph has finite numeric ``x`` and ``y``.

    In degrees within range when the graph is in longitude and latitude (its ``crs``, WGS 84
    when it gives none).
    """
    src = str(graph.graph.get("crs") or WGS84).lower()
    degrees = src in ("epsg:4326", "wgs84")
    for n, d in graph.nodes(data=True):
        for attr, limit in (("x", 180.0), ("y", 90.0)):
            value = d.get(attr)
            if not isinstance(value, int | float) or not math.isfinite(value):
                msg = f"{path}: node {n!r} has {attr}={value!r}, not a coordinate"
                raise CorruptInputError(msg)
            if degrees and abs(value) > limit:
                msg = (
                    f"{path}: node {n!r} has {attr}={value!r}, outside +/-{limit:g} degrees "
                    f"(the graph's crs is {src})"
                )
                raise CorruptInputError(msg)
    for u, v, d in graph.edges(data=True):
        geom = d.get("geometry")
        if geom is not None and not isinstance(geom, shapely.LineString):
            msg = f"{path}: edge {u!r}-{v!r} has a geometry that is not a line: {geom!r:.60}"
            raise CorruptInputError(msg)


def _read_graphml(path: Path, features: Path | None, crs: str | None) -> OsmExtract:
    root = _root_tag(path)
    if root != "graphml":
        msg = f"{path}: not GraphML (its root element is <{root}>, expected <graphml>)"
        raise CorruptInputError(msg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            graph = ox.load_graphml(path)
    except (ET.ParseError, LookupError) as exc:  # LookupError: an unknown encoding
        raise _parse_error(path, exc) from exc
    except _READER_ERRORS as exc:  # GraphML, but not one osmnx wrote (or a damaged one)
        msg = f"{path}: not an OSMnx GraphML graph ({type(exc).__name__}: {exc})"
        raise CorruptInputError(msg) from exc
    _check_graphml_nodes(graph, path)
    if graph.number_of_edges() == 0:
        msg = f"{path}: the extract holds no highway (its graph has no edge)"
        raise CorruptInputError(msg)
    raw_nodes = _node_features(graph)
    graph, target = _project(graph, crs)
    node_feats = _tidy_features(raw_nodes, target)
    files = [path]
    feats = node_feats
    if features is not None:
        extra = read_features_file(features, crs=target)
        files.append(features)
        # node tags are already in the features file when it exists; keep one copy of each
        feats = pd.concat([extra, node_feats[~node_feats.osmid.isin(extra.osmid)]])
        feats = gpd.GeoDataFrame(feats, geometry="geometry", crs=target)
    created = graph.graph.get("created_date")
    date = DataDate(str(created)[:10], "GraphML created_date") if created else None
    return OsmExtract(graph, feats.reset_index(drop=True), files, target, date=date)


def read_extract(path: Path, *, features: Path | None = None, crs: str | None = None) -> OsmExtract:
    """Read an OSM extract into a projected graph and a feature table.

    Parameters
    ----------
    path : Path
        ``.osm`` (XML), ``.osm.pbf`` or ``.graphml``.
    features : Path, optional
        A features file (GeoJSON/GeoPackage) beside a GraphML graph, as ``twin data fetch`` writes.
    crs : str, optional
        Working CRS to project to; default: chosen from the data's position
        (:func:`twin.crs.working_crs`).

    Raises
    ------
    DataMissingError
        The file does not exist.
    CorruptInputError
        The file is truncated or malformed (the message names the file and the line for XML,
        or the size read for PBF), is not OSM XML or GraphML, or holds no highway.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such extract"
        raise DataMissingError(msg)
    target = check_crs(crs) if crs is not None else None
    name = path.name.lower()
    if name.endswith(".graphml"):
        ext = _read_graphml(path, features, target)
    elif name.endswith(".pbf"):
        ext = _read_xml(_pbf_to_xml(path), target)
        ext.files = [path]
    else:
        ext = _read_xml(path, target)
    return ext


def graph_bounds_wgs84(graph: nx.MultiDiGraph) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in EPSG:4326 of a projected graph's nodes.

    NaN for a graph without a position on Earth (a SUMO network without a projection).
    """
    crs = geo_crs(str(graph.graph.get("crs") or ""))
    if crs is None or graph.number_of_nodes() == 0:
        return (math.nan, math.nan, math.nan, math.nan)
    xy = np.array([(d["x"], d["y"]) for _, d in graph.nodes(data=True)])
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1], crs=crs)
    return (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
