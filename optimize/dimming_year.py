"""A year of nights as the contract counts it: annual kWh against the HPS baseline, by lever.

The energy-performance contract counts metered energy over a year against the baseline (DESIGN
section 4); a night is a sample of that year, never the target. :func:`plan_year` plans every
night of a calendar year (the nights starting on its evenings, dusk to dawn from the sun,
DST-safe: :func:`twin.timeutil.night_slots`), each with the calendar forecast of that night
(:class:`twin.scenarios.calendar.CalendarDemand`: weekday, Saturday, Sunday and public holidays),
and splits the saving against the HPS baseline into its levers, each taking what its step saves
from the energy left by the previous ones (so they add up to the total exactly):

``led``
    the LED stock at full output against the HPS stock at full output;
``dimming``
    the ``min_energy`` plan (EN 13201 requirement of each slot as the floor, ramps) where each
    light is taken to deliver exactly its class at 100 % (no CLO);
``clo``
    the same plan with each light's requirement scaled by its constant-light-output factor
    ``MF / LLMF(age)`` (:mod:`twin.assets.maintenance`);
``switch_off``
    the commune switch-off windows, if any;
``caps``
    what the cabinet caps take where they bind: energy saved below the EN 13201 floor, reported
    with its cost in compliance (``below_floor_lh``, ``deficit_wh``).

The plans are exact and solved light by light where they can be: with the requirement as a
floor, the minimum energy under ramp limits is the ramp-feasible lower envelope of each light
(:func:`optimize.dimming_problem.envelope_levels`), independent of the other lights whenever
the cabinet caps are met by it. The caps are contracted kVA times a power factor
(:func:`twin.assets.cabinet.contracted_caps`); since the envelope is the pointwise smallest
plan above the floor, a cap it breaks is broken by every compliant plan, and those cabinets are
solved exactly, by a linear programme per cabinet, with the floor given way to the cap
(:mod:`optimize.dimming_caps`); the ``cap_path`` attribute says which path ran. Lights whose
technology is not LED (HPS or metal-halide on magnetic ballasts) are not dimmed.

The result is one ``xr.Dataset`` on dims ``night`` and ``light`` (per light and night, the
planned energy in Wh as float32), with per-night totals of each lever, written compressed and
chunked by light (:func:`write_year`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr

from twin._errors import InputValidationError
from twin.assets import lighting
from twin.assets.maintenance import DEFAULT_MAINTENANCE, LumenMaintenance
from twin.energy.power import DRIVER_FLOOR, drawn_fraction
from twin.timeutil import validate_date

from . import dimming
from .dimming_caps import capped_levels
from .dimming_problem import envelope_levels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from twin.model import Twin
    from twin.scenarios.demand import Demand

__all__ = [
    "LEVERS",
    "annual_summary",
    "plan_year",
    "plot_year",
    "write_year",
    "yearly_factors",
]

LEVERS: tuple[str, ...] = ("led", "dimming", "clo", "switch_off", "caps")
"""The levers of the annual saving, in the order they are credited."""

FloatArray = npt.NDArray[np.float64]


def _groups(L: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One row per (segment, design class, road class): lights that share every requirement."""
    seg = np.where(L["has_segment"], L["segment"], "").astype(str)
    key = np.char.add(
        np.char.add(np.char.add(seg, "|"), L["design_class"].astype(str)),
        np.char.add("|", L["highway"].astype(str)),
    )
    key = np.char.add(key, np.where(L["serves_crossing"], "|x", ""))
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    g = {
        "light": np.array([f"group:{i}" for i in range(first.size)], dtype=object),
        "segment": L["segment"][first],
        "has_segment": L["has_segment"][first],
        "design_class": L["design_class"][first],
        "highway": L["highway"][first],
        "serves_crossing": L["serves_crossing"][first],
    }
    return g, inv.reshape(-1)


