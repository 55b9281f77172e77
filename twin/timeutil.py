"""Dates, time zones, dusk and dawn, and the night slots of public lighting.

Everything inside the twin is tz-aware UTC; local time (Europe/Paris by default) is only used
at the edges and for rules written on the local clock ("switch off from 1 to 5 am"). Arrays
hand naive UTC ``datetime64[ns]`` to xarray, which records ``attrs["timezone"] = "UTC"``.

Public lighting is switched on at dusk and off at dawn, computed per date from the sun with
:mod:`astral` (NOAA solar position), never taken as a constant. See :data:`SWITCH_DEPRESSION_DEG`
for the sun depression used as the switching point.

Examples
--------
>>> import datetime as dt
>>> night = night_slots(dt.date(2026, 1, 15), lat=47.32, lon=5.04)
>>> night.local_start[1].strftime("%H:%M"), night.slot_minutes
('17:45', 15)
>>> round(float(night.duration_s.sum()) / 3600, 2) == round(night.hours, 2)
True
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from astral import Observer
from astral import sun as _sun

from ._errors import InputValidationError

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "LOCAL_TZ",
    "SWITCH_DEPRESSION_DEG",
    "Night",
    "dark_hours",
    "dark_hours_range",
    "dusk_dawn",
    "night_slots",
    "to_local",
    "to_utc",
    "validate_date",
    "yearly_dark_hours",
]

UTC = dt.UTC
LOCAL_TZ = "Europe/Paris"
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)

SWITCH_DEPRESSION_DEG: float = 3.0
"""Sun depression below the horizon (degrees) at which public lighting switches on and off.

