"""A whole weekday of a city's car traffic in the DES, on paths of the equilibrium assignment.

:func:`simulate_weekday` draws a weekday of car trips from the twin's demand model
(:meth:`~twin.scenarios.demand.DemandModel.trips`), assigns the demand of each period of the day
to user equilibrium (:func:`~twin.scenarios.assignment.equilibrium_times`), and runs the DES
(:mod:`twin.scenarios.traffic`) with each trip routed on the equilibrium link times of its
departure period (``routing="equilibrium"``) or on the DES's own current times
(``routing="dynamic"``). It reports:

* trips finished by the end of the day (local midnight) and still on the road at the end of the
  run (four hours later), and the heads let into a full edge after ``max_blocked_s`` (SUMO's
  teleports, counted, never hidden);
* mean and p90 trip time by departure hour (local clock);
* the real-time factor (simulated s per wall s of the DES alone);
* the volume/capacity of each drive segment at 08:00 and 17:00 (vehicles entering per hour
  over the assignment's capacity, :data:`twin.scenarios.assignment.BPR`; the higher of the two
  directions), as tables and maps;
* the agreement of link times between the DES and the assignment (:func:`link_time_agreement`).

:func:`write_weekday_report` writes them (CSV, JSON, PNG); ``twin traffic weekday`` is its CLI.

Where Montpellier's full weekday stands (about 556,000 car trips)
----------------------------------------------------------------
The grid-lock is oversaturation that spills back, not a deadlock of the model. With four
gateways of one lane each (the convex hull's) and every street at one lane a way, 890 edges
were full at 08:00 (routes every 600 s), 836 of them waiting for a full next edge, and 5,000
trips waited to enter at the gateways. What changed it:

============================================  ===============  ========  ===========
routing (08:00, full demand)                  on the road      forced    full edges
============================================  ===============  ========  ===========
current times, every 600 s                    19,151           1,903     890
current times, every 120 s                    14,602           673       536
every 120 s, queues priced at their outflow   16,346           361       625
equilibrium times of the period (7-10 h)      26,543           5,285     1,333
the above, main roads at two lanes a way      15,100           121       392
============================================  ===============  ========  ===========

With the gateways on the network's concave outline (17, sized by what their entry roads carry),
the cells cut off from the main network served from it, and lanes sized from the counted peak
flows, the morning window (``hours=(5, 10)``, routes on current times every 120 s) still locks.
Measured with the give-way capacity of the summed major flow, then with the HCM's capacity per
minor movement (its own conflicting streams, critical gap and follow-up time,
:func:`twin.scenarios.traffic.hcm_potential_capacity`):

=====  =================  =================  =================
local  on the road        full edges         forced heads
=====  =================  =================  =================
08:00  16,102 -> 15,768   470 -> 417         121 -> 314
08:30  28,697 -> 29,474   954 -> 919         645 -> 1,536
09:00  44,398 -> 46,100   1,645 -> 1,747     3,108 -> 5,318
=====  =================  =================  =================

The gateways are no longer where it starts (2 of their 36 edges full at 08:00). The static
equilibrium of the 08:00 hour (54,800 veh/h) holds about 5,700 vehicles on the road (its
vehicle-hours per hour) with 87 of 13,809 links above capacity, so the network's BPR capacity
carries the demand; the DES's does not. At 08:00 (summed major flow), 262 of the 470 full edges
were residential and 152 tertiary, mostly one lane a way, and of the 153 held by their own
capacity rather than by a full next edge, 97 were unsignalised minor approaches of priority
junctions. With ``priority_junctions=False`` the same run has 9,138 vehicles on the road at
08:00, 103 full edges and 4 forced heads; without the left-turn yield, or without the
stop-and-start loss, it is unchanged (16,185 and 16,846 on the road). Even without priority
junctions the day locks later (32.5% of the trips finished, on the road 23,484 at 09:00): the
signalised heads of chains are the next suspect.

Is it the DES? SUMO meso on the same morning (``benchmarks/weekday_vs_sumo.py``: the 90,426
trips departing 05:00-08:30, the same 320 plans, measured before the 13 widest junctions had
theirs; each trip routed at departure on current times) locks as well when it gives right of
way at the junctions as the DES does, and flows when it does not (SUMO meso's default,
unsignalised junctions imposing nothing):

=====  =======================  ===========================  ======================
local  DES: on road, finished   SUMO, junction control:      SUMO, default:
                                on road, arrived, teleports  on road, arrived
=====  =======================  ===========================  ======================
06:00  738, 4,830               760, 4,808, 0                701, 4,867
07:00  2,521, 19,476            2,761, 19,236, 50            2,305, 19,692
07:30  10,429, 31,902           11,498, 30,580, 274          6,230, 36,137
08:00  16,204, 46,821           19,838, 39,392, 1,250 [*]_   6,719, 56,379
=====  =======================  ===========================  ======================

.. [*] at 07:56, where that run was stopped.

So the DES is not the outlier: with the city's priority rules, its network as the data gives it
(most streets one lane a way at 50 km/h, and the priority ranking of the approaches) cannot take
the morning's demand in either model. Routes that count the give-way delay at the end of a minor
approach (``TrafficScenario.route_give_way``) change little: on the trips departing 05:00-10:00,
routed every 120 s, at 08:00 17,030 -> 16,341 on the road, 493 -> 466 full edges, 418 -> 362
forced heads.

The demand calibrated on the counts flows (``twin calibrate --city montpellier --cell-m 250
--matrix-estimation --out CAL``, then ``twin traffic weekday --calibration CAL``; 333 plans,
turn pockets at 225 approaches): 632,715 trips, 99.89% finished by midnight and all by the end
of the run, 6,649 heads forced, mean trip 585 s (p90 1,057 s), real-time factor 118 on a loaded
machine (2 cores, load 3-5). Without the turn pockets the same run finished 99.36% by midnight
with 22,921 heads forced, mean trip 781 s (p90 1,388 s); the evening peak gains most (18 h
departures: mean 1,649 -> 1,350 s, 99.1% -> 100% finished). Its trips are short (beta at its
bound, 0.5 /min) and many (4.86 person trips a day): the counts alone cannot tell trip length
from trip number, and its main roads carry less than their counts (primary streets 59% of
their counted peak hour).

The figures above are with 333 plans; with the 12 clusters that need more than 4 stages run as
sub-junctions (345 plans) the same run finishes 99.89% by midnight and all by the end, 6,248
heads forced, mean trip 607 s (p90 1,108 s); with the trips of seed 7, 99.90% either way,
6,091 against 9,705 heads forced and a mean trip of 562 against 675 s. The split clusters'
approaches take longer to drive (17-19 h: 1.9 to 9.5 times as long at 8 of them), and routes
take 42% of their traffic elsewhere; the day as a whole is within what changes from run to
run: leaving 10 of the 12 unsplit (those whose internal links cannot store what arrives during
their red) gave 99.00% by midnight, 27,068 heads forced and a mean trip of 886 s on the first
seed.

Those runs were on a calibration that loaded each zone at one node, with plans sized on the
default profiles. On the calibration that loads each zone over eight of its nodes (trip rate
5.18: 662,017 trips; 345 plans, pockets, seed 20240604, load 2-4): plans sized on the default
profiles, 99.64% finished by midnight, 99.95% by the end, 21,025 heads forced, mean trip 810 s
(p90 1,406 s; 333 plans: 98.85%, 31,065 heads, 942 s); plans sized on the calibrated demand
itself (its busiest hour, 17:00, assigned to equilibrium: what the weekday now does when given a
demand), **99.90% by midnight, all by the end, 452 heads forced, mean trip 418 s (p90 811 s)**,
real-time factor 114.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import xarray as xr

from twin._errors import InputValidationError
from twin.scenarios import traffic as tr
from twin.scenarios.assignment import WEEKDAY_PERIODS, equilibrium_times
from twin.scenarios.network import REFERENCE_WEEKDAY, drive_graph, signal_plans
from twin.timeutil import validate_date

if TYPE_CHECKING:
    from twin.model import Twin
    from twin.scenarios.demand import DemandModel

__all__ = [
    "AGREEMENT_TOLERANCE",
    "VC_HOURS",
    "WeekdayResult",
    "link_time_agreement",
    "network_state",
    "simulate_weekday",
    "write_weekday_report",
]

Routing = Literal["equilibrium", "dynamic"]

VC_HOURS = (8, 17)
"""Local hours whose volume/capacity the report maps."""

AGREEMENT_TOLERANCE = 0.25
"""Relative tolerance on a link's time, DES against assignment (see :func:`link_time_agreement`).