def plan_year(
    tw: Twin,
    year: int,
    *,
    demand: Demand | None = None,
    switch_off: dimming.SwitchOff | Sequence[dimming.SwitchOff] | None = None,
    maintenance: LumenMaintenance = DEFAULT_MAINTENANCE,
    ramp_per_hour: float = dimming.RAMP_PER_HOUR,
    slot_minutes: int = 15,
    nights: Sequence[dt.date] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cap_sizing: str = "clo_start",
    install_year: int | None = None,
) -> xr.Dataset:
    """Plan every night of ``year`` at minimum energy under EN 13201; the annual levers.

    Parameters
    ----------
    tw
        The twin.
    year
        Calendar year (its nights start on its evenings, 1 January to 31 December).
    demand
        Forecast demand; default the calendar forecast of the twin.
    switch_off
        Commune switch-off windows (the ``switch_off`` lever); default none.
    maintenance
        Lumen-depreciation curve and default MF of the CLO lever.
    ramp_per_hour
        Largest level change per hour.
    slot_minutes
        Slot length.
    nights
        Only these evenings (a sample, for tests and checks); default every evening of the year.
    progress
        ``f(done, total)`` called after each night.
    cap_sizing
        How cabinets without a contracted kVA in the inventory are capped
        (:func:`twin.assets.cabinet.contracted_caps`).
    install_year
        Install year of the lights whose inventory gives none (default: the first year of the
        city's contract); the CLO ageing of the trajectory plans each LED cohort with it.

    Returns
    -------
    xarray.Dataset
        Dims ``night`` (the evening's date) and ``light``. ``energy_wh(night, light)`` (float32,
        the planned energy); per night ``dark_h``, ``day_type``, ``baseline_wh``,
        ``led_full_wh``, ``dimmed_wh`` (no CLO), ``clo_wh`` (with CLO), ``planned_wh`` (with
        switch-off) and ``lit_full_wh`` (LED full output on the slots not switched off); per
        light ``power_w``, ``baseline_power_w``, ``clo_factor``, ``dimmable``. Attrs: the
        annual summary (:func:`annual_summary`).
    """
    from twin.scenarios.calendar import CalendarDemand, day_type

    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2100:
        msg = f"year: {year!r} is not a calendar year in 1900-2100"
        raise InputValidationError(msg)
    t_start = time.perf_counter()
    L = dimming.light_table(tw, cap_sizing=cap_sizing)
    if install_year is not None:
        L["install_year"] = np.where(
            L["install_year_defaulted"], float(install_year), L["install_year"]
        )
    n = len(L["light"])
    if n == 0:
        msg = f"{tw.name}: the twin has no light points to plan"
        raise InputValidationError(msg)
    if demand is None:
        demand = CalendarDemand.from_twin(tw)
    if nights is None:
        first = dt.date(year, 1, 1)
        days = [first + dt.timedelta(days=k) for k in range((dt.date(year + 1, 1, 1) - first).days)]
    else:
        days = [validate_date(d, field="nights") for d in nights]
    lon, lat = tw.centre
    clo = dimming.clo_factor(L, year, lat=lat, lon=lon, maintenance=maintenance)
    dimmable = np.asarray(L["dimmable"], dtype=bool)
    G, inv = _groups(L)
    design_g = np.asarray(G["design_class"])
    power = np.asarray(L["power_w"], dtype=np.float64)
    base_power = np.asarray(L["baseline_power_w"], dtype=np.float64)
    min_level = np.asarray(L["min_level"], dtype=np.float64)
    caps = np.asarray(L["cabinet_cap_w"], dtype=np.float64)
    cab = np.asarray(L["cabinet_index"])
    n_nights = len(days)
    energy = np.zeros((n_nights, n), dtype=np.float32)
    per_night = {
        k: np.zeros(n_nights)
        for k in ("dark_h", "baseline_wh", "led_full_wh", "dimmed_wh", "clo_wh", "planned_wh")
    }
    for name in ("lit_full_wh", "uncapped_wh", "cap_cabinets", "below_floor_lh", "deficit_wh"):
        per_night[name] = np.zeros(n_nights)
    per_night["lit_lh"] = np.zeros(n_nights)
    bound = np.zeros(caps.size, dtype=bool)
    kinds: list[str] = []
    starts: dict[tuple[int, int], list[Any]] = {}  # each binding window's basis, night to night
    for k, day in enumerate(days):
        fc = dimming.forecast_night(tw, day, demand=demand, slot_minutes=slot_minutes, lights=G)
        night = fc.night
        cls_g, off_g = dimming.required_classes(G, fc, switch_off=switch_off)
        t_n = len(night)
        ratio_g = np.asarray(
            lighting.required_fraction(
                np.broadcast_to(design_g[:, None], (design_g.size, t_n)),
                np.where(off_g, _unswitched(G, fc), cls_g) if off_g.any() else cls_g,
                maintenance_margin=0.0,
            ),
            dtype=np.float64,
        )
        ratio = ratio_g[inv]
        off = off_g[inv]
        slot_h = night.duration_s / 3600.0
        ramp = ramp_per_hour * slot_minutes / 60.0
        on_all = np.ones_like(off)
        floor0 = np.where(dimmable[:, None], np.maximum(ratio, min_level[:, None]), 1.0)
        floor1 = np.where(
            dimmable[:, None],
            np.maximum(np.minimum(1.0, ratio * clo[:, None]), min_level[:, None]),
            1.0,
        )
        x0 = envelope_levels(floor0, on_all, ramp)
        x1 = envelope_levels(floor1, on_all, ramp)
        capped = capped_levels(
            power,
            floor1,
            ~off,
            ramp=ramp,
            cabinet_index=cab,
            cap_w=caps,
            slot_h=slot_h,
            driver_floor=DRIVER_FLOOR,
            min_level=np.where(dimmable, min_level, 1.0),
            cabinet_ids=L["cabinet_ids"],
            time=night.start,
            starts=starts,
        )
        x2 = capped.level
        full = power[:, None] * slot_h[None, :]
        e2 = drawn_fraction(x2, driver_floor=DRIVER_FLOOR, on=~off) * full
        if capped.binding.size:
            bound[capped.binding] = True
            per_night["cap_cabinets"][k] = capped.binding.size
            per_night["uncapped_wh"][k] = float(
                (drawn_fraction(capped.envelope, driver_floor=DRIVER_FLOOR, on=~off) * full).sum()
            )
            short = capped.shortfall > 0
            per_night["below_floor_lh"][k] = float((short * slot_h[None, :]).sum())
            per_night["deficit_wh"][k] = float((capped.shortfall * full).sum())
        else:
            per_night["uncapped_wh"][k] = float(e2.sum())
        per_night["lit_lh"][k] = float((~off * slot_h[None, :]).sum())
        per_night["dark_h"][k] = float(slot_h.sum())
        per_night["baseline_wh"][k] = float(base_power.sum() * slot_h.sum())
        per_night["led_full_wh"][k] = float(full.sum())
        per_night["dimmed_wh"][k] = float(
            (drawn_fraction(x0, driver_floor=DRIVER_FLOOR) * full).sum()
        )
        per_night["clo_wh"][k] = float((drawn_fraction(x1, driver_floor=DRIVER_FLOOR) * full).sum())
        per_night["planned_wh"][k] = float(e2.sum())
        per_night["lit_full_wh"][k] = float(np.where(off, 0.0, full).sum())
        energy[k] = e2.sum(axis=1).astype(np.float32)
        kinds.append(day_type(day))
        if progress is not None:
            progress(k + 1, n_nights)

    def var(v: Any, dims: Any, units: str, long_name: str) -> tuple[Any, Any, dict[str, str]]:
        return (dims, v, {"units": units, "long_name": long_name})

    ds = xr.Dataset(
        {
            "energy_wh": var(energy, ("night", "light"), "Wh", "planned energy of the night"),
            "dark_h": var(per_night["dark_h"], "night", "h", "dusk-to-dawn hours (from the sun)"),
            "day_type": var(np.array(kinds), "night", "1", "demand day type of the evening"),
            "baseline_wh": var(
                per_night["baseline_wh"], "night", "Wh", "pre-LED HPS stock at full power"
            ),
            "led_full_wh": var(per_night["led_full_wh"], "night", "Wh", "LED stock at full power"),
            "dimmed_wh": var(
                per_night["dimmed_wh"], "night", "Wh", "EN 13201 floor, class at 100 % (no CLO)"
            ),
            "clo_wh": var(per_night["clo_wh"], "night", "Wh", "EN 13201 floor with CLO"),
            "uncapped_wh": var(
                per_night["uncapped_wh"], "night", "Wh", "EN 13201 floor with CLO and switch-off"
            ),
            "planned_wh": var(
                per_night["planned_wh"],
                "night",
                "Wh",
                "EN 13201 floor with CLO and switch-off, under the cabinet caps",
            ),
            "cap_cabinets": var(
                per_night["cap_cabinets"].astype(np.int32),
                "night",
                "1",
                "cabinets whose cap binds (solved jointly)",
            ),
            "below_floor_lh": var(
                per_night["below_floor_lh"], "night", "h", "light-hours below EN 13201 (caps)"
            ),
            "deficit_wh": var(
                per_night["deficit_wh"],
                "night",
                "Wh",
                "light below the EN 13201 floor, as full-output energy (caps)",
            ),
            "lit_lh": var(per_night["lit_lh"], "night", "h", "light-hours lit"),
            "lit_full_wh": var(
                per_night["lit_full_wh"], "night", "Wh", "LED full output outside switch-off"
            ),
            "power_w": var(power, "light", "W", "LED system power at full output"),
            "baseline_power_w": var(base_power, "light", "W", "pre-LED HPS system power"),
            "clo_factor": var(clo, "light", "1", f"CLO factor MF / LLMF in {year}"),
            "dimmable": var(dimmable, "light", "1", "LED light that the plan dims"),
        },
        coords={
            "night": ("night", np.array(days, dtype="datetime64[D]").astype("datetime64[ns]")),
            "light": ("light", np.asarray(L["light"]).astype(str)),
        },
    )
    ds["night"].attrs.update({"long_name": "evening the night starts on (local date)"})
    summary = annual_summary(ds)
    ds.attrs.update(
        {
            "city": tw.name,
            "year": int(year),
            "nights": int(n_nights),
            "complete_year": int(nights is None),
            "maintenance": maintenance.label,
            "install_year_default": int(
                tw.city.contract.start.year if install_year is None else install_year
            ),
            "maintenance_defaulted": int(np.sum(L["maintenance_defaulted"])),
            "maintenance_real": int(n - np.sum(L["maintenance_defaulted"])),
            "install_year_defaulted": int(np.sum(L["install_year_defaulted"])),
            "install_year_real": int(n - np.sum(L["install_year_defaulted"])),
            "wattage_real": int((L["wattage_source"] == "real").sum()),
            "wattage_inferred": int((L["wattage_source"] == "inferred").sum()),
            "wattage_default": int((L["wattage_source"] == "default").sum()),
            "switch_off": ""
            if not switch_off
            else ", ".join(
                f"{w.start_hour:g}-{w.end_hour:g} h"
                for w in ([switch_off] if isinstance(switch_off, dimming.SwitchOff) else switch_off)
            ),
            "demand": type(demand).__name__,
            "ramp_per_hour": float(ramp_per_hour),
            "cap_sizing": cap_sizing,
            "cap_source_inventory": int((L["cabinet_cap_source"] == "inventory").sum()),
            "cap_source_rule": int((L["cabinet_cap_source"] == "rule").sum()),
            "cabinets": int(caps.size),
            "cap_binding_cabinets": int(bound.sum()),
            "cap_binding_nights": int((per_night["cap_cabinets"] > 0).sum()),
            "cap_path": "per-light"
            if not bound.any()
            else f"per-light + joint LP on the {int(bound.sum())} binding cabinets",
            "target_pct": float(tw.city.contract.target_pct),
            "compute_s": round(time.perf_counter() - t_start, 3),
            "attribution": tw.city.attribution,
            **{k: float(v) for k, v in summary.items()},
        }
    )
    return ds


