"""Nightly dimming plans for a twin: the policies an engineer compares, as ``xr.Dataset``s.

:func:`plan` turns a twin, a date and a demand forecast into one night's plan:

1. the night from dusk to dawn, in slots on the local clock (:func:`twin.timeutil.night_slots`);
2. the night's forecast (:func:`forecast_night`, a :class:`NightForecast`): traffic and
   footfall of each light's segment per slot relative to its design (peak) hour, from the
   calendar forecast (:class:`twin.scenarios.calendar.CalendarDemand`: weekday, weekend,
   public holidays, occasions) unless another demand is given. The notebook, the nightly job and
   the year of nights all use it, so they see the same demand for the same night;
3. per light and slot, the EN 13201 class required: the segment's design class re-weighted for
   the slot's traffic and footfall, as CEN/TR 13201-1 allows
   (:func:`twin.assets.lighting.adaptive_class`), or ``"off"`` inside a commune's switch-off
   window;
4. the required output fraction: the ratio of the two classes' values (EN 13201-2 tables,
   :func:`twin.assets.lighting.required_fraction`, without the old 10 % margin), times the
   constant-light-output factor ``MF / LLMF(age)`` of each light when ``clo`` is on
   (:mod:`twin.assets.maintenance`): a new installation designed with MF 0.85 delivers about
   1/0.85 of the maintained value at 100 %, so it meets its class at about 85 %;
5. the levels, by policy:

   ``hps_full``
       the pre-LED high-pressure sodium stock at full power (the baseline);
   ``led_full``
       the LED stock at full power;
   ``part_night``
       fixed dimming: ``part_night_level`` (50%) from 23:00 to 05:00 local, full otherwise. Not
       demand-aware: compliance can fall below 100% where a street needs more;
   ``adaptive``
       :mod:`optimize.dimming_lp` with one of its objectives: ``min_energy`` (the default: the
       requirement is a hard floor and nothing is lit above it), ``cost`` (a validated
       time-of-use :class:`~optimize.dimming_tariff.Tariff`) or ``service`` (an explicit
       ``service_weight_kwh``), under ramp limits, cabinet caps and switch-off windows. No
       nightly energy budget unless ``budget_pct`` is given: the contract counts a year.

Power curve: :func:`twin.energy.power.drawn_power_w` (one definition for the whole project).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from twin._errors import InputValidationError, TwinError
from twin.assets import lighting
from twin.assets.cabinet import clo_start_power_w, contracted_caps
from twin.assets.maintenance import (
    DEFAULT_MAINTENANCE,
    LumenMaintenance,
    light_ages_h,
    output_factor,
)
from twin.energy.power import DRIVER_FLOOR, drawn_power_w
from twin.timeutil import Night, night_slots, validate_date, yearly_dark_hours

from . import dimming_lp as lp
from .dimming_caps import capped_levels
from .dimming_problem import envelope_levels
from .dimming_tariff import DEFAULT_TARIFF, Tariff

if TYPE_CHECKING:
    from twin.model import Twin
    from twin.scenarios.demand import Demand

__all__ = [
    "DRIVER_FLOOR",
    "OBJECTIVES",
    "POLICIES",
    "NightForecast",
    "PlanNotSolvedError",
    "Policy",
    "RAMP_PER_HOUR",
    "SwitchOff",
    "forecast_night",
    "light_table",
    "plan",
    "problem_for",
    "target_pct_for_year",
]

Policy = Literal["hps_full", "led_full", "part_night", "adaptive"]
POLICIES: tuple[Policy, ...] = ("hps_full", "led_full", "part_night", "adaptive")
OBJECTIVES: tuple[lp.Objective, ...] = ("min_energy", "cost", "service")
#: Largest change of level per hour (0.8/h = 0.2 per 15-minute slot): a step no one notices.
RAMP_PER_HOUR = 0.8
TARGET_PCT = 65.0
CONTRACT_YEARS = (2018, 2030)
#: Local hours when the ambient luminosity is low: the arrêté of 27 December 2018 (France) has
#: illuminated advertising and shop windows switched off from 01:00 to 06:00. CEN/TR 13201-1
#: weights ambient luminosity (moderate 0, low -1), so the class goes one step darker then.
AMBIENT_LOW_HOURS = (1.0, 6.0)


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

    def active(self, hour_local: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Which slots (by local start hour) fall in the window."""
        h = np.asarray(hour_local, dtype=float)
        if self.start_hour <= self.end_hour:
            return np.asarray((h >= self.start_hour) & (h < self.end_hour))
        return np.asarray((h >= self.start_hour) | (h < self.end_hour))


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


