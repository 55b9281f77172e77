"""Pedestrian crossings from OSM nodes, and the lights that serve them.

A crossing is an OSM point tagged ``highway=crossing``, or any point with a ``crossing=*`` tag
(``crossing=no`` excepted: it marks where one may not cross). Each is snapped to the road it
crosses (nearest segment open to motor traffic within :data:`SNAP_M`), and the light points
within :data:`SERVING_RADIUS_M` of it are the ones that light its conflict area: with the 25-35 m
spacing of urban lights (DESIGN section 3), the one or two luminaires either side of a crossing.

The conflict area's class is the C class comparable to the road's class (CEN/TR 13201-1:2014,
Table 6: M1..M6 against C0..C5; a P road against the C class of at least its illuminance), one
step higher, as EN 13201-1 practice lights a conflict area one step above the roads that meet in
it. M (luminance) and C (illuminance) values cannot be compared without the surface's Q0, so the
plans hold the serving lights at their own design class instead of converting: a luminaire
designed for the road at the comparable class delivers the conflict area's level only at full
design output, so a serving light is never dimmed below its design class (CLO still applies).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin.assets import lighting
from twin.registry import make_ids

from ._snap import snap

__all__ = ["SERVING_RADIUS_M", "SNAP_M", "conflict_class", "crossings", "lights_serving"]

SERVING_RADIUS_M = 25.0
"""Lights within this distance of a crossing serve its conflict area (m)."""
SNAP_M = 30.0
"""Farthest a crossing may stand from the road it crosses (m)."""

_M_TO_C = {"M1": "C0", "M2": "C1", "M3": "C2", "M4": "C3", "M5": "C4", "M6": "C5"}


def conflict_class(road_class: str) -> str:
    """The C class of a crossing on a road of ``road_class``: comparable, one step higher.

    >>> conflict_class("M4"), conflict_class("M1"), conflict_class("P3"), conflict_class("C2")
    ('C2', 'C0', 'C4', 'C1')
    """
    if road_class.startswith("M"):
        comparable = _M_TO_C[road_class]
    elif road_class.startswith("P"):  # the dimmest C class at least as bright as the P value
        value = lighting.class_value(road_class)
        table = lighting.class_table()
        c = table[(table["series"] == "C") & (table["value"] >= value)]
        comparable = str(c["value"].idxmin())
    else:
        comparable = road_class
    number = max(0, int(comparable[1:]) - 1)
    return f"C{number}"


def lights_serving(
    crossing_points: np.ndarray, light_points: np.ndarray, *, radius_m: float = SERVING_RADIUS_M
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(crossing index, light index)`` within ``radius_m`` of each other."""
    if len(crossing_points) == 0 or len(light_points) == 0:
        return np.array([], dtype=np.intp), np.array([], dtype=np.intp)
    tree = shapely.STRtree(light_points)
    c_idx, l_idx = tree.query(crossing_points, predicate="dwithin", distance=radius_m)
    return c_idx.astype(np.intp), l_idx.astype(np.intp)


def crossings(feats: gpd.GeoDataFrame, seg: gpd.GeoDataFrame, light: pd.DataFrame) -> pd.DataFrame:
    """The ``crossing`` table of the registry from the feature table."""
    point = (feats.geometry.geom_type == "Point").to_numpy()
    hw = feats["highway"].to_numpy(dtype=object)
    tag = feats["crossing"].to_numpy(dtype=object) if "crossing" in feats.columns else None
    has_tag = np.zeros(len(feats), dtype=bool) if tag is None else pd.notna(tag)
    keep = point & ((hw == "crossing") | has_tag)
    if tag is not None:
        keep &= ~(pd.Series(tag).astype(str).str.lower() == "no").to_numpy()
    rows = feats[keep]
    pts = np.asarray(rows.geometry.values)
    drive = seg[seg["drive"]] if "drive" in seg.columns else seg
    segment = snap(pts, drive, max_m=SNAP_M)
    road_cls = (
        seg.set_index("id")["lighting_class"].reindex(segment).to_numpy(dtype=object)
        if len(rows)
        else np.array([], dtype=object)
    )
    sig_tag = (
        rows["crossing:signals"].astype(str).str.lower().to_numpy()
        if "crossing:signals" in rows.columns
        else np.full(len(rows), "")
    )
    ctag = rows["crossing"].to_numpy(dtype=object) if "crossing" in rows.columns else None
    signals = (sig_tag == "yes") | (
        np.zeros(len(rows), dtype=bool) if ctag is None else (ctag == "traffic_signals")
    )
    c_idx, _ = lights_serving(pts, np.asarray(light.geometry.values))
    n_lights = np.bincount(c_idx, minlength=len(rows)) if len(rows) else np.array([], int)
    return pd.DataFrame(
        {
            "id": make_ids("crossing", len(rows)),
            "source": "osm",
            "ref": rows["osmid"].astype(str).to_numpy(),
            "crossing": ctag if ctag is not None else np.full(len(rows), None, dtype=object),
            "signals": signals.astype(bool),
            "segment": segment,
            "conflict_class": np.array(
                [conflict_class(str(c)) if isinstance(c, str) else None for c in road_cls],
                dtype=object,
            ),
            "lights": n_lights.astype(np.int64),
            "geometry": pts,
        }
    )
