"""Sensors, derived as no OSM tag maps them.

A loop detector on each junction approach; footfall counters on the walkable segments with the
most points of interest nearby (one per ~250 segments, 3 to 200); road-weather stations spread
over the main roads by seeded k-means (one per ~25 km², at least one).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.cluster.vq import kmeans2

from twin.registry import make_ids

__all__ = ["sensors"]


def sensors(
    seg: gpd.GeoDataFrame,
    approaches: pd.DataFrame,
    poi: pd.DataFrame,
    lights: pd.DataFrame,
    *,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Loop detectors, footfall counters and road-weather stations."""
    rows: list[dict[str, Any]] = []
    for a in approaches.itertuples(index=False):
        rows.append(
            {
                "sensor_type": "loop",
                "segment": a.segment,
                "approach": a.id,
                "geometry": shapely.get_point(a.geometry, 0),
            }
        )
    walk = seg[seg["walk"] & (seg["length_m"] > 20)]
    if len(walk):
        mids = shapely.line_interpolate_point(walk.geometry.values, 0.5, normalized=True)
        tree = shapely.STRtree(mids)
        score = np.zeros(len(walk))
        src = poi if len(poi) else lights
        if len(src):
            _, hit = tree.query(
                np.asarray(src["geometry"].values), predicate="dwithin", distance=150.0
            )
            score += np.bincount(hit, minlength=len(walk))
        score += np.isin(walk["highway"], ["pedestrian", "living_street"]) * (score.max() + 1) * 0.5
        n_foot = int(np.clip(round(len(seg) / 250), 3, 200))
        best = np.argsort(-score, kind="stable")[:n_foot]
        for i in best:
            rows.append(
                {
                    "sensor_type": "footfall",
                    "segment": walk["id"].iloc[i],
                    "approach": None,
                    "geometry": mids[i],
                }
            )
    main = seg[seg["highway"].isin(["motorway", "trunk", "primary", "secondary", "tertiary"])]
    if len(main) == 0:
        main = seg[seg["drive"]]
    if len(main):
        hull = shapely.convex_hull(
            shapely.multipoints(shapely.get_coordinates(seg.geometry.values))
        )
        k = int(max(1, min(len(main), round(hull.area / 25e6))))
        mids = shapely.line_interpolate_point(main.geometry.values, 0.5, normalized=True)
        xy = shapely.get_coordinates(mids)
        centres, _ = (
            kmeans2(xy, k, seed=rng, minit="++")
            if k > 1
            else (xy.mean(axis=0, keepdims=True), None)
        )
        for c in centres:
            i = int(np.argmin(np.hypot(*(xy - c).T)))
            rows.append(
                {
                    "sensor_type": "weather",
                    "segment": main["id"].iloc[i],
                    "approach": None,
                    "geometry": mids[i],
                }
            )
    df = pd.DataFrame(rows, columns=["sensor_type", "segment", "approach", "geometry"])
    df.insert(0, "id", make_ids("sensor", len(df)))
    df["source"] = "derived"
    return df
