"""The main job: one night of a city, forecast, optimised, reported (``twin plan night``).

``twin demo`` is kept as an alias of the command. :func:`run_night` builds or loads the twin
(fetching Dijon's extract on first use), plans the night under the four policies, and writes into
the output folder:

``report.json``
    ``city, date, lights, slots, baseline_kwh, led_kwh, optimized_kwh, saving_pct,
    compliance_pct, target_pct`` and ``solver: {status, build_s, solve_s, objective}``, plus the
    other policies' figures and what was relaxed, if anything.
``dimming.nc``
    The adaptive plan (see :func:`optimize.dimming.plan`).
``night_profile.png``, ``levels_0200.png``, ``trajectory.png``
    The night's power per policy, a map of the levels at 02:00, and the 12-year trajectory
    against the 65% target.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from twin._errors import DataMissingError, TwinError
from twin.energy.power import drawn_power_w

from . import dimming
from . import dimming_lp as lp
from .dimming_year import annual_summary, plan_year, write_year

if TYPE_CHECKING:
    from twin.model import Twin
    from twin.scenarios.demand import Demand
    from twin.scenarios.footfall_calibration import FootfallCalibration

__all__ = [
    "adaptive_plan",
    "ageing_factors",
    "cohort_factors",
    "run_night",
    "summary_table",
    "trajectory_for",
]


class NoDataOfflineError(TwinError, ConnectionError):
    """A city's extract is missing and cannot be fetched (no internet)."""


def _load_or_fetch(city: str | None, osm: Path | None, *, say: Any) -> Twin:
    import twin
    from twin.cities import get_city

    try:
        return twin.load(city or "dijon", osm=osm)
    except DataMissingError as missing:
        if osm is not None or not city:
            raise
        definition = get_city(city)
        if not definition.source.get("fetch"):
            raise
        from twin.fetch import OverpassUnreachableError, fetch_city

        say(f"no {definition.title} extract yet: fetching it from OpenStreetMap (first use)")
        try:
            fetch_city(definition.name)
        except OverpassUnreachableError as exc:
            msg = (
                f"{definition.title}: no extract here and the Overpass API cannot be reached "
                f"({type(exc.__cause__ or exc).__name__}). Offline, run the same command with "
                "--city montpellier and TWIN_DATA=../shared/data (the shared real data sets)."
            )
            raise NoDataOfflineError(msg) from missing
        return twin.load(definition.name)


