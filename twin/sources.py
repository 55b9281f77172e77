"""Typed sources: a city's data read into one shape, whatever its kind (OSM, municipal, SUMO).

:func:`read_source` dispatches once on ``city.source["kind"]`` to one reader per data kind; each
returns a :class:`Source` that the build's derivation steps (:mod:`twin.derive`) take as it is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import networkx as nx
import osmnx as ox
import pandas as pd

from . import municipal, osm
from .assets import lighting
from .cities import City
from .crs import LAMBERT93
from .inventory import Rejection, read_inventory

__all__ = ["READERS", "Source", "read_source"]


@dataclasses.dataclass
class Source:
    """A city's data, read and projected, ready for the derivation steps.

    Attributes
    ----------
    kind : str
        ``osm``, ``municipal`` or ``sumo``.
    graph : networkx.MultiDiGraph
        Every street, projected (``graph.graph["crs"]``).
    features : geopandas.GeoDataFrame
        Point and area features (OSM); empty for the other kinds.
    signals : geopandas.GeoDataFrame
        Traffic-signal points, clustered into junctions by the build.
    signal_source : str
        Where the signals come from (``osm``, ``municipal``, ``sumo``).
    inventory : geopandas.GeoDataFrame or None
        Validated light inventory rows, when the city has one.
    inventory_rejected : list of Rejection
        Inventory rows that failed validation.
    counts : pandas.DataFrame or None
        Traffic counts (municipal cities), for calibration.
    """

    kind: str
    graph: nx.MultiDiGraph
    features: gpd.GeoDataFrame
    signals: gpd.GeoDataFrame
    signal_source: str
    inventory: gpd.GeoDataFrame | None = None
    inventory_rejected: list[Rejection] = dataclasses.field(default_factory=list)
    counts: pd.DataFrame | None = None


def read_osm(city: City, files: dict[str, Path]) -> Source:
    """Read an OSM extract (XML, PBF, or GraphML with its features file)."""
    main = files.get("osm") or files["graph"]
    ext = osm.read_extract(main, features=files.get("features"))
    signals = ext.features[
        (ext.features["highway"] == "traffic_signals")
        & (ext.features.geometry.geom_type == "Point")
    ]
    return Source("osm", ext.graph, ext.features, signals, "osm")


def read_municipal(city: City, files: dict[str, Path]) -> Source:
    """Read municipal GIS files: road centrelines, and lights, signals and counts if given."""
    src = city.source
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
    return Source(
        "municipal",
        graph,
        osm._empty_features(),
        signals,
        "municipal",
        inventory=inventory,
        inventory_rejected=rejected,
        counts=counts,
    )


def read_sumo(city: City, files: dict[str, Path]) -> Source:
    """Read a SUMO network: its junctions with a traffic light are the signals."""
    from .sumo import read_sumo_net

    graph, _plans = read_sumo_net(files["net"])
    # integer node ids like OSM's; the SUMO junction id stays as the node's `sumo_id`
    ids = {n: i for i, n in enumerate(sorted(graph.nodes, key=str))}
    nx.set_node_attributes(graph, {n: str(n) for n in graph.nodes}, "sumo_id")
    graph = nx.relabel_nodes(graph, ids)
    graph.graph["junctions"] = {
        tls: [ids[n] for n in members] for tls, members in graph.graph.get("junctions", {}).items()
    }
    if graph.graph.get("crs") not in (None, LAMBERT93) and str(graph.graph["crs"]).startswith(
        "EPSG"
    ):
        graph = ox.project_graph(graph, to_crs=LAMBERT93)
    else:
        # a network without geo-reference ("local metric"): its metres are taken as they are
        graph.graph["crs"] = LAMBERT93
    nodes = [n for members in graph.graph.get("junctions", {}).values() for n in members]
    signals = gpd.GeoDataFrame(
        {"name": [None] * len(nodes)},
        geometry=gpd.points_from_xy(
            [graph.nodes[n]["x"] for n in nodes], [graph.nodes[n]["y"] for n in nodes]
        ),
        crs=LAMBERT93,
    )
    return Source("sumo", graph, osm._empty_features(), signals, "sumo")


#: Data kind (``source.kind`` of a city definition) -> its reader.
READERS: dict[str, Callable[[City, dict[str, Path]], Source]] = {
    "osm": read_osm,
    "municipal": read_municipal,
    "sumo": read_sumo,
}


def read_source(city: City, files: dict[str, Path]) -> Source:
    """Read a city's data with the reader of its kind, and an imported inventory if any."""
    src = READERS[city.source["kind"]](city, files)
    if "inventory" in files:  # an inventory imported with `twin import-inventory`
        src.inventory = gpd.read_file(files["inventory"]).to_crs(src.graph.graph["crs"])
        src.inventory_rejected = []
    return src


def source_date(files: dict[str, Path], graph: nx.MultiDiGraph) -> str | None:
    """Date of the data: the newest OSM timestamp, zip entry or graph creation date."""
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
