"""Time of day: hourly profiles of car and walking trips per day type, on the local clock.

The weekday car profile peaks at about 10% of the daily traffic in the morning peak hour and
10.5% in the evening one: Montpellier's own traffic counts (3,314 of them) give a median
PHJM/TJM ratio of 0.110 and PHJS/TJM of 0.121. Saturday traffic rises later, peaks at midday and
in the late afternoon and keeps more traffic late in the evening; Sunday is low with an afternoon
peak. Pedestrian profiles follow the shape of French city-centre pedestrian counters (school run,
lunchtime peak, late-afternoon shopping peak).

The local clock is the city's time zone (:attr:`twin.cities.City.timezone`), always passed in.

Examples
--------
>>> p = profile("weekday", mode="car")
>>> p.shape, round(float(p.sum()), 12)
((24,), 1.0)
>>> int(np.argmax(profile("weekday", mode="car")[:12]))  # morning peak hour
8
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from twin._errors import InputValidationError

__all__ = [
    "DAY_FACTOR",
    "DAY_TYPES",
    "HOURLY_PROFILES",
    "MODES",
    "DayType",
    "day_type_of",
    "local_slots",
    "profile",
]

log = logging.getLogger(__name__)


DayType = Literal["weekday", "saturday", "sunday"]
DAY_TYPES: tuple[str, ...] = ("weekday", "saturday", "sunday")
MODES: tuple[str, ...] = ("car", "walk")


def _norm(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    normed: np.ndarray = a / a.sum()
    return normed


HOURLY_PROFILES: Mapping[str, Mapping[str, np.ndarray]] = {
    "car": {
        # weekday: commuter peaks 8-9 h (~10%) and 17-18 h (~10.5%), see the module docstring
        "weekday": _norm([0.7, 0.4, 0.3, 0.3, 0.4, 1.0, 3.0, 7.5, 10.0, 6.5, 5.0, 5.3,
                          5.8, 5.6, 5.3, 5.6, 6.8, 10.5, 8.8, 5.3, 3.0, 2.2, 1.7, 1.2]),
        # saturday: late start, midday and late-afternoon shopping peaks, busier evening
        "saturday": _norm([1.4, 0.9, 0.6, 0.4, 0.4, 0.6, 1.2, 2.4, 4.0, 5.6, 7.0, 7.6,
                           7.0, 6.2, 6.4, 7.0, 7.4, 7.6, 7.2, 5.6, 3.9, 3.0, 2.6, 2.0]),
        # sunday: low morning, late-morning and late-afternoon (return) peaks
        "sunday": _norm([2.0, 1.4, 1.0, 0.7, 0.5, 0.5, 0.8, 1.4, 2.4, 4.0, 5.6, 6.6,
                         6.6, 5.6, 5.4, 6.2, 7.0, 7.4, 7.4, 6.4, 5.0, 3.4, 2.4, 1.8]),
    },
    "walk": {
        # weekday: school run at 8 h, lunchtime peak, after-school and after-work peaks
        "weekday": _norm([0.4, 0.2, 0.1, 0.1, 0.1, 0.3, 1.2, 4.0, 6.8, 5.0, 5.2, 7.0,
                          9.0, 7.6, 6.0, 6.2, 7.4, 8.8, 8.4, 5.6, 3.6, 2.6, 1.8, 1.0]),
        "saturday": _norm([0.8, 0.5, 0.3, 0.2, 0.1, 0.2, 0.5, 1.4, 3.0, 5.4, 7.6, 8.6,
                           8.0, 6.6, 7.0, 8.0, 8.6, 8.4, 7.4, 5.2, 3.6, 2.8, 2.2, 1.6]),
        "sunday": _norm([1.0, 0.6, 0.4, 0.2, 0.1, 0.2, 0.4, 1.0, 2.4, 4.6, 7.0, 8.4,
                         8.2, 6.6, 6.8, 8.2, 8.8, 8.4, 7.2, 5.4, 3.8, 2.6, 1.8, 1.2]),
    },
}  # fmt: skip
"""Fraction of the day's trips starting in each local hour, per mode and day type (sums to 1)."""