class MixedDemand:
    """Footfall from one source (the footfall DES) and motor traffic from another (profiles)."""

    def __init__(self, footfall: Demand, traffic: Demand) -> None:
        self._foot = footfall
        self._traffic = traffic

    def footfall(self, segments: Any, times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour, ``(len(segments), len(times))``."""
        return np.asarray(self._foot.footfall(segments, times))

    def traffic(self, segments: Any, times: np.ndarray) -> np.ndarray:
        """Vehicles per hour, ``(len(segments), len(times))``."""
        return np.asarray(self._traffic.traffic(segments, times))


def simulated_demand(
    tw: Twin, day: dt.date, *, rng: int = 2018, progress: bool = False
) -> MixedDemand:
    """The night's demand, simulated footfall and profiled motor traffic.

    Footfall comes from the DES for the evening's day type, motor traffic from the road-class
    profiles (the traffic DES is run by planners' scenarios).
    """
    from twin.scenarios.demand import ProfileDemand, SimulatedDemand
    from twin.scenarios.footfall import run_footfall

    foot = run_footfall(tw, day=day, rng=rng, progress=progress)
    return MixedDemand(SimulatedDemand.from_dataset(foot), ProfileDemand.from_twin(tw))


def _default_date(tz: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(tz)).date()


def adaptive_plan(
    tw: Twin,
    date: str | dt.date,
    *,
    objective: lp.Objective = "min_energy",
    prepared: tuple[lp.DimmingProblem, dict[str, Any]] | None = None,
    **forecast: Any,
) -> tuple[xr.Dataset, dict[str, Any]]:
    """The adaptive plan, or with an infeasible nightly budget the plan at the smallest one.

    When a nightly budget is given and EN 13201 makes it infeasible, the budget is relaxed to the
    smallest feasible one and the second value says so. No nightly budget is set by default
    (the contract counts a year), so by default nothing is relaxed. Only a budget conflict is
    relaxed; cabinet caps and unreachable requirements
    still raise.
    """
    if prepared is None:
        prepared = dimming.problem_for(tw, date, **forecast)
    try:
        return dimming.plan(tw, date, policy="adaptive", objective=objective, prepared=prepared), {}
    except lp.InfeasiblePlanError as exc:
        report = exc.report
        if report.cap_cabinet.size or report.unreachable_light.size:
            raise
        problem, extra = prepared
        floor_wh = float(report.min_energy_wh)
        relaxed = {
            "reason": str(exc),
            "budget_pct_asked": float(extra["budget_pct"]),
            "budget_increase_kwh": float(report.budget_increase_wh) / 1000.0,
            "best_saving_pct": 100.0 * (1.0 - floor_wh / extra["baseline_wh"]),
        }
        loosened = dataclasses.replace(problem, energy_budget_wh=floor_wh * (1 + 1e-9))
        extra = {**extra, "budget_pct": relaxed["best_saving_pct"]}
        ds = dimming.plan(
            tw, date, policy="adaptive", objective=objective, prepared=(loosened, extra)
        )
        ds.attrs["budget_relaxed"] = json.dumps(relaxed)
        return ds, relaxed


def monthly_sample(year: int) -> list[dt.date]:
    """The 15th of each month: the nights that sample a year in the nightly job."""
    return [dt.date(year, month, 15) for month in range(1, 13)]


def ageing_factors(
    tw: Twin,
    *,
    reference_year: int,
    switch_off: dimming.SwitchOff | Sequence[dimming.SwitchOff] | None = None,
    nights: Sequence[dt.date] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, float]:
    """The annual dimming factor of the stock by age: ``{age in years: factor}``.

    For each age ``a`` from 0 to the contract's length, the year ``reference_year`` is planned
    (:func:`optimize.dimming_year.plan_year`, on ``nights``: default the 15th of each month)
    with every light whose inventory gives no install year installed in
    ``reference_year - a``: its CLO factor ``MF / LLMF(a x burning hours)`` rises with the lumen
    depreciation, and so does the energy (:func:`optimize.dimming_year.yearly_factors`).
    """
    from .dimming_year import yearly_factors

    c = tw.city.contract
    ages = range(c.end.year - c.start.year + 1)
    days = monthly_sample(reference_year) if nights is None else list(nights)
    out: dict[int, float] = {}
    for a in ages:
        year = plan_year(
            tw, reference_year, switch_off=switch_off, nights=days, install_year=reference_year - a
        )
        out[a] = yearly_factors(year)[0]
        if progress is not None:
            progress(a + 1, len(ages))
    return out


def cohort_factors(shares: Mapping[int, float], by_age: Mapping[int, float]) -> dict[int, float]:
    """Each year's dimming factor of an LED stock renewed in cohorts, from factors by age.

    The cohort of year ``k`` is the growth of the LED share that year (``shares[k] -
    shares[k - 1]``); in year ``y`` it is ``y - k`` years old. The year's factor is the
    cohorts' factors weighted by their share of the LED stock.

    Examples
    --------
    >>> f = cohort_factors({2018: 0.5, 2019: 1.0}, {0: 0.6, 1: 0.7})
    >>> {y: round(v, 6) for y, v in f.items()}
    {2018: 0.6, 2019: 0.65}
    """
    years = sorted(shares)
    grow = {
        y: max(0.0, shares[y] - (shares[years[i - 1]] if i else 0.0)) for i, y in enumerate(years)
    }
    out: dict[int, float] = {}
    for y in years:
        w = {k: g for k, g in grow.items() if k <= y and g > 0}
        total = sum(w.values())
        oldest = max(by_age)
        out[y] = (
            sum(g * by_age[min(y - k, oldest)] for k, g in w.items()) / total
            if total > 0
            else by_age[0]
        )
    return out


def trajectory_for(
    tw: Twin, year_plan: xr.Dataset, *, by_age: Mapping[int, float] | None = None
) -> tuple[xr.Dataset, float, float]:
    """The 2018-2030 trajectory of a twin's stock, with the dimming and switch-off of a year.

    ``year_plan`` is a :func:`optimize.dimming_year.plan_year` result: its factors are annual
    figures (energy over the year's nights), never one night's. With ``by_age``
    (:func:`ageing_factors`), each year's dimming factor follows the CLO ageing of its LED
    cohorts (:func:`cohort_factors`); the returned dimming factor is then the one of the plan's
    year.
    """
    from twin import energy

    from .dimming_year import yearly_factors

    reg = tw.registry
    road_class = reg["segment"]["highway"].reindex(reg["light"]["segment"]).fillna("residential")
    lights = pd.DataFrame(
        {
            "road_class": road_class.to_numpy(),
            "power_w": reg["light"]["power_w"].to_numpy(),
            "baseline_power_w": reg["light"]["baseline_power_w"].to_numpy(),
            "technology": reg["light"]["technology"].to_numpy(),
        }
    )
    dimf, offf = yearly_factors(year_plan)
    lon, lat = tw.centre
    c = tw.city.contract
    shares = energy.front_loaded_shares(final_share=c.led_share_end, start=c.start, end=c.end)
    factor: float | dict[int, float] = dimf
    if by_age is not None:
        factor = cohort_factors(shares, by_age)
        year = int(year_plan.attrs.get("year", c.end.year))
        dimf = factor.get(year, dimf)
    traj = energy.trajectory(
        lights,
        lat=lat,
        lon=lon,
        years=c.years,
        rollout=energy.Rollout(shares),
        dimming_factor=factor,
        switch_off_factor=offf,
        target_pct=c.target_pct,
    )
    return traj, dimf, offf


def summary_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of the policies' energy and compliance."""
    head = f"{'policy':<22}{'energy kWh':>12}{'saving %':>10}{'compliance %':>14}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['policy']:<22}{r['kwh']:>12,.0f}{r['saving_pct']:>10.1f}{r['compliance_pct']:>14.1f}"
        )
    return "\n".join(lines)


def _night_profile(plans: dict[str, xr.Dataset], tz: str, out: Path, title: str) -> None:
    fig = Figure(figsize=(10, 5), dpi=120)
    ax = fig.subplots()
    for name, ds in plans.items():
        slot_h = ds["slot_s"].to_numpy() / 3600.0
        kw = ds["energy_wh"].sum("light").to_numpy() / slot_h / 1000.0
        local = (
            pd.to_datetime(ds["time"].to_numpy())
            .tz_localize("UTC")
            .tz_convert(tz)
            .tz_localize(None)
        )
        ax.step(local, kw, where="post", label=name, lw=1.6)
    ds = plans["adaptive"]
    req = ds["required_level"].to_numpy()
    draw = drawn_power_w(
        ds["power_w"].to_numpy(), req, driver_floor=dimming.DRIVER_FLOOR, on=req > 0
    )
    floor_kw = draw.sum(axis=0) / 1000.0
    ax.step(local, floor_kw, where="post", color="k", ls=":", label="EN 13201 floor (min energy)")
    ax.set_ylabel("power drawn (kW)")
    ax.set_xlabel(f"local time ({tz})")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out)


def _levels_map(tw: Twin, ds: xr.Dataset, out: Path) -> None:
    from twin.plot import line_collection

    hours = ds["hour_local"].to_numpy()
    i = int(np.argmin(np.abs(((hours - 2.0 + 12) % 24) - 12)))
    lights = tw.registry["light"].reindex(ds["light"].to_numpy())
    xy = np.column_stack([lights.geometry.x.to_numpy(), lights.geometry.y.to_numpy()])
    level = ds["level"].isel(time=i).to_numpy()
    fig = Figure(figsize=(10, 10), dpi=120)
    ax = fig.subplots()
    seg = tw.registry["segment"]
    ax.add_collection(line_collection(seg.geometry, colors="0.85", linewidths=0.4))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=level, s=2, cmap="inferno", vmin=0, vmax=1)
    cb = fig.colorbar(sc, ax=ax, shrink=0.6)
    cb.set_label("dim level (0 = off, 1 = full)")
    ax.set_aspect("equal")
    ax.autoscale()
    stamp = f"{int(hours[i]) % 24:02d}:{int(round((hours[i] % 1) * 60)):02d}"
    ax.set_title(f"{tw.city.title}: light levels at {stamp} local, {ds.attrs['date']} night")
    fig.text(0.99, 0.01, f"Data: {tw.city.attribution}", ha="right", fontsize=7, color="0.3")
    fig.tight_layout()
    fig.savefig(out)