def _unswitched(G: dict[str, np.ndarray], fc: dimming.NightForecast) -> np.ndarray:
    """The classes the switched-off slots would need if they were lit (for the levers)."""
    cls, _ = dimming.required_classes(G, fc, switch_off=None)
    return cls


def annual_summary(ds: xr.Dataset) -> dict[str, float]:
    """The annual table of a :func:`plan_year` result: kWh and % of the baseline per lever.

    Keys: ``baseline_kwh``, ``led_full_kwh``, ``dimmed_kwh``, ``clo_kwh``, ``planned_kwh``,
    ``saving_<lever>_pct`` for each of :data:`LEVERS`, ``saving_pct`` (total) and
    ``saving_without_clo_pct`` (the total with the switch-off but without CLO is not computed;
    this is LED + dimming + switch-off as the split credits them).
    """
    tot = {
        k: float(ds[k].sum()) / 1000.0
        for k in ("baseline_wh", "led_full_wh", "dimmed_wh", "clo_wh", "planned_wh")
    }
    # years written before the caps could bind have no uncapped_wh: nothing was capped
    tot["uncapped_wh"] = (
        float(ds["uncapped_wh"].sum()) / 1000.0 if "uncapped_wh" in ds else tot["planned_wh"]
    )
    base = tot["baseline_wh"]
    if base <= 0:
        msg = "baseline_wh: the year has no baseline energy"
        raise InputValidationError(msg)
    steps = {
        "led": tot["baseline_wh"] - tot["led_full_wh"],
        "dimming": tot["led_full_wh"] - tot["dimmed_wh"],
        "clo": tot["dimmed_wh"] - tot["clo_wh"],
        "switch_off": tot["clo_wh"] - tot["uncapped_wh"],
        "caps": tot["uncapped_wh"] - tot["planned_wh"],
    }
    out = {
        "baseline_kwh": base,
        "led_full_kwh": tot["led_full_wh"],
        "dimmed_kwh": tot["dimmed_wh"],
        "clo_kwh": tot["clo_wh"],
        "planned_kwh": tot["planned_wh"],
    }
    for lever, saved in steps.items():
        out[f"saving_{lever}_pct"] = 100.0 * saved / base
    out["saving_pct"] = 100.0 * (base - tot["planned_wh"]) / base
    out["saving_without_clo_pct"] = out["saving_pct"] - out["saving_clo_pct"]
    if "below_floor_lh" in ds:
        lit = float(ds["lit_lh"].sum())
        out["below_floor_pct"] = 100.0 * float(ds["below_floor_lh"].sum()) / max(lit, 1e-12)
        full = float(ds["led_full_wh"].sum())
        out["deficit_pct"] = 100.0 * float(ds["deficit_wh"].sum()) / max(full, 1e-12)
    return out


