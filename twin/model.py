"""The :class:`Twin`: a city's street graph and asset registry, built once and cached."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd

from . import cache as _cache
from ._errors import InputValidationError
from .cities import OSM_SUFFIXES, City, from_file, get_city
from .registry import Registry
from .settings import get_settings

__all__ = ["Twin", "load"]


class Twin:
    """A city's twin: the street graph and the asset registry, in the city's working CRS.

    Get one with :func:`twin.load`. ``tw.registry["light"]`` is the light table,
    ``tw.graph`` every street, ``tw.drive`` and ``tw.walk`` the drive and walk networks.
    :attr:`crs` is the working CRS of the graph and of every registry geometry (EPSG:2154 for
    the French cities, the local UTM zone elsewhere).
    """

    def __init__(
        self,
        city: City,
        graph: nx.MultiDiGraph,
        registry: Registry,
        meta: dict[str, Any],
        counts_table: pd.DataFrame | None = None,
    ) -> None:
        self.city = city
        self.graph = graph
        self.registry = registry
        self.meta = meta
        self.counts_table = counts_table
        self._views: dict[str, nx.MultiDiGraph] = {}
        if not city.timezone:  # an extract given as a file: the zone where it lies
            from .crs import timezone_at

            zone = meta.get("timezone") or timezone_at(*self.centre)
            meta["timezone"] = zone
            self.city = dataclasses.replace(city, timezone=zone)

    def __repr__(self) -> str:
        c = self.registry.counts()
        return (
            f"<Twin {self.city.name}: {c['light']} lights, {c['segment']} segments, "
            f"{c['junction']} junctions, {c['cabinet']} cabinets>"
        )

    @property
    def name(self) -> str:
        """The city's short name."""
        return self.city.name

    @property
    def crs(self) -> str:
        """The working CRS of the graph and of every registry geometry (``graph.graph["crs"]``).

        ``EPSG:2154`` (Lambert-93) for the French cities, the local UTM zone elsewhere; a SUMO
        network without a projection keeps ``"local metric"``.
        """
        crs = self.graph.graph.get("crs") or self.meta.get("crs") or self.registry.crs
        if not crs:
            msg = f"{self.city.name}: the twin's graph records no CRS"
            raise InputValidationError(msg)
        return str(crs)

    def _view(self, mode: str) -> nx.MultiDiGraph:
        if mode not in self._views:
            seg = self.registry["segment"]
            ok = set(seg.index[seg[mode].to_numpy(bool)])
            edges = [
                (u, v, k) for u, v, k, s in self.graph.edges(keys=True, data="segment") if s in ok
            ]
            self._views[mode] = self.graph.edge_subgraph(edges)
        return self._views[mode]

    @property
    def drive(self) -> nx.MultiDiGraph:
        """The drive network (a read-only view of :attr:`graph`)."""
        return self._view("drive")

    @property
    def walk(self) -> nx.MultiDiGraph:
        """The walk network (a read-only view of :attr:`graph`)."""
        return self._view("walk")

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in EPSG:4326."""
        from .osm import graph_bounds_wgs84

        return graph_bounds_wgs84(self.graph)

    @property
    def centre(self) -> tuple[float, float]:
        """(lon, lat) used for sun times: the definition's, else the bbox centre."""
        lon, lat = self.city.centre
        if lon == lon and lat == lat:  # not NaN
            return (lon, lat)
        left, bottom, right, top = self.bbox
        return ((left + right) / 2, (bottom + top) / 2)

    def counts(self) -> dict[str, int]:
        """Number of assets per type."""
        return self.registry.counts()

    def info(self) -> dict[str, Any]:
        """Summary as in DESIGN section 5 (``twin info --json``)."""
        files = self.meta["files"]
        return {
            "city": self.city.name,
            "title": self.city.title,
            "counts": self.counts(),
            "bbox": [round(v, 6) for v in self.bbox],
            "source": {
                "kind": self.meta["source_kind"],
                "files": {
                    role: {"name": f["name"], "sha256": f["sha256"]} for role, f in files.items()
                },
            },
            "date": self.meta["source_date"],
            "date_basis": self.meta.get("source_date_basis"),
            "crs": self.crs,
            "timezone": self.city.timezone,
            "clipped": self.meta.get("clipped", {}),
            "lit": self.meta.get("lit", {}),
            "attribution": self.city.attribution,
            "licence": self.city.licence,
            "expected": dict(self.city.expected),
            "lights_by_source": self.meta["lights_by_source"],
            "lights_power_defaulted": self.meta["lights_power_defaulted"],
            "graph": {
                "nodes": self.graph.number_of_nodes(),
                "edges": self.graph.number_of_edges(),
                "crs": self.crs,
            },
            "built_at": self.meta["built_at"],
            "code_version": self.meta["code_version"],
        }


