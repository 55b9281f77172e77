"""Cabinets (feeders): lights grouped by recursive median bisection of their positions.

Split along the wider axis until a group holds at most :data:`CABINET_MAX` lights: groups of
30-60 neighbouring lights. Mapped ``man_made=street_cabinet`` + ``street_cabinet=lighting``
cabinets give the position of the group nearest to them (within 500 m). The contracted power is
the installed power plus 10%, rounded up to the next 3 kVA step.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.registry import make_ids

__all__ = ["CABINET_MAX", "CABINET_MIN", "cabinets"]

CABINET_MAX = 60
CABINET_MIN = 20


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


def cabinets(lights: pd.DataFrame, feats: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """Cabinets of the lights (sets each light's ``cabinet``); ``feats`` gives mapped ones."""
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
    if feats is None or feats.empty:
        lights["cabinet"] = cab_of
        return cabs
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
