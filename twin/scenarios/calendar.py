"""The forecast demand of any night of the year: weekday, weekend, public holidays and events.

One forecast serves the nightly plan, the notebook and the year of nights (``twin energy
--year``): :class:`CalendarDemand` gives footfall and traffic per segment at any instant from
the road-class and points-of-interest profiles of :class:`twin.scenarios.demand.ProfileDemand`,
with the day type taken from the calendar:

- Monday-Friday are ``weekday``, Saturday ``saturday``, Sunday ``sunday``;
- a public holiday of the country (the ``holidays`` package, which follows each country's law:
  in France the eleven public holidays of the Code du travail, art. L3133-1, plus Alsace-Moselle
  where the subdivision is given) takes the ``sunday`` profile, as traffic counts show
  (Cerema's day-type classes for French urban counts group public holidays with Sundays);
- an :class:`Occasion` (a festival night, a match, a market) multiplies the footfall and traffic
  of the segments it concerns during its hours.

Times are naive-UTC ``datetime64`` (DESIGN section 5); the day type of a time is that of its
local calendar date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin._errors import InputValidationError, UnknownAssetError
from twin.scenarios.profiles import DAY_FACTOR, DAY_TYPES, HOURLY_PROFILES, DayType
from twin.scenarios.providers import ProfileDemand
from twin.timeutil import LOCAL_TZ

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["CalendarDemand", "DayType", "Occasion", "day_type", "public_holidays"]


@lru_cache(maxsize=64)
def _holidays(country: str, subdiv: str | None, year: int) -> frozenset[dt.date]:
    import holidays

    try:
        cal = holidays.country_holidays(country, subdiv=subdiv, years=year)
    except NotImplementedError as exc:
        msg = f"country: no public-holiday calendar for {country!r} ({exc})"
        raise InputValidationError(msg) from None
    return frozenset(cal.keys())


def public_holidays(year: int, *, country: str = "FR", subdiv: str | None = None) -> list[dt.date]:
    """Return the public holidays of a country in a year, sorted.

    Examples
    --------
    >>> [d.isoformat() for d in public_holidays(2026)][:3]
    ['2026-01-01', '2026-04-06', '2026-05-01']
    >>> len(public_holidays(2026))
    11
    """
    return sorted(_holidays(country, subdiv, int(year)))


def day_type(day: dt.date, *, country: str = "FR", subdiv: str | None = None) -> DayType:
    """Return the demand day type of a local calendar date; public holidays count as Sundays.

    Examples
    --------
    >>> day_type(dt.date(2026, 7, 14)), day_type(dt.date(2026, 7, 15)), day_type(dt.date(2026, 7, 18))
    ('sunday', 'weekday', 'saturday')
    """  # noqa: E501
    if day in _holidays(country, subdiv, day.year):
        return "sunday"
    wd = day.weekday()
    return "saturday" if wd == 5 else "sunday" if wd == 6 else "weekday"


@dataclasses.dataclass(frozen=True)
class Occasion:
    """A known occasion that changes demand on some segments for some hours.

    Attributes
    ----------
    start, end
        Tz-aware instants; ``end`` after ``start``.
    segments
        Segment ids concerned (empty: every segment).
    footfall_factor, traffic_factor
        Multipliers (>= 0) of footfall and traffic while it lasts.
    name
        A label for reports.
    """

    start: dt.datetime
    end: dt.datetime
    segments: tuple[str, ...] = ()
    footfall_factor: float = 1.0
    traffic_factor: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        for field in ("start", "end"):
            t = getattr(self, field)
            if not isinstance(t, dt.datetime) or t.tzinfo is None:
                msg = f"Occasion.{field}: {t!r} is not a tz-aware datetime"
                raise InputValidationError(msg)
        if self.end <= self.start:
            msg = f"Occasion.end: {self.end.isoformat()} is not after start"
            raise InputValidationError(msg)
        for field in ("footfall_factor", "traffic_factor"):
            v = float(getattr(self, field))
            if not (np.isfinite(v) and v >= 0):
                msg = f"Occasion.{field}: {v!r} must be finite and >= 0"
                raise InputValidationError(msg)
        object.__setattr__(self, "segments", tuple(str(s) for s in self.segments))

    def active(self, times: np.ndarray) -> np.ndarray:
        """Which naive-UTC ``times`` fall within the occasion."""
        a = np.datetime64(self.start.astimezone(dt.UTC).replace(tzinfo=None), "ns")
        b = np.datetime64(self.end.astimezone(dt.UTC).replace(tzinfo=None), "ns")
        t = np.asarray(times, dtype="datetime64[ns]")
        return np.asarray((t >= a) & (t < b), dtype=bool)


class CalendarDemand:
    """Footfall and traffic per segment at any time, by road-class profiles and the calendar.

    Implements the :class:`twin.scenarios.demand.Demand` protocol the dimming optimiser reads.

    Parameters
    ----------
    daily_footfall, daily_traffic
        Per segment id: pedestrians per day and vehicles per day on a weekday.
    timezone
        Local clock of the profiles and of the calendar.
    country, subdiv
        Public holidays (``holidays.country_holidays`` codes).
    occasions
        Known occasions.
    """

    def __init__(
        self,
        daily_footfall: pd.Series,
        daily_traffic: pd.Series,
        *,
        timezone: str = LOCAL_TZ,
        country: str = "FR",
        subdiv: str | None = None,
        occasions: Sequence[Occasion] = (),
    ) -> None:
        base = ProfileDemand(daily_footfall, daily_traffic, timezone=timezone)
        self.daily_footfall = base.daily_footfall
        self.daily_traffic = base.daily_traffic
        self.timezone = timezone
        self.country = country
        self.subdiv = subdiv
        _holidays(country, subdiv, 2000)  # an unknown country fails here, naming the field
        for i, oc in enumerate(occasions):
            if not isinstance(oc, Occasion):
                msg = f"occasions[{i}]: expected an Occasion, got {type(oc).__name__}"
                raise InputValidationError(msg)
        self.occasions = tuple(occasions)

    @classmethod
    def from_twin(
        cls,
        tw: Twin,
        *,
        country: str = "FR",
        subdiv: str | None = None,
        occasions: Sequence[Occasion] = (),
    ) -> CalendarDemand:
        """The calendar forecast of every segment of a twin (profiles of its road classes)."""
        p = ProfileDemand.from_twin(tw)
        return cls(
            p.daily_footfall,
            p.daily_traffic,
            timezone=p.timezone,
            country=country,
            subdiv=subdiv,
            occasions=occasions,
        )

    def day_kind(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local hour and day-type index (0 weekday, 1 saturday, 2 sunday/holiday) of times."""
        arr = np.asarray(times)
        if not np.issubdtype(arr.dtype, np.datetime64):
            msg = f"times: expected naive-UTC datetime64 values, got dtype {arr.dtype}"
            raise InputValidationError(msg)
        idx = pd.DatetimeIndex(arr.astype("datetime64[ns]")).tz_localize("UTC")
        local = idx.tz_convert(self.timezone)
        dates = np.asarray(local.date)
        kinds = {
            d: DAY_TYPES.index(day_type(d, country=self.country, subdiv=self.subdiv))
            for d in set(dates)
        }
        kind = np.array([kinds[d] for d in dates], dtype=int)
        return np.asarray(local.hour, dtype=int), kind

    def _rates(
        self, daily: pd.Series, mode: str, segments: Sequence[str], times: np.ndarray
    ) -> np.ndarray:
        idx = daily.index.get_indexer(pd.Index([str(s) for s in segments]))
        if (idx < 0).any():
            missing = [s for s, i in zip(segments, idx, strict=True) if i < 0]
            msg = f"segments: unknown segment id {missing[0]!r} ({len(missing)} unknown)"
            raise UnknownAssetError(msg)
        hours, kind = self.day_kind(times)
        table = np.stack([HOURLY_PROFILES[mode][d] * DAY_FACTOR[mode][d] for d in DAY_TYPES])
        rate = daily.to_numpy(float)[idx][:, None] * table[kind, hours][None, :]
        if self.occasions:
            seg_ids = np.array([str(s) for s in segments])
            for oc in self.occasions:
                on = oc.active(times)
                if not on.any():
                    continue
                rows = np.isin(seg_ids, oc.segments) if oc.segments else np.ones(len(seg_ids), bool)
                f = oc.footfall_factor if mode == "walk" else oc.traffic_factor
                rate[np.ix_(rows, on)] *= f
        return np.asarray(rate)

    def footfall(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour, shape ``(len(segments), len(times))``."""
        return self._rates(self.daily_footfall, "walk", segments, times)

    def traffic(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Vehicles per hour (both directions), shape ``(len(segments), len(times))``."""
        return self._rates(self.daily_traffic, "car", segments, times)
