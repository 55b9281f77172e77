"""Custom dimming policies, public: data or a small function over the night's dataset.

A policy is either an ``xr.DataArray`` of levels on ``(light, time)`` (data), or a function that
takes the night's dataset (:func:`night_dataset`) and returns one. The night's dataset holds what
a policy needs to decide:

- per light and slot: ``floor`` (the ``min_energy`` plan: EN 13201 as the floor, ramps kept),
  ``required_level`` and ``lighting_class``;
- per slot: ``hour_local`` (the local clock, DST-safe) and ``slot_s``;
- per light: ``design_class``, ``highway``, ``power_w``, ``cabinet``, ``serves_crossing`` and
  ``school_hospital_m`` (distance to the nearest school, kindergarten, hospital or clinic, m).

:func:`apply` runs a policy: it checks the levels (shape, NaN, range: an error names the light
and slot), draws the energy through the one power curve, and returns a plan with the same
variables as :func:`optimize.dimming.plan`, whose ``compliant`` variable and ``compliance_pct``
say where the policy falls short of EN 13201 (a policy that breaks the standard still runs).
Constraints on the LP itself go through ``extra_functionality`` of
:func:`optimize.dimming_lp.build_model` (``dimming.plan(..., method="pulp")``).

Two policies in about ten lines each::

    def seventy_after_midnight(night):
        after = (night.hour_local >= 0) & (night.hour_local < 12)
        level = xr.where(after, 0.7, 1.0).broadcast_like(night.floor)
        return level.where(~night.serves_crossing, 1.0)   # crossings at 100 %

    def never_below_30_near_schools(night):
        near = night.school_hospital_m <= 50.0
        return night.floor.where(~near, np.maximum(night.floor, 0.3))
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import shapely
import xarray as xr

from twin._errors import InputValidationError
from twin.energy.power import DRIVER_FLOOR, drawn_power_w

from . import dimming
from . import dimming_lp as lp

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["CARE_AMENITIES", "Policy", "PolicyError", "apply", "night_dataset"]

Policy = Callable[[xr.Dataset], "xr.DataArray | npt.NDArray[np.float64]"] | xr.DataArray
"""A policy: levels on ``(light, time)``, or a function of the night's dataset giving them."""

CARE_AMENITIES = ("school", "kindergarten", "hospital", "clinic")
"""OSM ``amenity`` values that ``school_hospital_m`` measures the distance to."""


class PolicyError(InputValidationError):
    """A policy returned levels that are not a plan: wrong shape, NaN, or outside [0, 1]."""


def _care_distance(tw: Twin, lights_xy: np.ndarray) -> np.ndarray:
    reg = tw.registry
    pts = []
    if "building" in reg.kinds and len(reg["building"]):
        b = reg["building"]
        pts.append(np.asarray(b.geometry.values)[b["amenity"].isin(CARE_AMENITIES).to_numpy()])
    if "poi" in reg.kinds and len(reg["poi"]):
        p = reg["poi"]
        pts.append(np.asarray(p.geometry.values)[p["tag"].isin(CARE_AMENITIES).to_numpy()])
    care = np.concatenate(pts) if pts else np.array([], dtype=object)
    if care.size == 0:
        return np.full(len(lights_xy), np.inf)
    tree = shapely.STRtree(care)
    idx = tree.nearest(lights_xy)
    return np.asarray(shapely.distance(lights_xy, care[idx]), dtype=float)