def load(
    city: str | Path | City = "dijon",
    *,
    osm: str | Path | None = None,
    seed: int | None = None,
    rebuild: bool = False,
    progress: bool | None = None,
) -> Twin:
    """Load a city's twin, building and caching it on first use.

    Parameters
    ----------
    city : str, Path or City
        A shipped city name (``dijon``, ``montpellier``, ...), a city definition, or the path
        of an OSM extract.
    osm : str or Path, optional
        Any other OSM extract (``.osm``, ``.osm.pbf``, ``.graphml``); overrides ``city``.
    seed : int, optional
        Seed of the derived assets (light placement, sensors, depots); default from settings.
    rebuild : bool
        Build again, ignoring the cached twin (which is then replaced).
    progress : bool, optional
        Show a progress bar while building (default from settings).

    Returns
    -------
    Twin
        ``twin.meta["loaded_from_cache_s"]`` is set when it was read from the cache.

    Raises
    ------
    UnknownCityError
        ``city`` is not a shipped city, a definition or an extract's path.
    DataMissingError
        An input file is missing; the message says how to get it.
    InputValidationError, CorruptInputError
        An input is malformed; the message names the file and the field or the place.

    Notes
    -----
    The cache (:mod:`twin.cache`, in ``settings.cache``; off with ``use_cache=False``) is keyed by
    the package's code, the city definition, the seed and the inputs' checksums. One process
    builds a twin while the others that load it wait, then read it. An entry that fails any of its
    checks is said in one line and rebuilt; a cache folder that cannot be written is said once and
    the twin is kept in memory.
    """
    settings = get_settings()
    if osm is not None:
        definition = from_file(osm)
    elif isinstance(city, City):
        definition = city
    elif isinstance(city, Path) or (isinstance(city, str) and city.endswith(OSM_SUFFIXES)):
        definition = from_file(city)
    else:
        definition = get_city(city)
    seed = settings.seed if seed is None else seed
    files = _cache.input_files(definition)
    if not settings.use_cache:
        return Twin(definition, **_build(definition, seed=seed, progress=progress))
    key = _cache.cache_key(definition, files, seed)
    path = _cache.cache_path(definition, key)
    # one process builds an entry while the others wait for it, then read it
    with _cache.entry_lock(path) as lock:
        if not rebuild:
            t0 = time.perf_counter()
            payload = _cache.load_cache(path, key=key)
            if payload is not None:
                payload["meta"]["loaded_from_cache_s"] = round(time.perf_counter() - t0, 3)
                return Twin(definition, **payload)
        payload = _build(definition, seed=seed, progress=progress)
        if lock:
            if _cache.save_cache(path, payload, key=key):
                _cache.prune(path.parent.parent)
        else:  # a read-only cache folder: said once, the twin is kept in memory
            lock.cannot_write()
    return Twin(definition, **payload)


def _build(city: City, *, seed: int, progress: bool | None) -> dict[str, Any]:
    from .build import build  # the build's heavy imports only when a twin is built

    return dict(build(city, seed=seed, progress=progress))
