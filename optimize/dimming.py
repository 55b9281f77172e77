"""Nightly dimming plans for a twin: the policies an engineer compares, as ``xr.Dataset``s.

:func:`plan` turns a twin, a date and a demand forecast into one night's plan:

1. the night from dusk to dawn, in slots on the local clock (:func:`twin.timeutil.night_slots`);
2. per light and slot, the EN 13201 class required: the segment's design class re-weighted for
   the slot's traffic and footfall relative to the design (peak) hour, as CEN/TR 13201-1 allows
   (:func:`twin.assets.lighting.adaptive_class`), or ``"off"`` inside a commune's switch-off
   window;
3. the required output fraction from the two classes and the EN 13201-2 table
   (:func:`twin.assets.lighting.required_fraction`, with its maintenance margin);
4. the levels, by policy:

   ``hps_full``
       the pre-LED high-pressure sodium stock at full power (the 65% baseline);
   ``led_full``
       the LED stock at full power;
   ``part_night``
       fixed dimming: ``part_night_level`` (50%) from 23:00 to 05:00 local, full otherwise. Not
       demand-aware: compliance can fall below 100% where a street needs more;
   ``adaptive``
       the LP of :mod:`optimize.dimming_lp` with one of its objectives (``service``, the default;
       ``cost``; ``min_energy``), under ramp limits, cabinet contracted-power caps and a nightly
       energy budget from the 65% trajectory.

Power curve: a light on at level ``x`` draws ``power_w * (f + (1 - f) x)`` with the driver floor
``f`` = :data:`DRIVER_FLOOR`; off, it draws nothing. ``energy_wh = power * slot duration``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import xarray as xr

from twin._errors import InputValidationError, TwinError
from twin.assets import lighting
from twin.energy.power import DRIVER_FLOOR, drawn_power_w
from twin.timeutil import Night, night_slots, validate_date

from . import dimming_lp as lp

__all__ = [
    "DRIVER_FLOOR",
    "OBJECTIVES",
    "POLICIES",
    "PlanNotSolvedError",
    "RAMP_PER_HOUR",
    "SwitchOff",
    "plan",
    "problem_for",
    "target_pct_for_year",
]

POLICIES = ("hps_full", "led_full", "part_night", "adaptive")
OBJECTIVES = ("service", "cost", "min_energy")
#: Largest change of level per hour (0.8/h = 0.2 per 15-minute slot): a step no one notices.
RAMP_PER_HOUR = 0.8
TARGET_PCT = 65.0
CONTRACT_YEARS = (2018, 2030)
#: Local hours when the ambient luminosity is low: the arrêté of 27 December 2018 (France) has
#: illuminated advertising and shop windows switched off from 01:00 to 06:00. CEN/TR 13201-1
#: weights ambient luminosity (moderate 0, low -1), so the class goes one step darker then.
AMBIENT_LOW_HOURS = (1.0, 6.0)
#: Time-of-use tariff used by the ``cost`` objective when none is given (EUR/kWh, local hours):
#: French "heures creuses" 22:00-06:00 are cheaper than the evening peak.
DEFAULT_TARIFF = {"peak": 0.2516, "off_peak": 0.1828, "off_peak_hours": (22.0, 6.0)}


class PlanNotSolvedError(TwinError, RuntimeError):
    """The solver stopped without an optimal plan (time limit, numerical trouble).

    No plan is returned then, never a partial one.
    """


@dataclasses.dataclass(frozen=True)
class SwitchOff:
    """A commune's switch-off window: lights off on some streets for some local hours.

    Attributes
    ----------
    start_hour, end_hour
        Local clock hours (``1.0`` to ``5.0`` is 01:00-05:00); the window may cross midnight.
    highways
        Road classes concerned (OSM ``highway`` values). Default: residential streets.
    series
        EN 13201 series concerned (default ``("P",)``: only streets designed for P classes).
    """

    start_hour: float = 1.0
    end_hour: float = 5.0
    highways: tuple[str, ...] = ("residential", "living_street", "service")
    series: tuple[str, ...] = ("P",)

    def __post_init__(self) -> None:
        for name in ("start_hour", "end_hour"):
            v = getattr(self, name)
            if not 0.0 <= v < 24.0:
                msg = f"switch_off.{name}: {v} is not a clock hour in [0, 24)"
                raise InputValidationError(msg)

    def active(self, hour_local: np.ndarray) -> np.ndarray:
        """Which slots (by local start hour) fall in the window."""
        h = np.asarray(hour_local, dtype=float)
        if self.start_hour <= self.end_hour:
            return (h >= self.start_hour) & (h < self.end_hour)
        return (h >= self.start_hour) | (h < self.end_hour)


def target_pct_for_year(year: int) -> float:
    """Saving the 65% trajectory asks for in ``year``: linear from 0 in 2018 to 65% in 2030.

    >>> target_pct_for_year(2018), target_pct_for_year(2024), target_pct_for_year(2031)
    (0.0, 32.5, 65.0)
    """
    a, b = CONTRACT_YEARS
    return float(TARGET_PCT * min(1.0, max(0.0, (year - a) / (b - a))))


def _check(name: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        msg = f"{name}: unknown {name} {value!r}; valid: {', '.join(valid)}"
        raise InputValidationError(msg)


def _default_demand(tw: Any) -> Any:
    from twin.scenarios.demand import ProfileDemand

    return ProfileDemand.from_twin(tw)


def _light_table(tw: Any) -> dict[str, np.ndarray]:
    reg = tw.registry
    lights = reg["light"]
    seg = reg["segment"]
    cab = reg["cabinet"]
    seg_id = lights["segment"].to_numpy(dtype=object)
    has_seg = lights["segment"].notna().to_numpy()
    highway = np.full(len(lights), "", dtype=object)
    highway[has_seg] = seg["highway"].reindex(seg_id[has_seg]).to_numpy()
    cab_ids = cab.index.to_numpy(dtype=object)
    cab_pos = {c: i for i, c in enumerate(cab_ids)}
    return {
        "light": lights.index.to_numpy(dtype=object),
        "segment": seg_id,
        "has_segment": has_seg,
        "highway": highway.astype(str),
        "design_class": lights["design_class"].to_numpy(dtype=str),
        "power_w": lights["power_w"].to_numpy(float),
        "baseline_power_w": lights["baseline_power_w"].to_numpy(float),
        "min_level": lights["min_level"].to_numpy(float),
        "cabinet": lights["cabinet"].to_numpy(dtype=object),
        "cabinet_index": np.array([cab_pos[c] for c in lights["cabinet"]], dtype=np.intp),
        "cabinet_ids": cab_ids,
        "cabinet_cap_w": cab["contracted_power_w"].to_numpy(float),
    }


def _ratios(
    tw: Any, demand: Any, segments: np.ndarray, night: Night
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Traffic and footfall of each segment per slot, relative to the segment's design hour.

    The design hour is the busiest hour of the day (local) of the evening, which is what the
    design class was chosen for. Third: each segment's traffic plus footfall per slot.
    """
    day = night.evening
    tz = night.tz
    from zoneinfo import ZoneInfo

    start = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
    hours = np.array(
        [
            np.datetime64((start + dt.timedelta(hours=h)).replace(tzinfo=None), "ns")
            for h in range(24)
        ]
    )
    useg = np.unique(segments)
    day_tr = np.asarray(demand.traffic(useg, hours), dtype=float)
    day_ff = np.asarray(demand.footfall(useg, hours), dtype=float)
    tr = np.asarray(demand.traffic(useg, night.start), dtype=float)
    ff = np.asarray(demand.footfall(useg, night.start), dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tr_ratio = np.where(
            day_tr.max(axis=1, keepdims=True) > 0, tr / day_tr.max(axis=1, keepdims=True), 0.0
        )
        ff_ratio = np.where(
            day_ff.max(axis=1, keepdims=True) > 0, ff / day_ff.max(axis=1, keepdims=True), 0.0
        )
    pos = np.searchsorted(useg, segments)
    return np.clip(tr_ratio[pos], 0, 1), np.clip(ff_ratio[pos], 0, 1), ff[pos] + tr[pos]


def problem_for(
    tw: Any,
    date: dt.date | str,
    *,
    demand: Any = None,
    slot_minutes: int = 15,
    switch_off: SwitchOff | Sequence[SwitchOff] | None = None,
    budget_pct: float | None = None,
    ramp_per_hour: float = RAMP_PER_HOUR,
    tariff: Mapping[str, Any] | None = None,
    ambient_low_hours: tuple[float, float] | None = AMBIENT_LOW_HOURS,
) -> tuple[lp.DimmingProblem, dict[str, Any]]:
    """Build one night's dimming problem for a twin, and the arrays the plan reports.

    ``budget_pct`` is the saving against the HPS baseline the night's budget enforces (default:
    :data:`TARGET_PCT`, the contract's end target; ``None`` from :func:`plan` means that).
    """
    day = validate_date(date)
    lon, lat = tw.centre
    night = night_slots(day, lat=lat, lon=lon, slot_minutes=slot_minutes, tz=tw.city.timezone)
    L = _light_table(tw)
    n, T = len(L["light"]), len(night)
    if n == 0:
        msg = f"{tw.name}: the twin has no light points to plan"
        raise InputValidationError(msg)
    demand = _default_demand(tw) if demand is None else demand
    seg = np.where(L["has_segment"], L["segment"], "")
    known = L["has_segment"]
    tr_ratio = np.zeros((n, T))
    ff_ratio = np.zeros((n, T))
    weight = np.zeros((n, T))
    if known.any():
        a, b, act = _ratios(tw, demand, seg[known].astype(str), night)
        tr_ratio[known], ff_ratio[known], weight[known] = a, b, act
    design = L["design_class"]
    # the design case's traffic-volume option, per road class (unknown classes: peak, "high")
    volume = lighting.ROAD_CLASSES["volume"].reindex(L["highway"]).fillna("high").to_numpy(str)
    # array in, array out (a str only for a scalar class)
    required_class = np.asarray(
        lighting.adaptive_class(
            np.broadcast_to(design[:, None], (n, T)),
            traffic_ratio=tr_ratio,
            pedestrian_ratio=ff_ratio,
            design_volume=np.broadcast_to(volume[:, None], (n, T)),
        )
    ).astype(object)
    if ambient_low_hours is not None:
        lo, hi = ambient_low_hours
        dark = SwitchOff(start_hour=lo, end_hour=hi).active(night.hour_local)
        required_class = np.asarray(
            lighting.darker(
                required_class.astype(str), np.broadcast_to(dark[None, :].astype(int), (n, T))
            )
        ).astype(object)
    windows = [switch_off] if isinstance(switch_off, SwitchOff) else list(switch_off or [])
    off = np.zeros((n, T), dtype=bool)
    series = np.array([c[0] for c in design])
    for w in windows:
        streets = np.isin(L["highway"], w.highways) & np.isin(series, w.series)
        off |= streets[:, None] & w.active(night.hour_local)[None, :]
    required_class[off] = lighting.OFF
    required = lighting.required_fraction(np.broadcast_to(design[:, None], (n, T)), required_class)
    slot_h = night.duration_s / 3600.0
    baseline_wh = float((L["baseline_power_w"][:, None] * slot_h[None, :]).sum())
    pct = TARGET_PCT if budget_pct is None else float(budget_pct)
    budget = baseline_wh * (1.0 - pct / 100.0)
    tariff = dict(DEFAULT_TARIFF if tariff is None else tariff)
    a_h, b_h = tariff["off_peak_hours"]
    cheap = SwitchOff(start_hour=a_h, end_hour=b_h).active(night.hour_local)
    price = np.where(cheap, tariff["off_peak"], tariff["peak"]).astype(float)
    slot_hours = slot_minutes / 60.0
    problem = lp.DimmingProblem(
        light=L["light"],
        time=night.start,
        slot_h=slot_h,
        power_w=L["power_w"],
        required=np.asarray(required, dtype=float),
        cabinet_index=L["cabinet_index"],
        cabinet=L["cabinet_ids"],
        driver_floor=DRIVER_FLOOR,
        min_level=L["min_level"],
        forced_off=off,
        weight=weight / max(weight.max(), 1e-12),
        cabinet_cap_w=np.broadcast_to(L["cabinet_cap_w"][:, None], (len(L["cabinet_ids"]), T)),
        energy_budget_wh=budget,
        ramp=ramp_per_hour * slot_hours,
        price_eur_per_kwh=price,
    )
    extra = {
        "night": night,
        "lights": L,
        "required_class": required_class.astype(str),
        "baseline_wh": baseline_wh,
        "budget_pct": pct,
        "demand": type(demand).__name__,
    }
    return problem, extra


def plan(
    tw: Any,
    date: dt.date | str,
    *,
    policy: str = "adaptive",
    objective: str = "service",
    demand: Any = None,
    slot_minutes: int = 15,
    switch_off: SwitchOff | Sequence[SwitchOff] | None = None,
    budget_pct: float | None = None,
    ramp_per_hour: float = RAMP_PER_HOUR,
    part_night_level: float = 0.5,
    part_night_hours: tuple[float, float] = (23.0, 5.0),
    method: str = "fast",
    prepared: tuple[lp.DimmingProblem, dict[str, Any]] | None = None,
) -> xr.Dataset:
    """One night's lighting plan for a twin, under a policy.

    Parameters
    ----------
    tw : Twin
        The twin (``twin.load(...)``).
    date : date or 'YYYY-MM-DD'
        The evening on which the night starts (1900-2100).
    policy : str
        ``hps_full``, ``led_full``, ``part_night`` or ``adaptive``.
    objective : str
        For ``adaptive``: ``service`` (default), ``cost`` or ``min_energy``.
    demand : Demand, optional
        Footfall and traffic per segment and slot (``footfall(segments, times)``,
        ``traffic(segments, times)``). Default: the profile model of
        :mod:`twin.scenarios.demand`.
    switch_off : SwitchOff or list, optional
        Commune switch-off windows; the requirement is 0 (class ``"off"``) inside them.
    budget_pct : float, optional
        Saving against the HPS baseline the night's energy budget enforces (default 65).
    method : str
        ``fast`` (default), ``highs`` or ``pulp`` (the straightforward model engineers extend).
    prepared : tuple, optional
        The output of :func:`problem_for` for this twin and night, to plan several policies on
        one forecast without building it again (the other forecast options are then ignored).

    Returns
    -------
    xr.Dataset
        Dims ``light`` and ``time``: ``level``, ``required_level``, ``lighting_class``,
        ``energy_wh``; per light ``design_class``, ``power_w``, ``cabinet``, ``segment``,
        ``baseline_power_w``; per slot ``slot_s``. Attributes carry the solver's status and
        timings and the report figures.
    """
    _check("policy", policy, POLICIES)
    _check("objective", objective, OBJECTIVES)
    t0 = time.perf_counter()
    if prepared is None:
        prepared = problem_for(
            tw,
            date,
            demand=demand,
            slot_minutes=slot_minutes,
            switch_off=switch_off,
            budget_pct=budget_pct,
            ramp_per_hour=ramp_per_hour,
        )
    problem, extra = prepared
    if validate_date(date) != extra["night"].evening:
        msg = (
            f"date: {date} is not the night of the prepared forecast "
            f"({extra['night'].evening.isoformat()})"
        )
        raise InputValidationError(msg)
    build_s = time.perf_counter() - t0
    night: Night = extra["night"]
    L = extra["lights"]
    n, T = problem.n, problem.n_slots
    power = L["power_w"]
    solver = {
        "status": "ok",
        "condition": "closed form",
        "build_s": round(build_s, 3),
        "solve_s": 0.0,
        "objective": float("nan"),
        "method": "none",
    }
    if policy in ("hps_full", "led_full"):
        level = np.ones((n, T))
        if policy == "hps_full":
            power = L["baseline_power_w"]
    elif policy == "part_night":
        lo, hi = part_night_hours
        dim = SwitchOff(start_hour=lo, end_hour=hi).active(night.hour_local)
        level = np.where(dim[None, :], part_night_level, 1.0) * np.ones((n, 1))
    else:
        if objective == "min_energy":  # the floor: no budget applies to it
            problem = dataclasses.replace(problem, energy_budget_wh=None)
        # plain strings here (the command line's): _check above and lp.solve validate them
        sol = lp.solve(  # raises when infeasible
            problem, objective=cast(lp.Objective, objective), method=cast(lp.Method, method)
        )
        if sol.status != "ok":
            msg = f"dimming LP ended {sol.status} ({sol.condition}); no plan is returned"
            raise PlanNotSolvedError(msg)
        level = sol.level
        solver = {
            "status": sol.status,
            "condition": sol.condition,
            "build_s": round(build_s + sol.build_s, 3),
            "solve_s": round(sol.solve_s, 3),
            "objective": float(sol.objective),
            "method": sol.method,
            "budget_dual": sol.budget_dual,
        }
    level = np.where(np.asarray(problem.forced_off), 0.0, level)  # an array once built
    on = level > 0
    slot_h = night.duration_s / 3600.0
    energy = drawn_power_w(power, level, driver_floor=DRIVER_FLOOR, on=on) * slot_h
    return _dataset(
        tw,
        problem,
        extra,
        level=level,
        energy=energy,
        power=power,
        policy=policy,
        objective=objective,
        solver=solver,
    )


def _dataset(
    tw: Any,
    problem: lp.DimmingProblem,
    extra: dict[str, Any],
    *,
    level: np.ndarray,
    energy: np.ndarray,
    power: np.ndarray,
    policy: str,
    objective: str,
    solver: Mapping[str, Any],
) -> xr.Dataset:
    night: Night = extra["night"]
    L = extra["lights"]
    required = np.asarray(problem.required)
    ok = level >= required - 1e-9
    baseline_kwh = extra["baseline_wh"] / 1000.0
    led_kwh = float((L["power_w"][:, None] * night.duration_s[None, :] / 3600.0).sum()) / 1000.0
    optimized_kwh = float(energy.sum()) / 1000.0
    coords = {"light": ("light", L["light"].astype(str)), "time": ("time", night.start)}
    ds = xr.Dataset(
        {
            "level": (
                ("light", "time"),
                level,
                {"units": "1", "long_name": "dim level (fraction of full output)"},
            ),
            "required_level": (
                ("light", "time"),
                required,
                {
                    "units": "1",
                    "long_name": "EN 13201 requirement as a fraction of full output",
                    "maintenance_margin": lighting.MAINTENANCE_MARGIN,
                },
            ),
            "lighting_class": (
                ("light", "time"),
                extra["required_class"],
                {
                    "units": "1",
                    "long_name": (
                        "EN 13201 class required in the slot ('off' in a switch-off window)"
                    ),
                },
            ),
            "energy_wh": (
                ("light", "time"),
                energy,
                {"units": "Wh", "long_name": "energy drawn in the slot"},
            ),
            "design_class": (
                "light",
                L["design_class"],
                {"units": "1", "long_name": "EN 13201 class the luminaire was designed for"},
            ),
            "power_w": (
                "light",
                np.asarray(power, dtype=float),
                {"units": "W", "long_name": "system power at full output"},
            ),
            "baseline_power_w": (
                "light",
                L["baseline_power_w"],
                {"units": "W", "long_name": "pre-LED HPS system power"},
            ),
            "cabinet": (
                "light",
                L["cabinet"].astype(str),
                {"units": "1", "long_name": "feeder cabinet"},
            ),
            "segment": (
                "light",
                np.where(L["has_segment"], L["segment"], "").astype(str),
                {"units": "1", "long_name": "road segment"},
            ),
            "slot_s": ("time", night.duration_s, {"units": "s", "long_name": "slot duration"}),
            "hour_local": (
                "time",
                night.hour_local,
                {"units": "h", "long_name": f"local clock hour ({night.tz})"},
            ),
        },
        coords=coords,
    )
    ds["time"].attrs.update({"timezone": "UTC", "long_name": "slot start"})
    ds.attrs.update(
        {
            "city": tw.name,
            "date": night.evening.isoformat(),
            "policy": policy,
            "objective": objective if policy == "adaptive" else "",
            "dusk_utc": night.dusk.isoformat(),
            "dawn_utc": night.dawn.isoformat(),
            "slot_minutes": night.slot_minutes,
            "driver_floor": DRIVER_FLOOR,
            "power_curve": (
                "P = power_w * (driver_floor + (1 - driver_floor) * level) when level > 0, else 0"
            ),
            "demand": extra["demand"],
            "budget_pct": extra["budget_pct"],
            "baseline_kwh": baseline_kwh,
            "led_kwh": led_kwh,
            "optimized_kwh": optimized_kwh,
            "saving_pct": 100.0 * (1.0 - optimized_kwh / baseline_kwh),
            "compliance_pct": 100.0 * float(ok.mean()),
            "target_pct": TARGET_PCT,
            "solver_status": str(solver["status"]),
            "solver_condition": str(solver["condition"]),
            "solver_method": str(solver["method"]),
            "solver_build_s": float(solver["build_s"]),
            "solver_solve_s": float(solver["solve_s"]),
            "solver_objective": float(solver["objective"]),
            "attribution": tw.city.attribution,
        }
    )
    return ds