def night_dataset(
    tw: Twin,
    date: dt.date | str,
    *,
    prepared: tuple[lp.DimmingProblem, dict[str, Any]] | None = None,
    **forecast: Any,
) -> xr.Dataset:
    """The night's dataset a policy reads (see the module docstring).

    ``prepared`` is :func:`optimize.dimming.problem_for`'s output for this night (built with
    ``forecast`` options otherwise); the dataset keeps it in ``attrs`` no further, so policies
    see plain arrays only.
    """
    if prepared is None:
        prepared = dimming.problem_for(tw, date, **forecast)
    problem, extra = prepared
    L = extra["lights"]
    night = extra["night"]
    floor = lp.min_energy_levels(problem)
    lights = tw.registry["light"].reindex(L["light"])
    dist = _care_distance(tw, np.asarray(lights.geometry.values))
    units = {"units": "1"}
    return xr.Dataset(
        {
            "floor": (("light", "time"), floor, {**units, "long_name": "min_energy plan level"}),
            "required_level": (
                ("light", "time"),
                np.asarray(extra.get("en13201_required", problem.required)),
                {**units, "long_name": "EN 13201 requirement as a fraction of full output"},
            ),
            "lighting_class": (("light", "time"), extra["required_class"], units),
            "hour_local": ("time", night.hour_local, {"units": "h", "long_name": "local hour"}),
            "slot_s": ("time", night.duration_s, {"units": "s", "long_name": "slot duration"}),
            "design_class": ("light", L["design_class"], units),
            "highway": ("light", L["highway"], units),
            "power_w": ("light", L["power_w"], {"units": "W"}),
            "cabinet": ("light", L["cabinet"].astype(str), units),
            "serves_crossing": ("light", L["serves_crossing"], units),
            "school_hospital_m": (
                "light",
                dist,
                {"units": "m", "long_name": "distance to the nearest school or hospital"},
            ),
        },
        coords={"light": L["light"].astype(str), "time": night.start},
        attrs={"city": tw.name, "date": night.evening.isoformat()},
    )


def _levels(result: Any, night: xr.Dataset) -> np.ndarray:
    n, t_n = night.sizes["light"], night.sizes["time"]
    if isinstance(result, xr.DataArray):
        if set(result.dims) != {"light", "time"}:
            msg = f"policy: levels have dims {result.dims}, expected ('light', 'time')"
            raise PolicyError(msg)
        result = result.transpose("light", "time")
        for dim in ("light", "time"):
            if dim in result.coords and not np.array_equal(result[dim].values, night[dim].values):
                msg = f"policy: the levels' {dim} coordinate is not the night's"
                raise PolicyError(msg)
        arr = np.asarray(result.values, dtype=np.float64)
    else:
        try:
            arr = np.asarray(result, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            msg = f"policy: levels are not numbers ({exc})"
            raise PolicyError(msg) from None
    if arr.shape != (n, t_n):
        msg = f"policy: levels of shape {arr.shape}, expected (light, time) = {(n, t_n)}"
        raise PolicyError(msg)
    for bad, what in ((np.isnan(arr), "NaN"), ((arr < 0) | (arr > 1), "outside [0, 1]")):
        if bad.any():
            i, t = (int(v) for v in np.argwhere(bad)[0])
            msg = (
                f"policy: level of {night['light'].values[i]} at slot {t} "
                f"({np.datetime_as_string(night['time'].values[t], unit='m')} UTC) is "
                f"{arr[i, t]!r}, {what} ({int(bad.sum())} such light-slots)"
            )
            raise PolicyError(msg)
    return arr


def apply(
    tw: Twin,
    date: dt.date | str,
    policy: Policy,
    *,
    name: str = "custom",
    prepared: tuple[lp.DimmingProblem, dict[str, Any]] | None = None,
    night: xr.Dataset | None = None,
    **forecast: Any,
) -> xr.Dataset:
    """Run a policy on one night; the plan, with its energy and its EN 13201 compliance.

    Returns the variables of :func:`optimize.dimming.plan` (``policy`` attribute ``name``),
    plus ``ramp_violations`` (light-slots whose step from the previous slot exceeds the ramp
    limit) in the attributes.
    """
    if prepared is None:
        prepared = dimming.problem_for(tw, date, **forecast)
    if night is None:
        night = night_dataset(tw, date, prepared=prepared)
    result = policy(night) if callable(policy) else policy
    level = _levels(result, night)
    problem, extra = prepared
    slot_h = extra["night"].duration_s / 3600.0
    power = extra["lights"]["power_w"]
    energy = drawn_power_w(power, level, driver_floor=DRIVER_FLOOR, on=level > 0) * slot_h
    floor_wh = float(lp.energy_wh(problem, lp.min_energy_levels(problem)).sum())
    ds = dimming._dataset(  # the plan's own layout
        tw,
        problem,
        extra,
        level=level,
        energy=energy,
        power=power,
        policy=name,
        objective="",
        solver={
            "status": "ok",
            "condition": "policy",
            "build_s": 0.0,
            "solve_s": 0.0,
            "objective": float("nan"),
            "method": "policy",
        },
        floor_wh=floor_wh,
    )
    on = (level[:, 1:] > 0) & (level[:, :-1] > 0)
    steps = np.abs(np.diff(level, axis=1)) > problem.ramp + 1e-9
    ds.attrs["ramp_violations"] = int((steps & on).sum())
    return ds
