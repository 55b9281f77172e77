"""Travel demand: zones, trip generation, gravity distribution, time profiles and events.

This module turns a :class:`~twin.model.Twin` into demand for the simulations:

* **zones**: a grid of square cells (:data:`CELL_M`, 500 m by default) over the street network,
  plus *gateways* where main roads leave the network (external traffic). Each cell's population
  is the city's population spread by the length of residential streets in it (weights
  :data:`RESIDENTIAL_WEIGHT`); its activity (jobs, shops, schools: what attracts trips) is the
  weighted count of points of interest (:data:`POI_WEIGHT`) or, where the twin has none
  (municipal data, graphml extracts), the length of main roads (:data:`MAIN_ROAD_WEIGHT`), a proxy
  for where shops and offices line the streets.
* **trip generation**: :attr:`DemandParams.trip_rate` person trips per inhabitant and day,
  split by mode (:attr:`DemandParams.car_share` car-driver trips, that is vehicles, and
  :attr:`DemandParams.walk_share` walking trips).
* **distribution**: a doubly constrained gravity model
  ``T_ij = a_i b_j P_i A_j exp(-beta c_ij)`` on free-flow car time ``c_ij``, balanced by
  Furness / iterative proportional fitting (:func:`furness`).
* **time of day**: hourly fractions of the daily total per day type and mode
  (:data:`HOURLY_PROFILES`), on the local clock (Europe/Paris).
* **events**: a concert or a market (:class:`Event`) adds car trips to and from its place and
  pedestrians on the streets around it, before, during and after it.

Figures and their sources
-------------------------
French household travel surveys (*Enquêtes Ménages Déplacements*, EMD, standard Cerema method)
give 3.4 to 4.0 trips per person and day in large cities (about 3.6-3.8 in recent
surveys). In the centres of large cities the car-driver share is about 35-45% of trips and
walking 30-35%; the defaults of :class:`DemandParams` sit in these ranges and are what
:mod:`twin.scenarios.calibration` adjusts. Mean walking trips are 0.8-1 km long in the same
surveys.

The weekday car profile peaks at about 10% of the daily traffic in the morning peak hour and
10.5% in the evening one: Montpellier's own traffic counts (3,314 of them) give a median
PHJM/TJM ratio of 0.110 and PHJS/TJM of 0.121. Saturday traffic rises later, peaks at midday and
in the late afternoon and keeps more traffic late in the evening; Sunday is low with an afternoon
peak. Pedestrian profiles follow the shape of French city-centre pedestrian counters (school run,
lunchtime peak, late-afternoon shopping peak).

Examples
--------
>>> p = profile("weekday", mode="car")
>>> p.shape, round(float(p.sum()), 12)
((24,), 1.0)
>>> int(np.argmax(profile("weekday", mode="car")[:12]))  # morning peak hour
8
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import networkx as nx
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from scipy import sparse
from scipy.sparse import csgraph

from twin._errors import ConvergenceError, InputValidationError, UnknownAssetError
from twin.crs import to_xy

__all__ = [
    "CELL_M",
    "DAY_TYPES",
    "HOURLY_PROFILES",
    "DAY_FACTOR",
    "ConvergenceError",
    "Demand",
    "DemandModel",
    "DemandParams",
    "Event",
    "ProfileDemand",
    "SimulatedDemand",
    "build_demand",
    "day_type_of",
    "furness",
    "local_slots",
    "profile",
]

log = logging.getLogger(__name__)

DayType = Literal["weekday", "saturday", "sunday"]
DAY_TYPES: tuple[str, ...] = ("weekday", "saturday", "sunday")
MODES: tuple[str, ...] = ("car", "walk")
LOCAL_TZ = "Europe/Paris"

CELL_M = 500.0
"""Side of a zone cell (m)."""


# ------------------------------------------------------------------------------------------------
# time profiles
# ------------------------------------------------------------------------------------------------
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


def local_slots(
    day: dt.date, *, slot_minutes: int = 15, tz: str = LOCAL_TZ
) -> tuple[np.ndarray, np.ndarray]:
    """Slots of one local calendar day: (naive-UTC start times, local clock hour of each).

    A DST day has 92 or 100 quarter-hour slots.

    Examples
    --------
    >>> t, h = local_slots(dt.date(2026, 3, 29), slot_minutes=60)  # spring forward
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


def _local_hours(times: np.ndarray, tz: str = LOCAL_TZ) -> np.ndarray:
    idx = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]")).tz_localize("UTC")
    return np.asarray(idx.tz_convert(tz).hour, dtype=int)


