"""Typed sources: a city's data read into one shape, whatever its kind (OSM, municipal, SUMO).

:func:`read_source` dispatches once on ``city.source["kind"]`` to one reader per data kind
(:data:`READERS`); each returns a :class:`Source`, in the city's working CRS (``City.crs``, or
chosen from the data's position by :func:`twin.crs.working_crs`), that the build's derivation
steps (:mod:`twin.derive`) take as it is.

The data's date (:class:`twin.osm.DataDate`) is the date of the data, never the build day:
``osm_base`` or the newest object timestamp of an OSM XML or PBF file; for a GraphML graph, the
fetch manifest beside it when it lists the file (``twin data fetch`` writes one), else the
graph's ``created_date``; for municipal files, the newest entry of their zip archives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zipfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import networkx as nx
import osmnx as ox
import pandas as pd

from . import municipal, osm
from ._errors import CorruptInputError, InputValidationError
from .assets import lighting
from .cities import City
from .crs import WGS84, geo_crs, working_crs
from .inventory import Rejection, read_inventory
from .osm import ClipReport, DataDate

__all__ = ["READERS", "Source", "read_source", "signal_points"]


@dataclasses.dataclass
class Source:
    """A city's data, read and projected, ready for the derivation steps.

    Attributes
    ----------
    kind : str
        ``osm``, ``municipal`` or ``sumo``.
    graph : networkx.MultiDiGraph
        Every street, projected to ``crs`` (``graph.graph["crs"]``).
    crs : str
        The working CRS of the graph and of every table here.
    features : geopandas.GeoDataFrame
        Point and area features (OSM); empty for the other kinds.
    signals : geopandas.GeoDataFrame
        Traffic-signal points, clustered into junctions by the build; column ``crossing`` is
        True for the signals of a pedestrian crossing (``highway=crossing`` +
        ``crossing=traffic_signals``).
    signal_source : str
        Where the signals come from (``osm``, ``municipal``, ``sumo``).
    inventory : geopandas.GeoDataFrame or None
        Validated light inventory rows, when the city has one.
    inventory_rejected : list of Rejection
        Inventory rows that failed validation.
    counts : pandas.DataFrame or None
        Traffic counts (municipal cities), for calibration.
    clipped : ClipReport
        What the edge of a clipped OSM extract cut off (all zero otherwise).
    date : DataDate or None
        The data's date and what it is the date of.
    """

    kind: str
    graph: nx.MultiDiGraph
    crs: str
    features: gpd.GeoDataFrame
    signals: gpd.GeoDataFrame
    signal_source: str
    inventory: gpd.GeoDataFrame | None = None
    inventory_rejected: list[Rejection] = dataclasses.field(default_factory=list)
    counts: pd.DataFrame | None = None
    clipped: ClipReport = dataclasses.field(default_factory=ClipReport)
    date: DataDate | None = None


def _empty_points(crs: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": pd.Series(dtype=object), "crossing": pd.Series(dtype=bool)},
        geometry=gpd.GeoSeries([], crs=geo_crs(crs)),
    )


def signal_points(features: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Traffic-signal points of an OSM feature table.

    ``highway=traffic_signals`` nodes, and the signals of pedestrian crossings:
    ``highway=crossing`` nodes tagged ``crossing=traffic_signals`` (or ``crossing:signals=yes``).
    Column ``crossing`` marks the latter; a node tagged both ways counts once, as a junction
    signal.
    """
    hw = features["highway"]
    points = (features.geometry.geom_type == "Point").to_numpy()
    junction = (hw == "traffic_signals").to_numpy()
    crossing = (
        (hw == "crossing")
        & (
            (features["crossing"] == "traffic_signals")
            | (features["crossing:signals"].astype(str).str.lower() == "yes")
        )
    ).to_numpy()
    keep = points & (junction | crossing)
    out = features.loc[keep, ["osmid", "name", "geometry"]].copy()
    out["crossing"] = crossing[keep] & ~junction[keep]
    return out.reset_index(drop=True)


def _manifest_date(path: Path) -> DataDate | None:
    from .fetch import manifest_for

    manifest = manifest_for(path)
    if manifest is None:
        return None
    return DataDate(manifest.fetched_at.date().isoformat(), "fetch manifest")


def read_osm(city: City, files: dict[str, Path]) -> Source:
    """Read an OSM extract (XML, PBF, or GraphML with its features file)."""
    main = files.get("osm") or files["graph"]
    ext = osm.read_extract(main, features=files.get("features"), crs=city.crs)
    date = _manifest_date(main) or ext.date
    return Source(
        "osm",
        ext.graph,
        ext.crs,
        ext.features,
        signal_points(ext.features),
        "osm",
        clipped=ext.clipped,
        date=date,
    )


