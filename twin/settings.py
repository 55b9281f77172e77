"""One typed, frozen configuration object for the whole toolkit.

Every default lives here, documented once. Each field can be overridden from the environment
with ``TWIN_<FIELD>`` (upper case), e.g. ``TWIN_DATA=../shared/data``; notebooks change them
for a block of code with :func:`set_options`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import InputValidationError

__all__ = ["Settings", "get_settings", "set_options", "REPO_ROOT"]

#: The checkout this package was imported from (the repo's ``data/`` is looked in second).
REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "metropolis-twin"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Toolkit settings.

    Attributes
    ----------
    data : Path | None
        Folder searched first for city data (env ``TWIN_DATA``). ``None``: only the repo's
        ``data/`` folder is searched.
    cache : Path
        Where built twins are cached (env ``TWIN_CACHE``), keyed by input checksum and code
        version. Default ``$XDG_CACHE_HOME/metropolis-twin``.
    use_cache : bool
        Read and write the build cache (env ``TWIN_USE_CACHE``).
    seed : int
        Default seed for derived assets (light placement, sensors) when none is given.
    progress : bool
        Show progress bars on long runs (env ``TWIN_PROGRESS``).
    overpass_url : str
        Overpass API endpoint used by ``twin data fetch`` (env ``TWIN_OVERPASS_URL``).
    slot_minutes : int
        Length of a time slot for nightly plans, in minutes; must divide an hour.
    """

    data: Path | None = None
    cache: Path = dataclasses.field(default_factory=_default_cache)
    use_cache: bool = True
    seed: int = 2018
    progress: bool = True
    overpass_url: str = "https://overpass-api.de/api"
    slot_minutes: int = 15

    def __post_init__(self) -> None:
        if self.slot_minutes <= 0 or 60 % self.slot_minutes:
            msg = f"slot_minutes: {self.slot_minutes} does not divide an hour (try 5, 10, 15, 30)"
            raise InputValidationError(msg)

    @property
    def data_roots(self) -> list[Path]:
        """Folders searched for city data, in order: ``TWIN_DATA``, then the repo's ``data/``."""
        roots = [self.data] if self.data is not None else []
        return [*roots, REPO_ROOT / "data"]


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, value: Any, *, where: str | None = None) -> Any:
    """Check and convert one setting, from the environment (text) or from Python.

    ``where`` names the value in messages: ``TWIN_<NAME>`` by default (the environment), or
    ``set_options(name=...)``.

    >>> _coerce("seed", " 7 "), _coerce("progress", "off"), _coerce("data", "")
    (7, False, None)
    >>> _coerce("seed", "seven")
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: TWIN_SEED: 'seven' is not an integer
    """
    where = where or f"TWIN_{name.upper()}"
    kind = str(_FIELDS[name].type)
    if "Path" in kind:
        if value is None or (isinstance(value, str) and not value.strip()):
            if "None" in kind:
                return None
            msg = f"{where}: a folder is needed, got {value!r}"
            raise InputValidationError(msg)
        if isinstance(value, str | os.PathLike):
            return Path(value).expanduser()
        msg = f"{where}: {value!r} is not a path"
        raise InputValidationError(msg)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        msg = f"{where}: {value!r} is not a boolean (use 1/0, true/false)"
        raise InputValidationError(msg)
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        msg = f"{where}: {value!r} is not an integer"
        raise InputValidationError(msg)
    if kind == "str" and not isinstance(value, str):
        msg = f"{where}: {value!r} is not text"
        raise InputValidationError(msg)
    return value


def _from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        raw = os.environ.get(f"TWIN_{name.upper()}")
        if raw is not None:
            out[name] = _coerce(name, raw)
    return out


_overrides: list[dict[str, Any]] = []


def get_settings() -> Settings:
    """Return the settings in force: defaults, then ``TWIN_*`` env vars, then :func:`set_options`.

    >>> get_settings().slot_minutes
    15
    """
    values = _from_env()
    for layer in _overrides:
        values.update(layer)
    return Settings(**values)


@contextlib.contextmanager
def set_options(**options: Any) -> Iterator[Settings]:
    """Override settings inside a ``with`` block (validated; unknown names are refused).

    >>> with set_options(slot_minutes=30) as s:
    ...     s.slot_minutes
    30
    >>> set_options(colour="red").__enter__()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: set_options: unknown option 'colour'; valid: cache, data, ...
    """
    for name in options:
        if name not in _FIELDS:
            valid = ", ".join(sorted(_FIELDS))
            msg = f"set_options: unknown option {name!r}; valid: {valid}"
            raise InputValidationError(msg)
    layer = {k: _coerce(k, v, where=f"set_options({k}=...)") for k, v in options.items()}
    _overrides.append(layer)
    try:
        yield get_settings()
    finally:
        # by identity: an equal layer of an enclosing block must stay
        del _overrides[next(i for i, x in enumerate(_overrides) if x is layer)]
