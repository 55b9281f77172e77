"""Build a twin from a city's data.

The build reads the city's data into a typed source (:mod:`twin.sources`: one reader per data
kind, OSM extracts through :mod:`twin.osm`, municipal GIS files through :mod:`twin.municipal`,
SUMO networks through :mod:`twin.sumo`), then runs the derivation steps of :mod:`twin.derive`
in order (segments, lights, cabinets, junctions, features, sensors, fleet; see that package for
how each asset type is made) and assembles the registry (:mod:`twin.registry`) and the metadata.
:func:`twin.load` caches the result, keyed by the checksum of every input file, the code version
and the seed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any, TypedDict

import networkx as nx
import numpy as np
import pandas as pd
import shapely

from .cache import CODE_VERSION, input_files, sha256_file
from .cities import City
from .crs import timezone_at
from .derive import (
    cabinets,
    crossings,
    features,
    fleet,
    junctions,
    lights,
    pockets,
    segments,
    sensors,
)
from .derive._snap import SNAP_M
from .derive.cabinets import CABINET_MAX
from .derive.junctions import JUNCTION_DIAMETER_M
from .osm import graph_bounds_wgs84
from .registry import Registry
from .settings import get_settings
from .sources import read_source

__all__ = ["CABINET_MAX", "JUNCTION_DIAMETER_M", "SNAP_M", "STEPS", "Built", "build"]

#: The steps of a build, in order (the progress bar and ``meta["timings_s"]`` name them).
STEPS = (
    "read",
    "segments",
    "lights",
    "cabinets",
    "junctions",
    "features",
    "sensors",
    "registry",
)


class Built(TypedDict):
    """What :func:`build` returns and :class:`twin.model.Twin` wraps (``Twin(city, **built)``)."""

    graph: nx.MultiDiGraph
    registry: Registry
    meta: dict[str, Any]
    counts_table: pd.DataFrame | None


class _Progress:
    """Times each step and shows a progress bar over :data:`STEPS`."""

    def __init__(self, title: str, *, show: bool) -> None:
        self.timings: dict[str, float] = {}
        self._bar: Any = None
        if show:
            from .progress import progress_bar

            self._bar = progress_bar(total=len(STEPS), desc=title, unit="step", leave=False)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self._bar is not None:
            self._bar.set_postfix_str(name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        if self._bar is not None:
            self._bar.update()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def build(city: City, *, seed: int | None = None, progress: bool | None = None) -> Built:
    """Build a city's graph, registry and metadata from its data files (no cache).

    Parameters
    ----------
    city : City
        The city definition; its ``source`` names the data kind and files.
    seed : int, optional
        Seed of the derived assets (light placement, sensors, depots); default from settings.
    progress : bool, optional
        Show a progress bar over the steps (default from settings).

    Returns
    -------
    Built
        ``graph``, ``registry``, ``meta`` and ``counts_table`` (traffic counts of municipal
        cities, for calibration), which :class:`twin.model.Twin` wraps.
    """
    settings = get_settings()
    seed = settings.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    files = input_files(city)
    catalogue = city.defaults.get("catalogue", "led-2018")
    show = settings.progress if progress is None else progress
    prog = _Progress(f"building {city.name}", show=show)
    try:
        with prog.step("read"):
            src = read_source(city, files)
        with prog.step("segments"):
            seg = segments.segments(src.graph)
        with prog.step("lights"):
            if src.inventory is not None:
                raw = lights.inventory_lights(src.inventory, seg)
            else:
                lamps = lights.osm_lamps(src.features, seg)
                derived = lights.derive_lights(seg, skip=set(lamps["segment"].dropna()), rng=rng)
                raw = pd.concat([lamps, derived], ignore_index=True)
            light = lights.finish_lights(raw, seg, catalogue=catalogue)
        with prog.step("cabinets"):
            cabinet = cabinets.cabinets(light, src.features)
        with prog.step("junctions"):
            junction, approach = junctions.junctions(
                src.signals, src.graph, seg, source=src.signal_source
            )
            # turn:lanes in error were reported (and set aside) with the segments' lane tags
            approach = pockets.pockets(src.graph, junction, approach)
        with prog.step("features"):
            feats = features.features(src.features, seg)
            feats["crossing"] = crossings.crossings(src.features, seg, light)
        with prog.step("sensors"):
            sensor = sensors.sensors(seg, approach, feats["poi"], light, rng=rng)
            depot, vehicle = fleet.fleet(src.graph, seg, city, rng=rng)
        with prog.step("registry"):
            seg_drive = seg.set_index("id")["drive"]
            for _, _, d in src.graph.edges(data=True):
                d["drive"] = bool(seg_drive[d["segment"]])
            registry = Registry(
                crs=src.crs,
                tables={
                    "segment": seg,
                    "light": light,
                    "cabinet": cabinet,
                    "junction": junction,
                    "approach": approach,
                    "camera": feats["camera"],
                    "building": feats["building"],
                    "poi": feats["poi"],
                    "crossing": feats["crossing"],
                    "sensor": sensor,
                    "depot": depot,
                    "vehicle": vehicle,
                },
            )
    finally:
        prog.close()

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
        "crs": src.crs,
        "timezone": city.timezone or _timezone(src.graph),
        "source_date": src.date.date if src.date else None,
        "source_date_basis": src.date.basis if src.date else None,
        "clipped": src.clipped.to_dict(),
        "lit": segments.lit_summary(seg),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "code_version": CODE_VERSION,
        "seed": seed,
        "attribution": city.attribution,
        "licence": city.licence,
        "timings_s": prog.timings,
        "lights_by_source": light["source"].value_counts().to_dict(),
        "lights_power_defaulted": int(light["power_defaulted"].sum()),
        "lights_unmatched": int(light["segment"].isna().sum()),
        "lights_rejected": [str(r) for r in src.inventory_rejected],
        "signals": int(len(src.signals)),
        "signals_crossing": int(src.signals["crossing"].sum()) if len(src.signals) else 0,
        "signal_points": shapely.get_coordinates(np.asarray(src.signals.geometry.values)),
    }
    return Built(graph=src.graph, registry=registry, meta=meta, counts_table=src.counts)


def _timezone(graph: nx.MultiDiGraph) -> str:
    """The time zone at the centre of the data (for extracts given as files, which name none)."""
    left, bottom, right, top = graph_bounds_wgs84(graph)
    return timezone_at((left + right) / 2, (bottom + top) / 2)
