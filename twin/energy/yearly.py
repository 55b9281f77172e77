"""The yearly trajectory of a lighting stock against the saving target, and its levers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from twin._errors import InputValidationError
from twin.energy.hps import ATTRIBUTION_ORDER, LED_RATIO, TARGET_PCT, _light_powers
from twin.energy.power import drawn_fraction
from twin.energy.rollout import Rollout, _share_value
from twin.timeutil import yearly_dark_hours


# --------------------------------------------------------------------------------------------
# trajectory
# --------------------------------------------------------------------------------------------
def _factor_per_year(
    value: float | Mapping[int, float], years: np.ndarray, *, field: str, neutral: float
) -> np.ndarray:
    """Expand a factor (a float, or a step mapping year -> value) over ``years``."""
    if isinstance(value, Mapping):
        if not value:
            msg = f"{field}: empty mapping; give a float or {{year: value}}"
            raise InputValidationError(msg)
        items: dict[int, float] = {}
        for y, v in value.items():
            if isinstance(y, bool) or not isinstance(y, int | np.integer):
                msg = f"{field}: year {y!r} is not an integer"
                raise InputValidationError(msg)
            items[int(y)] = _share_value(v, f"{field}[{int(y)}]")
        ks = np.array(sorted(items), dtype=int)
        vs = np.array([items[k] for k in ks], dtype=float)
        idx = np.searchsorted(ks, years, side="right") - 1
        return np.where(idx >= 0, vs[np.clip(idx, 0, None)], neutral)
    return np.full(years.size, _share_value(value, field))


def trajectory(
    lights: Any,
    *,
    lat: float,
    lon: float,
    years: Iterable[int] = range(2018, 2031),
    rollout: Rollout | None = None,
    dimming_factor: float | Mapping[int, float] = 1.0,
    switch_off_factor: float | Mapping[int, float] = 0.0,
    metered_wh: Mapping[int, float] | None = None,
    led_ratio: float = LED_RATIO,
    target_pct: float = TARGET_PCT,
) -> xr.Dataset:
    """Compute the yearly energy trajectory of a lighting stock against the saving target.

    Parameters
    ----------
    lights
        The light points: an array of road classes (OSM ``highway`` values), or a table
        (``pandas``/``geopandas`` DataFrame, ``xarray.Dataset`` on ``light``, or a mapping of
        arrays) with the columns of the light registry (``twin/assets/schemas/light.csv``),
        all optional but one of the first two, NaN/empty where unknown:

        - ``road_class``: OSM ``highway`` value, for lights whose pre-LED power is not given;
        - ``baseline_power_w``: pre-LED HPS system power (lamp + ballast) in W;
        - ``power_w``: system power at full output in W. For LED lights it is their LED power;
          for discharge lamps it is their pre-LED power (convert a nominal lamp wattage with
          :func:`hps_system_w`);
        - ``technology``: ``"LED"`` or a discharge lamp (``"HPS"``, ``"MH"``, ``"sodium"``,
          ...); lights without it are taken as discharge lamps.

        A light's LED power is its own ``power_w`` if it is LED, else ``led_ratio`` times its
        pre-LED power. The LED share of each year comes from ``rollout``, applied to the whole
        stock (energy-weighted: the same share of every light's power is on LED).
    lat, lon
        Site (degrees, EPSG:4326), for the dusk-to-dawn hours of each year.
    years
        Calendar years of the trajectory (default 2018-2030, the Dijon contract).
    rollout
        LED renewal programme; default :class:`Rollout` (front-loaded, 93 % in 2030).
    dimming_factor
        Fraction of full LED energy that the dimming plan uses on the lit hours, in [0, 1]
        (1: no dimming; e.g. 0.6 from a nightly plan, see :func:`factors_from_plan`). A float
        for every year, or ``{year: factor}``: a step function in force from each given year
        on, 1 (no dimming) before the first.
    switch_off_factor
        Fraction of the lit hours lost to switch-off windows, in [0, 1] (0: none). A float or
        ``{year: factor}`` as for ``dimming_factor`` (0 before the first year).
    metered_wh
        Metered energy in Wh per year, ``{year: Wh}``; the years must be in ``years``.
    led_ratio
        LED system power as a fraction of the HPS system power (default :data:`LED_RATIO`).
    target_pct
        Saving target in percent (default 65).

    Returns
    -------
    xarray.Dataset
        On dim ``year``: ``dark_hours`` (h), ``led_share``, ``dimming_factor``,
        ``switch_off_factor`` (1), ``baseline_wh`` (all-HPS at full power), ``led_only_wh``
        (rollout only), ``planned_wh`` (rollout, switch-off and dimming), ``saving_led_wh``,
        ``saving_switch_off_wh``, ``saving_dimming_wh``, ``saving_wh`` (Wh), ``saving_pct``
        (%), ``metered_wh`` (Wh, NaN where not metered) and, when ``metered_wh`` is given,
        ``saving_pct_metered`` (%, NaN where not metered); scalar ``target_pct`` (%). Attrs:
        ``target_pct``, ``attribution_order``, ``lat``, ``lon``, ``led_ratio``, ``n_lights``,
        ``baseline_power_w``, ``led_power_w``, ``rollout``.

    Notes
    -----
    The saving is attributed to its levers in the order LED renewal, then switch-off, then
    dimming, each taking the saving of its step from the energy left by the previous ones::

        saving_led       = baseline - led_only
        saving_switch_off = led_only - led_only * (1 - o)
        saving_dimming   = led_only * (1 - o) - planned

    so the three add up to ``baseline - planned`` exactly (a telescoping sum). The order
    follows causality and the contract: renewal is the capital programme and makes dimming
    possible (only LED lights are dimmed), so it is credited first and in full; an hour
    switched off saves whatever the light would have drawn, so switch-off comes before
    dimming; dimming is credited with what it saves on the hours still lit. Another order
    would move the interaction terms (e.g. dimming saves less on an already switched-off
    hour) between levers, never the total.

    Raises
    ------
    InputValidationError
        Bad lights, factors, years, rollout or metering; the message names the field.

    Examples
    --------
    >>> ds = trajectory(["residential"] * 10, lat=47.32, lon=5.04, years=[2030],
    ...                 dimming_factor=0.6)
    >>> round(float(ds.saving_pct.sel(year=2030)), 1)  # 1 - (0.07 + 0.93 * 0.5 * 0.6)
    65.1
    """
    base_w, led_w = _light_powers(lights, led_ratio=led_ratio)
    ys_list = list(years)
    if not ys_list:
        msg = "years: no year given"
        raise InputValidationError(msg)
    for y in ys_list:
        if isinstance(y, bool) or not isinstance(y, int | np.integer):
            msg = f"years: {y!r} is not an integer year"
            raise InputValidationError(msg)
    ys = np.array(ys_list, dtype=int)
    if np.unique(ys).size != ys.size or np.any(np.diff(ys) <= 0):
        msg = "years: must be increasing and without repeats"
        raise InputValidationError(msg)
    if rollout is None:
        rollout = Rollout()
    elif not isinstance(rollout, Rollout):
        msg = f"rollout: expected a Rollout, got {type(rollout).__name__}"
        raise InputValidationError(msg)
    tgt = float(target_pct)
    if not (math.isfinite(tgt) and 0.0 < tgt <= 100.0):
        msg = f"target_pct: {target_pct!r} must be in (0, 100]"
        raise InputValidationError(msg)

    d = _factor_per_year(dimming_factor, ys, field="dimming_factor", neutral=1.0)
    o = _factor_per_year(switch_off_factor, ys, field="switch_off_factor", neutral=0.0)
    s = rollout.shares_for(ys)
    hours = np.array([yearly_dark_hours(int(y), lat=lat, lon=lon) for y in ys], dtype=float)

    p_hps = float(base_w.sum())
    p_led = float(led_w.sum())
    e0 = hours * p_hps  # baseline: every light HPS, full power, dusk to dawn
    e1 = hours * (s * p_led + (1.0 - s) * p_hps)  # rollout only
    e2 = e1 * (1.0 - o)  # + switch-off windows (all lights)
    e3 = hours * (1.0 - o) * (s * d * p_led + (1.0 - s) * p_hps)  # + dimming of LED lights
    sav_led, sav_off, sav_dim = e0 - e1, e1 - e2, e2 - e3

    metered = np.full(ys.size, np.nan)
    if metered_wh is not None:
        if not isinstance(metered_wh, Mapping):
            msg = "metered_wh: expected a mapping {year: Wh}"
            raise InputValidationError(msg)
        pos = {int(y): i for i, y in enumerate(ys)}
        for y, v in metered_wh.items():
            if isinstance(y, bool) or not isinstance(y, int | np.integer) or int(y) not in pos:
                msg = f"metered_wh: year {y!r} is not one of years {ys.tolist()}"
                raise InputValidationError(msg)
            try:
                f = float(v)
            except (TypeError, ValueError):
                msg = f"metered_wh[{int(y)}]: {v!r} is not a number of Wh"
                raise InputValidationError(msg) from None
            if not (math.isfinite(f) and f >= 0.0):
                msg = f"metered_wh[{int(y)}]: {v!r} must be finite and >= 0 Wh"
                raise InputValidationError(msg)
            metered[pos[int(y)]] = f

    def var(values: np.ndarray, units: str, long_name: str) -> xr.DataArray:
        return xr.DataArray(values, dims="year", attrs={"units": units, "long_name": long_name})

    data = {
        "dark_hours": var(hours, "h", "dusk-to-dawn hours of the year (from the sun)"),
        "led_share": var(s, "1", "mean share of light points on LED over the year"),
        "dimming_factor": var(d, "1", "fraction of full LED energy used on the lit hours"),
        "switch_off_factor": var(o, "1", "fraction of the lit hours lost to switch-off"),
        "baseline_wh": var(e0, "Wh", "baseline energy: pre-LED HPS stock at full power"),
        "led_only_wh": var(e1, "Wh", "energy with the LED rollout only"),
        "planned_wh": var(e3, "Wh", "planned energy: LED rollout, switch-off and dimming"),
        "saving_led_wh": var(sav_led, "Wh", "saving attributed to LED renewal"),
        "saving_switch_off_wh": var(sav_off, "Wh", "saving attributed to switch-off"),
        "saving_dimming_wh": var(sav_dim, "Wh", "saving attributed to dimming"),
        "saving_wh": var(e0 - e3, "Wh", "total planned saving against the baseline"),
        "saving_pct": var(100.0 * (e0 - e3) / e0, "%", "planned saving against the baseline"),
        "metered_wh": var(metered, "Wh", "metered energy (NaN where not metered)"),
        "target_pct": xr.DataArray(tgt, attrs={"units": "%", "long_name": "saving target"}),
    }
    if metered_wh is not None:
        data["saving_pct_metered"] = var(
            100.0 * (e0 - metered) / e0, "%", "metered saving against the baseline"
        )
    year_attrs = {"long_name": "calendar year", "units": "1"}
    return xr.Dataset(
        data,
        coords={"year": xr.DataArray(ys, dims="year", attrs=year_attrs)},
        attrs={
            "title": "public-lighting energy trajectory",
            "target_pct": tgt,
            "attribution_order": ", ".join(ATTRIBUTION_ORDER),
            "lat": float(lat),
            "lon": float(lon),
            "led_ratio": float(led_ratio),
            "n_lights": int(base_w.size),
            "baseline_power_w": p_hps,
            "led_power_w": p_led,
            "rollout": rollout.label,
        },
    )


def year_of_target(ds: xr.Dataset, *, variable: str = "saving_pct") -> int | None:
    """Return the first year whose saving reaches the target, or ``None``.

    Parameters
    ----------
    ds
        A :func:`trajectory` result.
    variable
        The saving to test: ``"saving_pct"`` (planned) or ``"saving_pct_metered"``.

    Returns
    -------
    int or None
        First year with ``variable >= target_pct`` (NaN years are skipped).

    Examples
    --------
    With dimming to half power, the saving is ``s * (1 - 0.5 * 0.5)``, so the target needs an
    LED share ``s >= 0.867``, which the default rollout reaches in 2027:

    >>> ds = trajectory(["residential"], lat=47.32, lon=5.04, dimming_factor=0.5)
    >>> year_of_target(ds), year_of_target(ds.sel(year=slice(2018, 2026)))
    (2027, None)
    """
    if variable not in ds.data_vars:
        msg = f"variable: {variable!r} is not in the dataset (has {sorted(map(str, ds.data_vars))})"
        raise InputValidationError(msg)
    if "target_pct" in ds.data_vars:
        tgt = float(ds["target_pct"])
    else:
        tgt = float(ds.attrs.get("target_pct", TARGET_PCT))
    v = np.asarray(ds[variable].values, dtype=float)
    hit = np.flatnonzero(~np.isnan(v) & (v >= tgt))
    return int(ds["year"].values[hit[0]]) if hit.size else None


# --------------------------------------------------------------------------------------------
# factors from an optimiser plan
# --------------------------------------------------------------------------------------------
def _slot_seconds(ds: xr.Dataset) -> np.ndarray:
    if "slot_s" in ds.variables:
        slot = np.asarray(ds["slot_s"].values, dtype=float)
        if ds["slot_s"].dims != ("time",):
            msg = f"slot_s: expected dims ('time',), got {ds['slot_s'].dims}"
            raise InputValidationError(msg)
    else:
        if "time" not in ds.coords or ds.sizes.get("time", 0) < 2:
            msg = (
                "slot_s: no slot_s(time) variable, and the time coord has fewer than two "
                "values to derive slot lengths from"
            )
            raise InputValidationError(msg)
        t = np.asarray(ds["time"].values)
        if not np.issubdtype(t.dtype, np.datetime64):
            msg = "time: expected datetime64 values to derive slot lengths (or give slot_s)"
            raise InputValidationError(msg)
        step = np.diff(t).astype("timedelta64[ns]").astype(np.int64) / 1e9
        # each slot lasts until the next one starts; the last one as long as the one before
        slot = np.append(step, step[-1])
    if not np.all(np.isfinite(slot) & (slot > 0)):
        msg = "slot_s: slot durations must be finite and > 0 s (time must be increasing)"
        raise InputValidationError(msg)
    return slot


def factors_from_plan(ds: xr.Dataset) -> tuple[float, float]:
    """Read the (dimming, switch-off) factors of :func:`trajectory` from a dimming plan.

    Parameters
    ----------
    ds
        An optimiser output on dims ``light`` and ``time`` holding:

        - ``power_w(light)``: full (100 %) LED system power in W;
        - ``lighting_class(light, time)``: the EN 13201 class in force, ``"off"`` in
          switch-off windows;
        - ``energy_wh(light, time)``: energy drawn in each slot, in Wh; if absent,
          ``level(light, time)`` (dim level in [0, 1]) gives it through
          :func:`twin.energy.power.drawn_fraction` with the plan's ``driver_floor``
          attribute (0 when absent: power linear in level);
        - slot lengths: ``slot_s(time)`` in s, or derived from the spacing of the ``time``
          coord (each slot lasts until the next starts, the last as long as the previous).

        The time axis must cover the lit period of the night(s) planned (dusk to dawn), so
        that the full-power energy over all slots is what the lights would draw undimmed.
        Energy in off slots (driver standby) is not counted.

    Returns
    -------
    tuple of float
        ``(dimming_factor, switch_off_factor)``: the energy used on the lit slots as a
        fraction of full power on those slots, and the share of full-power light-hours that
        fall in off slots (both power-weighted).

    Raises
    ------
    InputValidationError
        A variable is missing or has the wrong dims, units or values.

    Examples
    --------
    >>> import xarray as xr
    >>> plan = xr.Dataset(
    ...     {
    ...         "power_w": ("light", [40.0, 80.0]),
    ...         "level": (("light", "time"), [[1.0, 0.5, 0.0, 0.5], [1.0, 0.5, 0.5, 0.5]]),
    ...         "energy_wh": (("light", "time"), [[40, 20, 0, 20], [80, 40, 40, 40]]),
    ...         "lighting_class": (("light", "time"), [["M5", "M6", "off", "M6"]] * 2),
    ...         "slot_s": ("time", [3600.0] * 4),
    ...     }
    ... )
    >>> factors_from_plan(plan)
    (0.6666666666666666, 0.25)
    """
    if not isinstance(ds, xr.Dataset):
        msg = f"ds: expected an xarray.Dataset, got {type(ds).__name__}"
        raise InputValidationError(msg)
    for name, dims in (("power_w", ("light",)), ("lighting_class", ("light", "time"))):
        if name not in ds.variables:
            msg = f"{name}: missing from the plan (need power_w(light), lighting_class(light,time))"
            raise InputValidationError(msg)
        if set(ds[name].dims) != set(dims):
            msg = f"{name}: expected dims {dims}, got {ds[name].dims}"
            raise InputValidationError(msg)
    slot_h = _slot_seconds(ds) / 3600.0
    power = np.asarray(ds["power_w"].values, dtype=float)
    if not np.all(np.isfinite(power) & (power >= 0)):
        msg = "power_w: light powers must be finite and >= 0 W"
        raise InputValidationError(msg)
    cls = np.asarray(ds["lighting_class"].transpose("light", "time").values, dtype=object)
    off = np.array([[str(c).strip().lower() == "off" for c in row] for row in cls], dtype=bool)
    full = power[:, None] * slot_h[None, :]  # Wh at 100 % in each slot

    if "energy_wh" in ds.variables:
        ev = ds["energy_wh"]
        if set(ev.dims) != {"light", "time"}:
            msg = f"energy_wh: expected dims ('light', 'time'), got {ev.dims}"
            raise InputValidationError(msg)
        units = ev.attrs.get("units")
        if units is not None and units not in ("Wh", "W h", "W.h"):
            msg = f"energy_wh: units {units!r}, expected 'Wh'"
            raise InputValidationError(msg)
        energy = np.asarray(ev.transpose("light", "time").values, dtype=float)
    elif "level" in ds.variables:
        lv = ds["level"]
        if set(lv.dims) != {"light", "time"}:
            msg = f"level: expected dims ('light', 'time'), got {lv.dims}"
            raise InputValidationError(msg)
        level = np.asarray(lv.transpose("light", "time").values, dtype=float)
        if not np.all(np.isfinite(level) & (level >= 0) & (level <= 1)):
            msg = "level: dim levels must be within [0, 1]"
            raise InputValidationError(msg)
        floor = float(ds.attrs.get("driver_floor", 0.0))
        energy = drawn_fraction(level, driver_floor=floor, on=~off) * full
    else:
        msg = "energy_wh: missing from the plan, and no level(light, time) to derive it from"
        raise InputValidationError(msg)
    if not np.all(np.isfinite(energy) & (energy >= 0)):
        msg = "energy_wh: energies must be finite and >= 0 Wh"
        raise InputValidationError(msg)

    total = float(full.sum())
    if total <= 0:
        msg = "power_w: the plan has no power to draw (all lights 0 W or no slots)"
        raise InputValidationError(msg)
    lit_full = float(full[~off].sum())
    switch_off = 1.0 - lit_full / total
    dimming = float(energy[~off].sum()) / lit_full if lit_full > 0 else 1.0
    if dimming > 1.0 + 1e-9:
        msg = (
            f"energy_wh: the lit slots draw {dimming:.3f} x their full power; "
            "check energy_wh against power_w and the slot lengths"
        )
        raise InputValidationError(msg)
    return min(dimming, 1.0), switch_off