def _zip_date(files: list[Path]) -> DataDate | None:
    dates: list[str] = []
    for path in files:
        if path.suffix.lower() != ".zip":
            continue
        try:
            with zipfile.ZipFile(path) as zf:
                stamps = [dt.date(*i.date_time[:3]).isoformat() for i in zf.infolist()]
        except (zipfile.BadZipFile, OSError) as exc:
            msg = f"{path}: not a readable zip archive ({exc})"
            raise CorruptInputError(msg) from exc
        dates.extend(stamps)
    return DataDate(max(dates), "newest zip entry") if dates else None


def read_municipal(city: City, files: dict[str, Path]) -> Source:
    """Read municipal GIS files: road centrelines, and lights, signals and counts if given."""
    src = city.source
    roads, _ = municipal.read_layer(files["roads"], src["roads"], what="roads")
    if roads.crs is None:
        msg = f"source.roads.crs: {files['roads'].name} gives no CRS; name it in the definition"
        raise InputValidationError(msg)
    crs = city.crs
    if crs is None:
        left, bottom, right, top = roads.to_crs(WGS84).total_bounds
        crs = working_crs((left + right) / 2, (bottom + top) / 2)
    roads = roads.to_crs(crs)
    counts = municipal.read_counts(files["counts"], src["counts"]) if "counts" in files else None
    graph = municipal.roads_to_graph(roads, counts=counts, defaults=lighting.ROAD_CLASSES)
    graph.graph["crs"] = crs
    inventory: gpd.GeoDataFrame | None = None
    rejected: list[Rejection] = []
    if "lights" in files:
        spec = src["lights"]
        inventory, rejected, _ = read_inventory(
            files["lights"], fields=spec.get("fields"), crs=spec.get("crs"), to_crs=crs
        )
    signals = _empty_points(crs)
    if "signals" in files:
        layer, _ = municipal.read_layer(
            files["signals"], src["signals"], what="signals", to_crs=crs
        )
        signals = gpd.GeoDataFrame(
            {
                "name": layer["name"] if "name" in layer.columns else None,
                "crossing": False,
            },
            geometry=layer.geometry.values,
            crs=crs,
        )
    return Source(
        "municipal",
        graph,
        crs,
        osm._empty_features(crs),
        signals,
        "municipal",
        inventory=inventory,
        inventory_rejected=rejected,
        counts=counts,
        date=_zip_date(list(files.values())),
    )


def read_sumo(city: City, files: dict[str, Path]) -> Source:
    """Read a SUMO network: its junctions with a traffic light are the signals.

    The twin takes the network's own projection as its CRS when it is a projected one (or the
    definition's ``crs``, reprojecting); a network without a projection keeps its plain metric
    coordinates and has no position on Earth.
    """
    from .sumo import read_sumo_net

    graph, _plans = read_sumo_net(files["net"])
    # integer node ids like OSM's; the SUMO junction id stays as the node's `sumo_id`
    ids = {n: i for i, n in enumerate(sorted(graph.nodes, key=str))}
    nx.set_node_attributes(graph, {n: str(n) for n in graph.nodes}, "sumo_id")
    graph = nx.relabel_nodes(graph, ids)
    graph.graph["junctions"] = {
        tls: [ids[n] for n in members] for tls, members in graph.graph.get("junctions", {}).items()
    }
    own = str(graph.graph.get("crs") or "")
    crs = own
    if geo_crs(own) is not None:
        crs = city.crs or own
        if crs != own:
            graph = ox.project_graph(graph, to_crs=crs)
            graph.graph["crs"] = crs
    nodes = [n for members in graph.graph.get("junctions", {}).values() for n in members]
    signals = _empty_points(crs)
    if nodes:
        signals = gpd.GeoDataFrame(
            {"name": [None] * len(nodes), "crossing": False},
            geometry=gpd.points_from_xy(
                [graph.nodes[n]["x"] for n in nodes], [graph.nodes[n]["y"] for n in nodes]
            ),
            crs=geo_crs(crs),
        )
    return Source("sumo", graph, crs, osm._empty_features(crs), signals, "sumo")


#: Data kind (``source.kind`` of a city definition) -> its reader.
READERS: dict[str, Callable[[City, dict[str, Path]], Source]] = {
    "osm": read_osm,
    "municipal": read_municipal,
    "sumo": read_sumo,
}


def read_source(city: City, files: dict[str, Path]) -> Source:
    """Read a city's data with the reader of its kind, and an imported inventory if any."""
    kind = city.source.get("kind")
    reader = READERS.get(str(kind))
    if reader is None:
        msg = f"{city.name}: source.kind must be one of {sorted(READERS)}, got {kind!r}"
        raise InputValidationError(msg)
    src = reader(city, files)
    if "inventory" in files:  # an inventory imported with `twin inventory import`
        inv = gpd.read_file(files["inventory"])
        src.inventory = inv.to_crs(src.crs) if geo_crs(src.crs) else inv
        src.inventory_rejected = []
    return src