DAY_FACTOR: Mapping[str, Mapping[str, float]] = {
    "car": {"weekday": 1.0, "saturday": 0.85, "sunday": 0.65},
    "walk": {"weekday": 1.0, "saturday": 1.05, "sunday": 0.6},
}
"""Daily volume of a day type relative to a weekday (French urban counts: Saturday traffic
-10 to -20%, Sunday -30 to -40%; pedestrian counts in centres are highest on Saturdays)."""

#: Share of the hour's car trips going from home-end zones to activity-end zones (the rest are
#: returns): mornings outbound, evenings inbound, otherwise balanced.
_OUTBOUND = np.array([0.5] * 6 + [0.75, 0.8, 0.75, 0.6] + [0.5] * 6 + [0.35, 0.3, 0.35] + [0.5] * 5)


def profile(day_type: str, *, mode: str = "car", slot_minutes: int = 60) -> np.ndarray:
    """Fractions of a day's trips per local-clock slot (they sum to 1).

    Parameters
    ----------
    day_type : {"weekday", "saturday", "sunday"}
    mode : {"car", "walk"}
    slot_minutes : int
        Slot length dividing 60 (60 gives 24 hourly fractions, 15 gives 96).

    Examples
    --------
    >>> profile("saturday", mode="walk", slot_minutes=15).shape
    (96,)
    """
    _check_day_type(day_type)
    if mode not in MODES:
        msg = f"mode: {mode!r} is not one of {MODES}"
        raise InputValidationError(msg)
    per_hour = _slots_per_hour(slot_minutes)
    hourly = np.asarray(HOURLY_PROFILES[mode][day_type], dtype=float)
    return np.repeat(hourly / per_hour, per_hour)


def _slots_per_hour(slot_minutes: int) -> int:
    if not isinstance(slot_minutes, int | np.integer) or slot_minutes <= 0 or 60 % slot_minutes:
        msg = f"slot_minutes: {slot_minutes!r} must be a positive divisor of 60 (e.g. 15)"
        raise InputValidationError(msg)
    return 60 // int(slot_minutes)


def _check_day_type(day_type: str) -> None:
    if day_type not in DAY_TYPES:
        msg = f"day_type: {day_type!r} is not one of {DAY_TYPES}"
        raise InputValidationError(msg)


def day_type_of(day: dt.date) -> str:
    """Day type of a calendar date (public holidays are not detected: give ``day_type``).

    >>> day_type_of(dt.date(2026, 3, 28)), day_type_of(dt.date(2026, 3, 30))
    ('saturday', 'weekday')
    """
    wd = day.weekday()
    return "saturday" if wd == 5 else "sunday" if wd == 6 else "weekday"


def local_slots(day: dt.date, *, tz: str, slot_minutes: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Slots of one local calendar day: (naive-UTC start times, local clock hour of each).

    A DST day has 92 or 100 quarter-hour slots.

    Examples
    --------
    >>> t, h = local_slots(dt.date(2026, 3, 29), tz="Europe/Paris", slot_minutes=60)  # DST
    >>> len(t), h[:4].tolist(), str(t[0])
    (23, [0, 1, 3, 4], '2026-03-28T23:00:00.000000000')
    """
    _slots_per_hour(slot_minutes)
    zone = ZoneInfo(tz)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(dt.UTC)
    nxt = day + dt.timedelta(days=1)
    end = dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone).astimezone(dt.UTC)
    n = int((end - start).total_seconds() // (slot_minutes * 60))
    t0 = np.datetime64(start.replace(tzinfo=None), "ns")
    times = t0 + np.arange(n) * np.timedelta64(slot_minutes * 60, "s")
    hours = _local_hours(times, tz)
    return times, hours


def _local_hours(times: np.ndarray, tz: str) -> np.ndarray:
    idx = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).tz_localize("UTC")
    return np.asarray(idx.tz_convert(tz).hour, dtype=int)


def _local_parts(times: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Local hour and day type index (0 weekday, 1 saturday, 2 sunday) of naive-UTC times."""
    arr = np.asarray(times)
    if not np.issubdtype(arr.dtype, np.datetime64):
        msg = f"times: expected naive-UTC datetime64 values, got dtype {arr.dtype}"
        raise InputValidationError(msg)
    idx = pd.DatetimeIndex(arr.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    wd = np.asarray(idx.day_of_week)
    kind = np.where(wd == 5, 1, np.where(wd == 6, 2, 0))
    return np.asarray(idx.hour, dtype=int), kind
