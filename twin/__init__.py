"""Digital twin of a metropolis's public space."""

from __future__ import annotations

from . import crs as crs
from . import settings as settings
from ._errors import (
    CorruptInputError,
    DataMissingError,
    InputValidationError,
    TwinError,
    UnknownAssetError,
    UnknownCityError,
)
from .settings import Settings, get_settings, set_options

__version__ = "0.1.0"

__all__ = [
    "CorruptInputError",
    "DataMissingError",
    "InputValidationError",
    "Settings",
    "TwinError",
    "UnknownAssetError",
    "UnknownCityError",
    "get_settings",
    "set_options",
    "crs",
    "settings",
]