def yearly_factors(ds: xr.Dataset) -> tuple[float, float]:
    """The year's ``(dimming_factor, switch_off_factor)`` for :func:`twin.energy.trajectory`.

    The dimming factor is the planned energy on the lit (not switched-off) light-hours as a
    share of full LED output on them; the switch-off factor the share of full-output
    light-hours switched off. Both over the whole year, never one night.
    """
    full = float(ds["led_full_wh"].sum())
    lit = float(ds["lit_full_wh"].sum())
    planned = float(ds["planned_wh"].sum())
    if full <= 0 or lit <= 0:
        msg = "led_full_wh: the year has no lit hours"
        raise InputValidationError(msg)
    return planned / lit, 1.0 - lit / full


def write_year(ds: xr.Dataset, path: Path) -> Path:
    """Write a year (or a night) compressed: zlib level 4 with shuffle, chunked by light.

    Chunks hold 2,048 lights over every night (or slot), so reading one light's year reads one
    chunk, and float32 energies of 365 x 34,000 lights take a few MB.
    """
    path = Path(path)
    encoding: dict[str, dict[str, Any]] = {}
    for name, da in ds.data_vars.items():
        if da.ndim == 0:
            continue
        chunks = tuple(min(2048, da.sizes[d]) if d == "light" else da.sizes[d] for d in da.dims)
        enc: dict[str, Any] = {"zlib": True, "complevel": 4, "shuffle": True}
        if da.dtype.kind in "fiub":
            enc["chunksizes"] = chunks
        elif da.dtype.kind in "OUS":  # strings as compressed fixed-width characters
            enc["dtype"] = "S1"
        else:
            continue
        encoding[str(name)] = enc
    ds.to_netcdf(path, engine="netcdf4", encoding=encoding)
    return path


