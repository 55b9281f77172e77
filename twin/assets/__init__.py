"""Asset types of the registry: one module per type, each a frozen dataclass and its schema."""

from __future__ import annotations

from . import approach as approach
from . import building as building
from . import cabinet as cabinet
from . import camera as camera
from . import crossing as crossing
from . import depot as depot
from . import junction as junction
from . import light as light
from . import poi as poi
from . import segment as segment
from . import sensor as sensor
from . import vehicle as vehicle
from ._schema import KINDS, Attribute, Schema, load_schema

__all__ = [
    "KINDS",
    "Attribute",
    "Schema",
    "approach",
    "building",
    "cabinet",
    "camera",
    "crossing",
    "depot",
    "junction",
    "light",
    "load_schema",
    "poi",
    "segment",
    "sensor",
    "vehicle",
]
