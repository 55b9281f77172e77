"""A CCTV camera (OSM ``man_made=surveillance``)."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Camera", "SCHEMA"]

SCHEMA = load_schema("camera")


@dataclasses.dataclass(frozen=True)
class Camera:
    """A CCTV camera (OSM ``man_made=surveillance``).

    Fields follow ``schemas/camera.csv``.
    """

    id: str
    """stable id, camera:N."""
    source: str | None
    """osm (man_made=surveillance)."""
    ref: str | None
    """OSM element id."""
    surveillance: str | None
    """OSM surveillance tag (public, outdoor, ...)."""
    camera_type: str | None
    """OSM surveillance:type."""
    geometry: BaseGeometry
    """position, in the twin's CRS."""