Public lighting in France is switched by twilight (photocell) switches, usually set to a few
tens of lux, or by astronomical clocks with an offset after sunset and before sunrise. Under a
clear sky the horizontal illuminance falls to about 20-40 lx when the sun's centre is about 3°
below the horizon (civil twilight, which ends at 6°, leaves ~3 lx). With 3° the yearly
dusk-to-dawn total at Dijon (lat 47.32, lon 5.04) is about 4,110 h, in line with the ~4,100 h a
year of operation quoted for French public lighting (DESIGN section 4). For comparison,
geometric sunset to sunrise (0.833°, refraction and the sun's radius) gives ~4,260 h and the
end of civil twilight (6°) ~3,870 h. The depression is passed to astral, which treats it as an
apparent angle and adds its refraction correction: the sun's centre is geometrically ~3.11° below
the horizon at the switching instants.
"""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------------------------
# validation and conversions
# --------------------------------------------------------------------------------------------
def validate_date(d: dt.date | str, *, field: str = "date") -> dt.date:
    """Return ``d`` as a :class:`datetime.date`, checking its form and range.

    Parameters
    ----------
    d
        A ``datetime.date`` or a string ``'YYYY-MM-DD'``. A ``datetime`` is refused: it carries
        a time of day and a zone, and which calendar date it means would be ambiguous.
    field
        Name of the field, used in the error message.

    Returns
    -------
    datetime.date
        The date, between 1900-01-01 and 2100-12-31.

    Raises
    ------
    InputValidationError
        If ``d`` is malformed, of the wrong type or outside the supported range.

    Examples
    --------
    >>> validate_date("2026-03-28")
    datetime.date(2026, 3, 28)
    >>> validate_date("2026-02-30", field="evening")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: evening: '2026-02-30' is not a valid date (...)
    """
    if isinstance(d, dt.datetime):
        msg = (
            f"{field}: expected a date, got a datetime {d!r}; pass d.date() (in the zone you mean)"
        )
        raise InputValidationError(msg)
    if isinstance(d, str):
        s = d.strip()
        if not _ISO_DATE.match(s):
            msg = f"{field}: {d!r} is not a date in the form YYYY-MM-DD"
            raise InputValidationError(msg)
        try:
            out = dt.date.fromisoformat(s)
        except ValueError as exc:
            msg = f"{field}: {d!r} is not a valid date ({exc})"
            raise InputValidationError(msg) from None
    elif isinstance(d, dt.date):
        out = d
    else:
        msg = f"{field}: expected a datetime.date or a 'YYYY-MM-DD' string, got {type(d).__name__}"
        raise InputValidationError(msg)
    if not DATE_MIN <= out <= DATE_MAX:
        msg = f"{field}: {out.isoformat()} is outside the supported range {DATE_MIN}..{DATE_MAX}"
        raise InputValidationError(msg)
    return out


def _require_aware(t: dt.datetime, name: str) -> None:
    if not isinstance(t, dt.datetime):
        msg = f"{name}: expected a tz-aware datetime, got {type(t).__name__}"
        raise InputValidationError(msg)
    if t.tzinfo is None or t.tzinfo.utcoffset(t) is None:
        msg = (
            f"{name}: naive datetime {t.isoformat()} refused; the twin needs tz-aware datetimes "
            "(e.g. dt.datetime(..., tzinfo=dt.UTC))"
        )
        raise InputValidationError(msg)


@lru_cache(maxsize=32)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"tz: unknown time zone {tz!r} (use an IANA name such as 'Europe/Paris')"
        raise InputValidationError(msg) from None


def to_utc(t: dt.datetime) -> dt.datetime:
    """Convert a tz-aware datetime to UTC; naive datetimes are refused.

    Examples
    --------
    >>> to_utc(dt.datetime(2026, 7, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))).isoformat()
    '2026-07-01T10:00:00+00:00'
    """
    _require_aware(t, "dt")
    return t.astimezone(UTC)


def to_local(t: dt.datetime, tz: str = LOCAL_TZ) -> dt.datetime:
    """Convert a tz-aware datetime to the local zone ``tz``; naive datetimes are refused.

    Examples
    --------
    >>> to_local(dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)).isoformat()
    '2026-01-01T13:00:00+01:00'
    """
    _require_aware(t, "dt")
    return t.astimezone(_zone(tz))


def _check_site(lat: float, lon: float) -> tuple[float, float]:
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        msg = f"lat/lon: expected numbers, got {lat!r}, {lon!r}"
        raise InputValidationError(msg) from None
    if not (math.isfinite(lat_f) and -90.0 <= lat_f <= 90.0):
        msg = f"lat: {lat!r} is not a latitude in degrees within [-90, 90]"
        raise InputValidationError(msg)
    if not (math.isfinite(lon_f) and -180.0 <= lon_f <= 180.0):
        msg = f"lon: {lon!r} is not a longitude in degrees within [-180, 180]"
        raise InputValidationError(msg)
    return lat_f, lon_f


# --------------------------------------------------------------------------------------------
# dusk and dawn
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _dusk_dawn_cached(
    evening: dt.date, lat: float, lon: float, depression: float
) -> tuple[dt.datetime, dt.datetime]:
    obs = Observer(latitude=lat, longitude=lon)
    # "The evening of a date" is taken in local mean solar time (UTC offset round(lon / 15) h),
    # so that the date means the same evening at any longitude, whatever the civil zone.
    solar_tz = dt.timezone(dt.timedelta(hours=round(lon / 15.0)))
    try:
        on = _sun.dusk(obs, evening, depression=depression, tzinfo=solar_tz)
        off = _sun.dawn(obs, evening + dt.timedelta(days=1), depression=depression, tzinfo=solar_tz)
    except ValueError:
        noon = dt.datetime.combine(evening, dt.time(12), tzinfo=solar_tz)
        elev = _sun.elevation(obs, noon)
        kind = (
            "polar night: the sun stays below the switching point all day"
            if elev < -depression
            else "polar day: the sun does not go below the switching point"
        )
        msg = (
            f"lat: no dusk/dawn at latitude {lat} around {evening.isoformat()} for a sun "
            f"depression of {depression}° ({kind}); public lighting schedules need another rule "
            "there"
        )
        raise InputValidationError(msg) from None
    return on.astimezone(UTC), off.astimezone(UTC)


def dusk_dawn(
    evening: dt.date | str,
    *,
    lat: float,
    lon: float,
    depression_deg: float = SWITCH_DEPRESSION_DEG,
) -> tuple[dt.datetime, dt.datetime]:
    """Return when public lighting switches on (evening) and off (next morning), in UTC.

    Parameters
    ----------
    evening
        The date of the evening (local mean solar date); the night runs into the next morning.
    lat, lon
        Site in degrees (EPSG:4326).
    depression_deg
        Sun depression below the horizon at the switching instants, in degrees (0..18). The
        default :data:`SWITCH_DEPRESSION_DEG` (3°) reproduces the ~4,100 h a year quoted for
        public lighting at Dijon's latitude (DESIGN section 4).

    Returns
    -------
    tuple of datetime
        ``(dusk, dawn)``, tz-aware UTC, ``dusk < dawn``.

    Raises
    ------
    InputValidationError
        Bad date, site or depression, or no dusk/dawn there (polar day or polar night).

    Examples
    --------
    >>> on, off = dusk_dawn(dt.date(2026, 6, 21), lat=47.32, lon=5.04)
    >>> on.tzinfo, on.strftime("%H:%M"), off.strftime("%H:%M")
    (datetime.timezone.utc, '19:57', '03:26')
    """
    evening = validate_date(evening, field="evening")
    lat_f, lon_f = _check_site(lat, lon)
    dep = float(depression_deg)
    if not (math.isfinite(dep) and 0.0 <= dep <= 18.0):
        msg = f"depression_deg: {depression_deg!r} must be within [0, 18] degrees below horizon"
        raise InputValidationError(msg)
    return _dusk_dawn_cached(evening, lat_f, lon_f, dep)


def dark_hours(
    evening: dt.date | str,
    *,
    lat: float,
    lon: float,
    depression_deg: float = SWITCH_DEPRESSION_DEG,
) -> float:
    """Return the hours from dusk on ``evening`` to dawn the next morning.

    Examples
    --------
    >>> round(dark_hours("2026-12-21", lat=47.32, lon=5.04), 2)
    15.01
    """
    on, off = dusk_dawn(evening, lat=lat, lon=lon, depression_deg=depression_deg)
    return (off - on).total_seconds() / 3600.0


def dark_hours_range(
    start: dt.date | str,
    end: dt.date | str,
    *,
    lat: float,
    lon: float,
    depression_deg: float = SWITCH_DEPRESSION_DEG,
) -> np.ndarray:
    """Return the dark hours of each night whose evening is in ``start..end`` (inclusive).

    Returns
    -------
    numpy.ndarray
        Float hours, one per evening, ``(end - start).days + 1`` values.

    Examples
    --------
    >>> h = dark_hours_range("2026-01-01", "2026-01-03", lat=47.32, lon=5.04)
    >>> h.shape, bool(h[0] > h[2])
    ((3,), True)
    """
    d0 = validate_date(start, field="start")
    d1 = validate_date(end, field="end")
    if d1 < d0:
        msg = f"end: {d1} is before start {d0}"
        raise InputValidationError(msg)
    n = (d1 - d0).days + 1
    out = np.empty(n, dtype=float)
    for i in range(n):
        out[i] = dark_hours(
            d0 + dt.timedelta(days=i), lat=lat, lon=lon, depression_deg=depression_deg
        )
    return out


@lru_cache(maxsize=1024)
def _yearly(year: int, lat: float, lon: float, depression: float) -> float:
    return float(
        dark_hours_range(
            dt.date(year, 1, 1),
            dt.date(year, 12, 31),
            lat=lat,
            lon=lon,
            depression_deg=depression,
        ).sum()
    )


def yearly_dark_hours(
    year: int,
    *,
    lat: float,
    lon: float,
    depression_deg: float = SWITCH_DEPRESSION_DEG,
) -> float:
    """Return the sum of dusk-to-dawn hours over the nights starting each day of ``year``.

    Cached per (year, site), so a 13-year trajectory costs ~0.1 s the first time.

    Examples
    --------
    >>> round(yearly_dark_hours(2026, lat=47.32, lon=5.04), -1)
    4110.0
    """
    if isinstance(year, bool) or not isinstance(year, int | np.integer):
        msg = f"year: expected an integer, got {year!r}"
        raise InputValidationError(msg)
    if not DATE_MIN.year <= int(year) <= DATE_MAX.year - 1:
        msg = f"year: {year} is outside the supported range {DATE_MIN.year}..{DATE_MAX.year - 1}"
        raise InputValidationError(msg)
    lat_f, lon_f = _check_site(lat, lon)
    return _yearly(int(year), lat_f, lon_f, float(depression_deg))


# --------------------------------------------------------------------------------------------
# night slots
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Night:
    """The lighting night from dusk to dawn, cut into slots on the local clock grid.

    Slot ``i`` covers ``[start[i], start[i] + duration_s[i])``. Every slot but the first starts
    on the local clock grid (17:15, 17:30, ... for 15-minute slots) and every slot but the last
    ends on it; the first slot starts at dusk and the last ends at dawn (clipped), so the
    durations sum exactly to ``dawn - dusk`` and consecutive slots touch. On a DST night the
    grid follows the local clock: the spring night has no 02:xx local slot and is one hour
    shorter on the clock, the autumn night shows 02:xx twice (``local_start[i].fold`` tells
    them apart), and UTC instants are never duplicated or skipped.

    Attributes
    ----------
    evening
        Date of the evening.
    dusk, dawn
        Switch-on and switch-off instants, tz-aware UTC.
    slot_minutes
        Nominal slot length (a divisor of 60).
    start
        Slot starts, naive UTC ``datetime64[ns]``.
    duration_s
        Slot durations in seconds (float).
    local_start
        Slot starts as tz-aware datetimes in ``tz``.
    hour_local
        Local clock hour of each slot start as a float (17.25 is 17:15), for rules written on
        the local clock.
    tz
        IANA zone of the local clock.
    """

    evening: dt.date
    dusk: dt.datetime
    dawn: dt.datetime
    slot_minutes: int
    start: np.ndarray = field(repr=False)
    duration_s: np.ndarray = field(repr=False)
    local_start: list[dt.datetime] = field(repr=False)
    hour_local: np.ndarray = field(repr=False)
    tz: str = LOCAL_TZ

    @property
    def end(self) -> np.ndarray:
        """Slot ends, naive UTC ``datetime64[ns]``."""
        out: np.ndarray = self.start + (self.duration_s * 1e9).round().astype("timedelta64[ns]")
        return out

    @property
    def hours(self) -> float:
        """Length of the night in hours."""
        return (self.dawn - self.dusk).total_seconds() / 3600.0

    def __len__(self) -> int:
        return int(self.start.size)


def night_slots(
    evening: dt.date | str,
    *,
    lat: float,
    lon: float,
    slot_minutes: int = 15,
    tz: str = LOCAL_TZ,
    depression_deg: float = SWITCH_DEPRESSION_DEG,
) -> Night:
    """Cut the night starting on ``evening`` into slots aligned on the local clock.

    Parameters
    ----------
    evening
        Date of the evening.
    lat, lon
        Site in degrees.
    slot_minutes
        Slot length in minutes; must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60).
    tz
        Local zone of the clock grid and of ``local_start``/``hour_local``. The grid is
        aligned in local time; zones whose UTC offset is not a multiple of ``slot_minutes``
        (e.g. +05:45) are handled, but a DST shift that is not a multiple of it is not.
    depression_deg
        Sun depression at switching, see :data:`SWITCH_DEPRESSION_DEG`.

    Returns
    -------
    Night

    Examples
    --------
    Spring forward: the evening of 2026-03-28 runs into a 23-hour day.

    >>> night = night_slots("2026-03-28", lat=47.32, lon=5.04, slot_minutes=30)
    >>> [t.strftime("%H:%M") for t in night.local_start[13:16]]
    ['01:30', '03:00', '03:30']
    >>> float(night.duration_s.sum()) == (night.dawn - night.dusk).total_seconds()
    True
    """
    if isinstance(slot_minutes, bool) or not isinstance(slot_minutes, int | np.integer):
        msg = f"slot_minutes: expected an integer divisor of 60, got {slot_minutes!r}"
        raise InputValidationError(msg)
    if slot_minutes <= 0 or 60 % int(slot_minutes) != 0:
        msg = f"slot_minutes: {slot_minutes} does not divide an hour (use 1..60, a divisor of 60)"
        raise InputValidationError(msg)
    slot_minutes = int(slot_minutes)
    zone = _zone(tz)
    evening = validate_date(evening, field="evening")
    on, off = dusk_dawn(evening, lat=lat, lon=lon, depression_deg=depression_deg)

    step_ns = slot_minutes * 60 * 1_000_000_000
    dusk64 = np.datetime64(on.replace(tzinfo=None), "ns")
    dawn64 = np.datetime64(off.replace(tzinfo=None), "ns")
    # local grid = UTC grid shifted by the local offset modulo the slot (constant over the
    # night for zones whose DST shift is a multiple of the slot, e.g. 1 h in Europe)
    off_ns = int(on.astimezone(zone).utcoffset().total_seconds()) * 1_000_000_000  # type: ignore[union-attr]
    shift = off_ns % step_ns
    d_ns = int(dusk64.astype(np.int64))
    first_grid = (d_ns + shift) // step_ns * step_ns - shift
    grid = np.arange(first_grid, int(dawn64.astype(np.int64)), step_ns, dtype=np.int64)
    starts = np.maximum(grid, d_ns)
    ends = np.minimum(grid + step_ns, int(dawn64.astype(np.int64)))
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    start = starts.astype("datetime64[ns]")
    duration_s = (ends - starts).astype(float) / 1e9

    local_start = [
        (_EPOCH + dt.timedelta(microseconds=int(s) // 1000)).astimezone(zone) for s in starts
    ]
    hour_local = np.array(
        [t.hour + t.minute / 60.0 + (t.second + t.microsecond / 1e6) / 3600.0 for t in local_start],
        dtype=float,
    )
    return Night(
        evening=evening,
        dusk=on,
        dawn=off,
        slot_minutes=slot_minutes,
        start=start,
        duration_s=duration_s,
        local_start=local_start,
        hour_local=hour_local,
        tz=tz,
    )