def run_night(
    *,
    city: str | None = "dijon",
    osm: Path | None = None,
    date: str | dt.date | None = None,
    out: Path,
    switch_off: dimming.SwitchOff | None = None,
    objective: lp.Objective = "min_energy",
    demand_source: Literal["calendar", "simulated"] = "calendar",
    footfall_calibration: FootfallCalibration | None = None,
    progress: bool = True,
    say: Any = print,
) -> dict[str, Any]:
    """Run the main job and write its files; returns the report.

    The demand is the calendar forecast (:func:`optimize.dimming.default_demand`, the one the
    notebook and ``twin energy --year`` use) unless ``demand_source="simulated"`` (footfall
    DES). The report states the night against the annual target: ``annual`` holds the year's
    figures estimated from :func:`monthly_sample` (twelve nights, the 15th of each month), and
    the trajectory is built from them; ``twin energy --year`` plans every night of the year.
    ``footfall_calibration`` (:mod:`twin.scenarios.footfall_calibration`, fitted to counters)
    calibrates the footfall of that demand, for the night and the year's sample.
    """
    from twin import energy
    from twin.progress import progress_bar
    from twin.timeutil import validate_date

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = ["twin", "demand", "hps_full", "led_full", "part_night", "adaptive", "write", "year"]
    bar = progress_bar(total=len(steps), desc="night plan", unit="step", disable=not progress)

    def step(name: str) -> None:
        bar.set_postfix_str(name)

    step("twin")
    tw = _load_or_fetch(city, osm, say=say)
    day = validate_date(date) if date is not None else _default_date(tw.city.timezone)
    bar.update()
    step("demand")
    demand: Demand = (
        simulated_demand(tw, day) if demand_source == "simulated" else dimming.default_demand(tw)
    )
    if footfall_calibration is not None:
        demand = footfall_calibration.apply(demand, timezone=tw.city.timezone)
    bar.update()
    plans: dict[str, xr.Dataset] = {}
    # one forecast for every policy
    prepared = dimming.problem_for(tw, day, switch_off=switch_off, demand=demand)
    for policy in ("hps_full", "led_full", "part_night"):
        step(policy)
        plans[policy] = dimming.plan(tw, day, policy=policy, prepared=prepared)
        bar.update()
    step("adaptive")
    plans["adaptive"], relaxed = adaptive_plan(tw, day, objective=objective, prepared=prepared)
    bar.update()

    step("write")
    ds = plans["adaptive"]
    a = ds.attrs
    report: dict[str, Any] = {
        "city": tw.name,
        "date": day.isoformat(),
        "lights": int(ds.sizes["light"]),
        "slots": int(ds.sizes["time"]),
        "slot_minutes": int(a["slot_minutes"]),
        "dusk_utc": a["dusk_utc"],
        "dawn_utc": a["dawn_utc"],
        "baseline_kwh": round(float(a["baseline_kwh"]), 3),
        "led_kwh": round(float(a["led_kwh"]), 3),
        "optimized_kwh": round(float(ds["energy_wh"].sum()) / 1000.0, 3),
        "saving_pct": round(float(a["saving_pct"]), 3),
        "compliance_pct": round(float(a["compliance_pct"]), 3),
        "cap_binding_cabinets": int(a.get("cap_binding_cabinets", 0)),
        "target_pct": float(tw.city.contract.target_pct),
        "target_is_annual": True,
        "floor_kwh": round(float(a["floor_kwh"]), 3),
        "extra_kwh": round(float(a["extra_kwh"]), 3),
        "clo": bool(a["clo"]),
        "wattage": {
            "real": int(a["wattage_real"]),
            "inferred": int(a["wattage_inferred"]),
            "default": int(a["wattage_default"]),
        },
        "objective": objective,
        "solver": {
            "status": a["solver_status"],
            "condition": a["solver_condition"],
            "method": a["solver_method"],
            "build_s": a["solver_build_s"],
            "solve_s": a["solver_solve_s"],
            "objective": a["solver_objective"],
        },
        "budget_relaxed": relaxed or None,
        "switch_off": None
        if switch_off is None
        else {
            "start_hour": switch_off.start_hour,
            "end_hour": switch_off.end_hour,
            "highways": list(switch_off.highways),
        },
        "policies": {
            name: {
                "kwh": round(float(p.attrs["optimized_kwh"]), 3),
                "saving_pct": round(float(p.attrs["saving_pct"]), 3),
                "compliance_pct": round(float(p.attrs["compliance_pct"]), 3),
            }
            for name, p in plans.items()
        },
        "lights_power_defaulted": int(tw.meta.get("lights_power_defaulted", 0)),
        "demand": "footfall DES + traffic profiles"
        if demand_source == "simulated"
        else "calendar forecast (road-class profiles, weekday/weekend/public holidays)",
        "footfall_calibration": None
        if footfall_calibration is None
        else footfall_calibration.to_dict(),
        "attribution": tw.city.attribution,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    write_year(ds, out / "dimming.nc")
    title = f"{tw.city.title}: night of {day.isoformat()}"
    _night_profile(plans, tw.city.timezone, out / "night_profile.png", title)
    _levels_map(tw, ds, out / "levels_0200.png")
    bar.update()

    step("year")
    year = plan_year(
        tw,
        day.year,
        demand=demand if demand_source == "calendar" else None,
        switch_off=switch_off,
        nights=monthly_sample(day.year),
    )
    summary = annual_summary(year)
    tgt = float(tw.city.contract.target_pct)
    report["annual"] = {
        "year": day.year,
        "nights_sampled": int(year.sizes["night"]),
        "sample": "the 15th of each month (every night of the year: twin energy --year)",
        **{k: round(v, 3) for k, v in summary.items()},
        "target_pct": tgt,
        "on_track": bool(summary["saving_pct"] >= tgt),
        "night_vs_year_pct": round(float(a["saving_pct"]) - summary["saving_pct"], 3),
    }
    traj, dimf, offf = trajectory_for(tw, year)
    fig = energy.plot_trajectory(
        traj,
        title=f"{tw.city.title}: energy {traj['year'].values[0]}-{traj['year'].values[-1]} "
        f"against the {tgt:g}% target (annual factors of {day.year})",
        attribution=f"Data: {tw.city.attribution}",
    )
    fig.savefig(out / "trajectory.png")
    report["trajectory"] = {
        "dimming_factor": dimf,
        "switch_off_factor": offf,
        "saving_pct_2030": round(float(traj["saving_pct"].sel(year=2030)), 2),
        "year_of_target": energy.year_of_target(traj),
        "from": f"annual factors of {day.year} ({int(year.sizes['night'])} nights sampled)",
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    bar.update()
    bar.close()
    return report
