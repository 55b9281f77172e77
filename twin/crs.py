"""Coordinate reference systems: EPSG:4326 in and out, a working CRS per city for distances.

Inputs and outputs are EPSG:4326 in (lon, lat) order. Distances, buffers and areas are done in
the city's working CRS: ``City.crs`` when its definition gives one (EPSG:2154, RGF93 /
Lambert-93, for the shipped French cities), else :func:`working_crs` chooses from the data's
position: Lambert-93 inside its area of use (metropolitan France and Corsica), the local
WGS 84 / UTM zone elsewhere. Every twin records its CRS (``Twin.crs``, ``graph.graph["crs"]``,
the registry's GeoDataFrames, the build metadata and every export).

Lambert-93's area of use is the bounding box EPSG records for it (-9.86..10.38 E,
41.15..51.56 N), which also covers parts of the neighbouring countries (Brussels, Geneva,
Barcelona, London); its scale error there stays within 0.3%. A definition's ``crs`` overrides the
choice.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from ._errors import InputValidationError

__all__ = [
    "LAMBERT93",
    "WGS84",
    "check_crs",
    "geo_crs",
    "to_lambert93",
    "to_lonlat",
    "to_wgs84",
    "to_xy",
    "timezone_at",
    "working_crs",
]

WGS84 = "EPSG:4326"
#: RGF93 / Lambert-93, the official projection of metropolitan France.
LAMBERT93 = "EPSG:2154"


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def check_crs(crs: str, *, field: str = "crs") -> str:
    """Return ``crs`` as ``EPSG:n`` if it names a projected CRS in metres, else raise.

    >>> check_crs("epsg:32619")
    'EPSG:32619'
    >>> check_crs("EPSG:4326")
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: crs: EPSG:4326 is not a projected CRS in metres
    """
    try:
        parsed = CRS.from_user_input(crs)
    except Exception:  # noqa: BLE001 - pyproj raises CRSError, and others for odd input
        msg = f"{field}: {crs!r} is not a CRS pyproj knows (e.g. EPSG:2154, EPSG:32619)"
        raise InputValidationError(msg) from None
    unit = parsed.axis_info[0].unit_name if parsed.axis_info else ""
    if not parsed.is_projected or unit not in ("metre", "meter"):
        msg = f"{field}: {crs} is not a projected CRS in metres"
        raise InputValidationError(msg)
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg else parsed.to_string()


@lru_cache(maxsize=64)
def geo_crs(crs: str | None) -> str | None:
    """``crs`` if pyproj knows it (coordinates with a position on Earth), else None.

    A SUMO network without a projection has plain metric coordinates (``"local metric"``):
    distances hold, but there is no longitude or latitude to convert to.

    >>> geo_crs("EPSG:2154"), geo_crs("local metric"), geo_crs(None)
    ('EPSG:2154', None, None)
    """
    if not crs:
        return None
    try:
        CRS.from_user_input(crs)
    except Exception:  # noqa: BLE001 - pyproj raises CRSError, and others for odd input
        return None
    return crs


@cache
def _lambert93_area() -> tuple[float, float, float, float]:
    area = CRS(LAMBERT93).area_of_use
    if area is None:  # pragma: no cover - the EPSG database always gives one
        return (-9.86, 41.15, 10.38, 51.56)
    return (area.west, area.south, area.east, area.north)


def working_crs(lon: float, lat: float) -> str:
    """The working CRS for data centred on (lon, lat): Lambert-93 in France, else UTM.

    The UTM zone is the WGS 84 one whose area of use holds the point (pyproj's
    ``query_utm_crs_info``), north or south by the latitude; on a zone boundary, the zone whose
    central meridian is nearest.

    >>> working_crs(2.4845, 48.9098)     # Bondy
    'EPSG:2154'
    >>> working_crs(-71.208, 46.814)     # Québec
    'EPSG:32619'
    >>> working_crs(151.209, -33.868)    # Sydney
    'EPSG:32756'
    """
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        msg = f"working_crs: ({lon}, {lat}) is not a (lon, lat) position in degrees"
        raise InputValidationError(msg)
    west, south, east, north = _lambert93_area()
    if west <= lon <= east and south <= lat <= north:
        return LAMBERT93
    found = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )
    hemisphere = "326" if lat >= 0 else "327"
    zones = [int(i.code[3:]) for i in found if i.code.startswith(hemisphere)]
    if not zones:  # the poles: no UTM zone
        msg = f"working_crs: no UTM zone covers ({lon}, {lat}); give the city's crs"
        raise InputValidationError(msg)
    zone = min(zones, key=lambda z: abs(((lon - (6 * z - 183) + 180) % 360) - 180))
    return f"EPSG:{hemisphere}{zone:02d}"


def to_xy(lon: np.ndarray, lat: np.ndarray, *, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Project (lon, lat) arrays in EPSG:4326 to (x, y) in ``crs``.

    >>> x, y = to_xy(np.array([-69.0]), np.array([0.0]), crs="EPSG:32619")
    >>> round(float(x[0])), round(float(y[0]))
    (500000, 0)
    """
    x, y = _transformer(WGS84, crs).transform(np.asarray(lon), np.asarray(lat))
    return np.asarray(x), np.asarray(y)


