"""Coordinate reference systems used by the twin.

Inputs and outputs are EPSG:4326 in (lon, lat) order; distances, buffers and areas are done in
EPSG:2154 (RGF93 / Lambert-93), the official projection of metropolitan France.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pyproj import Transformer

__all__ = ["WGS84", "LAMBERT93", "to_lambert93", "to_wgs84"]

WGS84 = "EPSG:4326"
LAMBERT93 = "EPSG:2154"


@lru_cache(maxsize=8)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def to_lambert93(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (lon, lat) arrays in EPSG:4326 to (x, y) in EPSG:2154.

    >>> x, y = to_lambert93(np.array([3.0]), np.array([46.5]))
    >>> round(float(x[0])), round(float(y[0]))
    (700000, 6600000)
    """
    x, y = _transformer(WGS84, LAMBERT93).transform(np.asarray(lon), np.asarray(lat))
    return np.asarray(x), np.asarray(y)


def to_wgs84(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (x, y) arrays in EPSG:2154 back to (lon, lat) in EPSG:4326.

    >>> lon, lat = to_wgs84(np.array([700000.0]), np.array([6600000.0]))
    >>> round(float(lon[0]), 6), round(float(lat[0]), 6)
    (3.0, 46.5)
    """
    lon, lat = _transformer(LAMBERT93, WGS84).transform(np.asarray(x), np.asarray(y))
    return np.asarray(lon), np.asarray(lat)
