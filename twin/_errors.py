"""Exceptions raised by the twin.

Each one subclasses a builtin so that callers who do not know our types can still catch
them (``except FileNotFoundError``), as osmnx does in its ``_errors.py``.
"""

from __future__ import annotations

__all__ = [
    "CacheEntryError",
    "ConvergenceError",
    "CorruptInputError",
    "OverpassUnreachableError",
    "DataMissingError",
    "InputValidationError",
    "TwinError",
    "UnknownCityError",
    "UnknownAssetError",
    "UnsafePlanError",
    "UnsupportedValueError",
]


class TwinError(Exception):
    """Base class of every error the twin raises on purpose."""


class DataMissingError(TwinError, FileNotFoundError):
    """A city's data is not where we looked; the message says how to get it."""


class UnknownCityError(TwinError, KeyError):
    """A city name that no definition matches; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class UnknownAssetError(TwinError, KeyError):
    """An asset id that the registry does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CorruptInputError(TwinError, ValueError):
    """An input file is truncated or malformed; the message names the file and where it broke."""


class InputValidationError(TwinError, ValueError):
    """A value given by a user is out of range or of the wrong kind; the message names the field."""


class OverpassUnreachableError(TwinError, ConnectionError):
    """The Overpass endpoint could not be reached or did not answer a query."""


class ConvergenceError(TwinError, RuntimeError):
    """An iterative procedure (Furness balancing) did not reach its tolerance."""


class UnsafePlanError(TwinError, ValueError):
    """A signal plan breaks a safety rule; the message names the rule, movements and seconds.

    ``violations`` holds the :class:`twin.signals.safety.Violation` records.
    """

    def __init__(self, message: str, *, violations: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.violations = violations


class CacheEntryError(TwinError, ValueError):
    """A build-cache entry is incomplete, corrupt or of another format; it is rebuilt, not used."""


class UnsupportedValueError(TwinError, TypeError):
    """A value the build cache cannot store exactly; the message says where it is."""