The assignment's BPR curve gives a link's *expected* time at a steady hourly flow, with the
signal delay smeared over the curve; the DES gives the mean over the vehicles that crossed the
link in the hour, each meeting the signal at its own phase. Webster's uniform delay alone,
``C (1 - g/C)^2 / 2``, is 5-15 s at the twin's 40-120 s cycles and g/C 0.5, that is 25-100% of
a 100 m urban link's 7 s free-flow time, and the BPR curve of a main street (alpha 1.0) puts
only ``t0 (x/c)^4`` on it; a quarter of the link time is the tolerance within which the two
models can be said to describe the same link rather than the limit of either.
"""


@dataclasses.dataclass(frozen=True, eq=False)
class WeekdayResult:
    """A simulated weekday and its report tables.

    Attributes
    ----------
    city, day : str, datetime.date
    dataset : xarray.Dataset
        The DES's output (:func:`twin.scenarios.traffic.run`), slots of one hour from local
        midnight.
    by_hour : pandas.DataFrame
        Per departure hour (local clock): ``trips``, ``finished`` (share arrived by the end of
        the run), ``mean_s`` and ``p90_s`` (trip time of the arrived trips).
    vc : pandas.DataFrame
        Volume/capacity per drive segment (rows) at each of :data:`VC_HOURS` (columns).
    agreement : pandas.DataFrame
        Per period: link times, DES against assignment (:func:`link_time_agreement`).
    assignment : pandas.DataFrame
        Per period: demand (that of the simulated sample), relative gap, iterations,
        converged.
    figures : dict
        The headline figures (trips, shares finished, teleports, real-time factor, ...).
    """

    city: str
    day: dt.date
    dataset: xr.Dataset
    by_hour: pd.DataFrame
    vc: pd.DataFrame
    agreement: pd.DataFrame
    assignment: pd.DataFrame
    figures: dict[str, Any]

    def summary(self) -> str:
        """A few lines for a terminal."""
        f = self.figures
        lines = [
            f"{self.city} weekday {self.day.isoformat()}: {f['trips']:,} car trips"
            + (f" (a {f['share']:.0%} sample)" if f["share"] < 1 else "")
            + f", routes: {f['routing']}, turn pockets on {f['pocket_edges']:,} approaches",
            f"finished by midnight {f['finished_by_midnight']:.2%}, by the end of the run "
            f"{f['finished_by_end']:.2%} ({f['unfinished']:,} still on the road); heads forced "
            f"into a full edge after {f['max_blocked_s']:.0f} s: {f['forced']:,}",
            f"trip time: mean {f['mean_tt_s']:.0f} s, p90 {f['p90_tt_s']:.0f} s; real-time "
            f"factor {f['rtf']:,.0f} ({f['simulated_s']:,.0f} s simulated in {f['wall_s']:,.0f}"
            " s)",
        ]
        for h in self.vc.columns:
            lines.append(
                f"v/c at {h:02d}:00: {f[f'vc_share_above_1_at_{h}h']:.1%} of segments above 1, "
                f"p95 {f[f'vc_p95_at_{h}h']:.2f}"
            )
        if len(self.agreement):
            a = self.agreement
            lines.append(
                "link times DES / assignment (edge-hours with >= "
                f"{int(a['min_vehicles'].iloc[0])} vehicles): median ratio "
                + ", ".join(
                    f"{r.start_h:02d}-{r.end_h:02d}h {r.median_ratio:.2f} "
                    f"({r.share_within:.0%} within {AGREEMENT_TOLERANCE:.0%})"
                    for r in a.itertuples()
                )
            )
        return "\n".join(lines)


def link_time_agreement(
    ds: xr.Dataset,
    times: tuple[tuple[float, np.ndarray], ...],
    *,
    scale: float = 1.0,
    min_vehicles: int = 30,
    tolerance: float = AGREEMENT_TOLERANCE,
) -> pd.DataFrame:
    """Link times of the DES against those of the assignment, per period.

    For each edge and hour of the DES (``ds``, one-hour slots from local midnight) with at
    least ``min_vehicles`` vehicles entering (after ``scale``, the inverse of a sample share),
    the DES's mean traversal time (``length / speed``: free time, queue and signal delay) is
    divided by the assignment's link time of the period holding that hour.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`twin.scenarios.traffic.run` with ``slot_s`` 3600.
    times : tuple of (float, numpy.ndarray)
        Per period, its start (s since local midnight) and the equilibrium link times.
    scale : float
        Factor from the DES's vehicles to the assignment's demand (1 / sample share).
    min_vehicles : int
        Fewest vehicles in an edge-hour for its mean to be compared.
    tolerance : float
        Relative tolerance of :data:`AGREEMENT_TOLERANCE`.

    Returns
    -------
    pandas.DataFrame
        One row per period: ``start_h``, ``end_h``, ``edge_hours`` compared, ``median_ratio``,
        ``p10_ratio``, ``p90_ratio``, ``share_within`` (ratio within ``1 +- tolerance``),
        ``flow_weighted_share_within``, ``min_vehicles``.
    """
    if float(ds.attrs.get("slot_s", 0.0)) != 3600.0:
        msg = f"ds.slot_s: {ds.attrs.get('slot_s')!r}; the agreement needs one-hour slots"
        raise InputValidationError(msg)
    length = ds["length"].values
    speed = ds["speed"].values  # (edge, hour)
    flow = ds["flow"].values * scale
    starts = [s for s, _ in times] + [86400.0]
    rows = []
    for i, (start, t_eq) in enumerate(times):
        h0, h1 = int(start // 3600), int(starts[i + 1] // 3600)
        hours = [h for h in range(h0, min(h1, speed.shape[1]))]
        if not hours:
            continue
        sp, fl = speed[:, hours], flow[:, hours]
        with np.errstate(divide="ignore", invalid="ignore"):
            t_des = length[:, None] / sp
        ok = np.isfinite(t_des) & (fl >= min_vehicles)
        ratio = (t_des / t_eq[:, None])[ok]
        w = fl[ok]
        within = np.abs(ratio - 1.0) <= tolerance
        rows.append(
            {
                "start_h": h0,
                "end_h": h1,
                "edge_hours": int(ok.sum()),
                "median_ratio": float(np.median(ratio)) if ratio.size else np.nan,
                "p10_ratio": float(np.quantile(ratio, 0.1)) if ratio.size else np.nan,
                "p90_ratio": float(np.quantile(ratio, 0.9)) if ratio.size else np.nan,
                "share_within": float(within.mean()) if ratio.size else np.nan,
                "flow_weighted_share_within": float((w * within).sum() / w.sum())
                if ratio.size
                else np.nan,
                "min_vehicles": int(min_vehicles),
            }
        )
    return pd.DataFrame(rows)


def network_state(sim: tr.TrafficSimulation) -> dict[str, int]:
    """The state of a running traffic simulation's network, to tell flow from grid-lock.

    Returns
    -------
    dict
        ``on_road`` (vehicles on an edge), ``waiting`` (departed but held off their first
        edge, full), ``full_edges`` (edges holding their storage), ``held_heads`` (edges whose
        head vehicle waits for room on its next edge) and ``forced`` (heads let into a full edge
        after ``max_blocked_s`` so far).
    """
    st, net = sim._st, sim._net  # read only
    t = sim.now
    return {
        "on_road": int(st.n_active),
        "waiting": int(np.sum(st.depart[st.pending] <= t)),
        "full_edges": int(np.sum(st.n_in - st.n_out >= net.storage)),
        "held_heads": int(np.isfinite(st.blocked_since).sum()),
        "forced": int(st.n_forced),
    }


def simulate_weekday(
    tw: Twin,
    *,
    day: dt.date | str = REFERENCE_WEEKDAY,
    share: float = 1.0,
    routing: Routing = "equilibrium",
    periods: tuple[tuple[int, int], ...] = WEEKDAY_PERIODS,
    rgap_target: float = 1e-3,
    model: DemandModel | None = None,
    dt_s: float = 2.0,
    reroute_s: float = 120.0,
    extra_h: float = 4.0,
    hours: tuple[float, float] = (0.0, 24.0),
    snapshots_h: tuple[float, ...] = (),
    pockets: bool = True,
    rng: np.random.Generator | int | None = 20240604,
    progress: bool | None = None,
) -> WeekdayResult:
    """Simulate a weekday of the twin's car traffic in the DES.

    Parameters
    ----------
    tw : twin.model.Twin
    day : datetime.date or str
        A weekday (its local midnight is the run's ``t0``).
    share : float
        Share of the drawn trips simulated, in (0, 1] (a sample, for quick looks; v/c scaled
        back by ``1 / share``).
    routing : {"equilibrium", "dynamic"}
        Route each trip on the equilibrium link times of its departure period, or on the
        DES's current times when it is routed (every ``reroute_s``).
    periods : tuple of (int, int)
        Local hours assigned one by one (:data:`~twin.scenarios.assignment.WEEKDAY_PERIODS`).
    rgap_target : float
        Relative gap of each period's assignment.
    model : DemandModel, optional
        Default :func:`~twin.scenarios.demand.build_demand` of ``tw``. A model given (a
        calibration's, :func:`twin.scenarios.calibration.load_calibrated_model`) also sizes
        the signal plans (:func:`~twin.scenarios.network.signal_plans` with ``model``: its
        busiest hour assigned to equilibrium); without one, the plans are sized on the
        road-class and count profiles.
    dt_s : float
        Step of the DES (s).
    reroute_s : float
        Period of route computation (s): with dynamic routing, the trips departing within one
        period share one snapshot of the times, so a long period sends a whole batch down the
        path that was free (on Montpellier at 08:00, 600 s left 19,000 vehicles on the road
        and 1,900 teleports; 120 s, 14,600 and 670).
    extra_h : float
        Hours simulated after the window's end (midnight for the whole day) for the last trips
        to finish.
    hours : (float, float)
        Local-clock window ``[start, end)`` of departures simulated (the whole day by
        default): the run starts at ``start`` with an empty network, only the trips departing
        in the window are drawn into it (the same trips as the whole day's, same seed), and it
        ends ``extra_h`` after ``end``. A window of the morning peak, ``(5, 10)``, tells in a
        fifth of the time whether the network copes with it.
    snapshots_h : tuple of float
        Local-clock hours at which the state of the network is recorded in
        ``figures["snapshots"]`` (vehicles on the road, waiting to enter, full edges, heads
        held by a full next edge, heads forced so far); see :func:`network_state`.
    pockets : bool
        Model the turn pockets of the signalised approaches (off: the same trips and plans
        with none, :attr:`~twin.scenarios.traffic.TrafficScenario.pockets`).
    rng : numpy.random.Generator, int or None
        Draws the trips, the sample and the speed factors.
    progress : bool, optional
        Progress bars; default from the settings.

    Returns
    -------
    WeekdayResult
    """
    from twin.scenarios.assignment import AssignmentNetwork
    from twin.scenarios.demand import build_demand, day_type_of

    day = validate_date(day, field="day")
    if not 0 < share <= 1:
        msg = f"share: {share!r} must be within (0, 1]"
        raise InputValidationError(msg)
    if routing not in ("equilibrium", "dynamic"):
        msg = f"routing: {routing!r} is not 'equilibrium' or 'dynamic'"
        raise InputValidationError(msg)
    if day_type_of(day) != "weekday":
        msg = f"day: {day.isoformat()} is not a weekday (a {day_type_of(day)} profile)"
        raise InputValidationError(msg)
    h0, h1 = (float(h) for h in hours)
    if not 0.0 <= h0 < h1 <= 24.0:
        msg = f"hours: {hours!r} must be a window (start, end) with 0 <= start < end <= 24"
        raise InputValidationError(msg)
    for h in snapshots_h:
        if not h0 <= h <= h1 + extra_h:
            msg = f"snapshots_h: {h!r} is outside the run ({h0:g} h to {h1 + extra_h:g} h)"
            raise InputValidationError(msg)
    gen = np.random.default_rng(rng)
    graph = drive_graph(tw)
    given = model
    model = build_demand(tw) if model is None else model
    frame = model.trips(day_type="weekday", rng=gen)
    n_drawn = len(frame)
    if share < 1:
        frame = frame[gen.random(n_drawn) < share]
    # the window's trips, departures counted from its start
    off_s = h0 * 3600.0
    frame = frame[(frame["depart_s"] >= off_s) & (frame["depart_s"] < h1 * 3600.0)]
    trips = tuple(
        tr.Trip(f"t{i}", o, d, float(s) - off_s)
        for i, (o, d, s) in enumerate(
            zip(frame["origin"], frame["destination"], frame["depart_s"], strict=True)
        )
    )
    # the assignment carries the demand the DES simulates (a sample's share of it), so that
    # their link times compare like with like
    eq_times, asg = equilibrium_times(
        graph,
        model,
        periods=periods,
        rgap_target=rgap_target,
        demand_scale=share,
        progress=progress,
    )
    # a given demand (a calibration's) sizes the plans too: the flows they serve are its own
    plans = signal_plans(tw, model=given) if given is not None else signal_plans(tw)
    t0 = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tw.city.timezone))
    t0 = (t0 + dt.timedelta(hours=h0)).astimezone(ZoneInfo(tw.city.timezone))
    # the periods' times from the window's start: the one under way at the start applies at 0
    first = max(k for k, (s, _) in enumerate(eq_times) if s <= off_s)
    run_times = tuple((max(s - off_s, 0.0), c) for s, c in eq_times[first:])
    sc = tr.TrafficScenario(
        graph,
        trips=trips,
        plans=tuple(plans.values()),
        t0=t0,
        duration_s=(h1 - h0 + extra_h) * 3600.0,
        dt_s=dt_s,
        slot_s=3600.0,
        reroute_s=reroute_s,
        routing_times=run_times if routing == "equilibrium" else (),
        pockets=pockets,
        progress=progress,
    )
    wall = time.perf_counter()
    sim = tr.TrafficSimulation(sc, rng=gen)
    snapshots = []
    for h in sorted(snapshots_h):
        sim.run_until((h - h0) * 3600.0)
        snapshots.append({"hour": h, **network_state(sim)})
    ds = sim.result()
    wall = time.perf_counter() - wall
    tt = ds["travel_time"].values
    arrive = ds["arrive"].values + off_s  # s since local midnight
    dep_h = ((ds["depart"].values + off_s) // 3600).astype(int)
    by_hour = (
        pd.DataFrame({"hour": dep_h, "tt": tt, "done": np.isfinite(tt)})
        .groupby("hour")
        .agg(
            trips=("tt", "size"),
            finished=("done", "mean"),
            mean_s=("tt", "mean"),
            p90_s=("tt", lambda x: float(np.nanpercentile(x, 90)) if x.notna().any() else np.nan),
        )
    )
    scale = 1.0 / share
    cap = AssignmentNetwork.from_graph(graph).capacity_veh_h
    seg = np.array([d for *_, d in graph.edges(keys=True, data="segment")], dtype=str)
    n_slot = ds.sizes["time"]
    vc_hours = [h for h in VC_HOURS if 0 <= h - int(h0) < n_slot and h0 == int(h0)]
    vc = pd.DataFrame(
        {
            h: pd.Series(ds["flow"].isel(time=h - int(h0)).values * scale / cap, index=seg)
            .groupby(level=0)
            .max()
            for h in vc_hours
        }
    )
    agreement = link_time_agreement(ds, run_times)
    if len(agreement):
        agreement["start_h"] += int(h0)
        agreement["end_h"] = np.minimum(agreement["end_h"] + int(h0), 24)
    simulated = float(ds.attrs["simulated_s"])
    n = max(len(tt), 1)
    figures: dict[str, Any] = {
        "trips": len(trips),
        "trips_drawn": n_drawn,
        "share": share,
        "routing": routing,
        "pocket_edges": int(ds.attrs["n_pocket_edges"]),
        "dropped_no_route": int(ds.attrs["n_dropped"]),
        "hours": [h0, h1],
        "finished_by_midnight": float((np.isfinite(arrive) & (arrive <= 86400.0)).sum() / n),
        "finished_by_window_end": float((np.isfinite(arrive) & (arrive <= h1 * 3600.0)).sum() / n),
        "finished_by_end": float(np.isfinite(arrive).sum() / n),
        "unfinished": int(ds.attrs["n_unfinished"]),
        "forced": int(ds.attrs["n_forced"]),
        "max_blocked_s": sc.max_blocked_s,
        "mean_tt_s": float(np.nanmean(tt)),
        "p90_tt_s": float(np.nanpercentile(tt, 90)),
        "simulated_s": simulated,
        "wall_s": wall,
        "rtf": simulated / wall,
    }
    for h in vc_hours:
        figures[f"vc_share_above_1_at_{h}h"] = float((vc[h] > 1.0).mean())
        figures[f"vc_max_at_{h}h"] = float(vc[h].max())
        figures[f"vc_p95_at_{h}h"] = float(vc[h].quantile(0.95))
    figures["snapshots"] = snapshots
    return WeekdayResult(
        city=tw.city.name,
        day=day,
        dataset=ds,
        by_hour=by_hour,
        vc=vc,
        agreement=agreement,
        assignment=asg,
        figures=figures,
    )


def _vc_map(tw: Twin, vc: pd.Series, hour: int, path: Path) -> None:
    """Map of each segment's v/c (the higher of its directions) at ``hour``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.plot import line_collection

    seg = tw.registry["segment"]
    seg = seg[seg["drive"]]
    v = vc.reindex(seg.index).fillna(0.0).to_numpy()
    order = np.argsort(v)
    fig, ax = plt.subplots(figsize=(9, 8), layout="constrained")
    lc = line_collection(
        seg.geometry.values[order],
        cmap="RdYlGn_r",
        linewidths=0.4 + 2.0 * np.minimum(v[order], 1.5),
    )
    lc.set_array(np.minimum(v[order], 1.5))
    lc.set_clim(0.0, 1.5)
    ax.add_collection(lc)
    ax.autoscale()
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.colorbar(lc, ax=ax, shrink=0.6, label="volume / capacity")
    ax.set_title(f"{tw.city.title}: volume/capacity at {hour:02d}:00, simulated weekday")
    fig.text(0.99, 0.01, tw.city.attribution, ha="right", fontsize=7, color="0.3")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _by_hour_plot(res: WeekdayResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b = res.by_hour
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    ax.plot(b.index, b["mean_s"] / 60.0, marker="o", label="mean")
    ax.plot(b.index, b["p90_s"] / 60.0, marker="s", label="p90")
    ax.set_xlabel("departure hour (local clock)")
    ax.set_ylabel("trip time (min)")
    ax.set_xticks(range(0, 24, 2))
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.bar(b.index, b["trips"] / res.figures["share"], alpha=0.15, color="0.3")
    ax2.set_ylabel("trips departing")
    ax.legend(loc="upper left")
    ax.set_title(f"{res.city}: car trip times by departure hour, simulated weekday")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_weekday_report(res: WeekdayResult, tw: Twin, out: Path) -> list[str]:
    """Write the weekday's tables and plots into the folder ``out``; returns the file names."""
    out = Path(out)
    res.by_hour.to_csv(out / "trips_by_hour.csv")
    res.vc.rename(columns=lambda h: f"vc_{h:02d}h").to_csv(out / "vc.csv", index_label="segment")
    res.agreement.to_csv(out / "link_time_agreement.csv", index=False)
    res.assignment.to_csv(out / "assignment.csv", index=False)
    report = {
        "city": res.city,
        "day": res.day.isoformat(),
        "figures": res.figures,
        "agreement_tolerance": AGREEMENT_TOLERANCE,
    }
    (out / "weekday.json").write_text(json.dumps(report, indent=2, default=float))
    names = ["trips_by_hour.csv", "vc.csv", "link_time_agreement.csv", "assignment.csv"]
    names.append("weekday.json")
    for h in res.vc.columns:
        _vc_map(tw, res.vc[h], int(h), out / f"vc_{h:02d}h.png")
        names.append(f"vc_{h:02d}h.png")
    _by_hour_plot(res, out / "trips_by_hour.png")
    names.append("trips_by_hour.png")
    return names
