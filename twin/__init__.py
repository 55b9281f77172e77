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
from ._version import __version__ as __version__
from .model import Twin, load
from .registry import Registry
from .settings import Settings, get_settings, set_options

__all__ = [
    "CorruptInputError",
    "DataMissingError",
    "InputValidationError",
    "Registry",
    "Settings",
    "Twin",
    "TwinError",
    "UnknownAssetError",
    "UnknownCityError",
    "get_settings",
    "load",
    "set_options",
    "crs",
    "settings",
]
