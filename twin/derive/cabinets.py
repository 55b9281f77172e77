"""Cabinets (feeders): lights grouped by recursive median bisection of their positions.

Split along the wider axis until a group holds at most :data:`CABINET_MAX` lights: groups of
30-60 neighbouring lights. Mapped ``man_made=street_cabinet`` + ``street_cabinet=lighting``
cabinets give the position of the group nearest to them (within 500 m). The contract of each
cabinet follows the documented rule (:func:`twin.assets.cabinet.with_contracts`): the tariff step
covering its LED stock at the CLO start level, at power factor 0.9.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.assets.cabinet import with_contracts
from twin.assets.maintenance import DEFAULT_MAINTENANCE
from twin.energy.power import DRIVER_FLOOR
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
                "geometry": shapely.Point(centroids[i]),
            }
        )
    lights["cabinet"] = cab_of
    cabs = with_contracts(
        pd.DataFrame(rows),
        lights,
        maintenance_factor=DEFAULT_MAINTENANCE.maintenance_factor,
        driver_floor=DRIVER_FLOOR,
    )
    if feats is None or feats.empty:
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
    return cabs
