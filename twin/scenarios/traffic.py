"""Mesoscopic traffic simulation on the drive graph.

Model
-----
Each drive edge is a FIFO link with a free-flow travel time and a discharge capacity, in the
spirit of the queue-based mesoscopic models (Gawron 1998; SUMO's meso mode, Eissfeldt 2004):

* a vehicle entering edge ``e`` at time ``t`` may leave it at ``t + length / (v_free * f)``
  (on a net imported from SUMO, whose edges stop at the junctions' borders, ``length`` is at
  least the distance between the edge's end nodes, so the junction crossing counts), with
  ``f`` its speed factor (``N(1, speed_factor_sd)`` clipped to [0.5, 1.5], drawn from ``rng``,
  like SUMO's default ``speedFactor``), but only in entry order (no overtaking);
* the end of the edge discharges at ``saturation_flow`` (1,800 pcu/h) per open lane and, on a
  signalised approach, only while its phase is green (:mod:`twin.scenarios.signals`); each lane
  is a queue: a turn to the kerb side leaves from the kerb lane, a turn across the opposing
  flow or a U-turn from the lane nearest the centre, a through movement from any lane (the
  lane use ``netconvert`` gives a plain junction), so a turn that one lane serves discharges at
  one lane's rate; a vehicle that may use several lanes drives in one of them (spread evenly
  by vehicle) and keeps it in the queue, and a vehicle held by its signal or a full next edge
  holds those behind it in its lane;
* a turn pocket at an edge's end (edge attributes ``pocket_left``/``pocket_right``, lanes, and
  ``pocket_left_m``/``pocket_right_m``, storage; :mod:`twin.derive.pockets`) is an extra lane
  at the stop line that only its turn uses, discharging one lane's saturation flow and storing
  ``pocket_m / jam_spacing_m`` vehicles (added to the edge's storage): a left turner waiting
  in it for a gap or its stage holds only the pocket, not the through vehicles behind it; one
  that finds the pocket full stands in the lane beside it (the centre lane for a left pocket,
  the kerb lane for a right one) and holds that lane, and one with more held vehicles ahead
  of it in that lane than the pocket stores cannot reach the pocket's entry;
* a vehicle leaves only if its next edge has storage left (``lanes * length / jam_spacing_m``),
  so queues spill back; a head vehicle that has waited ``max_blocked_s`` for room is let
  through (as SUMO teleports a vehicle that has stood for ``--time-to-teleport``), which
  resolves grid-lock, and is counted (``n_forced``); the wait counts from the first step the
  head could otherwise have left, and only the head's, so a queue that spills back keeps
  blocking upstream;
* a closed edge (every lane closed) takes no vehicle, forced or not: a head whose next edge
  is closed is routed again from where it is, round the closure, unless its trip carries its
  own route or there is no way round (it then waits, and looks again ``reroute_s`` later);
  a trip whose first edge is closed waits to depart;
* a vehicle whose route ends on the edge leaves it at its ready time, without waiting for the
  signal (it stops before the stop line), but never before the vehicles ahead of it;
* at an unsignalised junction with three or more approaches (a priority junction), the two
  highest-ranked approaches that face each other form the major road and discharge freely; the
  others are minor and give way: their capacity per lane is Siegloch's gap-acceptance formula
  (Siegloch 1973; HCM 2000 eq. 17-3) ``c = 3600 / t_f * exp(-q_p (t_c - t_f / 2) / 3600)``
  veh/h, with ``q_p`` the current flow of the major approaches (veh/h, smoothed over
  ``priority_window_s``), ``t_c`` the critical gap and ``t_f`` the follow-up time (HCM 2000
  Exhibit 17-5, minor-street through movement at a two-way stop: 6.5 s and 4.0 s). Approaches
  are ranked by the edge attribute ``priority`` (SUMO's edge priority) when present, then by
  road class, lanes and speed; ties between two axes go to the one nearest north-south (what
  ``netconvert`` picks on a regular grid);
* at any junction, a left turn or U-turn (for ``drive_on="right"``) of an approach that faces
  an opposing approach gives way to it (a permissive left turn, SUMO's ``g`` links): it uses
  ``saturation_flow / c_L`` vehicles of its edge's capacity, with ``c_L`` the same formula with
  the opposing flow and the major-street left-turn gaps (HCM 2000: 4.1 s and 2.2 s), so the
  vehicles behind it in its lane wait too (the lane's capacity credit may go into debt);
* a vehicle that stops at a stop line loses the time to start again, on the edges where it
  accelerates, and not its braking: the wait at the line counts from when it would have
  reached the line cruising, so its braking happens within that wait. A queue that starts from
  standstill discharges, in Newell's car-following model (Newell 2002, "A simplified
  car-following theory"), as copies of its head's trajectory, each a reaction time and a jam
  spacing ``s_j`` behind the one ahead: the ``k``-th vehicle crosses the line at the speed the
  head had ``k s_j`` past it, ``u_k = min(v, sqrt(2 a k s_j))``, and every vehicle of the queue
  ends up ``v / 2a`` behind where it would be had it crossed the line cruising at its
  saturation-flow time (the queue's start-up lost time: 2.7 s at 50 km/h, HCM's is 2 s). The
  saturation flow already spaces the crossings (and is not cut a second time), and the
  effective green is the displayed green (HCM's effective green ``G + Y - l_1 - l_2``: 2 s
  of start-up loss set against 2 s used of the 3-4 s amber), so each vehicle that stood loses
  ``v / 2a`` after its crossing in the DES: its acceleration after the line,
  ``(v - u_k)^2 / 2av``, on the edges where it accelerates (a vehicle from standstill needs
  ``v^2 / 2a`` = 37 m at 50 km/h: it drives a 12 m edge in ``sqrt(2 L / a)`` = 3.0 s instead
  of 0.9 s and goes on accelerating on the next), and the part of its start-up before the line,
  ``v / 2a - (v - u_k)^2 / 2av``, on the edge it enters (the queue, shifted as a whole, still
  discharges at saturation flow; the old charge of ``v / 2 (1/a + 1/b)`` to every held vehicle
  on its next edge held a 12 m edge 4.2 s longer per vehicle and throttled its approach). A
  lane's discharge is from standstill when its previous vehicle crossed more than 1.5
  saturation headways (or steps) before; behind a vehicle that was not held it is a moving
  stream, which loses nothing (a queue at capacity runs at free speed in a triangular
  fundamental diagram). A vehicle held only ``w`` s brakes just enough to absorb it
  (``(v - u)^2 / 2bv = w``) and loses ``min(v / 2a, b w / a)`` in all. A vehicle on a give-way
  approach that goes on stops at its end to look (HCM's control delay at a two-way stop): it
  loses its braking ``v / 2b`` on that edge, then starts from standstill; in all
  ``v / 2 (1 / a + 1 / b)`` when nothing holds it (4.2 s at 50 km/h). ``a = 2.6`` and
  ``b = 4.5`` m/s2 are SUMO's passenger car's.

Hand-worked: a minor lane facing 900 veh/h of major traffic gets
``c = 900 * exp(-900 * 4.5 / 3600) = 292`` veh/h; facing none, ``3600 / 4 = 900`` veh/h; a
left turn across 900 veh/h uses ``1800 / (1636 * exp(-900 * 3.0 / 3600)) = 2.33`` vehicles.

Event structure and state
-------------------------
SimPy orders the events: a *stepper* process advances the link model every ``dt_s`` (1-5 s), a
*router* process computes routes every ``reroute_s`` for the trips departing in the next window,
and one process per disturbance (:class:`Incident`, :class:`SpeedChange`, :class:`PlanChange`)
applies it at its time. The state is vectorised: numpy
arrays over edges (counts, capacity credits, open lanes) and over vehicles (route position,
ready time), plus one ring buffer per edge holding the ids of the vehicles on it in entry order.
A step only touches the heads of the occupied edges, so its cost grows with the number of
vehicles that move, not with the network size. Exit times are exact (the ready time) when a
vehicle was not held, so the step length does not bias travel times.

Routing uses the current link costs (free time, or the time to discharge the vehicles present,
whichever is larger, plus Webster's uniform signal delay ``C (1 - g/C)^2 / 2`` on a signalised
approach and, on a give-way approach, the HCM control delay with no queue, ``3600 / c`` plus the
stop to look; a queue at the stop line discharges at the edge's recent outflow where a full
edge downstream holds it below capacity, so routes go round spillback), or given link times
per period (``TrafficScenario.routing_times``, e.g. an equilibrium assignment's), with
:func:`scipy.sparse.csgraph.dijkstra` batched by origin and a vectorised walk of the predecessor
matrix. A route is fixed at departure; a disturbance (:class:`TrafficSimulation`: lanes,
speeds, a signal plan) re-routes the trips routed ahead that have not left yet. Trips may also
carry their own routes (for instance SUMO duarouter's), which are then followed as given.

Outputs
-------
:func:`run` returns an :class:`xarray.Dataset` with, per edge and time slot, the ``flow`` (veh/h
entering), ``speed`` (space-mean m/s of the vehicles that left the edge in the slot, NaN when
none did) and ``queue`` (time-mean number of vehicles held at the head, by Little's law); per
trip the departure, arrival and ``travel_time``; per origin-destination pair the
``mean_travel_time``; per signalised approach the mean ``delay``, the share of vehicles that
``stops`` there (a stop: a vehicle held at the head past its ready time, by a red, a queue
ahead discharging or a full next edge; those that stood are charged the start-up loss) and
its ``junction``.

>>> import networkx as nx
>>> g = nx.MultiDiGraph(crs="EPSG:2154")
>>> g.add_nodes_from([(0, {"x": 0.0, "y": 0.0}), (1, {"x": 500.0, "y": 0.0})])
>>> _ = g.add_edge(0, 1, length=500.0, speed_kph=36.0, lanes=1, highway="primary")
>>> ds = run(TrafficScenario(g, trips=(Trip("a", 0, 1, 0.0),), speed_factor_sd=0.0), rng=1)
>>> float(ds["travel_time"].sel(trip="a"))
50.0
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import simpy
import xarray as xr
from scipy import sparse
from scipy.sparse import csgraph

from twin._errors import InputValidationError
from twin.progress import progress_bar
from twin.scenarios.signals import SATURATION_FLOW_PCU_H_LANE, EdgeKey, SignalPlan

__all__ = [
    "Disturbance",
    "SignalProgram",
    "Incident",
    "ODDemand",
    "PlanChange",
    "SpeedChange",
    "TrafficScenario",
    "TrafficSimulation",
    "Trip",
    "edge_index",
    "gap_acceptance_capacity",
    "hcm_potential_capacity",
    "run",
]

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class Trip:
    """One vehicle trip.

    Parameters
    ----------
    id : str
        Trip id (unique in a scenario).
    origin_node, dest_node : hashable
        Graph nodes where the trip starts and ends.
    depart_s : float
        Departure time (s since the scenario's ``t0``).
    route : tuple of edge keys, optional
        Edges ``(u, v, key)`` to follow; ``None`` to route on current travel times.
    """

    id: str
    origin_node: Hashable
    dest_node: Hashable
    depart_s: float
    route: tuple[EdgeKey, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Incident:
    """Lanes of one edge closed for a time window.

    Parameters
    ----------
    edge : edge key
        ``(u, v, key)`` of the edge (``(u, v)`` means key 0).
    lanes_closed : int
        Number of lanes closed (all of them closes the edge).
    start_s, end_s : float
        Window of the closure (s since ``t0``).
    """

    edge: EdgeKey
    lanes_closed: int
    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if self.lanes_closed < 1:
            msg = f"Incident.lanes_closed: {self.lanes_closed!r} must be at least 1"
            raise InputValidationError(msg)
        if not (math.isfinite(self.start_s) and math.isfinite(self.end_s)):
            msg = f"Incident({self.edge!r}): start_s and end_s must be finite"
            raise InputValidationError(msg)
        if self.end_s <= self.start_s:
            msg = f"Incident({self.edge!r}).end_s: {self.end_s} is not after start_s {self.start_s}"
            raise InputValidationError(msg)


@dataclasses.dataclass(frozen=True)
class SpeedChange:
    """Free speed of some edges multiplied by a factor for a time window (snow, works, a limit).

    Vehicles entering an edge while the change holds drive it at the changed speed; those
    already on it keep the time they were given on entry. Overlapping changes multiply.

    Parameters
    ----------
    edges : tuple of edge keys
        ``(u, v, key)`` of the edges (``(u, v)`` means key 0).
    factor : float
        Multiplier of the free speed, in (0, 2] (0.6: untreated snow, 30-50% slower).
    start_s : float
        Start of the change (s since ``t0``).
    end_s : float, optional
        End of the change (s since ``t0``); ``None``: until the end of the run.
    """

    edges: tuple[EdgeKey, ...]
    factor: float
    start_s: float
    end_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", tuple(self.edges))
        if not self.edges:
            msg = "SpeedChange.edges: give at least one edge"
            raise InputValidationError(msg)
        if not (math.isfinite(self.factor) and 0 < self.factor <= 2):
            msg = f"SpeedChange.factor: {self.factor!r} is outside (0, 2]"
            raise InputValidationError(msg)
        if not math.isfinite(self.start_s):
            msg = f"SpeedChange.start_s: {self.start_s!r} must be finite"
            raise InputValidationError(msg)
        if self.end_s is not None and not self.end_s > self.start_s:
            msg = f"SpeedChange.end_s: {self.end_s!r} is not after start_s {self.start_s!r}"
            raise InputValidationError(msg)


@dataclasses.dataclass(frozen=True)
class PlanChange:
    """A junction switches to another fixed-time plan at a given time.

    The plan replaces the junction's current one from ``at_s`` on. An approach that the old
    plan served and the new one does not is left unsignalised (its lights off).

    Parameters
    ----------
    plan : SignalPlan
        The new plan; its approaches must be graph edges.
    at_s : float
        When it takes over (s since ``t0``).
    """

    plan: SignalPlan
    at_s: float

    def __post_init__(self) -> None:
        if not isinstance(self.plan, SignalPlan):
            msg = f"PlanChange.plan: {self.plan!r} is not a SignalPlan"
            raise InputValidationError(msg)
        if not math.isfinite(self.at_s):
            msg = f"PlanChange.at_s: {self.at_s!r} must be finite"
            raise InputValidationError(msg)


@dataclasses.dataclass(frozen=True)
class SignalProgram:
    """A junction's fixed-time program per movement, as it runs on the street.

    Where a :class:`~twin.scenarios.signals.SignalPlan` (what the twin designs, within the
    40-120 s cycle of good practice) gives right of way per approach, a program read from a
    controller or a SUMO net (:func:`twin.sumo.read_signal_programs`) gives each movement (an
    approach edge to the edge it leads into) its own green windows: a right turn green in two
    stages leaves the through movement red in one of them. It is simulated as it is, whatever
    its cycle length.

    Parameters
    ----------
    junction : str
        Junction (traffic light) id.
    cycle_s : float
        Cycle (s), positive.
    offset_s : float
        Program time 0 relative to the common time origin (s), in ``[0, cycle_s)``.
    movements : tuple of (edge key, edge key, windows)
        Each movement ``(from edge, to edge, ((start, end), ...))``, windows within the cycle
        (s, program time) during which it has green.
    """

    junction: str
    cycle_s: float
    offset_s: float
    movements: tuple[tuple[EdgeKey, EdgeKey, tuple[tuple[float, float], ...]], ...]

    def __post_init__(self) -> None:
        j = self.junction
        if not (math.isfinite(self.cycle_s) and self.cycle_s > 0):
            msg = f"SignalProgram({j}).cycle_s: {self.cycle_s!r} must be a positive duration"
            raise InputValidationError(msg)
        if not (math.isfinite(self.offset_s) and 0 <= self.offset_s < self.cycle_s):
            msg = f"SignalProgram({j}).offset_s: {self.offset_s!r} is outside [0, cycle_s)"
            raise InputValidationError(msg)
        moves = []
        for a, b, windows in self.movements:
            w = tuple((float(x), float(y)) for x, y in windows)
            for x, y in w:
                if not (0 <= x < y <= self.cycle_s + 1e-6):
                    msg = (
                        f"SignalProgram({j}).movements: window ({x:g}, {y:g}) of {a!r} -> {b!r} "
                        f"is not within the {self.cycle_s:g} s cycle"
                    )
                    raise InputValidationError(msg)
            moves.append((tuple(a), tuple(b), w))
        object.__setattr__(self, "movements", tuple(moves))

    def green_ratio(self, approach: EdgeKey, to: EdgeKey) -> float:
        """Share of the cycle during which the movement ``approach -> to`` has green."""
        total = sum(y - x for a, b, w in self.movements if a == approach and b == to for x, y in w)
        return float(total) / self.cycle_s


Disturbance = Incident | SpeedChange | PlanChange
"""What a scenario (or a caller during a run) may change: lanes, speeds, signal plans."""


@dataclasses.dataclass(frozen=True)
class ODDemand:
    """Origin-destination demand per time slot.

    Parameters
    ----------
    zones : tuple of str
        Zone names.
    zone_nodes : tuple of hashable
        Graph node where each zone's trips start and end.
    trips_per_h : numpy.ndarray
        Demand, shape ``(slot, origin zone, destination zone)``, in veh/h.
    slot_s : float
        Slot length (s); slot ``i`` covers ``[i * slot_s, (i + 1) * slot_s)``.
    """

    zones: tuple[str, ...]
    zone_nodes: tuple[Hashable, ...]
    trips_per_h: np.ndarray
    slot_s: float = 900.0

    def __post_init__(self) -> None:
        rates = np.asarray(self.trips_per_h, dtype=float)
        nz = len(self.zones)
        if len(self.zone_nodes) != nz:
            msg = f"ODDemand.zone_nodes: {len(self.zone_nodes)} nodes for {nz} zones"
            raise InputValidationError(msg)
        if rates.ndim != 3 or rates.shape[1:] != (nz, nz):
            msg = (
                f"ODDemand.trips_per_h: shape {rates.shape} is not (slot, {nz}, {nz}) "
                "(slot, origin zone, destination zone)"
            )
            raise InputValidationError(msg)
        bad = np.argwhere(~(rates >= 0))  # NaN or negative
        if bad.size:
            s, o, d = (int(i) for i in bad[0])
            msg = (
                f"ODDemand.trips_per_h: {rates[s, o, d]!r} veh/h from zone {self.zones[o]!r} to "
                f"zone {self.zones[d]!r} in slot {s} is negative or NaN "
                f"({len(bad)} such cells)"
            )
            raise InputValidationError(msg)
        if self.slot_s <= 0:
            msg = f"ODDemand.slot_s: {self.slot_s!r} must be positive"
            raise InputValidationError(msg)
        object.__setattr__(self, "trips_per_h", rates)

    def sample(self, rng: np.random.Generator) -> list[Trip]:
        """Draw trips: Poisson counts per cell and slot, departures uniform within the slot."""
        mean = self.trips_per_h * self.slot_s / 3600.0
        counts = rng.poisson(mean)
        s, o, d = np.nonzero(counts)
        n = counts[s, o, d]
        s, o, d = np.repeat(s, n), np.repeat(o, n), np.repeat(d, n)
        depart = (s + rng.random(s.size)) * self.slot_s
        order = np.argsort(depart, kind="stable")
        return [
            Trip(f"od{i}", self.zone_nodes[o[j]], self.zone_nodes[d[j]], float(depart[j]))
            for i, j in enumerate(order)
            if o[j] != d[j]
        ]


@dataclasses.dataclass(frozen=True)
class TrafficScenario:
    """Everything a traffic run needs; picklable (graph, tuples of dataclasses, arrays).

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        Drive graph (EPSG:2154): edges with ``length`` (m), ``speed_kph``, ``lanes``; optional
        turn pockets at their ends: ``pocket_left``/``pocket_right`` (lanes, 0-8) with
        ``pocket_left_m``/``pocket_right_m`` (storage, m) and ``lanes_line`` (lanes at the
        stop line, pockets included; default the edge's lanes plus its pockets).
    trips : tuple of Trip
        Explicit trips (with or without routes).
    demand : ODDemand, optional
        Zone demand sampled with ``rng`` in addition to ``trips``.
    plans : tuple of SignalPlan
        Fixed-time plans; their approaches must be graph edges.
    programs : tuple of SignalProgram
        Fixed-time programs per movement (read from a SUMO net or a controller), at junctions
        that no plan serves.
    incidents : tuple of Incident
        Lane closures.
    disturbances : tuple of Incident, SpeedChange or PlanChange
        Scheduled changes of lanes, speeds and signal plans (what crisis scenarios apply;
        :class:`TrafficSimulation` also takes them during a run).
    t0 : datetime.datetime
        Start (tz-aware, converted to UTC).
    duration_s : float, optional
        Simulated time; default: until every trip has arrived (at most ``max_extra_s`` after
        the last departure).
    dt_s : float
        Step of the link model (s), 0.5-5.
    slot_s : float
        Output slot (s).
    reroute_s : float
        Period of route computation on current costs (s).
    saturation_flow : float
        Saturation flow (pcu/h/lane).
    jam_spacing_m : float
        Road length per stored vehicle and lane (m).
    speed_factor_sd : float
        Standard deviation of the vehicles' speed factor (SUMO's default is 0.1).
    spillback : bool
        Hold vehicles whose next edge is full.
    max_blocked_s : float
        Longest a ready head vehicle is held for lack of space downstream (s); never lets one
        into a closed edge.
    priority_junctions : bool
        Minor approaches of unsignalised junctions give way to the major road (gap acceptance).
    critical_gap_s, follow_up_s : float
        Gap-acceptance parameters of a through movement from a minor approach (s); HCM values
        by default. Right and left turns from a minor approach use HCM's own
        (``MINOR_RIGHT_GAPS_S``, ``MINOR_LEFT_GAPS_S``).
    priority_window_s : float
        Time constant of the smoothing of the major-road flow seen by the minor approaches (s).
    left_turns_yield : bool
        Left turns (and U-turns) give way to the opposing approach (a permissive left turn).
    multi_queue : bool
        One queue per lane at the end of an edge of two lanes or more, each discharging one
        lane's saturation flow, turns from their own lanes (kerb lane for a turn to the kerb
        side, centre lane for a turn across), through vehicles spread over the lanes and
        keeping theirs, so that a vehicle held by its signal or a full next edge holds only
        those behind it in its lane (as SUMO micro's lanes); one FIFO queue per edge,
        discharging all its lanes' flow to any movement, otherwise.
    pockets : bool
        Model the turn pockets the graph's edges carry (``pocket_left``, ``pocket_right``, see
        above); off, the edges run as if they had none (to measure what the pockets change).
    stop_loss : bool
        Charge the time lost starting again to the vehicles that stopped at a stop line (a
        red, a queue, a full next edge, a give-way approach): ``v / 2a`` to each vehicle of a
        queue that started from standstill, over the edges on which it accelerates, less to
        one held briefly, and the braking ``v / 2b`` to a vehicle that stops at the end of a
        give-way approach (see the module's model).
    drive_on : {"right", "left"}
        Side of the road traffic drives on (which turns cross the opposing flow).
    max_extra_s : float
        With no ``duration_s``, stop at most this long after the last departure (s).
    route_on_discharge : bool
        Routing on current times counts a queue at a stop line as draining at the edge's
        recent discharge (smoothed over ``priority_window_s``, at least one vehicle per
        ``max_blocked_s``) where that is below its capacity, so that routes avoid queues held
        by spillback; at capacity otherwise.
    route_give_way : bool
        Routing on current times counts, at the end of each give-way approach, the delay a
        vehicle expects there with no queue (HCM's control delay at a two-way stop, ``3600 / c``
        at the current major flow, plus the stop to look), as it counts a signal's uniform
        delay; without it routes cut through side streets whose exits onto a busy main road
        cannot take them.
    routing_times : tuple of (float, numpy.ndarray)
        Link times to route on instead of the current ones: ``(start_s, time per edge in the
        graph's edge order, s)``, in increasing ``start_s``; a trip departing at ``t`` takes a
        shortest path on the times of the last entry starting at or before ``t`` (for
        instance an equilibrium assignment's link times of its departure hour, so that trips
        follow paths of the equilibrium; see :func:`twin.scenarios.assignment.equilibrium_times`).
        Before the first entry, and with none, trips route on the current times.
    progress : bool, optional
        Show a progress bar; default from the settings.
    """

    graph: nx.MultiDiGraph
    trips: tuple[Trip, ...] = ()
    demand: ODDemand | None = None
    plans: tuple[SignalPlan, ...] = ()
    programs: tuple[SignalProgram, ...] = ()
    incidents: tuple[Incident, ...] = ()
    disturbances: tuple[Disturbance, ...] = ()
    t0: dt.datetime = _EPOCH
    duration_s: float | None = None
    dt_s: float = 1.0
    slot_s: float = 900.0
    reroute_s: float = 600.0
    saturation_flow: float = SATURATION_FLOW_PCU_H_LANE
    jam_spacing_m: float = 7.5
    speed_factor_sd: float = 0.1
    spillback: bool = True
    max_blocked_s: float = 300.0
    priority_junctions: bool = True
    critical_gap_s: float = 6.5
    follow_up_s: float = 4.0
    priority_window_s: float = 60.0
    left_turns_yield: bool = True
    multi_queue: bool = True
    pockets: bool = True
    stop_loss: bool = True
    drive_on: str = "right"
    max_extra_s: float = 4 * 3600.0
    routing_times: tuple[tuple[float, np.ndarray], ...] = ()
    route_on_discharge: bool = True
    route_give_way: bool = True
    progress: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "trips", tuple(self.trips))
        object.__setattr__(self, "plans", tuple(self.plans))
        object.__setattr__(self, "programs", tuple(self.programs))
        object.__setattr__(self, "incidents", tuple(self.incidents))
        object.__setattr__(self, "disturbances", tuple(self.disturbances))
        for i, d in enumerate(self.disturbances):
            if not isinstance(d, Incident | SpeedChange | PlanChange):
                msg = (
                    f"TrafficScenario.disturbances[{i}]: {d!r} is not an Incident, SpeedChange "
                    "or PlanChange"
                )
                raise InputValidationError(msg)
        if self.t0.tzinfo is None:
            msg = "TrafficScenario.t0: give a tz-aware datetime (UTC inside the twin)"
            raise InputValidationError(msg)
        object.__setattr__(self, "t0", self.t0.astimezone(dt.UTC))
        for name, lo, hi in (
            ("dt_s", 0.5, 5.0),
            ("slot_s", 60.0, 86400.0),
            ("reroute_s", 60.0, 86400.0),
            ("saturation_flow", 100.0, 3000.0),
            ("jam_spacing_m", 4.0, 20.0),
            ("speed_factor_sd", 0.0, 0.3),
            ("max_blocked_s", 10.0, 86400.0),
            ("critical_gap_s", 1.0, 15.0),
            ("follow_up_s", 0.5, 10.0),
            ("priority_window_s", 1.0, 3600.0),
        ):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and lo <= value <= hi):
                msg = f"TrafficScenario.{name}: {value!r} is outside [{lo}, {hi}]"
                raise InputValidationError(msg)
        if self.duration_s is not None and not self.duration_s > 0:
            msg = f"TrafficScenario.duration_s: {self.duration_s!r} must be positive"
            raise InputValidationError(msg)
        if self.follow_up_s / 2 > self.critical_gap_s:
            msg = (
                f"TrafficScenario.follow_up_s: {self.follow_up_s!r} is more than twice "
                f"critical_gap_s {self.critical_gap_s!r}"
            )
            raise InputValidationError(msg)
        if self.drive_on not in ("right", "left"):
            msg = f"TrafficScenario.drive_on: {self.drive_on!r} is not 'right' or 'left'"
            raise InputValidationError(msg)
        if not self.trips and self.demand is None:
            msg = "TrafficScenario: give trips or demand"
            raise InputValidationError(msg)
        times: list[tuple[float, np.ndarray]] = []
        for i, entry in enumerate(self.routing_times):
            start, cost = float(entry[0]), np.asarray(entry[1], dtype=float)
            if not math.isfinite(start) or (times and start <= times[-1][0]):
                msg = (
                    f"TrafficScenario.routing_times[{i}]: start {entry[0]!r} s is not finite "
                    "and after the previous entry's"
                )
                raise InputValidationError(msg)
            if cost.ndim != 1 or not (cost > 0).all():
                msg = (
                    f"TrafficScenario.routing_times[{i}]: the link times must be one positive "
                    "number (s) per edge"
                )
                raise InputValidationError(msg)
            times.append((start, cost))
        object.__setattr__(self, "routing_times", tuple(times))


def edge_index(graph: nx.MultiDiGraph) -> dict[EdgeKey, int]:
    """Position of each edge ``(u, v, key)`` in the run's edge order (the graph's order)."""
    return {(u, v, k): i for i, (u, v, k) in enumerate(graph.edges(keys=True))}


def _edge_attr(graph: nx.MultiDiGraph, name: str, *, kind: type, minimum: float) -> np.ndarray:
    values = []
    for u, v, k, val in graph.edges(keys=True, data=name):
        if isinstance(val, list | tuple):  # osmnx keeps lists for merged ways
            val = val[0]
        try:
            x = kind(float(val))
        except (TypeError, ValueError):
            msg = f"graph edge {(u, v, k)!r}: attribute {name!r} = {val!r} is not a number"
            raise InputValidationError(msg) from None
        if not x >= minimum:
            msg = f"graph edge {(u, v, k)!r}: attribute {name!r} = {val!r} is below {minimum}"
            raise InputValidationError(msg)
        values.append(x)
    return np.asarray(values, dtype=float)


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


class _Network:
    """Static arrays of the drive graph in edge order."""

    def __init__(self, sc: TrafficScenario) -> None:
        g = sc.graph
        if g.number_of_edges() == 0:
            msg = "TrafficScenario.graph: the graph has no edges"
            raise InputValidationError(msg)
        self.edges = list(g.edges(keys=True))
        self.index = {e: i for i, e in enumerate(self.edges)}
        self.nodes = list(g.nodes)
        self.node_index = {n: i for i, n in enumerate(self.nodes)}
        self.u = np.array([self.node_index[e[0]] for e in self.edges], dtype=np.int64)
        self.v = np.array([self.node_index[e[1]] for e in self.edges], dtype=np.int64)
        self.length = _edge_attr(g, "length", kind=float, minimum=0.1)
        self.vfree = _edge_attr(g, "speed_kph", kind=float, minimum=1.0) / 3.6
        # lanes in the direction of travel (a twin's `lanes` counts both directions of a road)
        per_dir = all("lanes_dir" in d for *_, d in g.edges(data=True))
        lanes = _edge_attr(g, "lanes_dir" if per_dir else "lanes", kind=int, minimum=1)
        self.lanes = np.maximum(lanes, 1.0)
        # the distance driven includes the junctions: on an imported SUMO net (nodes with a
        # `sumo_type`), an edge's length stops at the junctions' borders, so the vehicle also
        # drives the junction: the edge counts at least the distance between its end nodes
        # (an OSM edge's geometry already runs node to node)
        self.travel_length = self.length.copy()
        sumo_nodes = np.array(["sumo_type" in g.nodes[n] for n in self.nodes])
        both = sumo_nodes[self.u] & sumo_nodes[self.v]
        if both.any():
            xy = np.array(
                [
                    (float(g.nodes[n].get("x", 0.0)), float(g.nodes[n].get("y", 0.0)))
                    for n in self.nodes
                ]
            )
            chord = np.hypot(*(xy[self.v] - xy[self.u]).T)
            self.travel_length[both] = np.maximum(self.length[both], chord[both])
        self.tt_free = self.travel_length / self.vfree
        self.cap_rate = self.lanes * sc.saturation_flow / 3600.0  # veh/s
        self.storage = np.maximum(self.lanes * self.length / sc.jam_spacing_m, 2.0)
        self._read_pockets(g, sc)
        ids = []
        for u, v, k, d in g.edges(keys=True, data=True):
            ids.append(str(d.get("sumo_id") or d.get("segment") or f"{u}->{v}#{k}"))
        self.edge_id = np.array(ids, dtype=object)
        # node pairs, for mapping dijkstra predecessors back to edges
        self.pair = self.u * len(self.nodes) + self.v

    def _read_pockets(self, g: nx.MultiDiGraph, sc: TrafficScenario) -> None:
        """Read the turn pockets at the edges' ends.

        ``pocket_left``/``pocket_right`` lanes and their storage ``pocket_left_m``/
        ``pocket_right_m``; ``lanes_line``, the lanes at the stop line, pockets included, where
        OSM tags give it. Sets :attr:`pocket` (left, right lanes per edge), :attr:`pocket_room`
        (vehicles one pocket lane stores: its length over the jam spacing, at least one) and
        :attr:`main_line` (the other lanes at the stop line: ``lanes_line`` less the pockets,
        else ``lanes``);
        a pocket lane beyond the edge's lanes adds its storage to the edge's.
        """
        n_e = len(self.edges)
        self.pocket = np.zeros((n_e, 2), dtype=np.int64)
        self.pocket_room = np.zeros((n_e, 2))
        self.main_line = self.lanes.copy()
        if not sc.pockets:  # switched off: the edges run as if they had none
            return
        if not any("pocket_left" in d or "pocket_right" in d for *_, d in g.edges(data=True)):
            return
        for i, (u, v, k, d) in enumerate(g.edges(keys=True, data=True)):
            for side, name in enumerate(("pocket_left", "pocket_right")):
                n, m = d.get(name, 0), d.get(f"{name}_m", 0.0)
                ok = isinstance(n, int | np.integer) and not isinstance(n, bool)
                if not ok or not 0 <= n <= _POCKET_LANES_MAX:
                    msg = (
                        f"graph edge {(u, v, k)!r}: attribute {name!r} = {n!r} is not a whole "
                        f"number of lanes 0-{_POCKET_LANES_MAX}"
                    )
                    raise InputValidationError(msg)
                if n and not (isinstance(m, int | float) and math.isfinite(m) and m > 0):
                    msg = (
                        f"graph edge {(u, v, k)!r}: attribute {name}_m = {m!r} is not a "
                        f"positive storage length (m) for its {n} lane(s)"
                    )
                    raise InputValidationError(msg)
                self.pocket[i, side] = int(n)
                self.pocket_room[i, side] = max(math.floor(m / sc.jam_spacing_m), 1) if n else 0
            n_pk = int(self.pocket[i].sum())
            if not n_pk:
                continue
            line = d.get("lanes_line")
            line = self.lanes[i] + n_pk if line is None else float(line)
            self.main_line[i] = max(line - n_pk, 1.0)
            extra = max(line - self.lanes[i], 0.0) / n_pk
            self.storage[i] += extra * float(self.pocket[i] @ self.pocket_room[i])

    def key(self, edge: Sequence[Any], *, field: str) -> int:
        if isinstance(edge, str) or len(edge) not in (2, 3):
            msg = f"{field}: {edge!r} is not an edge key (u, v, key)"
            raise InputValidationError(msg)
        k = (edge[0], edge[1], int(edge[2]) if len(edge) == 3 else 0)
        if k not in self.index:
            msg = f"{field}: edge {tuple(edge)!r} is not in the graph"
            raise InputValidationError(msg)
        return self.index[k]


class _Signals:
    """Green windows per movement of the signalised junctions; plans may change during a run.

    Rows are keyed by ``(edge, next edge)``; a :class:`SignalPlan` gives right of way per
    approach, so its rows hold for every movement of the edge (next edge ``-1``), while a
    :class:`SignalProgram` gives each movement its own windows (a right turn green in two stages
    does not make the through movement green). A movement of a signalised edge that no row
    names is not controlled (always green).
    """

    def __init__(
        self,
        net: _Network,
        plans: Sequence[SignalPlan],
        programs: Sequence[SignalProgram] = (),
    ) -> None:
        self.net = net
        self.n_e = len(net.edges)
        self.approaches: list[tuple[str, int]] = []
        self._listed: set[int] = set()
        self.owner: dict[int, str] = {}  # edge -> junction whose plan or program serves it
        self.plan_edges: dict[str, list[int]] = {}
        # (edge, next edge or -1) -> (cycle, offset, windows)
        self._rows: dict[tuple[int, int], tuple[float, float, tuple[tuple[float, float], ...]]] = {}
        for plan in plans:
            for a in plan.green_windows():
                e = net.key(a, field=f"SignalPlan({plan.junction}).approaches")
                if e in self.owner:
                    msg = f"SignalPlan({plan.junction}): approach {a!r} is in another plan too"
                    raise InputValidationError(msg)
            self.set_plan(plan, rebuild=False)
        for prog in programs:
            self._set_program(prog)
        self._rebuild()

    # ---- building -----------------------------------------------------------------------------
    def edges_of(self, plan: SignalPlan) -> list[int]:
        """Edge indices of a plan's approaches (checked against the graph and other plans)."""
        edges = []
        for a in plan.green_windows():
            e = self.net.key(a, field=f"SignalPlan({plan.junction}).approaches")
            owner = self.owner.get(e, plan.junction)
            if owner != plan.junction:
                msg = (
                    f"SignalPlan({plan.junction}): approach {a!r} is served by the plan of "
                    f"junction {owner!r}"
                )
                raise InputValidationError(msg)
            edges.append(e)
        return edges

    def _drop(self, junction: str) -> None:
        for e in self.plan_edges.pop(junction, []):
            self.owner.pop(e, None)
            for key in [k for k in self._rows if k[0] == e]:
                del self._rows[key]

    def _serve(self, junction: str, e: int) -> None:
        self.owner[e] = junction
        self.plan_edges.setdefault(junction, []).append(e)
        if e not in self._listed:
            self._listed.add(e)
            self.approaches.append((junction, e))

    def set_plan(self, plan: SignalPlan, *, rebuild: bool = True) -> list[int]:
        """Make ``plan`` its junction's plan (an approach it no longer serves: lights off)."""
        edges = self.edges_of(plan)
        self._drop(plan.junction)
        for e, w in zip(edges, plan.green_windows().values(), strict=True):
            self._rows[(e, -1)] = (plan.cycle_s, plan.offset_s, w)
            self._serve(plan.junction, e)
        if rebuild:
            self._rebuild()
        return edges

    def _set_program(self, prog: SignalProgram) -> None:
        field = f"SignalProgram({prog.junction}).movements"
        for a, b, w in prog.movements:
            e = self.net.key(a, field=field)
            n = self.net.key(b, field=field)
            if self.net.v[e] != self.net.u[n]:
                msg = f"{field}: {tuple(a)!r} does not lead into {tuple(b)!r}"
                raise InputValidationError(msg)
            owner = self.owner.get(e, prog.junction)
            if owner != prog.junction:
                msg = f"{field}: approach {tuple(a)!r} is served by junction {owner!r} too"
                raise InputValidationError(msg)
            old = self._rows.get((e, n))
            windows = tuple(w) if old is None else (*old[2], *w)
            self._rows[(e, n)] = (prog.cycle_s, prog.offset_s, windows)
            if e not in self.owner:
                self._serve(prog.junction, e)

    def _rebuild(self) -> None:
        n_e = self.n_e
        keys = sorted(self._rows, key=lambda k: k[0] * (n_e + 1) + k[1] + 1)
        self.row_e = np.array([k[0] for k in keys], dtype=np.int64)
        self.row_key = np.array([k[0] * (n_e + 1) + k[1] + 1 for k in keys], dtype=np.int64)
        n_r = len(keys)
        m = max((len(self._rows[k][2]) for k in keys), default=1)
        self.cycle = np.ones(n_r)
        self.offset = np.zeros(n_r)
        self.ws = np.full((n_r, m), np.inf)
        self.we = np.full((n_r, m), -np.inf)
        ratio = np.zeros(n_r)
        for i, k in enumerate(keys):
            cyc, off, w = self._rows[k]
            self.cycle[i], self.offset[i] = cyc, off
            for j, (a, b) in enumerate(w):
                self.ws[i, j], self.we[i, j] = a, b
            ratio[i] = float(np.clip(sum(b - a for a, b in w) / cyc, 0.01, 1.0))
        self.row_start = np.searchsorted(self.row_e, np.arange(n_e), side="left")
        self.row_end = np.searchsorted(self.row_e, np.arange(n_e), side="right")
        n_rows = np.bincount(self.row_e, minlength=n_e)
        self.signalised = n_rows > 0
        # routing cost: Webster's uniform delay, averaged over the edge's movements
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.bincount(self.row_e, weights=ratio, minlength=n_e) / np.maximum(n_rows, 1)
            rd = np.bincount(
                self.row_e, weights=self.cycle * (1 - ratio) ** 2 / 2, minlength=n_e
            ) / np.maximum(n_rows, 1)
        self.green_ratio = np.where(self.signalised, g, 1.0)
        self.red_delay = np.where(self.signalised, rd, 0.0)
        self._t = np.nan
        self._g = np.zeros(0, dtype=bool)

    # ---- reading ------------------------------------------------------------------------------
    def _rows_green(self, t: float) -> np.ndarray:
        if t != self._t:
            tc = ((t - self.offset) % self.cycle)[:, None]
            self._g = np.asarray(((tc >= self.ws) & (tc < self.we)).any(axis=1), dtype=bool)
            self._t = t
        return self._g

    def green(self, edges: np.ndarray, t: float) -> np.ndarray:
        """Whether any movement of each of ``edges`` has green at ``t`` (unsignalised: always)."""
        g = self._rows_green(t)
        cs = np.concatenate(([0], np.cumsum(g)))
        s, e = self.row_start[edges], self.row_end[edges]
        out: np.ndarray = (cs[e] - cs[s] > 0) | ~self.signalised[edges]
        return out

    def green_move(self, edges: np.ndarray, nxt: np.ndarray, t: float) -> np.ndarray:
        """Whether the movement ``edges -> nxt`` (same shapes) has green at ``t``."""
        g = self._rows_green(t)
        out = np.ones(np.shape(nxt), dtype=bool)
        if not g.size:
            return out
        base = edges * (self.n_e + 1)
        n_r = self.row_key.size
        exact = base + nxt + 1
        pos = np.minimum(np.searchsorted(self.row_key, exact), n_r - 1)
        hit = self.row_key[pos] == exact
        wpos = np.minimum(np.searchsorted(self.row_key, base), n_r - 1)
        whit = self.row_key[wpos] == base
        return np.where(hit, g[pos], np.where(whit, g[wpos], out))


_HIGHWAY_RANK = {
    h: i
    for i, h in enumerate(
        reversed(
            (
                "motorway",
                "motorway_link",
                "trunk",
                "trunk_link",
                "primary",
                "primary_link",
                "secondary",
                "secondary_link",
                "tertiary",
                "tertiary_link",
                "unclassified",
                "residential",
                "living_street",
                "service",
            )
        )
    )
}


def gap_acceptance_capacity(
    major_flow_veh_h: np.ndarray | float, *, critical_gap_s: float, follow_up_s: float
) -> np.ndarray:
    """Capacity of a minor lane crossing a major flow (Siegloch's formula), in veh/h.

    ``c = 3600 / t_f * exp(-q_p * (t_c - t_f / 2) / 3600)``.

    Parameters
    ----------
    major_flow_veh_h : array_like
        Conflicting major flow ``q_p`` (veh/h).
    critical_gap_s, follow_up_s : float
        Critical gap ``t_c`` and follow-up time ``t_f`` (s).

    Returns
    -------
    numpy.ndarray
        Capacity (veh/h per lane).
    """
    q = np.maximum(np.asarray(major_flow_veh_h, dtype=float), 0.0)
    cap: np.ndarray = (
        3600.0 / follow_up_s * np.exp(-q * (critical_gap_s - follow_up_s / 2) / 3600.0)
    )
    return cap


def hcm_potential_capacity(
    conflicting_flow_veh_h: np.ndarray | float, *, critical_gap_s: float, follow_up_s: float
) -> np.ndarray:
    """Potential capacity of a minor movement at a two-way stop (HCM), in veh/h.

    ``c = v_c exp(-v_c t_c / 3600) / (1 - exp(-v_c t_f / 3600))``, and ``3600 / t_f`` when no
    flow conflicts (its limit at ``v_c = 0``).

    Parameters
    ----------
    conflicting_flow_veh_h : array_like
        Conflicting flow ``v_c`` of the movement (veh/h).
    critical_gap_s, follow_up_s : float
        Critical gap ``t_c`` and follow-up time ``t_f`` (s).

    Returns
    -------
    numpy.ndarray
        Capacity (veh/h per lane).

    Examples
    --------
    >>> hcm_potential_capacity([0.0, 500.0], critical_gap_s=6.5, follow_up_s=4.0).round(1)
    array([900. , 475.6])
    """
    v = np.maximum(np.asarray(conflicting_flow_veh_h, dtype=float), 0.0)
    vs = np.maximum(v, 1e-9)  # v_c = 0 is the limit, 3600 / t_f
    cap: np.ndarray = np.where(
        v > 1e-6,
        vs * np.exp(-vs * critical_gap_s / 3600.0) / -np.expm1(-vs * follow_up_s / 3600.0),
        3600.0 / follow_up_s,
    )
    return cap


#: Critical gap and follow-up time (s) of a right and of a left turn from a minor approach
#: (HCM 6th edition, two-way stop control, base values for a two-lane major road); a through
#: movement uses the scenario's ``critical_gap_s`` and ``follow_up_s`` (6.5 s and 4.0 s).
MINOR_RIGHT_GAPS_S = (6.2, 3.3)
MINOR_LEFT_GAPS_S = (7.1, 3.5)

#: Acceleration and deceleration of a car (m/s2), SUMO's defaults for a passenger car.
ACCEL_M_S2 = 2.6
DECEL_M_S2 = 4.5

#: Rank in a lane's discharge that stands for a moving stream (no stop-and-start loss).
_QUEUE_MOVING = 1 << 20

#: Most pocket lanes of one turn at an approach (as for a direction's lanes, 0 or above 8 is an
#: error in the data).
_POCKET_LANES_MAX = 8

#: Most vehicles standing in pockets that the discharge window looks past (the window grows
#: with the pockets' storage, up to this).
_POCKET_WINDOW_MAX = 24

#: Gap acceptance of a left turn across opposing traffic (HCM 2000 Exhibit 17-5, major-street
#: left turn): critical gap and follow-up time (s).
LEFT_TURN_CRITICAL_GAP_S = 4.1
LEFT_TURN_FOLLOW_UP_S = 2.2


class _Priority:
    """Major and minor approaches of the unsignalised junctions; opposing approaches."""

    def __init__(self, sc: TrafficScenario, net: _Network, sig: _Signals) -> None:
        n_e = len(net.edges)
        self.minor = np.zeros(n_e, dtype=bool)
        self.major = np.zeros(n_e, dtype=bool)
        self.opposing = np.full(n_e, -1, dtype=np.int64)
        # per minor approach, the major approach whose stream comes from its left (right-hand
        # traffic; from its right in left-hand traffic): the one a right turn merges into
        self.near = np.full(n_e, -1, dtype=np.int64)
        self.heading = np.zeros((n_e, 2))
        self.side = 1.0 if sc.drive_on == "right" else -1.0
        self.left_turns = sc.left_turns_yield
        g = sc.graph
        signal_nodes = set(net.v[sig.signalised].tolist())
        xy = np.array(
            [(float(g.nodes[n].get("x", 0.0)), float(g.nodes[n].get("y", 0.0))) for n in net.nodes]
        )
        heading = xy[net.v] - xy[net.u]
        norm = np.hypot(heading[:, 0], heading[:, 1])
        heading = heading / np.where(norm > 0, norm, 1.0)[:, None]
        self.heading = heading
        prio = np.zeros(n_e)
        hw = np.zeros(n_e)
        for i, (_, _, d) in enumerate(g.edges(data=True)):
            try:
                prio[i] = float(d.get("priority", 0.0))
            except (TypeError, ValueError):
                prio[i] = 0.0
            h = d.get("highway", "")
            h = h[0] if isinstance(h, list | tuple) and h else h
            hw[i] = _HIGHWAY_RANK.get(str(h), 0)
        order = np.argsort(net.v, kind="stable")
        bounds = np.searchsorted(net.v[order], np.arange(len(net.nodes) + 1))
        for node in range(len(net.nodes)):
            inc = order[bounds[node] : bounds[node + 1]]
            if np.unique(net.u[inc]).size < 3:
                continue
            for e in inc:  # the approach facing e (heading opposite to it), if any
                d = heading[inc] @ heading[e]
                j = int(np.argmin(d))
                if d[j] < -0.9 and inc[j] != e:
                    self.opposing[e] = inc[j]
            if node in signal_nodes or not sc.priority_junctions:
                continue
            rank = [(prio[e], hw[e], net.lanes[e], net.vfree[e]) for e in inc]
            best = max(rank)
            top = [e for e, r in zip(inc, rank, strict=True) if r == best]
            if len(top) == 1:
                # the best approach and, among the next ranked, the one facing it
                first = top[0]
                second = max(r for e, r in zip(inc, rank, strict=True) if e != first)
                cand = [e for e, r in zip(inc, rank, strict=True) if r == second and e != first]
                pair = (first, min(cand, key=lambda e: float(heading[e] @ heading[first])))
            else:
                # the tied pair that faces each other best, ties to north-south
                best_pair: tuple[Any, Any] | None = None
                best_key: tuple[float, float] | None = None
                for a_i, a in enumerate(top):
                    for b in top[a_i + 1 :]:
                        opp = -float(heading[a] @ heading[b])
                        ns = abs(heading[a][1]) + abs(heading[b][1])
                        key = (round(opp, 6), round(ns, 6))
                        if best_key is None or key > best_key:
                            best_pair, best_key = (a, b), key
                assert best_pair is not None  # top holds at least two approaches
                pair = best_pair
            self.major[list(pair)] = True
            for e in inc:
                if e in pair:
                    continue
                self.minor[e] = True
                side = [
                    self.side * (heading[e][0] * heading[a][1] - heading[e][1] * heading[a][0])
                    for a in pair
                ]
                j = int(np.argmin(side))
                if side[j] < -0.5:
                    self.near[e] = pair[j]


def _lane_discharge(
    ok: np.ndarray,
    lanes: np.ndarray,
    pick: np.ndarray,
    weight: np.ndarray,
    credit: np.ndarray,
    room: np.ndarray | None = None,
    access: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vehicles (rows of edges, in edge order) that leave now, lane by lane.

    Parameters
    ----------
    ok : numpy.ndarray of bool
        Whether each vehicle may go as far as its own movement goes (ready, green, room).
    lanes : numpy.ndarray of int
        Bit mask of the lanes each vehicle may use at the stop line (bit 0 the kerb lane).
    pick : numpy.ndarray of int
        Which of its lanes a vehicle that may use several drives in (modulo their number).
    weight : numpy.ndarray
        Capacity each vehicle uses (vehicles; 0 for one that ends its trip on the edge).
    credit : numpy.ndarray
        Capacity credit of each lane (rows x lanes, vehicles).
    room, access : numpy.ndarray, optional
        Turn pockets (rows x lanes): the vehicles each lane stores at the stop line (``inf``
        but for a pocket lane) and the lane a vehicle drives in to reach it (its own but for
        a pocket lane: the through lane beside the pocket).

    Returns
    -------
    go : numpy.ndarray of bool
        The vehicles that leave.
    credit : numpy.ndarray
        The lanes' credit left.
    lane : numpy.ndarray of int
        The lane each vehicle drives in (index, 0 the kerb lane).

    Each vehicle drives in one lane, the ``pick``-th of those it may use, and keeps it in the
    queue (it does not change lanes in a standing queue). It leaves if it may, its lane's
    credit is at least one vehicle and no vehicle ahead of it in its lane is held; it uses
    ``weight`` of its lane's credit. So a movement that only one lane serves (a turn)
    discharges at one lane's rate, and a held vehicle holds those behind it in its lane only.

    A pocket lane stores ``room`` vehicles: a held vehicle bound for it that finds it full
    stands in its access lane and holds that lane too, and one that finds ``room`` held
    vehicles or more ahead of it in its access lane cannot reach the pocket's entry (it waits
    there, in the access lane, though its pocket may be empty).

    Examples
    --------
    Two lanes with credit for one vehicle each: two right turners (lane 0) and a through
    vehicle (lanes 0 and 1, driving in lane 1): the second right turner waits for lane 0, the
    through vehicle passes it in lane 1.

    >>> go, left, _ = _lane_discharge(
    ...     np.array([[True, True, True]]), np.array([[1, 1, 3]]), np.array([[0, 0, 1]]),
    ...     np.ones((1, 3)), np.array([[1.0, 1.0]]))
    >>> go.tolist(), left.tolist()
    ([[True, False, True]], [[0.0, 0.0]])

    A held through vehicle in lane 1 holds the left turner behind it (lane 1), not the right
    turner (lane 0):

    >>> go, _, _ = _lane_discharge(
    ...     np.array([[False, True, True]]), np.array([[3, 2, 1]]), np.array([[1, 0, 0]]),
    ...     np.ones((1, 3)), np.array([[5.0, 5.0]]))
    >>> go.tolist()
    [[False, False, True]]

    One lane and a left pocket for one car (lane 1, reached from lane 0): two left turners
    waiting for a gap, then a through vehicle: the first left turner waits in the pocket, the
    second stands in the lane behind it and holds the through vehicle.

    >>> ok = np.array([[False, False, True]])
    >>> mask, room = np.array([[2, 2, 1]]), np.array([[np.inf, 1.0]])
    >>> go, _, _ = _lane_discharge(ok, mask, np.zeros((1, 3), dtype=np.int64), np.ones((1, 3)),
    ...                            np.array([[5.0, 5.0]]), room, np.array([[0, 0]]))
    >>> go.tolist()
    [[False, False, False]]
    >>> go, _, _ = _lane_discharge(ok, mask, np.zeros((1, 3), dtype=np.int64), np.ones((1, 3)),
    ...                            np.array([[5.0, 5.0]]), 2 * room, np.array([[0, 0]]))
    >>> go.tolist()
    [[False, False, True]]
    """
    n_rows, k = ok.shape
    n_lanes = credit.shape[1]
    rows = np.arange(n_rows)
    bits = np.int64(1) << np.arange(n_lanes, dtype=np.int64)
    # each vehicle's lane: the pick-th of the lanes it may use
    may = (lanes[:, :, None] & bits[None, None, :]) != 0
    n_may = may.sum(axis=2)
    rank = np.cumsum(may, axis=2) - 1
    want = pick % np.maximum(n_may, 1)
    lane = np.argmax(may & (rank == want[:, :, None]), axis=2)
    credit = credit.copy()
    out = np.zeros(ok.shape, dtype=bool)
    held = np.zeros((n_rows, n_lanes), dtype=bool)  # a held vehicle stands in the lane
    if room is None or access is None:
        for j in range(k):
            ln = lane[:, j]
            w = weight[:, j]
            go = ok[:, j] & (n_may[:, j] > 0) & ~held[rows, ln]
            go &= (w <= 0) | (credit[rows, ln] >= 1.0 - 1e-9)
            out[:, j] = go
            credit[rows, ln] -= np.where(go, w, 0.0)
            held[rows, ln] |= ~go
        return out, credit, lane
    n_held = np.zeros((n_rows, n_lanes))  # vehicles standing in each lane
    for j in range(k):
        ln = lane[:, j]
        w = weight[:, j]
        acc = access[rows, ln]
        cap = room[rows, ln]
        # a pocket's vehicle reaches it past the queue of its access lane, if that is shorter
        reach = (acc == ln) | (n_held[rows, acc] < cap)
        go = ok[:, j] & (n_may[:, j] > 0) & ~held[rows, ln] & reach
        go &= (w <= 0) | (credit[rows, ln] >= 1.0 - 1e-9)
        out[:, j] = go
        credit[rows, ln] -= np.where(go, w, 0.0)
        stand = np.where(reach & (n_held[rows, ln] < cap), ln, acc)  # where a held one waits
        held[rows, ln] |= ~go & reach
        held[rows, stand] |= ~go
        n_held[rows, stand] += ~go
    return out, credit, lane


class _State:
    """Vectorised dynamic state of a run."""

    def __init__(
        self,
        sc: TrafficScenario,
        net: _Network,
        sig: _Signals,
        trips: list[Trip],
        rng: np.random.Generator,
        end_s: float,
    ) -> None:
        self.sc, self.net, self.sig = sc, net, sig
        self.prio = _Priority(sc, net, sig)
        self.give_way = bool(self.prio.minor.any() or self.prio.left_turns)
        self.out_step = np.zeros(len(net.edges))  # vehicles that left each edge this step
        self.flow_ema = np.zeros(len(net.edges))  # smoothed discharge (veh/s)
        self.q_major: np.ndarray = np.zeros(len(net.nodes))  # smoothed major flow per node (veh/h)
        n_e = len(net.edges)
        n = len(trips)
        self.trips = trips
        self.depart = np.array([t.depart_s for t in trips], dtype=float)
        self.origin = np.array([net.node_index[t.origin_node] for t in trips], dtype=np.int64)
        self.dest = np.array([net.node_index[t.dest_node] for t in trips], dtype=np.int64)
        f = 1.0 + sc.speed_factor_sd * rng.standard_normal(n)
        self.inv_factor = 1.0 / np.clip(f, 0.5, 1.5)
        self.route_ptr = np.zeros(n, dtype=np.int64)
        self.route_len = np.full(n, -1, dtype=np.int64)  # -1: not routed yet
        self.route_flat = np.zeros(0, dtype=np.int64)
        self.fixed = np.zeros(n, dtype=bool)  # trips that carry their own routes
        self.retry_at = np.zeros(n)  # when a head facing a closed edge may look for a way round
        self.pos = np.zeros(n, dtype=np.int64)
        self.ready = np.full(n, np.inf)
        self.enter = np.zeros(n)
        # speed (m/s) at which a vehicle still accelerating from a stop reaches the end of its
        # edge if nothing holds it; inf once it cruises
        self.u_end = np.full(n, np.inf)
        self.arrive = np.full(n, np.nan)
        self.dropped = np.zeros(n, dtype=bool)
        self.pending = np.zeros(0, dtype=np.int64)
        self.order = np.argsort(self.depart, kind="stable")
        self.depart_sorted = self.depart[self.order]
        self.next_dep = 0  # position in self.order
        # links
        self.lanes_open = net.lanes.copy()
        self.cap_rate = net.cap_rate.copy()
        self.speed_factor = np.ones(n_e)  # product of the speed changes under way
        self.tt_free = net.tt_free.copy()
        # per lane at the stop line: the edge's lanes, then its left and right pockets
        n_line = int(max(net.lanes.max(), (net.main_line + net.pocket.sum(axis=1)).max(), 1))
        self.credit = np.zeros((n_e, n_line))
        self.pockets = bool(net.pocket.any()) and sc.multi_queue
        # per lane: when its last vehicle crossed the stop line, and that vehicle's rank in the
        # lane's discharge from standstill (_QUEUE_MOVING once the lane discharges a moving
        # stream), for the stop-and-start loss
        self.lane_last = np.full(self.credit.shape, -np.inf)
        self.lane_rank = np.zeros(self.credit.shape, dtype=np.int64)
        self.last_seen = np.zeros(n_e)
        self.head_ready = np.full(n_e, np.inf)
        self.blocked_since = np.full(n_e, np.inf)  # since when the head has waited for room
        self.n_in = np.zeros(n_e, dtype=np.int64)
        self.n_out = np.zeros(n_e, dtype=np.int64)
        width = 1 << int(math.ceil(math.log2(max(16.0, float(net.storage.max()) * 1.5))))
        self.buf = np.zeros((n_e, width), dtype=np.int64)
        # queues per movement at the ends of edges of two lanes or more (SUMO meso's
        # multi-queue); the window of vehicles looked at then reaches past held ones
        self.multi = (net.lanes > 1) & sc.multi_queue
        self.k_base = int(math.ceil(float(self.cap_rate.max()) * sc.dt_s)) + (
            6 if self.multi.any() else 2
        )
        # the edges with pockets look further: past the vehicles standing in their pockets
        self.k = self.k_base
        if self.pockets:
            self.k = max(self.k, int(math.ceil(float(self.cap_rate.max()) * sc.dt_s)) + 6)
            n_pk = net.pocket.sum(axis=1)
            stored = (net.pocket * net.pocket_room).sum(axis=1)
            self.k += int(math.ceil(float(n_pk.max()) * sc.saturation_flow / 3600.0 * sc.dt_s))
            self.k += int(min(float(stored.max()), _POCKET_WINDOW_MAX))
        self.end_s = end_s  # the run's end; the stepper sets it to when the run stopped
        # recorders (edge, slot)
        self.n_slots = max(1, int(math.ceil(end_s / sc.slot_s)))
        shape = (self.n_slots, n_e)
        self.rec_in = np.zeros(shape)
        self.rec_out = np.zeros(shape)
        self.rec_tt = np.zeros(shape)
        self.rec_wait = np.zeros(shape)
        self.tot_wait = np.zeros(n_e)
        self.tot_out = np.zeros(n_e)
        self.tot_stops = np.zeros(n_e)  # vehicles held at the head past their ready time
        self.unreachable: dict[tuple[Hashable, Hashable], int] = {}
        self.n_active = 0
        self.n_done = 0
        self.n_forced = 0  # heads let into a full edge after max_blocked_s (SUMO's teleports)
        self.forced_at = np.zeros(n_e, dtype=np.int64)  # per edge the head was held on

    # ---- routes -------------------------------------------------------------------------------
    def set_routes(self, trips_idx: np.ndarray, routes: list[np.ndarray]) -> None:
        lens = np.array([len(r) for r in routes], dtype=np.int64)
        self.route_ptr[trips_idx] = (
            self.route_flat.size + np.concatenate(([0], np.cumsum(lens)))[:-1]
        )
        self.route_len[trips_idx] = lens
        self.fixed[trips_idx] = True
        if routes:
            self.route_flat = np.concatenate([self.route_flat, *routes])

    def link_cost(self, t: float | None = None) -> np.ndarray:
        """Link costs to route on at ``t``: the scenario's routing times, else current ones."""
        given = self.sc.routing_times
        if given and t is not None and t >= given[0][0]:
            i = int(np.searchsorted([s for s, _ in given], t, side="right")) - 1
            fixed = given[i][1].copy()
            fixed[self.lanes_open <= 0] = np.inf  # a closed edge is avoided all the same
            return fixed
        net, occ = self.net, (self.n_in - self.n_out).astype(float)
        rate = self._rate(np.arange(len(net.edges))) * self.sig.green_ratio
        if self.sc.route_on_discharge and t is not None:
            # a queue at the stop line drains at what the edge has discharged lately, not at
            # its capacity, when the edge downstream holds it back (spillback): a blocked
            # queue then costs what it will take to clear, at least one vehicle per
            # max_blocked_s, and routes go round it
            queued = self.head_ready <= t
            seen = np.maximum(self.flow_ema, 1.0 / self.sc.max_blocked_s)
            rate = np.where(queued, np.minimum(rate, seen), rate)
        with np.errstate(divide="ignore"):
            drain = np.where(rate > 0, occ / np.maximum(rate, 1e-12), np.inf)
        cost = np.maximum(self.tt_free, drain) + self.sig.red_delay + self._give_way_delay()
        cost[self.lanes_open <= 0] = np.inf
        out: np.ndarray = np.maximum(cost, 1e-3)
        return out

    def _give_way_delay(self) -> np.ndarray:
        """Delay a vehicle expects at the end of each edge from giving way, with no queue ahead.

        On a minor approach of a priority junction, the HCM control delay of a two-way stop at
        low volume/capacity: the time to find a gap, ``3600 / c`` with ``c`` the through
        movement's potential capacity at the current major flow
        (:func:`hcm_potential_capacity`), plus the stop to look, ``v / 2 (1 / a + 1 / b)``
        (HCM's ``+ 5`` s); 0 elsewhere. A queue already there is priced by its discharge time.
        Without it, routes see a signal's uniform delay on main roads but nothing at a
        give-way line, and cut through side streets whose exits cannot take them.
        """
        out = np.zeros(len(self.net.edges))
        if not (self.give_way and self.sc.route_give_way):
            return out
        e = np.flatnonzero(self.prio.minor)
        if e.size:
            c = self._through_capacity(e)
            v = self.net.vfree[e]
            out[e] = 3600.0 / np.maximum(c, 1.0) + v / 2 * (1 / ACCEL_M_S2 + 1 / DECEL_M_S2)
        return out

    def _through_capacity(self, minor_edges: np.ndarray) -> np.ndarray:
        """Through movement's HCM potential capacity on minor approaches (veh/h per lane).

        At the current major flow of their junctions (:func:`hcm_potential_capacity`).
        """
        return hcm_potential_capacity(
            self.q_major[self.net.v[minor_edges]],
            critical_gap_s=self.sc.critical_gap_s,
            follow_up_s=self.sc.follow_up_s,
        )

    def route_window(self, t_from: float, t_to: float) -> None:
        """Route the trips without a route that depart in ``[t_from, t_to)``."""
        sel = np.flatnonzero(
            (self.route_len < 0) & (self.depart >= t_from) & (self.depart < t_to) & ~self.dropped
        )
        if not sel.size:
            return
        ok, flat, hops_ok = self._paths(self.origin[sel], self.dest[sel], self.link_cost(t_from))
        hops = np.zeros(sel.size, dtype=np.int64)
        hops[ok] = hops_ok
        bad = hops == 0  # unreachable, or origin and destination the same node
        net = self.net
        for i in np.flatnonzero(bad):
            key = (net.nodes[self.origin[sel[i]]], net.nodes[self.dest[sel[i]]])
            self.unreachable[key] = self.unreachable.get(key, 0) + 1
        self.dropped[sel[bad]] = True
        sel, hops = sel[~bad], hops[~bad]
        if not sel.size:
            return
        starts = np.concatenate(([0], np.cumsum(hops)))[:-1]
        self.route_ptr[sel] = self.route_flat.size + starts
        self.route_len[sel] = hops
        self.route_flat = np.concatenate([self.route_flat, flat])

    def _paths(
        self, origin: np.ndarray, dest: np.ndarray, cost: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cheapest routes between node indices on link costs ``cost`` (inf: no way through).

        Returns whether each pair is reachable, the edges of the reachable routes end to end
        and the number of edges of each reachable route (0 where origin and destination meet).
        """
        net = self.net
        ok = np.isfinite(cost)
        # cheapest edge of each node pair
        pair, c, e = net.pair[ok], cost[ok], np.flatnonzero(ok)
        o = np.lexsort((c, pair))
        pair, c, e = pair[o], c[o], e[o]
        first = np.concatenate(([True], pair[1:] != pair[:-1]))
        pair, c, e = pair[first], c[first], e[first]
        n = len(net.nodes)
        mat = sparse.csr_matrix((c, (pair // n, pair % n)), shape=(n, n))
        origins, row = np.unique(origin, return_inverse=True)
        _, pred = csgraph.dijkstra(mat, indices=origins, return_predecessors=True)
        same = dest == origins[row]
        reach = (pred[row, dest] >= 0) | same
        row, dest = row[reach], dest[reach]
        # walk back from the destinations, all trips at once
        cur = dest.copy()
        steps: list[np.ndarray] = []
        hops = np.zeros(dest.size, dtype=np.int64)
        live = ~same[reach]
        while live.any():
            prev = np.where(live, pred[row, cur], -1)
            edge = np.full(dest.size, -1, dtype=np.int64)
            li = np.flatnonzero(live)
            k = np.searchsorted(pair, prev[li] * n + cur[li])
            edge[li] = e[k]
            steps.append(edge)
            hops += live
            cur = np.where(live, prev, cur)
            live &= cur != origins[row]
        if not steps:
            return reach, np.zeros(0, dtype=np.int64), hops
        mat_e = np.vstack(steps)  # (hop, trip), reversed order
        trip_rep = np.repeat(np.arange(dest.size), hops)
        starts = np.concatenate(([0], np.cumsum(hops)))[:-1]
        j = np.arange(trip_rep.size) - np.repeat(starts, hops)
        flat: np.ndarray = mat_e[hops[trip_rep] - 1 - j, trip_rep]
        return reach, flat, hops

    def reroute_undeparted(self, t: float) -> None:
        """Route again, on the current costs, the trips routed ahead that have not left yet."""
        again = (self.route_len >= 0) & ~self.fixed & (self.depart > t) & ~self.dropped
        if again.any():
            self.route_len[again] = -1
            self.route_window(t, t + self.sc.reroute_s)

    def _reroute_heads(self, veh: np.ndarray, edges: np.ndarray, t: float) -> bool:
        """Route again, from the end of ``edges``, the heads ``veh`` whose next edge is closed.

        Trips that carry their own routes keep them, and wait; so do those with no way round,
        which look again ``reroute_s`` later. Returns whether any route changed.
        """
        can = ~self.fixed[veh] & (self.retry_at[veh] <= t)
        veh, edges = veh[can], edges[can]
        if not veh.size:
            return False
        ok, flat, hops = self._paths(self.net.v[edges], self.dest[veh], self.link_cost(t))
        self.retry_at[veh[~ok]] = t + self.sc.reroute_s
        veh, edges = veh[ok], edges[ok]
        if not veh.size:
            return False
        # the new route starts with the edge the vehicle is on, at its current position
        hops1 = hops + 1
        starts = np.concatenate(([0], np.cumsum(hops1)))[:-1]
        new = np.empty(int(hops1.sum()), dtype=np.int64)
        head = np.zeros(new.size, dtype=bool)
        head[starts] = True
        new[head] = edges
        new[~head] = flat
        self.route_ptr[veh] = self.route_flat.size + starts - self.pos[veh]
        self.route_len[veh] = self.pos[veh] + hops1
        self.route_flat = np.concatenate([self.route_flat, new])
        return True

    # ---- stepping -----------------------------------------------------------------------------
    def _enter(
        self,
        veh: np.ndarray,
        edges: np.ndarray,
        t_enter: np.ndarray,
        t: float,
        speed_in: np.ndarray | None = None,
        shift: np.ndarray | None = None,
    ) -> None:
        """Append vehicles to the tails of their edges.

        ``speed_in`` (m/s) is the speed at which each enters (``inf``: cruising); one that
        enters slower loses, on this edge, the time to accelerate back to its speed over what
        of the acceleration distance lies on it (:meth:`_start_loss`); ``shift`` (s) is the
        part of a queued vehicle's start-up it lost before the stop line.
        """
        if not veh.size:
            return
        extra = self._start_loss(veh, edges, speed_in)
        if shift is not None:
            extra = extra + shift
        slot = min(int(t // self.sc.slot_s), self.n_slots - 1)
        width = self.buf.shape[1]
        n_in = self.n_in[edges]
        if np.unique(edges).size == edges.size:  # the common case: one vehicle per edge
            occ_after = n_in - self.n_out[edges] + 1
            if occ_after.max() > width:
                self._grow(int(occ_after.max()))
                width = self.buf.shape[1]
            self.buf[edges, n_in & (width - 1)] = veh
            ready = t_enter + self.tt_free[edges] * self.inv_factor[veh] + extra
            self.enter[veh] = t_enter
            self.ready[veh] = ready
            was_empty = n_in == self.n_out[edges]
            self.head_ready[edges[was_empty]] = ready[was_empty]
            self.n_in[edges] += 1
            self.rec_in[slot, edges] += 1.0
            return
        o = np.argsort(edges, kind="stable")
        veh, edges, t_enter, n_in, extra = veh[o], edges[o], t_enter[o], n_in[o], extra[o]
        new_group = np.empty(edges.size, dtype=bool)
        new_group[0] = True
        np.not_equal(edges[1:], edges[:-1], out=new_group[1:])
        idx = np.arange(edges.size)
        rank = idx - np.maximum.accumulate(np.where(new_group, idx, 0))
        seq = n_in + rank
        occ_after = seq - self.n_out[edges] + 1
        if occ_after.max() > width:
            self._grow(int(occ_after.max()))
            width = self.buf.shape[1]
        self.buf[edges, seq & (width - 1)] = veh
        ready = t_enter + self.tt_free[edges] * self.inv_factor[veh] + extra
        self.enter[veh] = t_enter
        self.ready[veh] = ready
        firsts = np.flatnonzero(new_group)
        counts = np.diff(np.append(firsts, edges.size))
        ge = edges[firsts]
        was_empty = n_in[firsts] == self.n_out[ge]
        self.head_ready[ge[was_empty]] = ready[firsts[was_empty]]
        self.n_in[ge] += counts
        self.rec_in[slot, ge] += counts

    def _start_loss(
        self, veh: np.ndarray, edges: np.ndarray, speed_in: np.ndarray | None
    ) -> np.ndarray:
        """Time (s) lost on ``edges`` against cruising, setting :attr:`u_end`.

        A vehicle entering at ``u`` below its speed ``v`` on the edge accelerates at ``a``: if
        the edge holds the acceleration distance ``(v2 - u2) / 2a`` it loses
        ``(v - u)2 / 2av`` and leaves cruising, else it leaves at ``sqrt(u2 + 2aL)`` after
        ``(sqrt(u2 + 2aL) - u) / a`` instead of ``L / v``, and goes on accelerating on the next
        edge. A vehicle entering a give-way approach on which its trip goes on also loses, on
        it, the braking ``v / 2b`` to the stop it makes at the end (:meth:`_discharge`).
        """
        extra = np.zeros(veh.size)
        self.u_end[veh] = np.inf
        if not self.sc.stop_loss:
            return extra
        length = self.net.travel_length[edges]
        v = length / (self.tt_free[edges] * self.inv_factor[veh])
        if speed_in is not None:
            slow = speed_in < v
            if slow.any():
                u, vs, ln = speed_in[slow], v[slow], length[slow]
                reach = np.sqrt(u * u + 2 * ACCEL_M_S2 * ln)
                whole = reach >= vs  # the edge holds the rest of the acceleration
                lost = np.where(
                    whole,
                    (vs - u) ** 2 / (2 * ACCEL_M_S2 * vs),
                    (reach - u) / ACCEL_M_S2 - ln / vs,
                )
                extra[slow] = lost
                self.u_end[veh[slow]] = np.where(whole, np.inf, reach)
        if self.give_way:
            look = self.prio.minor[edges]
            look &= self.pos[veh] < self.route_len[veh] - 1
            extra[look] += v[look] / (2 * DECEL_M_S2)
        return extra

    def _grow(self, need: int) -> None:
        old = self.buf
        width = old.shape[1]
        new_w = width
        while new_w < need:
            new_w *= 2
        new = np.zeros((old.shape[0], new_w), dtype=old.dtype)
        occ = self.n_in - self.n_out
        for e in np.flatnonzero(occ):
            seq = np.arange(self.n_out[e], self.n_in[e])
            new[e, seq & (new_w - 1)] = old[e, seq & (width - 1)]
        self.buf = new

    def _depart(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sc, net = self.sc, self.net
        hi = int(np.searchsorted(self.depart_sorted, t, side="right"))
        if hi > self.next_dep:
            due = self.order[self.next_dep : hi]
            self.next_dep = hi
            self.pending = np.concatenate([self.pending, due])
        none = np.zeros(0, dtype=np.int64)
        if not self.pending.size:
            return none, none, np.zeros(0)
        p = self.pending
        usable = (self.route_len[p] >= 0) & ~self.dropped[p]
        if not usable.any():
            self.pending = p[~self.dropped[p]]
            return none, none, np.zeros(0)
        pu = p[usable]
        first = self.route_flat[self.route_ptr[pu]]
        if sc.spillback:
            space = net.storage[first] - (self.n_in[first] - self.n_out[first])
            space[self.lanes_open[first] <= 0] = 0  # a closed first edge: the trip waits
            o = np.argsort(first, kind="stable")
            fs = first[o]
            new_group = np.concatenate(([True], fs[1:] != fs[:-1]))
            idx = np.arange(fs.size)
            rank = np.empty_like(idx)
            rank[o] = idx - np.maximum.accumulate(np.where(new_group, idx, 0))
            go = rank < space
        else:
            go = self.lanes_open[first] > 0
        veh = pu[go]
        self.n_active += veh.size
        gone = np.zeros(p.size, dtype=bool)
        gone[np.flatnonzero(usable)[go]] = True
        self.pending = p[~(gone | self.dropped[p])]
        return veh, first[go], np.maximum(self.depart[veh], t - sc.dt_s)

    def step(self, t: float) -> None:
        """Advance the links to time ``t``: departures, then discharges, then entries."""
        dep_v, dep_e, dep_t = self._depart(t)
        self._discharge(t)
        if dep_v.size:
            self._enter(dep_v, dep_e, dep_t, t)
        a = min(self.sc.dt_s / self.sc.priority_window_s, 1.0)
        self.flow_ema += a * (self.out_step / self.sc.dt_s - self.flow_ema)
        self.out_step[:] = 0.0
        if self.give_way:
            maj = self.prio.major
            self.q_major = 3600.0 * np.bincount(
                self.net.v[maj], weights=self.flow_ema[maj], minlength=len(self.net.nodes)
            )

    def _turn_weight(self, edges: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Capacity used by each vehicle of ``edges`` heading for ``nxt`` (vehicles).

        One, or for a left or U turn facing an opposing approach, the ratio of the lane's
        saturation flow to the gap-acceptance capacity of a left turn across the opposing
        flow (HCM 2000 Exhibit 17-5, major-street left turn: t_c 4.1 s, t_f 2.2 s), as the
        left-turn equivalents of permissive left turns at signals.
        """
        pr = self.prio
        e = np.broadcast_to(edges[:, None], nxt.shape)
        hx, hy = pr.heading[:, 0], pr.heading[:, 1]
        cross = hx[e] * hy[nxt] - hy[e] * hx[nxt]
        dot = hx[e] * hx[nxt] + hy[e] * hy[nxt]
        opp = pr.opposing[e]
        left = (pr.side * cross > 0.5) | (dot < -0.9)
        left &= (opp >= 0) & ~pr.minor[e]
        w = np.ones(nxt.shape)
        if left.any():
            q = 3600.0 * self.flow_ema[opp[left]]
            c = gap_acceptance_capacity(
                q, critical_gap_s=LEFT_TURN_CRITICAL_GAP_S, follow_up_s=LEFT_TURN_FOLLOW_UP_S
            )
            w[left] = np.maximum(self.sc.saturation_flow / c, 1.0)
        return w

    def _minor_weight(self, edges: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Capacity used by each vehicle of minor approaches ``edges`` heading for ``nxt``.

        The ratio of a lane's saturation flow to the HCM potential capacity of its movement
        (:func:`hcm_potential_capacity`), at least one vehicle. Each movement has its own
        critical gap and follow-up time and its own conflicting flow: a right turn the major
        stream coming from its left (from its right where traffic keeps left), a through
        movement or a left (or U) turn both major approaches. The approaches' flows are their
        whole discharge, turns included: a right turn's conflicting flow counts the near
        stream's right turns in full, not half as in HCM, and a left turn's the far stream's
        left turns once, within that stream.
        """
        pr = self.prio
        e = np.broadcast_to(edges[:, None], nxt.shape)
        hx, hy = pr.heading[:, 0], pr.heading[:, 1]
        cross = pr.side * (hx[e] * hy[nxt] - hy[e] * hx[nxt])
        dot = hx[e] * hx[nxt] + hy[e] * hy[nxt]
        left = (cross > 0.5) | (dot < -0.9)
        right = (cross < -0.5) & ~left
        near = pr.near[e]
        both = self.q_major[self.net.v[e]]
        q_near = np.where(near >= 0, 3600.0 * self.flow_ema[np.maximum(near, 0)], 0.0)
        c = hcm_potential_capacity(
            both, critical_gap_s=self.sc.critical_gap_s, follow_up_s=self.sc.follow_up_s
        )
        if right.any():
            t_c, t_f = MINOR_RIGHT_GAPS_S
            c[right] = hcm_potential_capacity(q_near[right], critical_gap_s=t_c, follow_up_s=t_f)
        if left.any():
            t_c, t_f = MINOR_LEFT_GAPS_S
            c[left] = hcm_potential_capacity(both[left], critical_gap_s=t_c, follow_up_s=t_f)
        sat = 3600.0 * self.net.cap_rate[e] / np.maximum(self.net.lanes[e], 1)  # veh/h a lane
        w: np.ndarray = np.maximum(sat / np.maximum(c, 1e-9), 1.0)
        return w

    def _lane_masks(
        self, edges: np.ndarray, nxt: np.ndarray, last: np.ndarray, n_open: np.ndarray
    ) -> np.ndarray:
        """Lanes (bit masks, bit 0 the kerb lane) the vehicles of ``edges`` may queue in.

        On an edge of ``n`` lanes open: a turn to the kerb side from the kerb lane, a turn
        across the opposing flow or a U-turn from the lane nearest the centre, through
        movements and vehicles ending their trip on the edge from any lane (the lane use
        ``netconvert`` gives a plain junction); with ``multi_queue`` off, or on one lane, a
        single queue.
        """
        n = n_open.astype(np.int64)
        every = np.broadcast_to(((np.int64(1) << n) - 1)[:, None], nxt.shape)
        centre = np.broadcast_to((np.int64(1) << (n - 1))[:, None], nxt.shape)
        pr = self.prio
        e = np.broadcast_to(edges[:, None], nxt.shape)
        hx, hy = pr.heading[:, 0], pr.heading[:, 1]
        cross = pr.side * (hx[e] * hy[nxt] - hy[e] * hx[nxt])
        dot = hx[e] * hx[nxt] + hy[e] * hy[nxt]
        across = (cross > 0.5) | (dot < -0.9)
        kerb = (cross < -0.5) & ~across
        out: np.ndarray = np.where(last, every, np.where(kerb, 1, np.where(across, centre, every)))
        if self.pockets:  # a turn with a pocket queues in it (lanes after the edge's own)
            pk = self.net.pocket[edges]
            base = self.net.main_line[edges].astype(np.int64)
            left = (((np.int64(1) << pk[:, 0]) - 1) << base)[:, None]
            right = (((np.int64(1) << pk[:, 1]) - 1) << (base + pk[:, 0]))[:, None]
            out = np.where(across & ~last & (left > 0), left, out)
            out = np.where(kerb & ~last & (right > 0), right, out)
        return out

    def _pocket_room(
        self, edges: np.ndarray, n_main: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per lane at the stop lines of ``edges``, the vehicles it stores and its access lane.

        Storage is ``inf`` but for a pocket lane; a left pocket is reached from the centre
        lane, a right pocket from the kerb lane; ``None`` where no edge has a pocket.
        """
        pk = self.net.pocket[edges]
        if not self.pockets or not pk.any():
            return None, None
        n_l = self.credit.shape[1]
        col = np.arange(n_l)[None, :]
        base = self.net.main_line[edges].astype(np.int64)[:, None]
        is_left = (col >= base) & (col < base + pk[:, :1])
        is_right = (col >= base + pk[:, :1]) & (col < base + pk[:, :1] + pk[:, 1:])
        room_l, room_r = self.net.pocket_room[edges, :1], self.net.pocket_room[edges, 1:]
        room = np.where(is_left, room_l, np.where(is_right, room_r, np.inf))
        centre = (n_main.astype(np.int64) - 1)[:, None]
        access = np.where(is_left, centre, np.where(is_right, 0, col))
        return room, access.astype(np.int64)

    def _rate(self, edges: np.ndarray, *, give_way: bool = True) -> np.ndarray:
        """Discharge rate of ``edges`` (veh/s).

        Lanes open x saturation flow or, on a minor approach (unless ``give_way`` is off), the
        gap-acceptance capacity of a through movement if lower: what routing counts on. The
        discharge itself charges each movement its own (:meth:`_minor_weight`).
        """
        rate: np.ndarray = self.cap_rate[edges]
        if not self.give_way or not give_way:
            return rate
        minor = self.prio.minor[edges]
        if minor.any():
            e = edges[minor]
            c = self._through_capacity(e)
            frac = self.cap_rate[e] / np.maximum(self.net.cap_rate[e], 1e-12)  # lanes open
            rate = rate.copy()
            rate[minor] = np.minimum(rate[minor], self.net.lanes[e] * frac * c / 3600.0)
        return rate

    def _discharge(self, t: float) -> None:
        sig = self.sig
        act = np.flatnonzero(self.head_ready <= t)
        if not act.size:
            return
        width = self.buf.shape[1]
        # red approaches: no capacity; only a head that ends its trip there may leave
        green = sig.green(act, t)
        if not green.all():
            red = act[~green]
            self.credit[red] = np.minimum(self.credit[red], 0.0)
            self.last_seen[red] = t
            head = self.buf[red, self.n_out[red] & (width - 1)]
            ends = self.pos[head] >= self.route_len[head] - 1
            act = np.concatenate([act[green], red[ends]])
            green = np.concatenate(
                [np.ones(int(green.sum()), dtype=bool), np.zeros(int(ends.sum()), dtype=bool)]
            )
            if not act.size:
                return
        if self.pockets:  # approaches with pockets look further down their queues
            wide = self.net.pocket[act].any(axis=1)
            if wide.any():
                if not wide.all():
                    self._discharge_rows(act[~wide], green[~wide], t, self.k_base)
                self._discharge_rows(act[wide], green[wide], t, self.k)
                return
        self._discharge_rows(act, green, t, self.k_base)

    def _discharge_rows(self, act: np.ndarray, green: np.ndarray, t: float, k: int) -> None:
        """Discharge the heads of edges ``act`` (``green``: their signal), a window of ``k``."""
        sc, net = self.sc, self.net
        sig = self.sig
        dt_s = sc.dt_s
        width = self.buf.shape[1]
        # capacity credits, accrued lazily since the edge was last looked at
        # at most one step's worth plus the fraction of a vehicle carried over (a cap of one
        # step's worth alone would drop that fraction when a step serves a non-integer number)
        # per lane: each open lane discharges its share of the edge's rate
        n_open = np.clip(self.lanes_open[act], 1, self.credit.shape[1])
        if not sc.multi_queue:
            n_open = np.ones_like(n_open)
        rate = (self._rate(act, give_way=False) / n_open)[:, None]
        credit = np.minimum(
            self.credit[act] + rate * (t - self.last_seen[act])[:, None], rate * dt_s + 1.0
        )
        self.last_seen[act] = t
        credit[~green] = np.minimum(credit[~green], 0.0)
        n_out = self.n_out[act]
        seq = n_out[:, None] + np.arange(k)[None, :]
        valid = seq < self.n_in[act][:, None]
        veh = self.buf[act[:, None], seq & (width - 1)]
        ready_t = np.where(valid, self.ready[veh], np.inf)
        # no overtaking on the way: a vehicle still driving the edge holds those behind it
        ready = np.logical_and.accumulate(ready_t <= t, axis=1)
        pos = self.pos[veh]
        last = pos >= self.route_len[veh] - 1
        nxt = self.route_flat[np.minimum(self.route_ptr[veh] + pos + 1, self.route_flat.size - 1)]
        shut = ready[:, 0] & ~last[:, 0] & (self.lanes_open[nxt[:, 0]] <= 0)
        if shut.any() and self._reroute_heads(veh[shut, 0], act[shut], t):
            nxt = self.route_flat[
                np.minimum(self.route_ptr[veh] + pos + 1, self.route_flat.size - 1)
            ]
        needcap = ~last
        weight = needcap.astype(float)
        if self.prio.left_turns:
            weight = np.where(needcap, self._turn_weight(act, nxt), 0.0)
        if self.give_way:
            minor = self.prio.minor[act]
            if minor.any():
                weight[minor] = np.where(
                    needcap[minor], self._minor_weight(act[minor], nxt[minor]), 0.0
                )
        ok = ready.copy()
        if sig.signalised[act].any():
            # green per movement: a right turn may go while the through movement waits
            ok &= last | sig.green_move(np.broadcast_to(act[:, None], nxt.shape), nxt, t)
        # a closed edge takes no vehicle: its vehicles wait (or were routed round it above)
        open_ = self.lanes_open[nxt] > 0
        if sc.spillback:
            room = (self.n_in[nxt] - self.n_out[nxt] < net.storage[nxt]) & open_
            # the head waits for room from the first step it could otherwise have left; it is
            # let through once it has waited max_blocked_s, whatever else holds it meanwhile
            waits = ok[:, 0] & ~last[:, 0] & ~room[:, 0]
            self.blocked_since[act[waits]] = np.minimum(self.blocked_since[act[waits]], t)
            jump = np.zeros(room.shape, dtype=bool)
            jump[:, 0] = (t - self.blocked_since[act] >= sc.max_blocked_s) & open_[:, 0]
            ok &= last | room | jump
            forced = jump & ~room & ~last
        else:
            ok &= last | open_
            forced = np.zeros(ok.shape, dtype=bool)
        # queues at the edge end, one per lane: a vehicle held (by its signal, a full next
        # edge) holds those behind it in its lane; the others change lanes round it
        # a vehicle goes if its lane's credit is at least one vehicle; a left turner waiting
        # for a gap uses more than one (the credit may go negative, a debt)
        n_main = n_open
        if self.pockets:  # the lanes at the stop line beside the pockets, less those closed
            n_main = np.clip(n_open + (self.net.main_line - self.net.lanes)[act], 1, None)
        lanes = self._lane_masks(act, nxt, last, n_main)
        room, access = self._pocket_room(act, n_main)
        ok, credit, lane = _lane_discharge(
            ok, lanes, veh, np.where(last, 0.0, weight), credit, room, access
        )
        n_exit = ok.sum(axis=1)
        forced_rows = (ok & forced).any(axis=1)
        if forced_rows.any():
            self.n_forced += int(forced_rows.sum())
            np.add.at(self.forced_at, act[forced_rows], 1)
        self.credit[act] = credit
        moved = n_exit > 0
        if not moved.any():
            return
        act_m = act[moved]
        self.blocked_since[act_m] = np.inf
        # vehicles that passed one held ahead of them: those staying close up behind the gone
        passed = (ok & ~np.logical_and.accumulate(ok, axis=1)).any(axis=1)
        if passed.any():
            order = np.argsort(~ok[passed], axis=1, kind="stable")
            rows = act[passed]
            seq_p = seq[passed]
            kept = np.take_along_axis(veh[passed], order, axis=1)
            fill = np.take_along_axis(valid[passed], order, axis=1)
            r_i, c_i = np.nonzero(fill)
            self.buf[rows[r_i], seq_p[r_i, c_i] & (width - 1)] = kept[r_i, c_i]
        self.n_out[act_m] += n_exit[moved]
        self.out_step[act_m] += n_exit[moved]
        vs = veh[ok]
        from_e = np.repeat(act, n_exit)
        t_exit = np.maximum(ready_t[ok], t - dt_s)
        slot = min(int(t // sc.slot_s), self.n_slots - 1)
        np.add.at(self.rec_out[slot], from_e, 1.0)
        np.add.at(self.rec_tt[slot], from_e, t_exit - self.enter[vs])
        np.add.at(self.rec_wait[slot], from_e, t_exit - self.ready[vs])
        np.add.at(self.tot_stops, from_e, (t_exit > ready_t[ok]).astype(float))
        # new heads of the edges that discharged
        nonempty = self.n_in[act_m] > self.n_out[act_m]
        heads = self.buf[act_m, self.n_out[act_m] & (width - 1)]
        self.head_ready[act_m] = np.where(nonempty, self.ready[heads], np.inf)
        arr = last[ok]
        done = vs[arr]
        self.arrive[done] = t_exit[arr]
        self.n_done += done.size
        self.n_active -= done.size
        go = vs[~arr]
        self.pos[go] += 1
        speed: np.ndarray | None = None
        shift: np.ndarray | None = None
        if sc.stop_loss:
            speed, shift = self._stop_line_speed(
                act, ok, lane, from_e, vs, t_exit, ready_t[ok], last[ok], dt_s
            )
            speed, shift = speed[~arr], shift[~arr]
        self._enter(go, nxt[ok][~arr], t_exit[~arr], t, speed, shift)

    def _stop_line_speed(
        self,
        act: np.ndarray,
        ok: np.ndarray,
        lane: np.ndarray,
        from_e: np.ndarray,
        vs: np.ndarray,
        t_exit: np.ndarray,
        ready: np.ndarray,
        last: np.ndarray,
        dt_s: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Speed (m/s) at which the vehicles leaving now cross their stop lines.

        Rows of ``act`` and the flat arrays of the leaving vehicles ``vs`` (in queue order per
        lane) as :meth:`_discharge` has them. A vehicle not held crosses as it came (cruising,
        or still accelerating from an earlier stop). A held one that stood ``k`` places back
        in a queue that started from standstill accelerated over ``k`` jam spacings before
        the line: ``min(v, sqrt(2 a k s_j))``; the head (``k = 0``) crosses from standstill,
        or, held only ``w`` seconds, at ``v - sqrt(2 b v w)`` (it slowed without stopping). A
        lane's discharge is from standstill when its last vehicle crossed more than 1.5
        headways (or steps) before; otherwise it is a moving stream, at its speed. A vehicle
        leaving a give-way approach crosses from a stop.
        """
        net = self.net
        n_l = self.credit.shape[1]
        row_of = np.repeat(np.arange(act.size), ok.sum(axis=1))
        ln = lane[ok]
        key = act[row_of] * n_l + ln
        v = net.travel_length[from_e] / (self.tt_free[from_e] * self.inv_factor[vs])
        wait = t_exit - ready
        held = wait > 0.0
        u = np.minimum(self.u_end[vs], v)
        # rank of each in its lane's discharge from standstill; vehicles ending their trip
        # stop short of the line and do not count
        go = ~last
        kg = key[go]
        o = np.argsort(kg, kind="stable")
        ks, hs, ts = kg[o], held[go][o], t_exit[go][o]
        first = np.concatenate(([True], ks[1:] != ks[:-1])) if ks.size else ks.astype(bool)
        idx = np.arange(ks.size)
        flat_last = self.lane_last.reshape(-1)
        flat_rank = self.lane_rank.reshape(-1)
        gap = 1.5 * max(3600.0 / self.sc.saturation_flow, dt_s)
        prev_t = np.where(first, flat_last[ks], np.concatenate(([0.0], ts[:-1])))
        # a held vehicle after a pause starts a queue from standstill (rank 0); one not held
        # makes the lane a moving stream; the first of a lane otherwise counts on from the
        # lane's last, and the others from the one ahead
        fresh = hs & (ts - prev_t > gap)
        reset = first | fresh | ~hs
        val = np.where(fresh, 0, np.where(~hs, _QUEUE_MOVING, flat_rank[ks] + 1))
        at = np.maximum.accumulate(np.where(reset, idx, 0))
        rank = np.minimum(val[at] + (idx - at), _QUEUE_MOVING)
        tail = np.concatenate((first[1:], [True])) if ks.size else first
        flat_last[ks[tail]] = ts[tail]
        flat_rank[ks[tail]] = rank[tail]
        r = np.full(vs.size, _QUEUE_MOVING, dtype=np.int64)
        r[np.flatnonzero(go)[o]] = rank
        dist = r * self.sc.jam_spacing_m
        queued = np.minimum(v, np.sqrt(2 * ACCEL_M_S2 * dist))
        slowed = np.maximum(v - np.sqrt(2 * DECEL_M_S2 * v * np.maximum(wait, 0.0)), 0.0)
        u = np.where(held, np.minimum(u, np.maximum(queued, slowed)), u)
        if self.give_way:
            u = np.where(self.prio.minor[from_e], 0.0, u)
        # what of its start-up a vehicle that stood loses before the line (the platoon shift)
        burst = held & (r < _QUEUE_MOVING)
        if self.give_way:
            burst &= ~self.prio.minor[from_e]
        total = np.minimum(v / (2 * ACCEL_M_S2), DECEL_M_S2 / ACCEL_M_S2 * np.maximum(wait, 0.0))
        after = (v - u) ** 2 / (2 * ACCEL_M_S2 * v)
        shift = np.where(burst, np.maximum(total - after, 0.0), 0.0)
        return u, shift


def _stepper(env: simpy.Environment, st: _State, end_s: float, bar: Any) -> Any:
    """Advance the link model every ``dt_s`` until ``end_s`` or until every trip is done."""
    dt_s = st.sc.dt_s
    last_dep = float(st.depart.max()) if st.depart.size else 0.0
    shown = 0.0
    while env.now < end_s:
        yield env.timeout(dt_s)
        st.step(env.now)
        if env.now - shown >= 60.0:
            bar.update(env.now - shown)
            bar.set_postfix(active=st.n_active, done=st.n_done, refresh=False)
            shown = env.now
        if (
            st.sc.duration_s is None
            and env.now >= last_dep
            and st.n_active == 0
            and st.pending.size == 0
            and st.next_dep >= st.depart.size
        ):
            break
    bar.update(max(env.now - shown, 0.0))
    st.end_s = env.now


def _router(env: simpy.Environment, st: _State, end_s: float) -> Any:
    """Route, every ``reroute_s``, the trips departing in the coming window."""
    period = st.sc.reroute_s
    while env.now < end_s:
        st.route_window(env.now, env.now + period)
        yield env.timeout(period)


def _route_arrays(net: _Network, trips: Sequence[Trip]) -> list[np.ndarray]:
    """Edge indices of the given routes; checks that edges exist and follow each other."""
    idx = net.index
    routes = []
    for t in trips:
        try:
            r = np.fromiter((idx[e] for e in t.route or ()), dtype=np.int64)
        except (KeyError, TypeError):
            r = np.array(
                [net.key(e, field=f"trip {t.id!r}.route") for e in t.route or ()], dtype=np.int64
            )
        if not r.size:
            msg = f"trip {t.id!r}.route: the route is empty"
            raise InputValidationError(msg)
        routes.append(r)
    flat = np.concatenate(routes)
    lens = np.array([r.size for r in routes])
    brk = np.flatnonzero(net.v[flat[:-1]] != net.u[flat[1:]])
    ends = np.cumsum(lens)[:-1] - 1  # junctions between two routes are not breaks
    brk = np.setdiff1d(brk, ends)
    if brk.size:
        i = int(np.searchsorted(np.cumsum(lens), brk[0], side="right"))
        b = int(brk[0] - (np.cumsum(lens)[i - 1] if i else 0))
        msg = f"trip {trips[i].id!r}.route: edges {b} and {b + 1} are not consecutive"
        raise InputValidationError(msg)
    return routes


def _validate_trips(trips: Iterable[Trip], net: _Network) -> list[Trip]:
    out, seen = [], set()
    for t in trips:
        if t.id in seen:
            msg = f"trips: id {t.id!r} is used twice"
            raise InputValidationError(msg)
        seen.add(t.id)
        if not math.isfinite(t.depart_s) or t.depart_s < 0:
            msg = f"trip {t.id!r}: depart_s {t.depart_s!r} must be finite and non-negative"
            raise InputValidationError(msg)
        for field, node in (("origin_node", t.origin_node), ("dest_node", t.dest_node)):
            if node not in net.node_index:
                msg = f"trip {t.id!r}: {field} {node!r} is not a graph node"
                raise InputValidationError(msg)
        out.append(t)
    return out


class TrafficSimulation:
    """A traffic run that callers can steer: close lanes, change speeds, switch signal plans.

    Crisis scenarios (incidents, snow, emergency runs) apply their changes through these
    calls, or as :class:`Incident`, :class:`SpeedChange` and :class:`PlanChange` entries of
    ``scenario.disturbances``; they never edit the simulation's state. A change may be
    scheduled at any time from :attr:`now` on, before or while the run advances
    (:meth:`run_until`); :meth:`result` runs to the end and returns the dataset of :func:`run`.

    Parameters
    ----------
    scenario : TrafficScenario
    rng : numpy.random.Generator, int or None
        Randomness (demand sampling, speed factors); the same seed gives the same result.

    Examples
    --------
    >>> import networkx as nx
    >>> g = nx.MultiDiGraph(crs="EPSG:2154")
    >>> g.add_nodes_from([(0, {"x": 0.0, "y": 0.0}), (1, {"x": 500.0, "y": 0.0})])
    >>> _ = g.add_edge(0, 1, length=500.0, speed_kph=36.0, lanes=1, highway="primary")
    >>> trips = (Trip("a", 0, 1, 0.0), Trip("b", 0, 1, 100.0))
    >>> sim = TrafficSimulation(TrafficScenario(g, trips=trips, speed_factor_sd=0.0), rng=1)
    >>> sim.set_speed([(0, 1, 0)], 0.5, start_s=60.0)  # half speed from the first minute on
    >>> ds = sim.result()
    >>> ds["travel_time"].values.tolist()
    [50.0, 100.0]
    """

    def __init__(
        self, scenario: TrafficScenario, *, rng: np.random.Generator | int | None = None
    ) -> None:
        from twin.settings import get_settings

        sc = scenario
        gen = _as_rng(rng)
        net = _Network(sc)
        sig = _Signals(net, sc.plans, sc.programs)
        trips = list(sc.trips)
        if sc.demand is not None:
            for n in sc.demand.zone_nodes:
                if n not in net.node_index:
                    msg = f"ODDemand.zone_nodes: {n!r} is not a graph node"
                    raise InputValidationError(msg)
            trips += sc.demand.sample(gen)
        trips = _validate_trips(trips, net)
        last_dep = max((t.depart_s for t in trips), default=0.0)
        end_s = float(sc.duration_s) if sc.duration_s is not None else last_dep + sc.max_extra_s
        for i, (_, cost) in enumerate(sc.routing_times):
            if cost.size != len(net.edges):
                msg = (
                    f"TrafficScenario.routing_times[{i}]: {cost.size} link times for "
                    f"{len(net.edges)} graph edges"
                )
                raise InputValidationError(msg)
        self.scenario, self._net, self._sig = sc, net, sig
        self._st = _State(sc, net, sig, trips, gen, end_s)
        self._trip_index = {t.id: i for i, t in enumerate(trips)}
        # explicit routes
        given = [i for i, t in enumerate(trips) if t.route is not None]
        if given:
            self._st.set_routes(
                np.array(given, dtype=np.int64), _route_arrays(net, [trips[i] for i in given])
            )
        self._env = simpy.Environment()
        progress = get_settings().progress if sc.progress is None else sc.progress
        self._bar = progress_bar(
            total=end_s, unit="sim s", disable=not progress, desc="traffic", leave=False
        )
        self._proc: simpy.Process | None = None
        self._result: xr.Dataset | None = None
        # disturbances first: at equal times their changes are seen by the router
        for inc in sc.incidents:
            net.key(inc.edge, field="Incident.edge")
            self.close_lanes(inc.edge, inc.lanes_closed, start_s=inc.start_s, end_s=inc.end_s)
        for d in sc.disturbances:
            self.apply(d)
        self._env.process(_router(self._env, self._st, end_s))
        self._proc = self._env.process(_stepper(self._env, self._st, end_s, self._bar))

    @property
    def now(self) -> float:
        """Simulated time reached (s since ``t0``)."""
        return float(self._env.now)

    @property
    def done(self) -> bool:
        """Whether the run has ended (every trip done, or its end reached)."""
        return self._proc is not None and bool(self._proc.triggered)

    # ---- disturbances -------------------------------------------------------------------------
    def _check_time(self, t: float, field: str) -> float:
        if not math.isfinite(t):
            msg = f"{field}: {t!r} must be finite"
            raise InputValidationError(msg)
        if t < self.now:
            msg = f"{field}: {t:g} s is before the simulated time {self.now:g} s"
            raise InputValidationError(msg)
        if self.done:
            msg = f"{field}: the run has ended at {self.now:g} s"
            raise InputValidationError(msg)
        return float(t)

    def _at(self, t: float, action: Any) -> None:
        """Call ``action()`` at ``t`` (now if ``t`` is now)."""
        if t <= self.now:
            action()
            self._st.reroute_undeparted(self.now)
            return

        def proc(env: simpy.Environment) -> Any:
            yield env.timeout(t - env.now)
            action()
            # trips routed ahead of the change and not yet gone take it into account
            self._st.reroute_undeparted(env.now)

        self._env.process(proc(self._env))

    def close_lanes(
        self, edge: EdgeKey, lanes: int, *, start_s: float, end_s: float | None = None
    ) -> None:
        """Close ``lanes`` lanes of ``edge`` from ``start_s`` (until ``end_s``, if given).

        Closing as many lanes as the edge has closes it: no vehicle leaves it and routes
        avoid it.
        """
        if isinstance(lanes, bool) or not isinstance(lanes, int | np.integer) or lanes < 1:
            msg = f"close_lanes.lanes: {lanes!r} must be a whole number of lanes, at least 1"
            raise InputValidationError(msg)
        e = self._net.key(edge, field="close_lanes.edge")
        start = self._check_time(start_s, "close_lanes.start_s")
        if end_s is not None and not end_s > start:
            msg = f"close_lanes.end_s: {end_s!r} is not after start_s {start_s!r}"
            raise InputValidationError(msg)
        st = self._st
        closed = [0.0]

        def close() -> None:
            closed[0] = float(min(int(lanes), st.lanes_open[e]))
            st.lanes_open[e] -= closed[0]
            st.cap_rate[e] = st.net.cap_rate[e] * max(st.lanes_open[e], 0) / st.net.lanes[e]

        def reopen() -> None:
            st.lanes_open[e] += closed[0]
            st.cap_rate[e] = st.net.cap_rate[e] * max(st.lanes_open[e], 0) / st.net.lanes[e]

        self._at(start, close)
        if end_s is not None:
            self._at(end_s, reopen)

    def set_speed(
        self,
        edges: Iterable[EdgeKey],
        factor: float,
        *,
        start_s: float,
        end_s: float | None = None,
    ) -> None:
        """Multiply the free speed of ``edges`` by ``factor`` from ``start_s`` (to ``end_s``)."""
        change = SpeedChange(tuple(edges), factor, start_s, end_s)
        idx = np.array(
            [self._net.key(e, field="set_speed.edges") for e in change.edges], dtype=np.int64
        )
        start = self._check_time(start_s, "set_speed.start_s")
        st, f = self._st, change.factor

        def scale(by: float) -> None:
            np.multiply.at(st.speed_factor, idx, by)
            st.tt_free[idx] = st.net.tt_free[idx] / st.speed_factor[idx]

        self._at(start, lambda: scale(f))
        if change.end_s is not None:
            self._at(change.end_s, lambda: scale(1.0 / f))

    def set_plan(self, plan: SignalPlan, *, at_s: float) -> None:
        """Switch the plan's junction to ``plan`` at ``at_s``."""
        change = PlanChange(plan, at_s)
        self._sig.edges_of(plan)  # checked now, not when it takes over
        at = self._check_time(change.at_s, "set_plan.at_s")
        st = self._st

        def switch() -> None:
            edges = self._sig.set_plan(plan)
            st.prio.minor[edges] = False  # a signalised approach does not give way
            st.prio.major[edges] = False

        self._at(at, switch)

    def set_program(self, program: SignalProgram, *, at_s: float) -> None:
        """Switch the program's junction to ``program`` (green per movement) at ``at_s``.

        The junction's plan or program stops then; ``program`` runs, cyclically, until another
        :meth:`set_plan` or :meth:`set_program` of the junction (a one-off sequence such as an
        emergency preemption is a program whose cycle is its horizon, followed by
        :meth:`set_plan`).
        """
        if not isinstance(program, SignalProgram):
            msg = f"set_program.program: {program!r} is not a SignalProgram"
            raise InputValidationError(msg)
        field = f"set_program({program.junction}).movements"
        edges = [self._net.key(a, field=field) for a, _, _ in program.movements]
        for _, b, _ in program.movements:
            self._net.key(b, field=field)
        at = self._check_time(at_s, "set_program.at_s")
        st, sig = self._st, self._sig

        def switch() -> None:
            sig._drop(program.junction)
            sig._set_program(program)
            sig._rebuild()
            st.prio.minor[edges] = False  # a signalised approach does not give way
            st.prio.major[edges] = False

        self._at(at, switch)

    def locate(self, trip: str) -> tuple[EdgeKey | None, float]:
        """Where a trip is now: its edge ``(u, v, key)`` and when it entered it (s since ``t0``).

        ``(None, nan)`` before it has entered the network or after it has arrived.
        """
        st = self._st
        i = self._trip_index.get(trip)
        if i is None:
            msg = f"locate.trip: no trip {trip!r} in this run"
            raise InputValidationError(msg)
        moving = st.route_len[i] >= 0 and math.isfinite(st.ready[i]) and math.isnan(st.arrive[i])
        if not moving:
            return None, math.nan
        e = int(st.route_flat[st.route_ptr[i] + st.pos[i]])
        return self._net.edges[e], float(st.enter[i])

    def apply(self, disturbance: Disturbance) -> None:
        """Schedule an :class:`Incident`, :class:`SpeedChange` or :class:`PlanChange`."""
        d = disturbance
        if isinstance(d, Incident):
            self.close_lanes(d.edge, d.lanes_closed, start_s=d.start_s, end_s=d.end_s)
        elif isinstance(d, SpeedChange):
            self.set_speed(d.edges, d.factor, start_s=d.start_s, end_s=d.end_s)
        elif isinstance(d, PlanChange):
            self.set_plan(d.plan, at_s=d.at_s)
        else:
            msg = f"disturbance: {d!r} is not an Incident, SpeedChange or PlanChange"
            raise InputValidationError(msg)

    # ---- running ------------------------------------------------------------------------------
    def run_until(self, t_s: float) -> None:
        """Advance the simulation to ``t_s`` (s since ``t0``), or to its end if sooner."""
        if t_s < self.now:
            msg = f"run_until: {t_s:g} s is before the simulated time {self.now:g} s"
            raise InputValidationError(msg)
        if self.done or self._proc is None:
            return
        self._env.run(until=simpy.AnyOf(self._env, [self._proc, self._env.timeout(t_s - self.now)]))

    def result(self) -> xr.Dataset:
        """Run to the end (if not there yet) and return the dataset of :func:`run`."""
        if self._result is not None:
            return self._result
        if self._proc is not None:
            self._env.run(until=self._proc)
        self._bar.close()
        st = self._st
        if st.unreachable:
            n_bad = sum(st.unreachable.values())
            log.warning(
                "traffic: %d trips dropped, no route for %d OD pairs (e.g. %s)",
                n_bad,
                len(st.unreachable),
                list(st.unreachable)[:5],
            )
        self._result = _to_dataset(self.scenario, self._net, self._sig, st)
        return self._result


def run(scenario: TrafficScenario, *, rng: np.random.Generator | int | None = None) -> xr.Dataset:
    """Run a traffic scenario.

    Parameters
    ----------
    scenario : TrafficScenario
        Network, demand, plans, incidents and other disturbances.
    rng : numpy.random.Generator, int or None
        Randomness (demand sampling, speed factors); the same seed gives the same result.

    Returns
    -------
    xarray.Dataset
        Dims ``edge``, ``time`` (slots), ``trip``, ``od``, ``approach``; variables ``flow``,
        ``speed``, ``queue``, ``travel_time``, ``mean_travel_time``, ``delay``, ``stops``.
        Attributes ``n_dropped`` and ``unreachable_pairs`` (JSON) report trips that had no route;
        ``n_unfinished`` those still on the road at the end; ``n_forced`` (and the edge
        variable ``forced``) the heads let into a full next edge after ``max_blocked_s``, the
        counterpart of SUMO's teleports.
    """
    return TrafficSimulation(scenario, rng=rng).result()


def _to_dataset(sc: TrafficScenario, net: _Network, sig: _Signals, st: _State) -> xr.Dataset:
    n_slots = max(1, int(math.ceil(st.end_s / sc.slot_s)))
    rec_in, rec_out = st.rec_in[:n_slots], st.rec_out[:n_slots]
    rec_tt, rec_wait = st.rec_tt[:n_slots], st.rec_wait[:n_slots]
    slot_len = np.minimum(sc.slot_s, st.end_s - np.arange(n_slots) * sc.slot_s)
    slot_len = np.maximum(slot_len, 1e-9)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(rec_out > 0, net.travel_length[None, :] * rec_out / rec_tt, np.nan)
    t0 = pd.Timestamp(sc.t0).tz_convert("UTC").tz_localize(None)
    times = t0 + pd.to_timedelta(np.arange(n_slots) * sc.slot_s, unit="s")
    kept = ~st.dropped
    ids = np.array([t.id for t in st.trips], dtype=object)
    tt = st.arrive - st.depart
    nodes = np.array([str(n) for n in net.nodes], dtype=object)
    ds = xr.Dataset(
        coords={
            "edge": ("edge", net.edge_id.astype(str)),
            "edge_u": ("edge", nodes[net.u].astype(str)),
            "edge_v": ("edge", nodes[net.v].astype(str)),
            "length": ("edge", net.length, {"units": "m", "long_name": "edge length"}),
            "time": ("time", times.values, {"timezone": "UTC", "long_name": "slot start"}),
            "trip": ("trip", ids[kept].astype(str)),
            "origin": ("trip", nodes[st.origin[kept]].astype(str)),
            "destination": ("trip", nodes[st.dest[kept]].astype(str)),
            "depart": ("trip", st.depart[kept], {"units": "s", "long_name": "departure since t0"}),
            "arrive": ("trip", st.arrive[kept], {"units": "s", "long_name": "arrival since t0"}),
        }
    )
    ds["flow"] = (
        ("edge", "time"),
        (rec_in / slot_len).T * 3600.0,
        {"units": "veh/h", "long_name": "vehicles entering the edge"},
    )
    ds["speed"] = (
        ("edge", "time"),
        speed.T,
        {"units": "m/s", "long_name": "space-mean speed of vehicles leaving the edge"},
    )
    ds["queue"] = (
        ("edge", "time"),
        (rec_wait / slot_len).T,
        {"units": "veh", "long_name": "time-mean number of vehicles held at the head"},
    )
    ds["travel_time"] = ("trip", tt[kept], {"units": "s", "long_name": "trip travel time"})
    ds["forced"] = (
        "edge",
        st.forced_at,
        {
            "units": "veh",
            "long_name": "heads let into a full next edge after max_blocked_s (teleports)",
        },
    )
    # OD means
    o_s, d_s = nodes[st.origin[kept]].astype(str), nodes[st.dest[kept]].astype(str)
    frame = pd.DataFrame({"o": o_s, "d": d_s, "tt": tt[kept]})
    od = frame.groupby(["o", "d"], sort=True)["tt"].agg(["mean", "count"])
    ds = ds.assign_coords(
        od=("od", np.arange(len(od))),
        od_origin=("od", od.index.get_level_values(0).astype(str).to_numpy()),
        od_destination=("od", od.index.get_level_values(1).astype(str).to_numpy()),
        od_trips=("od", od["count"].to_numpy()),
    )
    ds["mean_travel_time"] = (
        "od",
        od["mean"].to_numpy(),
        {"units": "s", "long_name": "mean travel time of arrived trips"},
    )
    # approach delays
    app_e = np.array([e for _, e in sig.approaches], dtype=np.int64)
    tot_out = rec_out.sum(axis=0)
    tot_wait = rec_wait.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delay = np.where(tot_out[app_e] > 0, tot_wait[app_e] / tot_out[app_e], np.nan)
    ds = ds.assign_coords(
        approach=(
            "approach",
            net.edge_id[app_e].astype(str) if app_e.size else np.zeros(0, dtype=str),
        ),
        junction=("approach", np.array([j for j, _ in sig.approaches], dtype=str)),
        approach_volume=("approach", tot_out[app_e]),
    )
    ds["delay"] = (
        "approach",
        delay,
        {"units": "s", "long_name": "mean delay at the stop line per vehicle"},
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        stops = np.where(tot_out[app_e] > 0, st.tot_stops[app_e] / tot_out[app_e], np.nan)
    ds["stops"] = (
        "approach",
        stops,
        {
            "units": "1",
            "long_name": "share of vehicles held at the stop line (stopped) before leaving",
        },
    )
    unreachable = [[str(o), str(d), n] for (o, d), n in st.unreachable.items()]
    ds.attrs.update(
        {
            "model": "mesoscopic FIFO link queues with signal-gated discharge (twin.scenarios)",
            "crs": str(sc.graph.graph.get("crs", "")),
            "t0": sc.t0.isoformat(),
            "dt_s": sc.dt_s,
            "slot_s": sc.slot_s,
            "simulated_s": float(st.end_s),
            "n_trips": int(kept.sum()),
            "n_dropped": int(st.dropped.sum()),
            "n_unreachable_pairs": len(unreachable),
            "unreachable_pairs": json.dumps(unreachable[:1000]),
            "n_unfinished": int(np.isnan(tt[kept]).sum()),
            "n_forced": int(st.n_forced),
            "n_pocket_edges": int((net.pocket.sum(axis=1) > 0).sum()),
        }
    )
    return ds


def plans_by_junction(plans: Iterable[SignalPlan]) -> Mapping[str, SignalPlan]:
    """Index plans by junction id (a junction may appear once)."""
    out: dict[str, SignalPlan] = {}
    for p in plans:
        if p.junction in out:
            msg = f"plans: junction {p.junction!r} has two plans"
            raise InputValidationError(msg)
        out[p.junction] = p
    return out
