"""City definitions, kept as data in ``twin/cities/*.toml``.

A definition gives a city's name and boundary, where its data lives (relative to a data root:
``TWIN_DATA`` first, then the repo's ``data/``), and its defaults. Any other extract can be
loaded with ``--osm FILE`` (``.osm``, ``.osm.pbf`` or ``.graphml``) through :func:`from_file`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import DataMissingError, InputValidationError, UnknownCityError
from .settings import get_settings

__all__ = ["City", "available_cities", "from_file", "get_city", "resolve_data_file"]

_CITY_DIR = Path(__file__).resolve().parent / "cities"
OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf", ".graphml", ".osm.xml", ".net.xml")


@dataclasses.dataclass(frozen=True)
class City:
    """A city definition.

    Attributes
    ----------
    name : str
        Short name used on the command line (``dijon``).
    title : str
        Human name.
    timezone : str
        IANA time zone shown at the edges (CLI, plots, web).
    centre : tuple[float, float]
        (lon, lat) in EPSG:4326, used for sun times.
    attribution, licence : str
        What must be shown with anything derived from the data.
    source : Mapping[str, Any]
        Where the data lives: ``kind`` (``osm`` or ``municipal``) and the file names.
    boundary : Mapping[str, Any]
        ``kind`` and ``communes`` (INSEE code, name, population).
    defaults : Mapping[str, Any]
        Luminaire catalogue, depots, ...
    expected : Mapping[str, int]
        Public figures (e.g. Dijon's 34,000 light points), shown beside what the twin holds.
    path : Path | None
        The TOML file it was read from, or the extract for ``--osm FILE`` cities.
    """

    name: str
    title: str
    timezone: str
    centre: tuple[float, float]
    attribution: str
    licence: str
    source: Mapping[str, Any]
    boundary: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    expected: Mapping[str, int] = dataclasses.field(default_factory=dict)
    path: Path | None = None

    @property
    def population(self) -> int:
        """Total population of the communes in the definition (0 when unknown)."""
        return int(sum(c.get("population", 0) for c in self.boundary.get("communes", [])))

    @property
    def fetch_hint(self) -> str:
        """How a user gets this city's data, for error messages."""
        if self.source.get("fetch"):
            return (
                f"run `twin data fetch {self.source['fetch']}` (needs internet); offline, try "
                "`--city montpellier` with TWIN_DATA=../shared/data"
            )
        return "set TWIN_DATA to the folder that holds the shared data sets (e.g. ../shared/data)"


def available_cities() -> list[str]:
    """Names of the shipped city definitions.

    >>> available_cities()
    ['bondy', 'dijon', 'montpellier', 'paris-trocadero', 'saint-germain-en-laye']
    """
    return sorted(p.stem for p in _CITY_DIR.glob("*.toml"))


def _from_mapping(raw: Mapping[str, Any], *, path: Path | None) -> City:
    where = path.name if path else "city definition"
    for key in ("name", "timezone", "source"):
        if key not in raw:
            msg = f"{where}: missing required field {key!r}"
            raise InputValidationError(msg)
    centre = raw.get("centre", [0.0, 0.0])
    if len(centre) != 2:
        msg = f"{where}: field 'centre' must be [lon, lat], got {centre!r}"
        raise InputValidationError(msg)
    return City(
        name=str(raw["name"]),
        title=str(raw.get("title", raw["name"])),
        timezone=str(raw["timezone"]),
        centre=(float(centre[0]), float(centre[1])),
        attribution=str(raw.get("attribution", "")),
        licence=str(raw.get("licence", "")),
        source=dict(raw["source"]),
        boundary=dict(raw.get("boundary", {})),
        defaults=dict(raw.get("defaults", {})),
        expected=dict(raw.get("expected", {})),
        path=path,
    )


def get_city(name: str) -> City:
    """Return the definition of a shipped city.

    >>> get_city("montpellier").source["kind"]
    'municipal'
    >>> get_city("lyon")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    twin._errors.UnknownCityError: unknown city 'lyon'; available: bondy, ... (or pass --osm FILE)
    """
    path = _CITY_DIR / f"{name}.toml"
    if not path.is_file():
        msg = (
            f"unknown city {name!r}; available: {', '.join(available_cities())} "
            "(or pass --osm FILE)"
        )
        raise UnknownCityError(msg)
    with path.open("rb") as fh:
        return _from_mapping(tomllib.load(fh), path=path)


def from_file(path: str | Path, *, name: str | None = None) -> City:
    """Make a city definition for any extract.

    OpenStreetMap (``.osm``, ``.osm.pbf``, ``.graphml``) or a SUMO network (``.net.xml``).
    """
    p = Path(path).expanduser().resolve()
    if not p.name.endswith(OSM_SUFFIXES):
        msg = f"--osm: {p.name!r} is not an OSM extract (expected one of {', '.join(OSM_SUFFIXES)})"
        raise InputValidationError(msg)
    if not p.is_file():
        msg = f"--osm: file not found: {p}"
        raise DataMissingError(msg)
    key = "graph" if p.suffix == ".graphml" else "osm"
    stem = p.name.split(".")[0]
    if p.name.endswith(".net.xml"):  # a SUMO network (twin import sumo)
        return City(
            name=name or stem,
            title=f"{stem} (SUMO network)",
            timezone="Europe/Paris",
            centre=(float("nan"), float("nan")),
            attribution="SUMO network",
            licence="",
            source={"kind": "sumo", "net": str(p)},
            path=p,
        )
    return City(
        name=name or stem,
        title=stem,
        timezone="Europe/Paris",
        centre=(float("nan"), float("nan")),  # filled in from the data when built
        attribution="© OpenStreetMap contributors, ODbL 1.0",
        licence="ODbL-1.0",
        source={"kind": "osm", key: str(p)},
        path=p,
    )


def resolve_data_file(city: City, relative: str) -> Path:
    """Find one of a city's data files in the data roots (``TWIN_DATA``, then repo ``data/``).

    Raises
    ------
    DataMissingError
        When the file is in none of the roots; the message says how to get it.
    """
    rel = Path(relative)
    if rel.is_absolute():
        if rel.is_file():
            return rel
        searched = [rel]
    else:
        searched = [root / rel for root in get_settings().data_roots]
        for cand in searched:
            if cand.is_file():
                return cand
    where = ", ".join(str(s) for s in searched)
    msg = f"{city.name}: data file {relative!r} not found (looked in: {where}); {city.fetch_hint}"
    raise DataMissingError(msg)