def _local_parts(times: np.ndarray, tz: str = LOCAL_TZ) -> tuple[np.ndarray, np.ndarray]:
    """Local hour and day type index (0 weekday, 1 saturday, 2 sunday) of naive-UTC times."""
    arr = np.asarray(times)
    if not np.issubdtype(arr.dtype, np.datetime64):
        msg = f"times: expected naive-UTC datetime64 values, got dtype {arr.dtype}"
        raise InputValidationError(msg)
    idx = pd.DatetimeIndex(arr.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(tz)
    wd = np.asarray(idx.day_of_week)
    kind = np.where(wd == 5, 1, np.where(wd == 6, 2, 0))
    return np.asarray(idx.hour, dtype=int), kind


# ------------------------------------------------------------------------------------------------
# gravity model
# ------------------------------------------------------------------------------------------------
def furness(
    production: np.ndarray,
    attraction: np.ndarray,
    deterrence: np.ndarray,
    *,
    tol: float = 1e-8,
    max_iter: int = 2000,
) -> tuple[np.ndarray, int]:
    """Doubly constrained gravity model balanced by Furness (iterative proportional fitting).

    Finds ``T = diag(a) F diag(b)`` with row sums ``production`` and column sums
    ``attraction`` (which are first scaled to the same total).

    Parameters
    ----------
    production, attraction : numpy.ndarray
        Trips produced by and attracted to each zone (>= 0).
    deterrence : numpy.ndarray
        ``F_ij >= 0``, e.g. ``exp(-beta * cost)``; 0 where ``j`` cannot be reached from ``i``.
    tol : float
        Largest relative row or column error accepted.
    max_iter : int
        Iterations before :class:`ConvergenceError`.

    Returns
    -------
    (numpy.ndarray, int)
        The trip matrix and the number of iterations used.

    Examples
    --------
    >>> T, _ = furness(np.array([10.0, 20.0]), np.array([15.0, 15.0]), np.ones((2, 2)))
    >>> T.sum(axis=1).round(6).tolist(), T.sum(axis=0).round(6).tolist()
    ([10.0, 20.0], [15.0, 15.0])
    """
    p = np.asarray(production, dtype=float)
    a = np.asarray(attraction, dtype=float)
    f = np.asarray(deterrence, dtype=float)
    n, m = len(p), len(a)
    if f.shape != (n, m):
        msg = f"deterrence: shape {f.shape} is not (origins {n}, destinations {m})"
        raise InputValidationError(msg)
    for name, arr in (("production", p), ("attraction", a), ("deterrence", f)):
        bad = np.flatnonzero(~(arr.ravel() >= 0))
        if bad.size:
            msg = f"{name}: entry {int(bad[0])} is {arr.ravel()[bad[0]]!r} (must be finite, >= 0)"
            raise InputValidationError(msg)
    if p.sum() <= 0 or a.sum() <= 0:
        return np.zeros((n, m)), 0
    a = a * (p.sum() / a.sum())
    reach_row = (f * a[None, :]).sum(axis=1) > 0
    if np.any((p > 0) & ~reach_row):
        i = int(np.flatnonzero((p > 0) & ~reach_row)[0])
        msg = f"furness: origin {i} produces trips but reaches no attracting destination"
        raise InputValidationError(msg)
    reach_col = (f * p[:, None]).sum(axis=0) > 0
    if np.any((a > 0) & ~reach_col):
        j = int(np.flatnonzero((a > 0) & ~reach_col)[0])
        msg = f"furness: destination {j} attracts trips but no producing origin reaches it"
        raise InputValidationError(msg)
    bcol = np.ones(m)
    arow = np.ones(n)
    for it in range(1, max_iter + 1):
        with np.errstate(divide="ignore", invalid="ignore"):
            arow = np.where(p > 0, p / (f @ bcol), 0.0)
            bcol = np.where(a > 0, a / (arow @ f), 0.0)
        rows = arow * (f @ bcol)
        err = np.max(np.abs(rows - p)) / max(p.max(), 1e-300)
        if err < tol:
            return arow[:, None] * f * bcol[None, :], it
    msg = f"furness: no convergence after {max_iter} iterations (relative row error {err:.2e})"
    raise ConvergenceError(msg)


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------
RESIDENTIAL_WEIGHT: Mapping[str, float] = {
    "residential": 1.0, "living_street": 1.0, "unclassified": 0.7, "tertiary": 0.5,
    "secondary": 0.35, "primary": 0.2, "pedestrian": 0.3, "service": 0.1,
}  # fmt: skip
"""Weight of a metre of street per road class when spreading population over cells."""

MAIN_ROAD_WEIGHT: Mapping[str, float] = {
    "trunk": 0.5, "primary": 1.0, "secondary": 1.0, "tertiary": 0.7, "pedestrian": 1.0,
    "living_street": 0.3, "unclassified": 0.1, "residential": 0.1,
}  # fmt: skip
"""Activity weight of a metre of street when the twin has no points of interest (shops and
offices line main roads and pedestrian streets)."""

POI_WEIGHT: Mapping[str, float] = {
    "shop": 1.0, "food_drink": 1.0, "school": 4.0, "transit": 1.5, "amenity": 1.0,
}  # fmt: skip
"""Activity weight of one point of interest per category (a school draws several shops' worth)."""

PEDESTRIAN_WEIGHT: Mapping[str, float] = {
    "pedestrian": 4.0, "living_street": 2.5, "footway": 1.0, "steps": 0.5, "path": 0.4,
    "residential": 1.0, "unclassified": 0.8, "tertiary": 1.5, "secondary": 1.6,
    "primary": 1.3, "trunk": 0.1, "service": 0.4, "cycleway": 0.2, "track": 0.1,
    "bridleway": 0.1,
}  # fmt: skip
"""Relative footfall of a metre of walkable street per road class, before points of interest."""

PERSONS_PER_WEIGHTED_M = 0.85
"""Inhabitants per residential-weighted metre of street (see :data:`RESIDENTIAL_WEIGHT`).

Measured on Montpellier (302,500 inhabitants, INSEE 2021, over its municipal centreline network)
and used to estimate the population of an extract that covers only part of a commune (the
definition's ``boundary.kind = "extract"``): population = min(commune population, this density
x the extract's weighted street length)."""


@dataclasses.dataclass(frozen=True)
class DemandParams:
    """Global parameters of the demand model (calibrated by :mod:`twin.scenarios.calibration`).

    Parameters
    ----------
    trip_rate : float
        Person trips per inhabitant per weekday (EMD: 3.4-4.0).
    car_share : float
        Share of trips made as car drivers, i.e. vehicle trips per person trip (0.35-0.45 in
        central French cities).
    walk_share : float
        Share of trips made on foot (0.30-0.35).
    beta_per_min : float
        Deterrence ``exp(-beta * t)`` of car trips by free-flow time (1/min).
    external_share : float
        External vehicle trips (entering, leaving or crossing the network through gateways) per
        internal vehicle trip.
    home_attraction : float
        Share of attraction weight given by population rather than activity (visits, escort).
    walk_trip_m : float
        Mean walking trip length (m; EMD: 0.8-1 km).
    transit_share : float
        Share of trips made by public transport (15-20% in large French cities); each one walks
        :attr:`transit_walk_m` at each end.
    transit_walk_m : float
        Walk from or to the stop at each end of a transit trip (m).
    poi_radius_m : float
        Points of interest within this distance raise a segment's footfall.
    """

    trip_rate: float = 3.7
    car_share: float = 0.40
    walk_share: float = 0.32
    beta_per_min: float = 0.12
    external_share: float = 0.25
    home_attraction: float = 0.3
    walk_trip_m: float = 900.0
    transit_share: float = 0.15
    transit_walk_m: float = 400.0
    poi_radius_m: float = 100.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                msg = f"DemandParams.{f.name}: {v!r} must be a finite number >= 0"
                raise InputValidationError(msg)
        for name in ("car_share", "walk_share", "transit_share", "home_attraction"):
            if getattr(self, name) > 1:
                msg = f"DemandParams.{name}: {getattr(self, name)!r} is a share, must be <= 1"
                raise InputValidationError(msg)


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


# ------------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class DemandModel:
    """Everything the demand of one city needs; picklable (arrays, tuples, dataclasses).

    Build it with :func:`build_demand`. Zones are grid cells (``cell:<col>_<row>``) and
    gateways (``gateway:<node>``) where main roads leave the network.

    Parameters
    ----------
    city : str
        City name.
    zone_ids : tuple of str
    zone_xy : numpy.ndarray
        ``(n_zone, 2)`` centre of each zone (EPSG:2154).
    population, activity : numpy.ndarray
        Inhabitants and activity weight per zone (gateways have neither).
    external : numpy.ndarray
        Gateway weight (main-road lanes leaving the network; 0 for cells).
    cost_min : numpy.ndarray
        ``(n_zone, n_zone)`` free-flow car time between zone nodes (min); ``inf`` where there
        is no path.
    zone_node : tuple
        The drive-graph node that represents each zone (``None`` for a zone without one).
    node_ids, node_zone, node_weight : numpy.ndarray
        Drive-graph nodes where the zones' trips start and end, their zone and weight.
    segments : tuple of str
        Walkable segment ids.
    seg_zone, seg_xy, seg_length_m, seg_weight : numpy.ndarray
        Zone, midpoint, length and pedestrian weight of each walkable segment.
    params : DemandParams
    events : tuple of Event
    event_xy : numpy.ndarray
        ``(n_event, 2)`` place of each event (EPSG:2154).
    event_zone : numpy.ndarray
        Zone of each event.
    timezone : str
        Zone of the local clock of the profiles.
    od_factor : numpy.ndarray, optional
        ``(n_zone, n_zone)`` multipliers of the gravity OD cells, from a matrix estimation
        against counts (:func:`twin.scenarios.calibration.calibrate`); ``None``: the gravity OD.
    """

    city: str
    zone_ids: tuple[str, ...]
    zone_xy: np.ndarray
    population: np.ndarray
    activity: np.ndarray
    external: np.ndarray
    cost_min: np.ndarray
    zone_node: tuple[Hashable | None, ...]
    node_ids: np.ndarray
    node_zone: np.ndarray
    node_weight: np.ndarray
    segments: tuple[str, ...]
    seg_zone: np.ndarray
    seg_xy: np.ndarray
    seg_length_m: np.ndarray
    seg_weight: np.ndarray
    params: DemandParams = DemandParams()
    events: tuple[Event, ...] = ()
    event_xy: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    event_zone: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=int))
    timezone: str = LOCAL_TZ
    od_factor: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.zone_ids)
        if self.od_factor is not None:
            fac = np.asarray(self.od_factor, dtype=float)
            if fac.shape != (n, n) or not np.all(np.isfinite(fac)) or np.any(fac < 0):
                msg = (
                    f"DemandModel.od_factor: shape {fac.shape} must be ({n}, {n}) with finite, "
                    "non-negative multipliers"
                )
                raise InputValidationError(msg)
            object.__setattr__(self, "od_factor", fac)
        for name in ("population", "activity", "external"):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != (n,):
                msg = f"DemandModel.{name}: shape {arr.shape} is not ({n},) (one per zone)"
                raise InputValidationError(msg)
            object.__setattr__(self, name, arr)
        cost = np.asarray(self.cost_min, dtype=float)
        if cost.shape != (n, n):
            msg = f"DemandModel.cost_min: shape {cost.shape} is not ({n}, {n})"
            raise InputValidationError(msg)
        object.__setattr__(self, "cost_min", cost)
        if len(self.zone_node) != n:
            msg = f"DemandModel.zone_node: {len(self.zone_node)} nodes for {n} zones"
            raise InputValidationError(msg)
        if len(self.events) != len(self.event_xy):
            msg = f"DemandModel.event_xy: {len(self.event_xy)} places for {len(self.events)} events"
            raise InputValidationError(msg)
        # every zone x slot of every day type must give finite, non-negative demand
        for day_type in DAY_TYPES:
            for mode in MODES:
                prof = profile(day_type, mode=mode, slot_minutes=15)
                gen = self._generation(mode)
                table = gen[:, None] * prof[None, :]
                bad = np.argwhere(~(table >= 0))
                if bad.size:
                    z, s = (int(i) for i in bad[0])
                    msg = (
                        f"demand: {mode} trips of zone {self.zone_ids[z]!r} in {day_type} slot {s} "
                        f"({s // 4:02d}:{s % 4 * 15:02d} local) are {table[z, s]!r}: negative or "
                        f"NaN (population {self.population[z]!r}, activity "
                        f"{self.activity[z]!r}, external {self.external[z]!r})"
                    )
                    raise InputValidationError(msg)

    # -- generation and distribution ------------------------------------------------------------
    def _generation(self, mode: str) -> np.ndarray:
        """Daily weekday productions per zone for one mode (trips/day)."""
        p = self.params
        share = p.car_share if mode == "car" else p.walk_share
        prod = self.population * p.trip_rate * share
        if mode == "car":
            total_ext = p.external_share * float(np.nansum(prod))
            ext_w = self.external
            ext_sum = float(np.nansum(ext_w))
            if ext_sum > 0:
                prod = prod + total_ext * ext_w / ext_sum
        return np.asarray(prod, dtype=float)

    @property
    def reachable(self) -> np.ndarray:
        """Zones with a drive node on the main strongly connected network."""
        return np.array([n is not None for n in self.zone_node], dtype=bool)

    def unreachable_zones(self) -> list[str]:
        """Zones with demand but no node on the main drive network (their trips are dropped)."""
        gen = self._generation("car")
        return [
            z for z, r, g in zip(self.zone_ids, self.reachable, gen, strict=True) if g > 0 and not r
        ]

    def base_od(self) -> np.ndarray:
        """Weekday one-way home-end -> activity-end car trips per day (balanced by Furness).

        Half of each day's trips; the daily OD is ``T + T.T`` (outward and return trips). With
        an ``od_factor``, each cell is multiplied by its factor after balancing.
        Zones off the main drive network are left out (see :meth:`unreachable_zones`).
        """
        cache = self.__dict__.get("_od_cache")
        if cache is not None:
            return cache  # type: ignore[no-any-return]
        p = self.params
        ok = self.reachable
        prod = np.where(ok, self._generation("car") / 2.0, 0.0)
        pop_share = self.population / max(self.population.sum(), 1e-300)
        act_share = self.activity / max(self.activity.sum(), 1e-300)
        attr = (1 - p.home_attraction) * act_share + p.home_attraction * pop_share
        ext = self.external / max(self.external.sum(), 1e-300) * p.external_share
        attr = np.where(ok, attr + ext, 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            f = np.exp(-p.beta_per_min * self.cost_min)
        f = np.where(np.isfinite(self.cost_min), f, 0.0)
        f[~ok, :] = 0.0
        f[:, ~ok] = 0.0
        gw = self.external > 0
        f[np.ix_(gw, gw)] *= 0.5  # through traffic is a minority of external trips
        T, _ = furness(prod, attr, f)
        if self.od_factor is not None:
            T = T * self.od_factor
        object.__setattr__(self, "_od_cache", T)
        return T

    def dropped_per_day(self, day_type: str = "weekday") -> float:
        """Car trips per day of zones that cannot reach the main drive network (not in the OD)."""
        gen = self._generation("car") * DAY_FACTOR["car"][day_type]
        return float(gen[~self.reachable].sum())

    def od(self, slot: int, *, day_type: str = "weekday", slot_minutes: int = 15) -> np.ndarray:
        """Car OD in vehicles per hour during one local-clock slot of a day type.

        Parameters
        ----------
        slot : int
            Slot index from local midnight (0..95 for 15-minute slots).
        day_type : {"weekday", "saturday", "sunday"}
        slot_minutes : int

        Returns
        -------
        numpy.ndarray
            ``(n_zone, n_zone)`` veh/h.
        """
        _check_day_type(day_type)
        per_hour = _slots_per_hour(slot_minutes)
        if not 0 <= slot < 24 * per_hour:
            msg = f"slot: {slot!r} is outside 0..{24 * per_hour - 1} ({slot_minutes}-minute slots)"
            raise InputValidationError(msg)
        return self._od_hour(slot // per_hour, day_type)

    def _od_hour(self, hour: int, day_type: str) -> np.ndarray:
        T = self.base_od()
        frac = HOURLY_PROFILES["car"][day_type][hour] * DAY_FACTOR["car"][day_type]
        w = _OUTBOUND[hour] if day_type == "weekday" else 0.5
        out: np.ndarray = 2.0 * frac * (w * T + (1.0 - w) * T.T)
        bad = np.argwhere(~(out >= 0))
        if bad.size:
            o, d = (int(i) for i in bad[0])
            msg = (
                f"od: demand from zone {self.zone_ids[o]!r} to {self.zone_ids[d]!r} in "
                f"{day_type} hour {hour} is {out[o, d]!r}"
            )
            raise InputValidationError(msg)
        return out

    def od_day(
        self, *, day: dt.date | None = None, day_type: str | None = None, slot_minutes: int = 15
    ) -> tuple[np.ndarray, np.ndarray]:
        """Car OD of each slot of a day, events included (veh/h).

        Returns
        -------
        (times, rates)
            Naive-UTC slot starts (``None`` entries are not used: without ``day`` the times are
            local-clock offsets from midnight as ``timedelta64``) and ``(slot, zone, zone)`` veh/h.
        """
        times, hours, dtype = self._slots(day, day_type, slot_minutes)
        rates = np.stack([self._od_hour(int(h), dtype) for h in hours])
        if day is not None and self.events:
            t0 = times.astype("datetime64[s]").astype(float)
            t1 = t0 + slot_minutes * 60.0
            T = self.base_od()
            ok = self.reachable
            for ev, ez in zip(self.events, self.event_zone, strict=True):
                if not ok[ez]:
                    continue
                arr, dep = ev.vehicle_rates(t0, t1)
                if not (arr.any() or dep.any()):
                    continue
                w = T.sum(axis=1) * np.exp(-self.params.beta_per_min * self.cost_min[:, ez])
                w = np.where(np.isfinite(w) & ok, w, 0.0)
                w = w / max(w.sum(), 1e-300)
                rates[:, :, ez] += arr[:, None] * w[None, :]
                rates[:, ez, :] += dep[:, None] * w[None, :]
        return times, rates

    def _slots(
        self, day: dt.date | None, day_type: str | None, slot_minutes: int
    ) -> tuple[np.ndarray, np.ndarray, str]:
        per_hour = _slots_per_hour(slot_minutes)
        if day is not None:
            times, hours = local_slots(day, slot_minutes=slot_minutes, tz=self.timezone)
            dtype = day_type or day_type_of(day)
        else:
            n = 24 * per_hour
            times = np.arange(n) * np.timedelta64(slot_minutes * 60, "s")
            hours = np.arange(n) // per_hour
            dtype = day_type or "weekday"
        _check_day_type(dtype)
        return times, hours, dtype

    # -- trips for the traffic DES --------------------------------------------------------------
    def trips(
        self,
        day_type: str | None = None,
        rng: np.random.Generator | int | None = None,
        *,
        day: dt.date | None = None,
        slot_minutes: int = 15,
    ) -> pd.DataFrame:
        """Draw one day of car trips (Poisson counts per OD cell and slot).

        Parameters
        ----------
        day_type : {"weekday", "saturday", "sunday"}, optional
            Default: from ``day``, else weekday.
        rng : numpy.random.Generator or int, optional
        day : datetime.date, optional
            Calendar day (gives DST-aware slots and the events of that day).
        slot_minutes : int

        Returns
        -------
        pandas.DataFrame
            One row per trip, sorted by departure: ``origin`` and ``destination`` (drive-graph
            nodes), ``depart_s`` (s since local midnight), ``origin_zone``, ``dest_zone``.
            ``attrs`` hold ``t0`` (ISO UTC, with ``day``), ``dropped_trips`` (expected trips per
            day of zones off the drive network, left out) and ``unreachable_zones``.
        """
        rng = np.random.default_rng(rng)
        _, rates = self.od_day(day=day, day_type=day_type, slot_minutes=slot_minutes)
        slot_s = slot_minutes * 60.0
        counts = rng.poisson(rates * slot_s / 3600.0)
        s, o, d = np.nonzero(counts)
        n = counts[s, o, d]
        s, o, d = np.repeat(s, n), np.repeat(o, n), np.repeat(d, n)
        depart = (s + rng.random(s.size)) * slot_s
        on = self._draw_nodes(o, rng)
        dn = self._draw_nodes(d, rng)
        keep = on != dn
        order = np.argsort(depart[keep], kind="stable")
        frame = pd.DataFrame(
            {
                "origin": self.node_ids[on[keep]][order],
                "destination": self.node_ids[dn[keep]][order],
                "depart_s": depart[keep][order],
                "origin_zone": np.asarray(self.zone_ids, dtype=object)[o[keep]][order],
                "dest_zone": np.asarray(self.zone_ids, dtype=object)[d[keep]][order],
            }
        )
        dtype = day_type or (day_type_of(day) if day is not None else "weekday")
        dropped = self.dropped_per_day(dtype)
        unreachable = self.unreachable_zones()
        if unreachable:
            log.warning(
                "demand: %d zone(s) cannot reach the main drive network; %.0f trips/day dropped "
                "(%s)",
                len(unreachable),
                dropped,
                ", ".join(unreachable[:5]),
            )
        frame.attrs["dropped_trips"] = dropped
        frame.attrs["unreachable_zones"] = unreachable
        frame.attrs["same_node_trips"] = int((~keep).sum())
        if day is not None:
            times, _ = local_slots(day, slot_minutes=slot_minutes, tz=self.timezone)
            frame.attrs["t0"] = pd.Timestamp(times[0]).tz_localize("UTC").isoformat()
        return frame

    def _draw_nodes(self, zones: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Index into ``node_ids`` of a node of each zone, drawn by node weight."""
        cache = self.__dict__.get("_node_cache")
        if cache is None:
            order = np.lexsort((np.arange(len(self.node_zone)), self.node_zone))
            nz = self.node_zone[order]
            w = self.node_weight[order].astype(float)
            tot = np.bincount(nz, weights=w, minlength=len(self.zone_ids))
            cum = np.zeros(len(nz))
            for z in np.unique(nz):
                m = nz == z
                cum[m] = np.cumsum(w[m]) / tot[z]
            key = nz + np.minimum(cum, 1.0 - 1e-12)
            cache = (order, key)
            object.__setattr__(self, "_node_cache", cache)
        order, key = cache
        u = rng.random(len(zones))
        pos = np.searchsorted(key, zones + u, side="left")
        return np.asarray(order[np.minimum(pos, len(order) - 1)])

    def od_demand(
        self, *, day: dt.date | None = None, day_type: str | None = None, slot_minutes: int = 15
    ) -> Any:
        """Return the day's demand as :class:`twin.scenarios.traffic.ODDemand` (reachable zones)."""
        from twin.scenarios.traffic import (
            ODDemand,  # the traffic DES; imported here to keep this module light
        )

        _, rates = self.od_day(day=day, day_type=day_type, slot_minutes=slot_minutes)
        ok = np.flatnonzero(self.reachable)
        return ODDemand(
            zones=tuple(self.zone_ids[i] for i in ok),
            zone_nodes=tuple(self.zone_node[i] for i in ok),
            trips_per_h=rates[:, ok][:, :, ok],
            slot_s=slot_minutes * 60.0,
        )

    # -- pedestrians ----------------------------------------------------------------------------
    def footfall_daily(self) -> np.ndarray:
        """Weekday pedestrians per day passing a point of each walkable segment.

        Each zone's walking trip ends (productions by population, attractions by activity)
        times half the mean walking trip length, plus its transit trip ends times the walk to
        the stop, gives the pedestrian-metres walked in the zone; these are spread over its
        walkable segments by ``seg_weight``.
        """
        p = self.params
        trips = self.population * p.trip_rate
        act = self.activity / max(self.activity.sum(), 1e-300)
        pop = self.population / max(self.population.sum(), 1e-300)
        end_share = (1 - p.home_attraction) * act + p.home_attraction * pop
        walk, transit = trips * p.walk_share, trips * p.transit_share
        metres = (walk + walk.sum() * end_share) * p.walk_trip_m / 2.0
        metres = metres + (transit + transit.sum() * end_share) * p.transit_walk_m
        nz = len(self.zone_ids)
        denom = np.bincount(
            self.seg_zone, weights=self.seg_weight * self.seg_length_m, minlength=nz
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            per_w = np.where(denom > 0, metres / denom, 0.0)
        return np.asarray(per_w[self.seg_zone] * self.seg_weight)

    def pedestrian_intensity(
        self,
        *,
        day: dt.date | None = None,
        day_type: str | None = None,
        slot_minutes: int = 15,
        events: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pedestrians per hour on each walkable segment in each slot of a day.

        Returns
        -------
        (times, rates)
            Slot starts (naive UTC with ``day``, else offsets from local midnight) and
            ``(n_segment, n_slot)`` persons/h, events of that day included.
        """
        times, hours, dtype = self._slots(day, day_type, slot_minutes)
        base = self.footfall_daily() * DAY_FACTOR["walk"][dtype]
        hourly = HOURLY_PROFILES["walk"][dtype][hours]
        rates = base[:, None] * hourly[None, :]
        if day is not None and events and self.events:
            rates = rates + self.event_footfall(times, slot_minutes=slot_minutes)
        self._check_rates(rates, times, what="footfall")
        return times, rates

    def event_footfall(self, times: np.ndarray, *, slot_minutes: int = 15) -> np.ndarray:
        """Extra pedestrians per hour on each segment from the events (zero away from them).

        Each attendee walks the last :attr:`Event.radius_m` / 2 metres to or from the place
        through the streets around it, spread with weight ``seg_weight * (1 - d / radius)``.
        """
        t0 = np.asarray(times).astype("datetime64[s]").astype(float)
        t1 = t0 + slot_minutes * 60.0
        out = np.zeros((len(self.segments), len(t0)))
        for ev, xy in zip(self.events, self.event_xy, strict=True):
            people = ev.people_rate(t0, t1)
            if not people.any():
                continue
            d = np.hypot(*(self.seg_xy - xy).T)
            k = np.clip(1.0 - d / ev.radius_m, 0.0, None) * self.seg_weight
            denom = float((k * self.seg_length_m).sum())
            if denom <= 0:
                continue
            out += (k * (ev.radius_m / 2.0) / denom)[:, None] * people[None, :]
        return out

    def _check_rates(self, rates: np.ndarray, times: np.ndarray, *, what: str) -> None:
        bad = np.argwhere(~(rates >= 0))
        if bad.size:
            s, t = (int(i) for i in bad[0])
            msg = (
                f"{what}: {rates[s, t]!r} on segment {self.segments[s]!r} (zone "
                f"{self.zone_ids[self.seg_zone[s]]!r}) in slot {t} ({times[t]}) is negative or NaN"
            )
            raise InputValidationError(msg)

    def with_params(self, **changes: float) -> DemandModel:
        """Return a copy with some :class:`DemandParams` changed (caches dropped)."""
        params = dataclasses.replace(self.params, **changes)
        return dataclasses.replace(self, params=params)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def zones_frame(self) -> pd.DataFrame:
        """One row per zone: kind, x, y, population, activity, external weight, node."""
        kind = ["gateway" if z.startswith("gateway:") else "cell" for z in self.zone_ids]
        return pd.DataFrame(
            {
                "kind": kind,
                "x": self.zone_xy[:, 0],
                "y": self.zone_xy[:, 1],
                "population": self.population,
                "activity": self.activity,
                "external": self.external,
                "node": list(self.zone_node),
            },
            index=pd.Index(self.zone_ids, name="zone"),
        )


# ------------------------------------------------------------------------------------------------
# building a model from a twin
# ------------------------------------------------------------------------------------------------
def _class_weight(highway: pd.Series, table: Mapping[str, float]) -> np.ndarray:
    return np.asarray(highway.map(lambda h: table.get(str(h), 0.0)).to_numpy(), dtype=float)


def _drive_arrays(graph: nx.MultiDiGraph) -> tuple[list[Hashable], sparse.csr_matrix]:
    nodes = list(graph.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    rows, cols, cost = [], [], []
    for u, v, d in graph.edges(data=True):
        speed = float(d.get("speed_kph") or 30.0)
        rows.append(index[u])
        cols.append(index[v])
        cost.append(max(float(d.get("length", 1.0)), 0.1) / max(speed, 1.0) * 0.06)  # min
    n = len(nodes)
    # keep the fastest parallel edge: sort descending so the last (smallest) write wins
    order = np.argsort(-np.asarray(cost), kind="stable")
    r, c, w = np.asarray(rows)[order], np.asarray(cols)[order], np.asarray(cost)[order]
    dense: dict[tuple[int, int], float] = {}
    for a, b, x in zip(r.tolist(), c.tolist(), w.tolist(), strict=True):
        dense[(a, b)] = x
    keys = np.array(list(dense.keys()), dtype=np.int64).reshape(-1, 2)
    vals = np.array(list(dense.values()), dtype=float)
    mat = sparse.csr_matrix((vals, (keys[:, 0], keys[:, 1])), shape=(n, n))
    return nodes, mat


def _resolve_event(tw: Any, ev: Event) -> np.ndarray:
    loc = ev.location
    if isinstance(loc, str):
        kind = loc.split(":", 1)[0]
        if kind not in ("segment", "junction"):
            msg = f"Event.location: {loc!r} is neither a segment nor a junction id"
            raise InputValidationError(msg)
        table = tw.registry[kind]
        if loc not in table.index:
            msg = f"Event.location: unknown {kind} id {loc!r} in {tw.city.name}"
            raise UnknownAssetError(msg)
        geom = table.geometry.loc[loc]
        p = (
            shapely.line_interpolate_point(geom, 0.5, normalized=True)
            if kind == "segment"
            else (shapely.centroid(geom))
        )
        return np.asarray(shapely.get_coordinates(p)[0], dtype=float)
    x, y = to_xy(np.array([loc[0]]), np.array([loc[1]]), crs=tw.crs)
    return np.array([float(x[0]), float(y[0])])


def _population(tw: Any, weighted_length_m: float) -> float:
    boundary = tw.city.boundary or {}
    pop = float(tw.city.population or 0)
    if boundary.get("kind") == "extract" or pop <= 0:
        estimate = PERSONS_PER_WEIGHTED_M * weighted_length_m
        return min(pop, estimate) if pop > 0 else estimate
    return pop


def build_demand(
    tw: Any,
    *,
    events: Iterable[Event] = (),
    params: DemandParams | None = None,
    cell_m: float = CELL_M,
) -> DemandModel:
    """Build the demand model of a twin.

    Parameters
    ----------
    tw : twin.model.Twin
    events : iterable of Event
        Concerts and markets; their places must be in the twin.
    params : DemandParams, optional
    cell_m : float
        Side of the zone cells (m).

    Raises
    ------
    UnknownAssetError
        If an event names a segment or junction the twin does not hold.
    """
    if not (np.isfinite(cell_m) and cell_m > 0):
        msg = f"cell_m: {cell_m!r} must be positive"
        raise InputValidationError(msg)
    params = params or DemandParams()
    events = tuple(events)
    seg = tw.registry["segment"]
    mids = shapely.line_interpolate_point(np.asarray(seg.geometry.values), 0.5, normalized=True)
    xy = shapely.get_coordinates(mids)
    length = seg["length_m"].to_numpy(float)
    x0, y0 = np.floor(xy.min(axis=0) / cell_m) * cell_m
    col = ((xy[:, 0] - x0) // cell_m).astype(int)
    row = ((xy[:, 1] - y0) // cell_m).astype(int)
    cell_key = col * 100_000 + row
    keys, seg_cell = np.unique(cell_key, return_inverse=True)
    n_cell = len(keys)
    cell_ids = [f"cell:{k // 100_000:03d}_{k % 100_000:03d}" for k in keys]
    cell_xy = np.stack(
        [x0 + (keys // 100_000 + 0.5) * cell_m, y0 + (keys % 100_000 + 0.5) * cell_m], axis=1
    )

    # population by residential street length
    res_w = _class_weight(seg["highway"], RESIDENTIAL_WEIGHT) * length
    total_pop = _population(tw, float(res_w.sum()))
    pop = np.bincount(seg_cell, weights=res_w, minlength=n_cell)
    pop = pop / max(pop.sum(), 1e-300) * total_pop

    # activity by points of interest, else by main-road length
    poi = tw.registry["poi"]
    poi_count = np.zeros(len(seg))
    act: np.ndarray  # float either way (numpy's stubs type a weighted bincount as int)
    if len(poi):
        pxy = shapely.get_coordinates(np.asarray(poi.geometry.values))
        pw = poi["category"].map(lambda c: POI_WEIGHT.get(str(c), 0.5)).to_numpy(float)
        pc = ((pxy[:, 0] - x0) // cell_m).astype(int) * 100_000 + (
            (pxy[:, 1] - y0) // cell_m
        ).astype(int)
        pos = np.searchsorted(keys, pc)
        inside = (pos < n_cell) & (keys[np.minimum(pos, n_cell - 1)] == pc)
        act = np.bincount(pos[inside], weights=pw[inside], minlength=n_cell)
        tree = shapely.STRtree(mids)
        _, hit = tree.query(
            np.asarray(poi.geometry.values), predicate="dwithin", distance=params.poi_radius_m
        )
        poi_count = np.bincount(hit, minlength=len(seg)).astype(float)
    else:
        act = np.zeros(n_cell)
    if act.sum() <= 0:
        main_w = _class_weight(seg["highway"], MAIN_ROAD_WEIGHT) * length
        act = np.bincount(seg_cell, weights=main_w, minlength=n_cell)
        poi_count = np.zeros(len(seg))

    # drive network: main strongly connected component, zone nodes, gateways
    drive = tw.drive
    nodes, mat = _drive_arrays(drive)
    n_nodes = len(nodes)
    _, label = csgraph.connected_components(mat, directed=True, connection="strong")
    main = np.bincount(label).argmax() if n_nodes else -1
    in_main = label == main
    nxy = np.array([[drive.nodes[n]["x"], drive.nodes[n]["y"]] for n in nodes], dtype=float)
    ncol = ((nxy[:, 0] - x0) // cell_m).astype(int)
    nrow = ((nxy[:, 1] - y0) // cell_m).astype(int)
    nkey = ncol * 100_000 + nrow
    npos = np.searchsorted(keys, nkey)
    ninside = (npos < n_cell) & (keys[np.minimum(npos, n_cell - 1)] == nkey) & in_main
    degree = np.asarray((mat > 0).sum(axis=1)).ravel() + np.asarray((mat > 0).sum(axis=0)).ravel()

    # gateways: main-road nodes at the edge of the network with a single neighbour
    main_cls = {"motorway", "trunk", "primary", "secondary"}
    gate_w: dict[int, float] = {}
    und = drive.to_undirected(as_view=True)
    hull = shapely.convex_hull(shapely.multipoints(nxy)) if n_nodes > 2 else None
    for i, n in enumerate(nodes):
        if not in_main[i] or und.degree(n) > 2:
            continue
        nbrs = set(und.neighbors(n)) - {n}
        if len(nbrs) != 1:
            continue
        classes = [d.get("highway") for _, _, d in und.edges(n, data=True)]
        if not any(c in main_cls for c in classes):
            continue
        if hull is not None and hull.exterior.distance(shapely.Point(nxy[i])) > 300.0:
            continue
        lanes = max(int(d.get("lanes", 1) or 1) for _, _, d in und.edges(n, data=True))
        gate_w[i] = float(lanes)
    gate_idx = np.array(sorted(gate_w), dtype=int)

    zone_ids = cell_ids + [f"gateway:{nodes[i]}" for i in gate_idx]
    nz = len(zone_ids)
    zone_xy = np.vstack([cell_xy, nxy[gate_idx]]) if len(gate_idx) else cell_xy
    population = np.concatenate([pop, np.zeros(len(gate_idx))])
    activity = np.concatenate([act, np.zeros(len(gate_idx))])
    external = np.concatenate([np.zeros(n_cell), [gate_w[i] for i in gate_idx]])

    # zone nodes (weight: degree) and the node nearest to each cell's weighted centre
    node_zone = npos[ninside]
    node_index = np.flatnonzero(ninside)
    node_weight = degree[ninside].astype(float)
    if len(gate_idx):
        node_zone = np.concatenate([node_zone, n_cell + np.arange(len(gate_idx))])
        node_index = np.concatenate([node_index, gate_idx])
        node_weight = np.concatenate([node_weight, np.ones(len(gate_idx))])
    rep = np.full(nz, -1, dtype=int)
    for z in range(nz):
        cand = node_index[node_zone == z]
        if len(cand):
            d = np.hypot(*(nxy[cand] - zone_xy[z]).T) - 10.0 * degree[cand]
            rep[z] = int(cand[np.argmin(d)])
    has = rep >= 0
    cost = np.full((nz, nz), np.inf)
    if has.any():
        dist = csgraph.dijkstra(mat, directed=True, indices=rep[has])
        cost[np.ix_(has, has)] = dist[:, rep[has]]
    # intra-zonal cost: half the time to the nearest other zone
    off = cost.copy()
    np.fill_diagonal(off, np.inf)
    near = off.min(axis=1)
    diag = np.where(np.isfinite(near), near / 2.0, np.inf)
    cost[np.arange(nz), np.arange(nz)] = np.where(has, diag, np.inf)

    # pedestrians
    walk = seg["walk"].to_numpy(bool)
    pw_cls = _class_weight(seg["highway"], PEDESTRIAN_WEIGHT)
    seg_weight = pw_cls * (1.0 + 0.5 * poi_count)
    ev_xy = np.array([_resolve_event(tw, ev) for ev in events]).reshape(-1, 2)
    ev_zone = (
        np.argmin(np.hypot(*(cell_xy[None, :, :] - ev_xy[:, None, :]).transpose(2, 0, 1)), axis=1)
        if len(events)
        else np.zeros(0, dtype=int)
    )
    node_ids = np.empty(len(node_index), dtype=object)
    node_ids[:] = [nodes[i] for i in node_index]
    return DemandModel(
        city=tw.city.name,
        zone_ids=tuple(zone_ids),
        zone_xy=zone_xy,
        population=population,
        activity=activity,
        external=external,
        cost_min=cost,
        zone_node=tuple(nodes[r] if r >= 0 else None for r in rep),
        node_ids=node_ids,
        node_zone=node_zone.astype(int),
        node_weight=node_weight,
        segments=tuple(seg.index[walk]),
        seg_zone=seg_cell[walk].astype(int),
        seg_xy=xy[walk],
        seg_length_m=np.maximum(length[walk], 1.0),
        seg_weight=seg_weight[walk],
        params=params,
        events=events,
        event_xy=ev_xy,
        event_zone=ev_zone.astype(int),
        timezone=getattr(tw.city, "timezone", LOCAL_TZ) or LOCAL_TZ,
    )


# ------------------------------------------------------------------------------------------------
# the Demand provider protocol (for the dimming optimiser)
# ------------------------------------------------------------------------------------------------
@runtime_checkable
class Demand(Protocol):
    """Footfall and traffic per segment and time, as the dimming optimiser consumes them.

    ``times`` are naive-UTC ``datetime64``; results have shape ``(len(segments), len(times))``.
    """

    def footfall(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour on each segment at each time."""
        ...

    def traffic(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Vehicles per hour (both directions) on each segment at each time."""
        ...


CLASS_AADT: Mapping[str, float] = {
    "motorway": 60_000, "motorway_link": 15_000, "trunk": 30_000, "trunk_link": 8_000,
    "primary": 16_000, "primary_link": 5_000, "secondary": 9_000, "secondary_link": 3_000,
    "tertiary": 4_500, "tertiary_link": 1_500, "unclassified": 1_200, "residential": 600,
    "living_street": 150, "service": 150, "road": 600, "busway": 300,
}  # fmt: skip
"""Typical two-way daily traffic (veh/day) of a French urban road per class.

Ranges from French urban counts: main arterials 10,000-25,000, district distributors
3,000-10,000, residential streets a few hundred to ~1,000 (Montpellier's counts: median TJM
per direction 1,800 over mostly main streets). Non-motor classes carry none."""

CLASS_FOOTFALL: Mapping[str, float] = {
    "pedestrian": 6_000, "living_street": 1_500, "footway": 600, "steps": 300, "path": 150,
    "residential": 500, "unclassified": 300, "tertiary": 1_200, "secondary": 2_000,
    "primary": 1_500, "trunk": 30, "service": 150, "cycleway": 80, "track": 30,
    "bridleway": 20, "tertiary_link": 200, "secondary_link": 200, "primary_link": 150,
}  # fmt: skip
"""Typical pedestrians per day passing a point of a street per class (both pavements),
before points of interest: pedestrian shopping streets in French city centres count
several thousand a day, residential streets a few hundred."""

POI_FOOTFALL = 400.0
"""Extra pedestrians per day per point of interest within 100 m of a segment."""


class ProfileDemand:
    """Demand by road class, points of interest and hour: the model before any simulation.

    ``footfall = CLASS_FOOTFALL[class] + POI_FOOTFALL * n_poi`` pedestrians per day and
    ``traffic = CLASS_AADT[class]`` vehicles per day, times the hourly fraction of
    :data:`HOURLY_PROFILES` (walk and car) and the :data:`DAY_FACTOR` of the local day.

    Parameters
    ----------
    daily_footfall, daily_traffic : pandas.Series
        Per segment id: pedestrians per day and vehicles per day on a weekday.
    timezone : str
        Local clock of the profiles.
    """

    def __init__(
        self, daily_footfall: pd.Series, daily_traffic: pd.Series, *, timezone: str = LOCAL_TZ
    ) -> None:
        for name, s in (("daily_footfall", daily_footfall), ("daily_traffic", daily_traffic)):
            arr = s.to_numpy(float)
            bad = np.flatnonzero(~(arr >= 0))
            if bad.size:
                msg = f"{name}: segment {s.index[bad[0]]!r} has {arr[bad[0]]!r} (must be >= 0)"
                raise InputValidationError(msg)
        self.daily_footfall = daily_footfall.astype(float)
        self.daily_traffic = daily_traffic.reindex(daily_footfall.index).fillna(0.0).astype(float)
        self.timezone = timezone

    @classmethod
    def from_twin(cls, tw: Any, *, poi_radius_m: float = 100.0) -> ProfileDemand:
        """Profiles of every segment of a twin from its road class and nearby points of interest."""
        seg = tw.registry["segment"]
        hw = seg["highway"].astype(str)
        foot = hw.map(lambda h: CLASS_FOOTFALL.get(h, 100.0)).to_numpy(float)
        foot = np.where(seg["walk"].to_numpy(bool), foot, 0.0)
        poi = tw.registry["poi"]
        if len(poi):
            mids = shapely.line_interpolate_point(
                np.asarray(seg.geometry.values), 0.5, normalized=True
            )
            _, hit = shapely.STRtree(mids).query(
                np.asarray(poi.geometry.values), predicate="dwithin", distance=poi_radius_m
            )
            foot = foot + POI_FOOTFALL * np.bincount(hit, minlength=len(seg)) * seg[
                "walk"
            ].to_numpy(bool)
        traffic = hw.map(lambda h: CLASS_AADT.get(h, 0.0)).to_numpy(float)
        traffic = np.where(seg["drive"].to_numpy(bool), traffic, 0.0)
        return cls(
            pd.Series(foot, index=seg.index),
            pd.Series(traffic, index=seg.index),
            timezone=getattr(tw.city, "timezone", LOCAL_TZ) or LOCAL_TZ,
        )

    def _rates(
        self, daily: pd.Series, mode: str, segments: Sequence[str], times: np.ndarray
    ) -> np.ndarray:
        idx = daily.index.get_indexer(pd.Index(list(segments)))
        if (idx < 0).any():
            missing = [s for s, i in zip(segments, idx, strict=True) if i < 0]
            msg = f"segments: unknown segment id {missing[0]!r} ({len(missing)} unknown)"
            raise UnknownAssetError(msg)
        hours, kind = _local_parts(times, self.timezone)
        table = np.stack([HOURLY_PROFILES[mode][d] * DAY_FACTOR[mode][d] for d in DAY_TYPES])
        frac = table[kind, hours]
        return np.asarray(daily.to_numpy(float)[idx][:, None] * frac[None, :])

    def footfall(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour, shape ``(len(segments), len(times))``."""
        return self._rates(self.daily_footfall, "walk", segments, times)

    def traffic(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Vehicles per hour (both directions), shape ``(len(segments), len(times))``."""
        return self._rates(self.daily_traffic, "car", segments, times)


class SimulatedDemand:
    """Demand read from simulation results: the footfall DES (and the traffic DES).

    Times inside the simulated span take the slot that contains them; with ``wrap=True``
    (default) other times take the slot at the same local clock time (a simulated day stands for
    any day of its type), otherwise they raise.

    Parameters
    ----------
    footfall : xarray.DataArray, optional
        ``footfall(segment, time)`` in persons/h.
    flow : xarray.DataArray, optional
        ``flow(segment, time)`` in veh/h.
    wrap : bool
    timezone : str
    """

    def __init__(
        self,
        footfall: xr.DataArray | None = None,
        flow: xr.DataArray | None = None,
        *,
        wrap: bool = True,
        timezone: str = LOCAL_TZ,
    ) -> None:
        self._foot = footfall
        self._flow = flow
        self.wrap = wrap
        self.timezone = timezone

    @classmethod
    def from_dataset(
        cls, ds: xr.Dataset, *, traffic: xr.Dataset | None = None, wrap: bool = True
    ) -> SimulatedDemand:
        """Wrap the footfall DES output (and optionally the traffic DES output).

        ``flow`` may be given per ``segment`` or per ``edge`` whose labels are segment ids
        (the two directions of a street are summed).
        """
        foot = ds.get("footfall")
        src = traffic if traffic is not None else ds
        flow = src.get("flow")
        if flow is not None and "segment" not in flow.dims and "edge" in flow.dims:
            flow = flow.groupby("edge").sum().rename(edge="segment")
        if foot is None and flow is None:
            msg = "ds: neither a 'footfall' nor a 'flow' variable; pass run_footfall() output"
            raise InputValidationError(msg)
        return cls(foot, flow, wrap=wrap)

    def _lookup(
        self, da: xr.DataArray | None, what: str, segments: Sequence[str], times: np.ndarray
    ) -> np.ndarray:
        if da is None:
            msg = f"{what}: the dataset has no {what} variable (run the matching simulation)"
            raise InputValidationError(msg)
        seg_index = pd.Index(da["segment"].values.astype(str))
        idx = seg_index.get_indexer(pd.Index([str(s) for s in segments]))
        if (idx < 0).any():
            missing = [s for s, i in zip(segments, idx, strict=True) if i < 0]
            msg = (
                f"segments: segment {missing[0]!r} is not in the simulated {what} "
                f"({len(missing)} missing)"
            )
            raise UnknownAssetError(msg)
        t_sim = np.asarray(da["time"].values, dtype="datetime64[ns]")
        t_q = np.asarray(times, dtype="datetime64[ns]")
        if len(t_sim) == 0:
            msg = f"{what}: the simulation has no time slots"
            raise InputValidationError(msg)
        step = t_sim[1] - t_sim[0] if len(t_sim) > 1 else np.timedelta64(3600, "s")
        pos = np.searchsorted(t_sim, t_q, side="right") - 1
        inside = (pos >= 0) & (t_q < t_sim[-1] + step)
        if not inside.all():
            if not self.wrap:
                bad = t_q[~inside][0]
                msg = f"times: {bad} is outside the simulated span {t_sim[0]} .. {t_sim[-1] + step}"
                raise InputValidationError(msg)
            # same local clock time of the simulated day
            sim_local = pd.DatetimeIndex(t_sim).tz_localize("UTC").tz_convert(self.timezone)
            q_local = pd.DatetimeIndex(t_q[~inside]).tz_localize("UTC").tz_convert(self.timezone)
            sim_min = np.asarray(sim_local.hour * 60 + sim_local.minute)
            q_min = np.asarray(q_local.hour * 60 + q_local.minute)
            order = np.argsort(sim_min, kind="stable")
            j = np.searchsorted(sim_min[order], q_min, side="right") - 1
            pos = pos.copy()
            pos[~inside] = order[np.clip(j, 0, len(order) - 1)]
        values = np.asarray(da.transpose("segment", "time").values, dtype=float)
        return np.asarray(values[idx][:, pos])

    def footfall(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour, shape ``(len(segments), len(times))``."""
        return self._lookup(self._foot, "footfall", segments, times)

    def traffic(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Vehicles per hour, shape ``(len(segments), len(times))``."""
        return self._lookup(self._flow, "flow", segments, times)