def default_demand(tw: Twin) -> Demand:
    """The forecast every plan uses unless told otherwise: the calendar demand of the twin."""
    from twin.scenarios.calendar import CalendarDemand

    return CalendarDemand.from_twin(tw)


def _optional(frame: Any, name: str, default: float) -> npt.NDArray[np.float64]:
    if name in frame.columns:
        v = np.asarray(frame[name].to_numpy(dtype=float), dtype=np.float64)
        return np.where(np.isfinite(v), v, default)
    return np.full(len(frame), float(default))


def light_table(tw: Twin, *, cap_sizing: str = "clo_start") -> dict[str, np.ndarray]:
    """The light points of a twin as the arrays the plans read (one row per light).

    ``maintenance_factor`` and ``install_year`` come from the registry where an inventory gave
    them, otherwise :data:`twin.assets.maintenance.DEFAULT_MAINTENANCE`'s MF and the first year
    of the city's contract (``maintenance_defaulted`` counts those lights).

    ``cabinet_cap_w`` is each cabinet's real-power cap, ``contracted_kva x power_factor``
    (:func:`twin.assets.cabinet.contracted_caps`): the cabinet's own ``contracted_kva`` and
    ``power_factor`` where the registry has them, otherwise the ``cap_sizing`` rule
    (``"clo_start"``: the tariff step covering the new LED stock at its CLO start level).
    """
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
    start_year = float(tw.city.contract.start.year)
    serving = np.zeros(len(lights), dtype=bool)
    if "crossing" in reg.kinds and len(reg["crossing"]):
        from twin.derive.crossings import lights_serving

        _, near = lights_serving(
            np.asarray(reg["crossing"].geometry.values), np.asarray(lights.geometry.values)
        )
        serving[near] = True
    mf_given = (
        lights["maintenance_factor"].notna().to_numpy()
        if "maintenance_factor" in lights.columns
        else np.zeros(len(lights), dtype=bool)
    )
    defaulted = (
        lights["power_defaulted"].to_numpy(dtype=bool)
        if "power_defaulted" in lights.columns
        else np.zeros(len(lights), dtype=bool)
    )
    tech = (
        lights["technology"].fillna("").astype(str).str.upper().to_numpy()
        if "technology" in lights.columns
        else np.full(len(lights), "LED")
    )
    mf = _optional(lights, "maintenance_factor", DEFAULT_MAINTENANCE.maintenance_factor)
    power = lights["power_w"].to_numpy(float)
    cab_index = np.array([cab_pos[c] for c in lights["cabinet"]], dtype=np.intp)
    start = clo_start_power_w(
        power, led=tech == "LED", maintenance_factor=mf, driver_floor=DRIVER_FLOOR
    )
    m = len(cab_ids)
    # the registry's rule-sized contracts are re-derived here (``cap_sizing`` may differ)
    given = (
        cab["contract_source"].to_numpy(dtype=object) == "inventory"
        if "contract_source" in cab.columns
        else np.ones(m, dtype=bool)
    )
    caps = contracted_caps(
        np.bincount(cab_index, weights=power, minlength=m),
        np.bincount(cab_index, weights=start, minlength=m),
        contracted_kva=np.where(given, _optional(cab, "contracted_kva", np.nan), np.nan),
        power_factor=np.where(given, _optional(cab, "power_factor", np.nan), np.nan),
        sizing=cap_sizing,
    )
    return {
        "light": lights.index.to_numpy(dtype=object),
        "segment": seg_id,
        "has_segment": has_seg,
        "highway": highway.astype(str),
        "design_class": lights["design_class"].to_numpy(dtype=str),
        "power_w": lights["power_w"].to_numpy(float),
        "baseline_power_w": lights["baseline_power_w"].to_numpy(float),
        "min_level": lights["min_level"].to_numpy(float),
        # HPS and metal-halide lamps on magnetic ballasts are not dimmed
        "dimmable": tech == "LED",
        "cabinet": lights["cabinet"].to_numpy(dtype=object),
        "cabinet_index": cab_index,
        "cabinet_ids": cab_ids,
        "cabinet_cap_w": caps["cap_w"],
        "cabinet_kva": caps["contracted_kva"],
        "cabinet_power_factor": caps["power_factor"],
        "cabinet_cap_source": caps["cap_source"],
        "maintenance_factor": mf,
        "install_year": _optional(lights, "install_year", start_year),
        "maintenance_defaulted": ~mf_given,
        "install_year_defaulted": ~(
            lights["install_year"].notna().to_numpy()
            if "install_year" in lights.columns
            else np.zeros(len(lights), dtype=bool)
        ),
        # lights within 25 m of a pedestrian crossing light its conflict area
        "serves_crossing": serving,
        # wattage provenance: real (the source's own HPS/MH wattage), inferred (an LED wattage
        # from the source, its HPS baseline inferred by the LED ratio), default (road class)
        "wattage_source": np.where(
            defaulted, "default", np.where(tech == "LED", "inferred", "real")
        ),
    }