def to_lonlat(x: np.ndarray, y: np.ndarray, *, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Project (x, y) arrays in ``crs`` back to (lon, lat) in EPSG:4326.

    >>> lon, lat = to_lonlat(np.array([500000.0]), np.array([0.0]), crs="EPSG:32619")
    >>> round(float(lon[0]), 6), round(float(lat[0]), 6)
    (-69.0, 0.0)
    """
    lon, lat = _transformer(crs, WGS84).transform(np.asarray(x), np.asarray(y))
    return np.asarray(lon), np.asarray(lat)


def to_lambert93(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (lon, lat) arrays in EPSG:4326 to (x, y) in EPSG:2154 (French data).

    >>> x, y = to_lambert93(np.array([3.0]), np.array([46.5]))
    >>> round(float(x[0])), round(float(y[0]))
    (700000, 6600000)
    """
    return to_xy(lon, lat, crs=LAMBERT93)


def to_wgs84(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (x, y) arrays in EPSG:2154 (French data) back to (lon, lat) in EPSG:4326.

    Any other CRS: :func:`to_lonlat`.

    >>> lon, lat = to_wgs84(np.array([700000.0]), np.array([6600000.0]))
    >>> round(float(lon[0]), 6), round(float(lat[0]), 6)
    (3.0, 46.5)
    """
    return to_lonlat(x, y, crs=LAMBERT93)


def timezone_at(lon: float, lat: float) -> str:
    """The IANA time zone at (lon, lat), from the time-zone boundaries (timezonefinder, offline).

    An extract given as a file (``--osm``) names no time zone: its nights, slots and local hours
    are read in the zone where it lies. At sea, where no zone's land boundary holds the point, the
    nautical zone (``Etc/GMT±h``) is given.

    >>> timezone_at(2.4845, 48.9098)     # Bondy
    'Europe/Paris'
    >>> timezone_at(-71.208, 46.814)     # Québec
    'America/Toronto'
    >>> timezone_at(151.209, -33.868)    # Sydney
    'Australia/Sydney'
    """
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        msg = f"timezone_at: ({lon}, {lat}) is not a (lon, lat) position in degrees"
        raise InputValidationError(msg)
    zone = _timezone_finder().timezone_at(lng=lon, lat=lat)
    if zone is None:  # timezonefinder gives the Etc zones at sea; this is a fallback
        hours = round(lon / 15.0)
        zone = "Etc/UTC" if hours == 0 else f"Etc/GMT{-hours:+d}"
    return str(zone)


@cache
def _timezone_finder() -> Any:
    from timezonefinder import TimezoneFinder  # its boundary data is read on first use

    return TimezoneFinder(in_memory=True)  # no file handles left open
