"""A light point: its luminaire, its feeder cabinet and the segment it lights."""

from __future__ import annotations

import dataclasses

from shapely.geometry.base import BaseGeometry

from ._schema import load_schema

__all__ = ["Light", "SCHEMA"]

SCHEMA = load_schema("light")


@dataclasses.dataclass(frozen=True)
class Light:
    """A light point: its luminaire, its feeder cabinet and the segment it lights.

    Fields follow ``schemas/light.csv``.
    """

    id: str
    """stable id, light:NNNNNN."""
    segment: str | None
    """road segment it lights (nearest within 60 m)."""
    cabinet: str | None
    """feeder cabinet."""
    source: str | None
    """osm (highway=street_lamp), derived (placed along a lit road) or inventory."""
    ref: str | None
    """the source's own id (OSM node id, inventory row)."""
    technology: str | None
    """LED, HPS, MH (metal halide)."""
    luminaire: str | None
    """luminaire type (lantern, bollard, floodlight, ...)."""
    power_w: float
    """system power at full output [W]."""
    power_defaulted: bool
    """true where the source gave no wattage and the road-class default was used."""
    baseline_power_w: float
    """power of the pre-LED high-pressure sodium system it replaced (lamp + ballast) [W]."""
    flux_lm: float
    """luminous flux at full output [lm]."""
    min_level: float
    """lowest dim level the driver accepts (fraction of full output) [1]."""
    design_class: str | None
    """EN 13201 class the luminaire was designed for (its segment's class)."""
    maintenance_factor: float
    """design maintenance factor (CIE 154:2003) from the inventory; NaN: the catalogue default."""
    install_year: float
    """year the luminaire was installed, from the inventory; NaN: the contract's first year."""
    geometry: BaseGeometry
    """position, in the twin's CRS."""
