"""Snapping points to the nearest road segment."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

__all__ = ["SNAP_M", "snap"]

#: Farthest a mapped or imported light may stand from its road segment (m).
SNAP_M = 60.0


def snap(points: np.ndarray, seg: gpd.GeoDataFrame, *, max_m: float = SNAP_M) -> np.ndarray:
    """Id of the nearest segment within ``max_m`` of each point (None beyond).

    >>> seg = gpd.GeoDataFrame({"id": ["segment:0"]},
    ...                        geometry=[shapely.LineString([(0, 0), (100, 0)])])
    >>> snap(shapely.points([(50, 10), (50, 500)]), seg).tolist()
    ['segment:0', None]
    """
    out = np.full(len(points), None, dtype=object)
    if len(points) == 0 or len(seg) == 0:
        return out
    tree = shapely.STRtree(seg.geometry.values)
    p_idx, s_idx = tree.query_nearest(points, max_distance=max_m, all_matches=False)
    out[p_idx] = seg["id"].to_numpy()[s_idx]
    return out