@dataclasses.dataclass(frozen=True)
class NightForecast:
    """One night's demand forecast for a twin's lights: what every plan of the night reads.

    Attributes
    ----------
    night
        The night's slots (dusk to dawn).
    light
        ``(n,)`` light ids.
    traffic_ratio, footfall_ratio
        ``(n, T)`` motor traffic and footfall of each light's segment per slot, as a share of
        the segment's busiest hour of the evening's day (0 for lights without a segment).
    activity
        ``(n, T)`` traffic plus footfall per hour of each light's segment (the ``service``
        weight, normalised by :func:`problem_for`).
    demand
        Name of the demand model.
    """

    night: Night
    light: npt.NDArray[Any]
    traffic_ratio: npt.NDArray[np.float64]
    footfall_ratio: npt.NDArray[np.float64]
    activity: npt.NDArray[np.float64]
    demand: str

    def __post_init__(self) -> None:
        shape = (len(self.light), len(self.night))
        for name in ("traffic_ratio", "footfall_ratio", "activity"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != shape or not np.isfinite(arr).all() or (arr < 0).any():
                msg = f"NightForecast.{name}: expected finite values >= 0 of shape {shape}"
                raise InputValidationError(msg)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)


def _ratios(
    demand: Demand, segments: np.ndarray, night: Night
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Traffic and footfall of each segment per slot, relative to the segment's design hour.

    The design hour is the busiest hour of the day (local) of the evening, which is what the
    design class was chosen for. Third: each segment's traffic plus footfall per slot.
    """
    from zoneinfo import ZoneInfo

    day = night.evening
    start = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(night.tz)).astimezone(dt.UTC)
    hours = np.array(
        [
            np.datetime64((start + dt.timedelta(hours=h)).replace(tzinfo=None), "ns")
            for h in range(24)
        ]
    )
    useg, inv = np.unique(segments, return_inverse=True)
    useg_l = useg.tolist()
    day_tr = np.asarray(demand.traffic(useg_l, hours), dtype=float)
    day_ff = np.asarray(demand.footfall(useg_l, hours), dtype=float)
    tr = np.asarray(demand.traffic(useg_l, night.start), dtype=float)
    ff = np.asarray(demand.footfall(useg_l, night.start), dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        top_tr = day_tr.max(axis=1, keepdims=True)
        top_ff = day_ff.max(axis=1, keepdims=True)
        tr_ratio = np.where(top_tr > 0, tr / top_tr, 0.0)
        ff_ratio = np.where(top_ff > 0, ff / top_ff, 0.0)
    pos = inv.reshape(-1)
    return np.clip(tr_ratio[pos], 0, 1), np.clip(ff_ratio[pos], 0, 1), ff[pos] + tr[pos]


def forecast_night(
    tw: Twin,
    date: dt.date | str,
    *,
    demand: Demand | None = None,
    slot_minutes: int = 15,
    lights: Mapping[str, np.ndarray] | None = None,
) -> NightForecast:
    """The night's demand forecast for every light of a twin (see :class:`NightForecast`).

    ``demand`` defaults to :func:`default_demand` (the calendar forecast).
    """
    day = validate_date(date)
    lon, lat = tw.centre
    night = night_slots(day, lat=lat, lon=lon, slot_minutes=slot_minutes, tz=tw.city.timezone)
    L = light_table(tw) if lights is None else lights
    n, t_n = len(L["light"]), len(night)
    if n == 0:
        msg = f"{tw.name}: the twin has no light points to plan"
        raise InputValidationError(msg)
    demand = default_demand(tw) if demand is None else demand
    known = np.asarray(L["has_segment"], dtype=bool)
    tr = np.zeros((n, t_n))
    ff = np.zeros((n, t_n))
    act = np.zeros((n, t_n))
    if known.any():
        seg = np.asarray(L["segment"])[known].astype(str)
        tr[known], ff[known], act[known] = _ratios(demand, seg, night)
    return NightForecast(
        night=night,
        light=np.asarray(L["light"]),
        traffic_ratio=tr,
        footfall_ratio=ff,
        activity=act,
        demand=type(demand).__name__,
    )


def required_classes(
    L: Mapping[str, np.ndarray],
    forecast: NightForecast,
    *,
    switch_off: SwitchOff | Sequence[SwitchOff] | None = None,
    ambient_low_hours: tuple[float, float] | None = AMBIENT_LOW_HOURS,
) -> tuple[np.ndarray, np.ndarray]:
    """The EN 13201 class required per light and slot, and the switch-off mask ``(n, T)``."""
    night = forecast.night
    design = np.asarray(L["design_class"])
    n, t_n = design.size, len(night)
    # the design case's traffic-volume option, per road class (unknown classes: peak, "high")
    volume = lighting.ROAD_CLASSES["volume"].reindex(L["highway"]).fillna("high").to_numpy(str)
    required_class = np.asarray(
        lighting.adaptive_class(
            np.broadcast_to(design[:, None], (n, t_n)),
            traffic_ratio=forecast.traffic_ratio,
            pedestrian_ratio=forecast.footfall_ratio,
            design_volume=np.broadcast_to(volume[:, None], (n, t_n)),
        )
    ).astype(object)
    if ambient_low_hours is not None:
        lo, hi = ambient_low_hours
        dark = SwitchOff(start_hour=lo, end_hour=hi).active(night.hour_local)
        required_class = np.asarray(
            lighting.darker(
                required_class.astype(str), np.broadcast_to(dark[None, :].astype(int), (n, t_n))
            )
        ).astype(object)
    windows = [switch_off] if isinstance(switch_off, SwitchOff) else list(switch_off or [])
    off = np.zeros((n, t_n), dtype=bool)
    series = np.array([c[0] for c in design])
    for w in windows:
        streets = np.isin(L["highway"], w.highways) & np.isin(series, w.series)
        off |= streets[:, None] & w.active(night.hour_local)[None, :]
    # lights serving a crossing are held to its conflict area: their design class all night,
    # never switched off (twin.derive.crossings says why)
    if "serves_crossing" in L:
        serving = np.asarray(L["serves_crossing"], dtype=bool)
        required_class[serving] = np.broadcast_to(design[serving, None], (int(serving.sum()), t_n))
        off[serving] = False
    required_class[off] = lighting.OFF
    return required_class.astype(str), off


def clo_factor(
    L: Mapping[str, np.ndarray],
    year: int,
    *,
    lat: float,
    lon: float,
    maintenance: LumenMaintenance = DEFAULT_MAINTENANCE,
) -> np.ndarray:
    """The constant-light-output level factor ``MF / LLMF(age)`` of each light in ``year``."""
    hours = yearly_dark_hours(year, lat=lat, lon=lon)
    ages = light_ages_h(L["install_year"], year, burning_hours_per_year=hours)
    return output_factor(L["maintenance_factor"], maintenance.lumen_share(ages))


def problem_for(
    tw: Twin,
    date: dt.date | str,
    *,
    demand: Demand | None = None,
    forecast: NightForecast | None = None,
    slot_minutes: int = 15,
    switch_off: SwitchOff | Sequence[SwitchOff] | None = None,
    budget_pct: float | None = None,
    ramp_per_hour: float = RAMP_PER_HOUR,
    tariff: Tariff | None = None,
    ambient_low_hours: tuple[float, float] | None = AMBIENT_LOW_HOURS,
    clo: bool = True,
    maintenance: LumenMaintenance = DEFAULT_MAINTENANCE,
    service_weight_kwh: float | None = None,
) -> tuple[lp.DimmingProblem, dict[str, Any]]:
    """Build one night's dimming problem for a twin, and the arrays the plan reports.

    ``budget_pct``: the saving against the HPS baseline a nightly energy budget enforces; ``None``
    (the default) sets no budget, since the contract counts energy over a year. ``clo``: scale
    the requirement by each light's constant-light-output factor (see the module docstring).
    ``forecast``: a :class:`NightForecast` already made for this night (``demand`` and
    ``slot_minutes`` are then ignored).
    """
    day = validate_date(date)
    L = light_table(tw)
    if forecast is None:
        forecast = forecast_night(tw, day, demand=demand, slot_minutes=slot_minutes, lights=L)
    elif forecast.night.evening != day:
        msg = f"forecast: made for {forecast.night.evening.isoformat()}, not {day.isoformat()}"
        raise InputValidationError(msg)
    night = forecast.night
    n, t_n = len(L["light"]), len(night)
    if forecast.light.shape != (n,) or not np.array_equal(forecast.light, L["light"]):
        msg = "forecast: its lights are not the twin's lights"
        raise InputValidationError(msg)
    required_class, off = required_classes(
        L, forecast, switch_off=switch_off, ambient_low_hours=ambient_low_hours
    )
    design = np.asarray(L["design_class"])
    ratio = np.asarray(
        lighting.required_fraction(
            np.broadcast_to(design[:, None], (n, t_n)), required_class, maintenance_margin=0.0
        ),
        dtype=float,
    )
    lon, lat = tw.centre
    factor = (
        clo_factor(L, day.year, lat=lat, lon=lon, maintenance=maintenance) if clo else np.ones(n)
    )
    required = np.minimum(1.0, ratio * factor[:, None])
    slot_h = night.duration_s / 3600.0
    ramp = ramp_per_hour * slot_minutes_of(night) / 60.0
    min_level = np.where(L["dimmable"], L["min_level"], 1.0)
    # the caps are physical: where the EN 13201 floor draws more than a cabinet's contract, the
    # floor gives way to the capped minimum-energy plan (optimize.dimming_caps), and compliance
    # is reported against the EN 13201 requirement itself
    capped = capped_levels(
        L["power_w"],
        np.where(off, 0.0, np.maximum(required, min_level[:, None])),
        ~off,
        ramp=ramp,
        cabinet_index=L["cabinet_index"],
        cap_w=L["cabinet_cap_w"],
        slot_h=slot_h,
        driver_floor=DRIVER_FLOOR,
        min_level=min_level,
        cabinet_ids=L["cabinet_ids"],
        time=night.start,
    )
    en13201_required = required
    if capped.binding.size:
        required = np.where(off, required, np.minimum(required, capped.level))
    # EN 13201-2 Table 3 note: a P slot's average may not exceed 1.5 x its class, as an upper
    # bound on output (x the CLO factor: the luminaire delivers 1/factor of its class at 100 %).
    # Where a ramp down from a higher slot cannot reach it in time, the ramp keeps the level
    # (the ramp-feasible envelope) and the slot is flagged ``over_p_cap``
    p_cap = np.asarray(lighting.p_cap_fraction(design[:, None], required_class), dtype=float)
    envelope = envelope_levels(
        np.where(off, 0.0, np.maximum(required, min_level[:, None])), ~off, ramp
    )
    max_level = np.where(off, 1.0, np.clip(np.maximum(p_cap * factor[:, None], envelope), 0.0, 1.0))
    baseline_wh = float((L["baseline_power_w"][:, None] * slot_h[None, :]).sum())
    budget = None
    if budget_pct is not None:
        pct = float(budget_pct)
        if not (0.0 <= pct < 100.0):
            msg = f"budget_pct: {budget_pct!r} is not a saving in [0, 100) %"
            raise InputValidationError(msg)
        budget = baseline_wh * (1.0 - pct / 100.0)
    tariff = DEFAULT_TARIFF if tariff is None else tariff
    if not isinstance(tariff, Tariff):
        msg = f"tariff: expected a Tariff, got {type(tariff).__name__}"
        raise InputValidationError(msg)
    price = tariff.price(night.hour_local)
    weight = forecast.activity
    m = len(L["cabinet_ids"])
    problem = lp.DimmingProblem(
        light=L["light"],
        time=night.start,
        slot_h=slot_h,
        power_w=L["power_w"],
        required=required,
        cabinet_index=L["cabinet_index"],
        cabinet=L["cabinet_ids"],
        driver_floor=DRIVER_FLOOR,
        min_level=min_level,
        forced_off=off,
        weight=weight / max(float(weight.max()), 1e-12),
        cabinet_cap_w=np.broadcast_to(L["cabinet_cap_w"][:, None], (m, t_n)),
        energy_budget_wh=budget,
        ramp=ramp,
        price_eur_per_kwh=price,
        service_weight_kwh=service_weight_kwh,
        max_level=max_level,
    )
    extra = {
        "night": night,
        "forecast": forecast,
        "lights": L,
        "required_class": required_class,
        "class_ratio": ratio,
        "clo": bool(clo),
        "clo_factor": factor,
        "maintenance": maintenance.label,
        "baseline_wh": baseline_wh,
        "budget_pct": float("nan") if budget_pct is None else float(budget_pct),
        "demand": forecast.demand,
        "tariff": tariff.label,
        "en13201_required": en13201_required,
        "cap_path": capped.path,
        "cap_binding": capped.binding,
    }
    return problem, extra


def slot_minutes_of(night: Night) -> int:
    """The nominal slot length of a night, minutes."""
    return int(night.slot_minutes)


def plan(
    tw: Twin,
    date: dt.date | str,
    *,
    policy: Policy = "adaptive",
    objective: lp.Objective = "min_energy",
    demand: Demand | None = None,
    slot_minutes: int = 15,
    switch_off: SwitchOff | Sequence[SwitchOff] | None = None,
    budget_pct: float | None = None,
    ramp_per_hour: float = RAMP_PER_HOUR,
    part_night_level: float = 0.5,
    part_night_hours: tuple[float, float] = (23.0, 5.0),
    method: lp.Method = "fast",
    clo: bool = True,
    tariff: Tariff | None = None,
    service_weight_kwh: float | None = None,
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
        For ``adaptive``: ``min_energy`` (default), ``cost`` or ``service`` (which needs
        ``service_weight_kwh`` unless the problem is ``prepared`` with one).
    demand : Demand, optional
        Footfall and traffic per segment and slot. Default: the calendar forecast
        (:class:`twin.scenarios.calendar.CalendarDemand`).
    switch_off : SwitchOff or list, optional
        Commune switch-off windows; the requirement is 0 (class ``"off"``) inside them.
    budget_pct : float, optional
        A nightly energy budget as a saving against the HPS baseline (default: none).
    method : str
        ``fast`` (default), ``highs`` or ``pulp`` (the straightforward model engineers extend).
    clo : bool
        Constant light output: the requirement scaled by each light's ``MF / LLMF(age)``.
    tariff : Tariff, optional
        Time-of-use tariff of the ``cost`` objective (default: French HP/HC).
    service_weight_kwh : float, optional
        For ``service``: the kWh one unit of weighted light above the requirement is worth.
    prepared : tuple, optional
        The output of :func:`problem_for` for this twin and night, to plan several policies on
        one forecast without building it again (the other forecast options are then ignored).

    Returns
    -------
    xr.Dataset
        Dims ``light`` and ``time``: ``level``, ``required_level``, ``lighting_class``,
        ``energy_wh``; per light ``design_class``, ``power_w``, ``cabinet``, ``segment``,
        ``baseline_power_w``, ``clo_factor``; per slot ``slot_s``. Attributes carry the
        solver's status and timings and the report figures (``floor_kwh``: the EN 13201 floor
        of the night; ``extra_kwh``: what the plan draws above it).
    """
    _check("policy", policy, POLICIES)
    _check("objective", objective, OBJECTIVES)
    t0 = time.perf_counter()
    if prepared is None:
        if policy == "adaptive" and objective == "service" and service_weight_kwh is None:
            msg = (
                "service_weight_kwh: the service objective needs an explicit weight (kWh that one "
                "unit of footfall-weighted light above EN 13201 is worth), e.g. 0.05"
            )
            raise InputValidationError(msg)
        prepared = problem_for(
            tw,
            date,
            demand=demand,
            slot_minutes=slot_minutes,
            switch_off=switch_off,
            budget_pct=budget_pct,
            ramp_per_hour=ramp_per_hour,
            clo=clo,
            tariff=tariff,
            service_weight_kwh=service_weight_kwh,
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
    n, t_n = problem.n, problem.n_slots
    power = L["power_w"]
    solver: dict[str, Any] = {
        "status": "ok",
        "condition": "closed form",
        "build_s": round(build_s, 3),
        "solve_s": 0.0,
        "objective": float("nan"),
        "method": "none",
    }
    if policy in ("hps_full", "led_full"):
        level = np.ones((n, t_n))
        if policy == "hps_full":
            power = L["baseline_power_w"]
    elif policy == "part_night":
        lo, hi = part_night_hours
        dim = SwitchOff(start_hour=lo, end_hour=hi).active(night.hour_local)
        level = np.where(dim[None, :], part_night_level, 1.0) * np.ones((n, 1))
    else:
        sol = lp.solve(problem, objective=objective, method=method)  # raises when infeasible
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
    floor_wh = float(lp.energy_wh(problem, lp.min_energy_levels(problem)).sum())
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
        floor_wh=floor_wh,
    )


def _dataset(
    tw: Twin,
    problem: lp.DimmingProblem,
    extra: dict[str, Any],
    *,
    level: np.ndarray,
    energy: np.ndarray,
    power: np.ndarray,
    policy: str,
    objective: str,
    solver: Mapping[str, Any],
    floor_wh: float,
) -> xr.Dataset:
    night: Night = extra["night"]
    L = extra["lights"]
    required = np.asarray(extra.get("en13201_required", problem.required))
    ok = (level >= required - 1e-9) | np.asarray(problem.forced_off)
    # EN 13201-2 Table 3 note: a P slot's average may not exceed 1.5 x its class (x CLO factor)
    design = np.asarray(L["design_class"])
    cap = (
        np.asarray(lighting.p_cap_fraction(design[:, None], extra["required_class"]), dtype=float)
        * np.asarray(extra["clo_factor"], dtype=float)[:, None]
    )
    over = (level > cap + 1e-9) & (level > 0)
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
                    "clo": int(extra["clo"]),
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
            "clo_factor": (
                "light",
                np.asarray(extra["clo_factor"], dtype=float),
                {
                    "units": "1",
                    "long_name": "constant-light-output factor MF / LLMF(age) (1 without CLO)",
                },
            ),
            "compliant": (
                ("light", "time"),
                ok,
                {"units": "1", "long_name": "level meets the EN 13201 requirement of the slot"},
            ),
            "over_p_cap": (
                ("light", "time"),
                over,
                {
                    "units": "1",
                    "long_name": "P slot lit above 1.5 x its class (EN 13201-2 Table 3, note)",
                },
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
            "floor_kwh": floor_wh / 1000.0,
            "extra_kwh": optimized_kwh - floor_wh / 1000.0,
            "clo": int(extra["clo"]),
            "maintenance": extra["maintenance"],
            "tariff": extra["tariff"],
            "wattage_real": int((L["wattage_source"] == "real").sum()),
            "wattage_inferred": int((L["wattage_source"] == "inferred").sum()),
            "wattage_default": int((L["wattage_source"] == "default").sum()),
            "maintenance_defaulted": int(np.sum(L["maintenance_defaulted"])),
            "baseline_kwh": baseline_kwh,
            "led_kwh": led_kwh,
            "optimized_kwh": optimized_kwh,
            "saving_pct": 100.0 * (1.0 - optimized_kwh / baseline_kwh),
            "compliance_pct": 100.0 * float(ok.mean()),
            "over_p_cap_pct": 100.0 * float(over.mean()),
            "p7": "P7 (EN 13201-2, performance not determined) kept at 0.4 lx average",
            "target_pct": TARGET_PCT,
            "solver_status": str(solver["status"]),
            "solver_condition": str(solver["condition"]),
            "solver_method": str(solver["method"]),
            "solver_build_s": float(solver["build_s"]),
            "solver_solve_s": float(solver["solve_s"]),
            "solver_objective": float(solver["objective"]),
            "cap_path": str(extra.get("cap_path", "")),
            "cap_binding_cabinets": int(np.size(extra.get("cap_binding", ()))),
            "attribution": tw.city.attribution,
        }
    )
    return ds
