"""Footfall: a discrete-event simulation of pedestrians on every walkable street for one day.

Pedestrians pass a point of each segment as a non-homogeneous Poisson process whose rate is
the demand model's pedestrian intensity (:meth:`DemandModel.pedestrian_intensity`), constant
within each slot (15 minutes by default) and including the day's events.

Two kinds of SimPy processes produce them (each a generator taking ``env`` first):

* :func:`street_batch`: a batch of segments; at the start of every slot it draws the slot's
  count of every segment of the batch at once (a Poisson draw per segment: the exact count of a
  Poisson process with a constant rate over the slot). A day of a whole city (8,000 segments x
  96 slots) takes well under a second this way.
* :func:`counter`: a segment with a footfall counter (the registry's ``footfall`` sensors).
  Every pedestrian is an event: arrivals are drawn by thinning (Lewis and Shedler) from the
  highest rate of the day, and each accepted arrival is recorded with its time, as a real counter
  would log it.

A :class:`Recorder` collects both; :func:`run_footfall` returns an :class:`xarray.Dataset`
with ``footfall(segment, time)`` (persons/h) and ``count(sensor, time)`` (persons per slot).

Examples
--------
>>> import simpy
>>> rec = Recorder(n_segment=1, n_slot=2, n_counter=1)
>>> env = simpy.Environment()
>>> rates = np.array([[3600.0, 0.0]])  # one a second, then none
>>> _ = env.process(counter(env, 0, 0, rates[0], 900.0, np.random.default_rng(1), rec))
>>> env.run()
>>> n = int(rec.counts[0, 0])
>>> int(rec.counts[0, 1]), 800 < n < 1000, n == int(rec.counter_counts[0, 0])
(0, True, True)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy
import xarray as xr

from twin._errors import InputValidationError
from twin.progress import progress_bar
from twin.scenarios.demand import DAY_TYPES, DemandModel, Event, build_demand, day_type_of
from twin.timeutil import validate_date

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["BATCH_SIZE", "Recorder", "counter", "run_footfall", "street_batch"]

BATCH_SIZE = 1024
"""Segments per :func:`street_batch` process."""


class Recorder:
    """Counts of pedestrians per segment and slot, and per counter and slot.

    Parameters
    ----------
    n_segment, n_slot, n_counter : int
    """

    def __init__(self, n_segment: int, n_slot: int, n_counter: int = 0) -> None:
        self.counts = np.zeros((n_segment, n_slot), dtype=np.int64)
        self.counter_counts = np.zeros((n_counter, n_slot), dtype=np.int64)
        self.arrivals: list[list[float]] = [[] for _ in range(n_counter)]

    def batch(self, slot: int, segments: np.ndarray, counts: np.ndarray) -> None:
        """Record the counts of a batch of segments in one slot."""
        self.counts[segments, slot] += counts

    def pedestrian(self, counter_index: int, segment: int, slot: int, t_s: float) -> None:
        """Record one pedestrian passing a counter at ``t_s`` (s since the start)."""
        self.counter_counts[counter_index, slot] += 1
        self.counts[segment, slot] += 1
        self.arrivals[counter_index].append(t_s)


def street_batch(
    env: simpy.Environment,
    segments: np.ndarray,
    rates: np.ndarray,
    slot_s: float,
    rng: np.random.Generator,
    rec: Recorder,
) -> Generator[simpy.Event, Any, None]:
    """Draw every slot's pedestrian count on a batch of segments.

    Parameters
    ----------
    env : simpy.Environment
    segments : numpy.ndarray
        Row indices of the batch in ``rates``.
    rates : numpy.ndarray
        ``(n_segment, n_slot)`` persons/h.
    slot_s : float
        Slot length (s).
    rng : numpy.random.Generator
    rec : Recorder
    """
    n_slot = rates.shape[1]
    for k in range(n_slot):
        rec.batch(k, segments, rng.poisson(rates[segments, k] * slot_s / 3600.0))
        yield env.timeout(slot_s)


def counter(
    env: simpy.Environment,
    index: int,
    segment: int,
    rates: np.ndarray,
    slot_s: float,
    rng: np.random.Generator,
    rec: Recorder,
) -> Generator[simpy.Event, Any, None]:
    """Pedestrians passing one counter, one event each (thinning of a piecewise rate).

    Parameters
    ----------
    env : simpy.Environment
    index : int
        Counter index in the recorder.
    segment : int
        Row of the counter's segment.
    rates : numpy.ndarray
        ``(n_slot,)`` persons/h on the segment.
    slot_s : float
    rng : numpy.random.Generator
    rec : Recorder
    """
    lam_max = float(np.max(rates, initial=0.0)) / 3600.0  # per s
    horizon = len(rates) * slot_s
    if lam_max <= 0:
        return
    t = float(env.now)
    while True:
        t += float(rng.exponential(1.0 / lam_max))
        if t >= horizon:
            return
        k = int(t // slot_s)
        if rng.random() * lam_max < rates[k] / 3600.0:
            yield env.timeout(t - env.now)
            rec.pedestrian(index, segment, k, t)


def _clock(
    env: simpy.Environment, n_slot: int, slot_s: float, bar: Any
) -> Generator[simpy.Event, Any, None]:
    for _ in range(n_slot):
        yield env.timeout(slot_s)
        bar.update(1)


def run_footfall(
    tw: Twin,
    *,
    day: dt.date | str,
    day_type: str | None = None,
    events: Iterable[Event] = (),
    slot_minutes: int = 15,
    rng: np.random.Generator | int | None = None,
    progress: bool = True,
    model: DemandModel | None = None,
) -> xr.Dataset:
    """Simulate one local day of pedestrians on every street of a twin.

    Parameters
    ----------
    tw : twin.model.Twin
    day : datetime.date or str
        Local calendar day (the city's time zone); DST days have 92 or 100 quarter-hour slots.
    day_type : {"weekday", "saturday", "sunday"}, optional
        Profile to use (default: from ``day``; give ``"sunday"`` for a public holiday).
    events : iterable of Event
        Concerts and markets (added to those of ``model``).
    slot_minutes : int
        Slot length, a divisor of 60.
    rng : numpy.random.Generator or int, optional
        Same seed, same result.
    progress : bool
        Show a progress bar over the slots.
    model : DemandModel, optional
        Demand model to use (default: :func:`build_demand` of ``tw`` with ``events``).

    Returns
    -------
    xarray.Dataset
        ``footfall(segment, time)`` persons/h on every segment (0 where nobody may walk),
        ``rate(segment, time)`` the expected persons/h, ``count(sensor, time)`` persons counted
        per slot by each footfall sensor; ``time`` is naive UTC (``attrs["timezone"] = "UTC"``).
    """
    day = validate_date(day, field="day")
    if day_type is not None and day_type not in DAY_TYPES:
        msg = f"day_type: {day_type!r} is not one of {DAY_TYPES}"
        raise InputValidationError(msg)
    events = tuple(events)
    if model is None:
        model = build_demand(tw, events=events)
    elif events:
        model = build_demand(tw, events=(*model.events, *events), params=model.params)
    rng = np.random.default_rng(rng)
    dtype = day_type or day_type_of(day)
    times, rates = model.pedestrian_intensity(day=day, day_type=dtype, slot_minutes=slot_minutes)
    slot_s = slot_minutes * 60.0
    n_walk, n_slot = rates.shape

    sensors = tw.registry["sensor"]
    sensors = sensors[sensors["sensor_type"] == "footfall"]
    walk_index = {s: i for i, s in enumerate(model.segments)}
    sensor_row = np.array([walk_index.get(s, -1) for s in sensors["segment"]], dtype=int)
    counted = np.unique(sensor_row[sensor_row >= 0])

    rec = Recorder(n_walk, n_slot, len(counted))
    env = simpy.Environment()
    free = np.setdiff1d(np.arange(n_walk), counted)
    for start in range(0, len(free), BATCH_SIZE):
        env.process(street_batch(env, free[start : start + BATCH_SIZE], rates, slot_s, rng, rec))
    for i, row in enumerate(counted):
        env.process(counter(env, i, int(row), rates[row], slot_s, rng, rec))
    with progress_bar(total=n_slot, desc=f"footfall {tw.city.name} {day}", unit="slot",
              disable=not progress) as bar:  # fmt: skip
        env.process(_clock(env, n_slot, slot_s, bar))
        env.run()

    seg_all = tw.registry["segment"].index.to_numpy(dtype=str)
    pos = {s: i for i, s in enumerate(seg_all)}
    rows = np.array([pos[s] for s in model.segments], dtype=int)
    foot = np.zeros((len(seg_all), n_slot))
    foot[rows] = rec.counts / (slot_s / 3600.0)
    expected = np.zeros((len(seg_all), n_slot))
    expected[rows] = rates
    counter_of = {int(r): i for i, r in enumerate(counted)}
    count = np.zeros((len(sensors), n_slot), dtype=np.int64)
    for j, r in enumerate(sensor_row):
        if r >= 0:
            count[j] = rec.counter_counts[counter_of[int(r)]]

    ds = xr.Dataset(
        coords={
            "segment": ("segment", seg_all),
            "time": (
                "time",
                np.asarray(times, dtype="datetime64[ns]"),
                {"timezone": "UTC", "long_name": "slot start"},
            ),
            "sensor": ("sensor", sensors.index.to_numpy(dtype=str)),
            "sensor_segment": (
                "sensor",
                sensors["segment"].to_numpy(dtype=str),
                {"long_name": "segment the sensor counts on"},
            ),
        }  # fmt: skip
    )
    ds["footfall"] = (
        ("segment", "time"),
        foot,
        {"units": "persons/h", "long_name": "pedestrians passing a point"},
    )
    ds["rate"] = (
        ("segment", "time"),
        expected,
        {"units": "persons/h", "long_name": "expected pedestrians (demand model)"},
    )
    ds["count"] = (
        ("sensor", "time"),
        count,
        {"units": "persons", "long_name": "pedestrians counted in the slot"},
    )
    ds.attrs.update(
        {
            "city": tw.city.name,
            "day": day.isoformat(),
            "day_type": dtype,
            "local_timezone": tw.city.timezone,
            "slot_minutes": int(slot_minutes),
            "events": len(model.events),
            "attribution": str(getattr(tw.city, "attribution", "")),
        }
    )
    return ds
