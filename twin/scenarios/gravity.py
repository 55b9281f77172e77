"""Trip generation and distribution: the doubly constrained gravity model of car trips.

* **trip generation**: :attr:`DemandParams.trip_rate` person trips per inhabitant and day,
  split by mode (:attr:`DemandParams.car_share` car-driver trips, that is vehicles, and
  :attr:`DemandParams.walk_share` walking trips).
* **distribution**: a doubly constrained gravity model
  ``T_ij = a_i b_j P_i A_j exp(-beta c_ij)`` on free-flow car time ``c_ij``, balanced by
  Furness / iterative proportional fitting (:func:`furness`).

French household travel surveys (*Enquêtes Ménages Déplacements*, EMD, standard Cerema method)
give 3.4 to 4.0 trips per person and day in large cities (about 3.6-3.8 in recent
surveys). In the centres of large cities the car-driver share is about 35-45% of trips and
walking 30-35%; the defaults of :class:`DemandParams` sit in these ranges and are what
:mod:`twin.scenarios.calibration` adjusts. Mean walking trips are 0.8-1 km long in the same
surveys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin._errors import ConvergenceError, InputValidationError
from twin.scenarios.events import Event
from twin.scenarios.profiles import (
    _OUTBOUND,
    DAY_FACTOR,
    DAY_TYPES,
    HOURLY_PROFILES,
    MODES,
    _check_day_type,
    _slots_per_hour,
    day_type_of,
    local_slots,
    profile,
)

if TYPE_CHECKING:
    from twin.scenarios.traffic import ODDemand

__all__ = [
    "LOADING_NODES",
    "ConvergenceError",
    "DemandModel",
    "DemandParams",
    "ZoneLoading",
    "furness",
]

log = logging.getLogger(__name__)


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


LOADING_NODES = 8
"""Nodes per zone where the assignments load its trips (:meth:`DemandModel.loading`)."""


@dataclasses.dataclass(frozen=True, eq=False)
class ZoneLoading:
    """Where the trips of each zone start and end: some nodes of it, each with a share.

    Parameters
    ----------
    n_zone : int
        Zones of the demand matrices this loading is for.
    zone : numpy.ndarray
        Zone index of each loading node.
    node : tuple
        Drive-graph node of each loading node (a node may serve two zones).
    weight : numpy.ndarray
        Share of its zone's trips each loading node takes (they sum to 1 over a zone).

    A trip from zone ``o`` to zone ``d`` goes from each loading node ``s`` of ``o`` to each
    ``t`` of ``d`` in the share ``weight[s] * weight[t]``, as the DES draws its trips' nodes
    (:meth:`DemandModel.trips`); the share whose two ends fall on one node stays put, within
    a zone too.
    """

    n_zone: int
    zone: np.ndarray
    node: tuple[Hashable, ...]
    weight: np.ndarray

    def __post_init__(self) -> None:
        zone = np.asarray(self.zone, dtype=np.int64)
        weight = np.asarray(self.weight, dtype=float)
        if zone.shape != weight.shape or len(self.node) != zone.size:
            msg = (
                f"ZoneLoading: {zone.size} zones, {len(self.node)} nodes and {weight.size} "
                "weights (one each per loading node)"
            )
            raise InputValidationError(msg)
        if zone.size and (zone.min() < 0 or zone.max() >= self.n_zone):
            msg = f"ZoneLoading.zone: indices must be within 0..{self.n_zone - 1}"
            raise InputValidationError(msg)
        if not np.all(weight > 0):
            msg = "ZoneLoading.weight: shares must be positive"
            raise InputValidationError(msg)
        total = np.bincount(zone, weights=weight, minlength=self.n_zone)
        if not np.allclose(total[np.unique(zone)], 1.0):
            msg = "ZoneLoading.weight: the shares of a zone's nodes must sum to 1"
            raise InputValidationError(msg)
        object.__setattr__(self, "zone", zone)
        object.__setattr__(self, "weight", weight)

    @classmethod
    def single(cls, zone_nodes: Sequence[Hashable]) -> ZoneLoading:
        """One node per zone (each zone's trips all start and end at its node).

        >>> ZoneLoading.single(["a", "b"]).weight.tolist()
        [1.0, 1.0]
        """
        n = len(zone_nodes)
        return cls(n, np.arange(n), tuple(zone_nodes), np.ones(n))


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
    deterrence_power : float
        ``alpha`` of the combined (Tanner) deterrence ``t^alpha exp(-beta t)`` (TAG unit M2.1's
        "combined" function; Ortúzar and Willumsen, *Modelling Transport*, 4th ed., 5.5.4);
        0, the default, is the exponential function. With ``alpha > 0`` the deterrence rises
        to its peak at ``t = alpha / beta`` and falls beyond it: the shortest trips are fewer.
        On Montpellier's counts it fits worse than the exponential (:mod:`.calibration`, Notes).
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
    deterrence_power: float = 0.0
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
    node_xy : numpy.ndarray, optional
        ``(n_node, 2)`` place of each of ``node_ids`` (EPSG:2154): :meth:`loading` spreads a
        zone's loading nodes over it.
    segments : tuple of str
        Walkable segment ids.
    seg_zone, seg_xy, seg_length_m, seg_weight : numpy.ndarray
        Zone, midpoint, length and pedestrian weight of each walkable segment.
    timezone : str
        The city's time zone: the local clock of the profiles
        (:attr:`twin.cities.City.timezone`).
    params : DemandParams
    events : tuple of Event
    event_xy : numpy.ndarray
        ``(n_event, 2)`` place of each event (EPSG:2154).
    event_zone : numpy.ndarray
        Zone of each event.
    od_factor : numpy.ndarray, optional
        ``(n_zone, n_zone)`` multipliers of the gravity OD cells, from a matrix estimation
        against counts (:func:`twin.scenarios.calibration.calibrate`); ``None``: the gravity OD.
    external_ends : numpy.ndarray, optional
        ``(n_zone, 2)`` veh/day: the gateways' trip ends in absolute terms, sized from the counts
        of their entry roads (:func:`twin.scenarios.calibration.size_gateways`). Column 0 is a
        gateway's row sum of :meth:`base_od` (one-way trips whose home end is outside: they enter
        on their outward leg), column 1 its column sum (trips whose activity end is outside:
        they leave on their outward leg); every zone with an ``external`` weight has finite,
        non-negative ends, the others NaN. With it, ``external_share`` is not used: the
        external traffic is what the counts say. ``None``: the gateways share
        ``external_share`` of the internal trips by their ``external`` weights.
    provenance : mapping
        Where each input came from: ``population``, ``activity``, ``external`` and ``zones``
        (free text naming the data and the method).
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
    timezone: str
    params: DemandParams = DemandParams()
    events: tuple[Event, ...] = ()
    event_xy: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    event_zone: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=int))
    od_factor: np.ndarray | None = None
    provenance: Mapping[str, str] = dataclasses.field(default_factory=dict)
    external_ends: np.ndarray | None = None
    node_xy: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.zone_ids)
        if self.external_ends is not None:
            ends = np.asarray(self.external_ends, dtype=float)
            gate = np.asarray(self.external, dtype=float).reshape(-1) > 0
            if ends.shape != (n, 2) or gate.shape != (n,):
                msg = f"DemandModel.external_ends: shape {ends.shape} must be ({n}, 2)"
                raise InputValidationError(msg)
            bad_gate = np.flatnonzero(gate & ~(ends >= 0).all(axis=1))
            if bad_gate.size:
                z = int(bad_gate[0])
                msg = (
                    f"DemandModel.external_ends: gateway {self.zone_ids[z]!r} has ends "
                    f"{ends[z].tolist()!r} (finite and >= 0 needed)"
                )
                raise InputValidationError(msg)
            ends = np.where(gate[:, None], ends, np.nan)
            object.__setattr__(self, "external_ends", ends)
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
        if self.node_xy is not None and np.shape(self.node_xy) != (len(self.node_ids), 2):
            msg = (
                f"DemandModel.node_xy: shape {np.shape(self.node_xy)} is not "
                f"({len(self.node_ids)}, 2) (one place per node)"
            )
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
        if mode == "car" and self.external_ends is not None:
            ends = self.external_ends.sum(axis=1)
            prod = np.where(np.isfinite(ends), ends, prod)
        elif mode == "car":
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
        if self.external_ends is None:
            ext = self.external / max(self.external.sum(), 1e-300) * p.external_share
            attr = np.where(ok, attr + ext, 0.0)
        else:
            # absolute gateway ends: rows as counted; the cells attract what the gateways do not,
            # so that the totals agree and Furness keeps the gateways' columns as counted too
            gate = np.isfinite(self.external_ends[:, 0])
            prod = np.where(gate & ok, self.external_ends[:, 0], prod)
            col = np.where(gate & ok, self.external_ends[:, 1], 0.0)
            internal = max(float(prod.sum() - col.sum()), 0.0)
            cells = np.where(ok & ~gate, attr, 0.0)
            attr = cells / max(cells.sum(), 1e-300) * internal + col
        f = self.deterrence(self.cost_min)
        f[~ok, :] = 0.0
        f[:, ~ok] = 0.0
        gw = self.external > 0
        f[np.ix_(gw, gw)] *= 0.5  # through traffic is a minority of external trips
        f[np.flatnonzero(gw), np.flatnonzero(gw)] = 0.0  # none enters and leaves by one gateway
        T, _ = furness(prod, attr, f)
        if self.od_factor is not None:
            T = T * self.od_factor
        object.__setattr__(self, "_od_cache", T)
        return T

    def deterrence(self, cost_min: np.ndarray) -> np.ndarray:
        """Deterrence of car trips of these free-flow times (min): 0 where there is no path.

        ``exp(-beta t)``, or the combined ``t^alpha exp(-beta t)`` with
        :attr:`DemandParams.deterrence_power` ``alpha > 0``.
        """
        p = self.params
        cost = np.asarray(cost_min, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            f = np.exp(-p.beta_per_min * cost)
            if p.deterrence_power > 0:
                f = f * np.power(np.maximum(cost, 0.0), p.deterrence_power)
        return np.where(np.isfinite(cost), f, 0.0)

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
                w = T.sum(axis=1) * self.deterrence(self.cost_min[:, ez])
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
        keep = self.node_ids[on] != self.node_ids[dn]  # a node may serve two zones
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

    def loading(self, nodes: int | None = LOADING_NODES) -> ZoneLoading:
        """Where the assignments load each reachable zone's trips: up to ``nodes`` of its nodes.

        The DES draws a trip's end among all the zone's nodes by their weight
        (:meth:`trips`); an assignment loads fewer, spread over the zone: the zone's node
        (:attr:`zone_node`) first, then each time the node farthest from those chosen
        (farthest-point sampling on :attr:`node_xy`). Each chosen node takes the weights of the
        zone's nodes nearest to it, so the shares are the DES's, gathered. ``nodes=None``
        loads on every node of the zone, as the DES does; ``nodes=1`` on the zone's node.
        """
        if nodes is not None and not (isinstance(nodes, int) and nodes >= 1):
            msg = f"loading.nodes: {nodes!r} must be a positive whole number or None"
            raise InputValidationError(msg)
        members: dict[int, dict[Hashable, tuple[float, int]]] = {}
        for i, (z, n, w) in enumerate(
            zip(self.node_zone.tolist(), self.node_ids, self.node_weight.tolist(), strict=True)
        ):
            w0, i0 = members.setdefault(int(z), {}).get(n, (0.0, i))
            members[int(z)][n] = (w0 + float(w), i0)
        zones: list[int] = []
        out_nodes: list[Hashable] = []
        out_w: list[float] = []
        for z, rep in enumerate(self.zone_node):
            if rep is None:
                continue
            cand = members.get(z) or {rep: (1.0, -1)}
            names = list(cand)
            w = np.array([cand[n][0] for n in names])
            if nodes is not None and len(names) > nodes:
                if self.node_xy is None:  # no places to spread them by: the heaviest nodes
                    top = np.sort(np.argsort(-w, kind="stable")[:nodes])
                    w, names = w[top], [names[i] for i in top]
                    chosen = list(range(len(names)))
                    near = np.arange(len(names))
                else:
                    xy = np.asarray(self.node_xy, dtype=float)[[cand[n][1] for n in names]]
                    first = names.index(rep) if rep in cand else int(np.argmax(w))
                    chosen = [first]
                    dist = np.hypot(*(xy - xy[first]).T)
                    while len(chosen) < nodes:
                        j = int(np.argmax(dist))
                        chosen.append(j)
                        dist = np.minimum(dist, np.hypot(*(xy - xy[j]).T))
                    near = np.argmin(np.stack([np.hypot(*(xy - xy[c]).T) for c in chosen]), axis=0)
            else:
                chosen = list(range(len(names)))
                near = np.arange(len(names))
            share = np.bincount(near, weights=w, minlength=len(chosen))
            share = share / share.sum()
            for c, s in zip(chosen, share.tolist(), strict=True):
                if s > 0:
                    zones.append(z)
                    out_nodes.append(names[c])
                    out_w.append(s)
        return ZoneLoading(len(self.zone_ids), np.array(zones, dtype=np.int64), tuple(out_nodes),
                           np.array(out_w))  # fmt: skip

    def od_demand(
        self, *, day: dt.date | None = None, day_type: str | None = None, slot_minutes: int = 15
    ) -> ODDemand:
        """Return the day's demand as :class:`twin.scenarios.traffic.ODDemand` (reachable zones)."""
        from twin.scenarios.traffic import ODDemand  # the DES; imported here to stay light

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
