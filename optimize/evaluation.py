"""Signal plans judged against fixed-time baselines: delay, stops, bands, emergency and bus waits.

* :func:`des_comparison`: the traffic DES (:mod:`twin.scenarios.traffic`) run on the same trips
  under each set of plans; per junction the flow-weighted mean stop-line ``delay`` the DES
  measures on its approaches, and the share of vehicles ``stops`` by Akçelik's uniform-arrival
  stop rate ``h = 0.9 (1 - g/C) / (1 - y)`` (Akçelik 1981, *Traffic signals: capacity and timing
  analysis*, ARR 123, eq. 8.4; the DES does not count stops), flow-weighted over the approaches.
* :func:`achieved_band`: the band a corridor's plans really leave: departures every 0.5 s over
  an hour at the progression speeds, the share that passes every signal of the corridor without
  meeting a red, times the corridor's cycle (for periodic plans at a common cycle this is the
  band's width; for plans at different cycles, its mean).
* :func:`emergency_waits`: the signal wait of an emergency vehicle at each signal of a corridor,
  averaged over the moment of its call, without and with preemption
  (:func:`optimize.signals.preemption`, the vehicle called ``lead_s`` ahead of the stop line).
* :func:`bus_waits`: the signal wait of a bus on each bus approach, averaged over its arrival
  second in the cycle, without priority and with it (the controller runs the green extension
  or the early green, whichever the bus's arrival calls for).

The waits are exact for a vehicle at the head of the queue (priority and preemption serve a
vehicle that the queue does not hold up: a bus lane, an emergency vehicle with sirens).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from optimize.maxband import Arterial
from optimize.signals import BusPriority, preemption, signal_delay
from twin.scenarios.signals import SignalPlan
from twin.signals.junction import JunctionModel
from twin.signals.plans import stage_ratios
from twin.signals.safety import program_of

__all__ = [
    "achieved_band",
    "bus_waits",
    "des_comparison",
    "emergency_waits",
    "stop_rate",
]


def stop_rate(
    plan: SignalPlan,
    model: JunctionModel,
    flows: Mapping[str, float],
    lanes: Mapping[str, int] | None = None,
) -> float:
    """Flow-weighted share of vehicles stopped, Akçelik's ``0.9 (1 - g/C) / (1 - y)``.

    ``y`` is each stage's critical flow ratio (capped at 0.95 where oversaturated).
    """
    ys = stage_ratios(model, flows, lanes=lanes)
    tot = q_sum = 0.0
    for k, ph in enumerate(plan.phases):
        lam = ph.green_s / plan.cycle_s
        y = min(ys[k], 0.95)
        h = min(0.9 * (1 - lam) / (1 - y), 1.0)
        q = sum(flows.get(model.group_of_edge(a), 0.0) for a in ph.approaches)
        tot += q * h
        q_sum += q
    return tot / q_sum if q_sum else 0.0


def des_comparison(
    tw: Any,
    plan_sets: Mapping[str, Mapping[str, SignalPlan]],
    *,
    models: Mapping[str, JunctionModel],
    flows: Mapping[str, tuple[Mapping[str, float], Mapping[str, int]]],
    day: dt.date | str,
    hours: tuple[float, float] = (8, 9),
    rng: int = 2018,
) -> xr.Dataset:
    """Run the traffic DES under each set of plans, on the same trips.

    Parameters
    ----------
    tw : twin.model.Twin
    plan_sets : mapping of scenario name to plans by junction
    models : junction models the plans were made on
    flows : per junction, the ``(flows, lanes)`` of its groups (for the stop rate)
    day, hours : the local window of the trips
    rng : seed of the trips and of the DES

    Returns
    -------
    xarray.Dataset
        Dims ``scenario`` and ``junction`` (the junctions planned in every set): ``delay``
        (s/veh, DES), ``volume`` (veh through the junction's approaches, DES), ``stops``
        (share stopped, Akçelik); per scenario ``mean_delay`` (flow-weighted), ``mean_stops``,
        ``travel_time`` (mean over finished trips, s) and ``unfinished`` (trips).
    """
    from twin.scenarios.network import scenario_from_twin
    from twin.scenarios.traffic import run

    names = list(plan_sets)
    common = sorted(set.intersection(*(set(p) for p in plan_sets.values())))
    delay = np.full((len(names), len(common)), np.nan)
    volume = np.zeros((len(names), len(common)))
    stops = np.full((len(names), len(common)), np.nan)
    tt, unfinished = [], []
    pos = {j: i for i, j in enumerate(common)}
    for s, name in enumerate(names):
        plans = {j: plan_sets[name][j] for j in common}
        sc = scenario_from_twin(tw, day=day, hours=hours, rng=rng, plans=plans, progress=False)
        ds = run(sc, rng=rng)
        d = ds["delay"].values
        v = ds["approach_volume"].values
        js = ds["junction"].values.astype(str)
        for j in common:
            m = (js == j) & np.isfinite(d)
            if m.any() and v[m].sum() > 0:
                delay[s, pos[j]] = float((d[m] * v[m]).sum() / v[m].sum())
                volume[s, pos[j]] = float(v[m].sum())
            q, ln = flows[j]
            stops[s, pos[j]] = stop_rate(plans[j], models[j], q, ln)
        tt.append(float(np.nanmean(ds["travel_time"].values)))
        unfinished.append(int(ds.attrs.get("n_unfinished", 0)))
    w = np.where(np.isfinite(delay), volume, 0.0)
    mean_delay = np.nansum(np.nan_to_num(delay) * w, axis=1) / np.maximum(w.sum(axis=1), 1e-9)
    mean_stops = np.nanmean(stops, axis=1)
    return xr.Dataset(
        {
            "delay": (
                ("scenario", "junction"),
                delay,
                {"units": "s", "long_name": "mean stop-line delay per vehicle (DES)"},
            ),
            "volume": (
                ("scenario", "junction"),
                volume,
                {"units": "veh", "long_name": "vehicles through the approaches (DES)"},
            ),
            "stops": (
                ("scenario", "junction"),
                stops,
                {"units": "1", "long_name": "share of vehicles stopped (Akçelik 1981)"},
            ),
            "mean_delay": (
                "scenario",
                mean_delay,
                {"units": "s", "long_name": "flow-weighted mean delay per vehicle"},
            ),
            "mean_stops": ("scenario", mean_stops, {"units": "1", "long_name": "mean stop share"}),
            "travel_time": (
                "scenario",
                tt,
                {"units": "s", "long_name": "mean travel time of finished trips"},
            ),
            "unfinished": ("scenario", unfinished, {"units": "1", "long_name": "trips"}),
        },
        coords={"scenario": names, "junction": common},
        attrs={"hours": f"{hours[0]:g}-{hours[1]:g}", "day": str(day)},
    )


def _arterial_windows(
    plan: SignalPlan, stage: int
) -> tuple[float, float, float]:  # (cycle, green start incl. offset, green length)
    return plan.cycle_s, plan.offset_s + plan.phase_starts()[stage], plan.phases[stage].green_s


def achieved_band(
    plans: Sequence[SignalPlan],
    stages: Sequence[int],
    art: Arterial,
    speeds_out_kph: Sequence[float],
    speeds_in_kph: Sequence[float],
) -> tuple[float, float]:
    """Outbound and inbound bands (s) that the plans leave along ``art`` (module docstring)."""
    pos = np.concatenate([[0.0], np.cumsum(art.distances_m)])
    wins = [_arterial_windows(p, k) for p, k in zip(plans, stages, strict=True)]

    def share(times_at: np.ndarray) -> float:
        t0 = np.arange(0.0, 3600.0, 0.5)
        ok = np.ones_like(t0, dtype=bool)
        for i, (c, start, g) in enumerate(wins):
            ok &= ((t0 + times_at[i] - start) % c) < g
        return float(ok.mean())

    v_out = np.asarray(speeds_out_kph) / 3.6
    v_in = np.asarray(speeds_in_kph) / 3.6
    t_out = np.concatenate([[0.0], np.cumsum(np.diff(pos) / v_out)])
    t_in_rev = np.concatenate([[0.0], np.cumsum((np.diff(pos) / v_in)[::-1])])
    t_in = t_in_rev[::-1]
    return share(t_out) * art.cycle_s, share(t_in) * art.cycle_s


def emergency_waits(
    plans: Sequence[SignalPlan],
    models: Sequence[JunctionModel],
    groups: Sequence[str],
    *,
    lead_s: float = 15.0,
    step_s: float = 5.0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean wait (s) at each signal without and with preemption, and the calls refused.

    A call for which no safe preemption sequence exists is served by the plan (and counted).
    """
    without, with_, refused = [], [], 0
    for plan, model, grp in zip(plans, models, groups, strict=True):
        base = program_of(plan, model)
        calls = np.arange(0.0, plan.cycle_s, step_s)
        without.append(float(signal_delay(base, grp, (calls + lead_s).tolist()).mean()))
        waits = []
        for c in calls:
            try:
                prog = preemption(plan, model, grp, call_s=float(c))
            except ValueError:
                refused += 1
                waits.append(float(signal_delay(base, grp, [float(c) + lead_s])[0]))
                continue
            start = float(c) - (float(c) - plan.offset_s) % plan.cycle_s  # the call's cycle
            waits.append(float(signal_delay(prog, grp, [float(c) + lead_s - start])[0]))
        with_.append(float(np.mean(waits)))
    return np.asarray(without), np.asarray(with_), refused


def bus_waits(
    plans: Mapping[str, SignalPlan],
    models: Mapping[str, JunctionModel],
    priorities: Mapping[str, Sequence[BusPriority]],
) -> xr.Dataset:
    """Mean signal wait of a bus per bus approach, without and with priority (s).

    Returns
    -------
    xarray.Dataset
        Dim ``approach`` (``junction/group``): ``without``, ``with`` (s), ``extend_s``,
        ``early_s``.
    """
    rows = []
    for jid, items in priorities.items():
        base = program_of(plans[jid], models[jid])
        for bp in items:
            t = np.arange(0.0, plans[jid].cycle_s, 1.0).tolist()
            w0 = signal_delay(base, bp.group, t)
            w1 = np.minimum(
                w0,
                np.minimum(
                    signal_delay(bp.extended, bp.group, t), signal_delay(bp.early, bp.group, t)
                ),
            )
            rows.append(
                (f"{jid}/{bp.group}", float(w0.mean()), float(w1.mean()), bp.extend_s, bp.early_s)
            )
    return xr.Dataset(
        {
            "without": ("approach", [r[1] for r in rows], {"units": "s", "long_name": "wait"}),
            "with": ("approach", [r[2] for r in rows], {"units": "s", "long_name": "wait"}),
            "extend_s": ("approach", [r[3] for r in rows], {"units": "s"}),
            "early_s": ("approach", [r[4] for r in rows], {"units": "s"}),
        },
        coords={"approach": [r[0] for r in rows]},
    )
