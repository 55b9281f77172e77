"""Events: a concert or a market that draws cars and pedestrians to one place for a while."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import numpy as np

from twin._errors import InputValidationError

__all__ = ["EVENT_KINDS", "Event"]

log = logging.getLogger(__name__)


EVENT_KINDS: tuple[str, ...] = ("concert", "market")


@dataclasses.dataclass(frozen=True)
class Event:
    """A concert or a market that draws people to one place for a while.

    Parameters
    ----------
    kind : {"concert", "market"}
        A concert's audience arrives in the 90 minutes before ``start`` and leaves within
        45 minutes after ``end``; a market's visitors come and go uniformly while it is open.
    location : (lon, lat) or str
        Place in EPSG:4326, or a ``segment:...`` or ``junction:...`` id of the twin.
    start, end : datetime.datetime
        Tz-aware times.
    attendance : float
        People attending (over the whole event).
    radius_m : float
        Streets within this distance of the place see the extra pedestrians.
    car_share : float
        Attendees coming by car, as drivers (vehicles per attendee).
    """

    kind: str
    location: tuple[float, float] | str
    start: dt.datetime
    end: dt.datetime
    attendance: float
    radius_m: float = 400.0
    car_share: float = 0.25

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            msg = f"Event.kind: {self.kind!r} is not one of {EVENT_KINDS}"
            raise InputValidationError(msg)
        for name in ("start", "end"):
            t = getattr(self, name)
            if not isinstance(t, dt.datetime) or t.tzinfo is None or t.utcoffset() is None:
                msg = f"Event.{name}: {t!r} must be a tz-aware datetime"
                raise InputValidationError(msg)
        if self.end <= self.start:
            msg = f"Event.end: {self.end.isoformat()} is not after start {self.start.isoformat()}"
            raise InputValidationError(msg)
        if not (np.isfinite(self.attendance) and self.attendance >= 0):
            msg = f"Event.attendance: {self.attendance!r} must be a finite number >= 0"
            raise InputValidationError(msg)
        if not (np.isfinite(self.radius_m) and self.radius_m > 0):
            msg = f"Event.radius_m: {self.radius_m!r} must be positive"
            raise InputValidationError(msg)
        if not 0 <= self.car_share <= 1:
            msg = f"Event.car_share: {self.car_share!r} must be within 0..1"
            raise InputValidationError(msg)
        loc = self.location
        if not isinstance(loc, str):
            try:
                lon, lat = (float(v) for v in loc)
            except (TypeError, ValueError):
                msg = f"Event.location: {loc!r} is neither (lon, lat) nor an asset id"
                raise InputValidationError(msg) from None
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                msg = f"Event.location: {loc!r} is not (lon, lat) in degrees"
                raise InputValidationError(msg)
            object.__setattr__(self, "location", (lon, lat))

    def window(self) -> tuple[float, float]:
        """UTC window (s since the epoch) during which the event moves people."""
        s, e = self.start.timestamp(), self.end.timestamp()
        return (s - 5400.0, e + 2700.0) if self.kind == "concert" else (s, e)

    def people_rate(self, t0_s: np.ndarray, t1_s: np.ndarray) -> np.ndarray:
        """Attendees walking to or from the place per hour, averaged over ``[t0, t1)`` (UTC s)."""
        s, e = self.start.timestamp(), self.end.timestamp()
        if self.kind == "concert":
            # arrivals uniform over the 90 min before the start, departures over 45 min after
            parts = [(s - 5400.0, s, self.attendance), (e, e + 2700.0, self.attendance)]
        else:
            # each visitor walks in and out once while the market is open
            parts = [(s, e, 2.0 * self.attendance)]
        out = np.zeros(np.shape(t0_s))
        dur = np.maximum(np.asarray(t1_s) - np.asarray(t0_s), 1e-9)
        for a, b, people in parts:
            overlap = np.clip(np.minimum(t1_s, b) - np.maximum(t0_s, a), 0.0, None)
            out += people * overlap / (b - a) / dur * 3600.0
        return out

    def vehicle_rates(self, t0_s: np.ndarray, t1_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vehicles per hour arriving at and leaving the place, averaged over each slot."""
        s, e = self.start.timestamp(), self.end.timestamp()
        n = self.attendance * self.car_share
        dur = np.maximum(np.asarray(t1_s) - np.asarray(t0_s), 1e-9)

        def share(a: float, b: float) -> np.ndarray:
            ov = np.clip(np.minimum(t1_s, b) - np.maximum(t0_s, a), 0.0, None)
            return np.asarray(n * ov / (b - a) / dur * 3600.0)

        if self.kind == "concert":
            return share(s - 5400.0, s), share(e, e + 2700.0)
        both = share(s, e)
        return both, both
