"""City definitions, kept as data in ``twin/cities/*.toml``.

A definition gives a city's name and boundary, where its data lives (relative to a data root:
``TWIN_DATA`` first, then the repo's ``data/``), and its defaults. Any other extract can be
loaded with ``--osm FILE`` (``.osm``, ``.osm.pbf`` or ``.graphml``) through :func:`from_file`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._errors import DataMissingError, InputValidationError, UnknownCityError
from .settings import get_settings

__all__ = [
    "City",
    "Contract",
    "REFERENCE_CONTRACT",
    "available_cities",
    "from_file",
    "get_city",
    "resolve_data_file",
]

_CITY_DIR = Path(__file__).resolve().parent / "cities"
OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf", ".graphml", ".osm.xml", ".net.xml")


@dataclasses.dataclass(frozen=True)
class Contract:
    """A city's public-lighting energy contract: what its savings are judged against.

    Attributes
    ----------
    target_pct : float
        Saving committed to, in percent of the baseline's annual energy.
    start, end : datetime.date
        Start of the contract, and the date by which the works are done (the final LED share
        holds from then on).
    led_share_end : float
        Share of light points renewed to LED at ``end``; the rest keeps the baseline technology.
    baseline : str
        The stock the saving is counted against (``"hps"``: high-pressure sodium).
    label : str
        Where the figures come from, shown in reports and plots.
    """

    target_pct: float = 65.0
    start: dt.date = dt.date(2018, 2, 1)
    end: dt.date = dt.date(2030, 1, 1)
    led_share_end: float = 0.93
    baseline: str = "hps"
    label: str = "Dijon Métropole public-lighting contract (2018-2030), used as the reference"

    def __post_init__(self) -> None:
        if not 0.0 < self.target_pct < 100.0:
            msg = f"contract.target_pct: {self.target_pct} is not a percentage in (0, 100)"
            raise InputValidationError(msg)
        if not 0.0 <= self.led_share_end <= 1.0:
            msg = f"contract.led_share_end: {self.led_share_end} is not a share in [0, 1]"
            raise InputValidationError(msg)
        if self.end <= self.start:
            msg = f"contract.end: {self.end} is not after contract.start {self.start}"
            raise InputValidationError(msg)

    @property
    def years(self) -> range:
        """Calendar years the contract covers, first to last (``range(2018, 2031)`` for Dijon).

        >>> Contract().years
        range(2018, 2031)
        """
        return range(self.start.year, self.end.year + 1)


#: The contract a city without one of its own is judged against: Dijon Métropole's (65% over
#: 2018-2030, 93% LED at the end), named as such in every report.
REFERENCE_CONTRACT = Contract()


def _contract(raw: Mapping[str, Any], where: str) -> Contract:
    known = {f.name for f in dataclasses.fields(Contract)}
    unknown = sorted(set(raw) - known)
    if unknown:
        msg = f"{where}: unknown field(s) {unknown} in [contract]; valid: {sorted(known)}"
        raise InputValidationError(msg)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("start", "end"):
            if not isinstance(value, dt.date):
                try:
                    value = dt.date.fromisoformat(str(value))
                except ValueError:
                    msg = f"{where}: contract.{key}: {value!r} is not a date (YYYY-MM-DD)"
                    raise InputValidationError(msg) from None
        elif key in ("target_pct", "led_share_end"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                msg = f"{where}: contract.{key}: {value!r} is not a number"
                raise InputValidationError(msg)
            value = float(value)
        else:
            value = str(value)
        values[key] = value
    try:
        return Contract(**values)
    except InputValidationError as exc:
        msg = f"{where}: {exc}"
        raise InputValidationError(msg) from None


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
        IANA time zone of local hours (nights, slots, the CLI, plots, web). Empty for an extract
        given as a file: the loaded twin's ``city`` then carries the zone where the data lies.
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
    contract : Contract
        The energy contract its lighting is judged against (``[contract]`` in the TOML; a city
        without one is judged against :data:`REFERENCE_CONTRACT`, and says so).
    crs : str | None
        Working CRS for distances and areas (``EPSG:2154`` in metropolitan France, the local
        UTM zone elsewhere); ``None``: chosen from the data's position when it is built.
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
    contract: Contract = REFERENCE_CONTRACT
    crs: str | None = None
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
    try:
        ZoneInfo(str(raw["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"{where}: timezone {raw['timezone']!r} is not an IANA time zone (e.g. Europe/Paris)"
        raise InputValidationError(msg) from None
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
        contract=_contract(raw.get("contract", {}), where),
        crs=str(raw["crs"]) if raw.get("crs") else None,
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
        timezone="",  # the zone where the data lies, found when it is loaded (Twin.city)
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