def plot_year(ds: xr.Dataset, *, title: str | None = None) -> Figure:
    """Plot a year of nights: energy per month by lever, and the night-by-night saving.

    Top: the monthly baseline stacked as planned energy + the saving of each lever. Bottom: each
    night's saving against its own baseline, with the annual saving and the target.
    """
    from matplotlib.figure import Figure

    nights = pd.DatetimeIndex(ds["night"].values)
    month = nights.month
    parts = {
        "planned": ds["planned_wh"].values,
        "switch-off": ds["clo_wh"].values - ds["planned_wh"].values,
        "CLO": ds["dimmed_wh"].values - ds["clo_wh"].values,
        "dimming": ds["led_full_wh"].values - ds["dimmed_wh"].values,
        "LED": ds["baseline_wh"].values - ds["led_full_wh"].values,
    }
    colors = {
        "planned": "#4c72b0",
        "switch-off": "#c6d96b",
        "CLO": "#64b5cd",
        "dimming": "#8fbc8f",
        "LED": "#f2c45a",
    }
    fig = Figure(figsize=(10.0, 7.0), layout="constrained")
    ax, ax2 = fig.subplots(2, 1, height_ratios=(3, 2))
    months = np.unique(month)
    bottom = np.zeros(months.size)
    for name, values in parts.items():
        per = np.array([values[month == mo].sum() for mo in months]) / 1e6
        ax.bar(
            months,
            per,
            bottom=bottom,
            color=colors[name],
            label=name if name == "planned" else f"saving: {name}",
        )
        bottom += per
    ax.set_xticks(months)
    ax.set_ylabel("energy (MWh per month)")
    ax.legend(fontsize="small", ncol=5, loc="upper center")
    night_pct = 100.0 * (1.0 - ds["planned_wh"].values / ds["baseline_wh"].values)
    ax2.plot(nights, night_pct, lw=1.0, color="#4c72b0", label="each night")
    ax2.axhline(float(ds.attrs.get("saving_pct", np.nan)), color="#55a868", lw=2, label="the year")
    tgt = float(ds.attrs.get("target_pct", 65.0))
    ax2.axhline(tgt, color="#c44e52", ls=":", lw=2, label=f"{tgt:g}% target (annual)")
    ax2.set_ylabel("saving against HPS baseline (%)")
    ax2.legend(fontsize="small", loc="lower right")
    ax2.grid(alpha=0.3)
    ax.set_title(title or "a year of nights")
    if ds.attrs.get("attribution"):
        fig.text(
            0.995, 0.005, f"Data: {ds.attrs['attribution']}", ha="right", fontsize=7, color="0.4"
        )
    return fig
