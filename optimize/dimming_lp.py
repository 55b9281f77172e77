"""Dimming schedules as a linear programme, on plain arrays.

The problem: ``n`` lights, ``T`` time slots of one night. Each light ``i`` runs at a dim level
``x[i, t]`` in ``[min_level[i], 1]`` unless a commune switch-off window forces it off
(``forced_off``: level 0, power 0). LED light output is close to linear in the dim level and
power is linear with a small driver floor (DESIGN.md section 4), so a light that is on draws
``power_w[i] * (driver_floor + (1 - driver_floor) * x[i, t])``. A luminaire designed for
EN 13201 class K meets the lower class K' at output L(K')/L(K) (CEN/TR 13201-1:2014 allows
lowering the class when traffic is low), which is what ``required`` holds.

Constraints, with the names used in the pulp model and in :func:`constraint_violations`:

``requirement``
    ``x[i, t] >= required[i, t]`` (and the driver's ``min_level`` as a variable bound).
``ramp_up`` / ``ramp_down``
    ``|x[i, t] - x[i, t-1]| <= ramp`` between consecutive slots where the light is on in both
    (switching into or out of a forced-off window is exempt). The limit is per slot.
``cabinet_cap``
    the lights of a cabinet draw at most ``cabinet_cap_w[c, t]`` (contracted power).
``energy_budget``
    the night's energy is at most ``energy_budget_wh`` (from the 65 % trajectory).

Objectives:

``"service"`` (default, maximised)
    ``sum w[i, t] * (x[i, t] - required[i, t])`` over the slots where the light is on: the
    footfall-weighted light given above the requirement, which pulls levels up against the
    budget and the caps. A tie-break subtracts ``SERVICE_TIEBREAK * max(weight) / e_ref`` per Wh
    (``e_ref`` is the mean full-output energy of one light over one slot), so that a light-slot
    at full output costs ``1e-5`` of the largest weight: lights with no weight then sit at their
    lowest feasible level instead of anywhere, and the optimum moves by at most that fraction.
``"cost"`` (minimised)
    ``sum price[t] * energy[i, t]`` in EUR with ``price_eur_per_kwh``. With non-negative prices
    the ramp-feasible lower envelope (below) is optimal, so no LP is needed; negative prices
    (which markets do have) make it a real LP.
``"min_energy"`` (minimised, closed form)
    every light at ``max(required, min_level)`` while on: the energy floor the other plans are
    compared to. It ignores ramps (it is the floor, not a plan that respects them); caps and
    budget are still checked against it.

Before any solve the exact *ramp-feasible lower envelope* is computed,
``L[i, t] = max_s (lb[i, s] - ramp * |t - s|)`` over the slots ``s`` of the same on-stretch,
with ``lb = max(required, min_level)``. It is the pointwise smallest level profile that meets
the requirements and the ramps, so the smallest power of each cabinet in each slot and the
smallest energy of the night follow exactly. If any of them exceeds its cap or the budget,
:class:`InfeasiblePlanError` names the cabinets, slots and the smallest relaxation that fixes
each, and no plan is returned.

API (build, then solve, then assign, as in PyPSA): :func:`build_model` gives the
straightforward pulp model (one variable per light and slot, every constraint named) that
engineers extend through ``extra_functionality``; :func:`solve` solves it
(``method="pulp"``) or runs the fast path (``method="fast"``), which reaches the same optimum at
metropolis scale: it builds the matrix with numpy/scipy and hands it to ``highspy``, after two
exact reductions,

1. *envelope bounds*: the lower bound of every level becomes ``L`` (implied, hence exact);
   levels pinned at full output by ``L`` leave the LP, ramp and cap rows that the bounds already
   satisfy are dropped, and lights whose objective coefficients are all non-positive are fixed
   at ``L`` (lowering a light towards ``L`` keeps every constraint, all of which are upper
   limits on power, so some optimum has them there);
2. *aggregation of identical columns*: lights of the same cabinet with the same on/off pattern,
   the same envelope and the same objective coefficient per watt have columns that differ only by
   the factor ``power_w``. Every coupling constraint is a sum of power, so replacing them by one
   level for the group (with the group's total power) is exact: any solution of the full LP maps
   to one of the aggregate (power-weighted mean level, which keeps bounds and ramps) with the same
   objective, and the aggregate's level, given to every light of the group, is a solution of the
   full LP;
3. *lazy ramp rows*: the LP is first solved without ramp rows; the rows its solution violates
   (and their neighbours) are added and the LP re-solved from the current basis (dual simplex)
   until no ramp is violated. Only a few percent of the ramp rows bind at the optimum. The last
   LP is a relaxation of the full one whose optimum is feasible for it, so it is optimal, and
   its duals (zero for the rows left out) are duals of the full LP;
4. the budget row, dense over all columns, is split into one energy column per cabinet and a
   short row summing them, which the simplex factorises far more cheaply;
5. *greedy start*: without ramp rows the LP is a fractional knapsack under per-cabinet caps
   (a laminar family of capacities), whose optimum is filling levels by decreasing gain per
   kWh as far as each cap and the budget allow. Its optimal basis is built in numpy and handed
   to HiGHS, which confirms it without a pivot (instead of thousands of pivots that all involve
   the budget row); the dual simplex then only works on the ramp rows. HiGHS still proves
   optimality of every LP it returns, so the start changes the time, not the optimum.

``method="highs"`` passes the full, unreduced LP to ``highspy``: the reference the benchmark
compares the fast path with.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import numpy as np
import numpy.typing as npt
import pulp
import scipy.sparse as sp

from optimize import _pulp
from twin._errors import InputValidationError, TwinError

__all__ = [
    "METHODS",
    "OBJECTIVES",
    "SERVICE_TIEBREAK",
    "DimmingProblem",
    "DimmingSolution",
    "InfeasibilityReport",
    "InfeasiblePlanError",
    "build_model",
    "cabinet_power_w",
    "check_feasibility",
    "constraint_violations",
    "energy_wh",
    "lower_bound_levels",
    "min_energy_levels",
    "objective_value",
    "power_w",
    "ramp_envelope",
    "solve",
]

Objective = Literal["service", "cost", "min_energy"]
Method = Literal["fast", "highs", "pulp"]
OBJECTIVES: tuple[str, ...] = ("service", "cost", "min_energy")
"""Objective names accepted by :func:`build_model` and :func:`solve`."""
METHODS: tuple[str, ...] = ("fast", "highs", "pulp")
"""Solution methods accepted by :func:`solve`."""
SERVICE_TIEBREAK = 1e-5
"""Cost of one light-slot at full output in the ``service`` objective, as a share of max weight."""

_FEAS_RTOL = 1e-9  # relative slack allowed in the envelope feasibility checks

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]


# --------------------------------------------------------------------------------------------
# problem


def _bad(name: str, reason: str) -> NoReturn:
    msg = f"DimmingProblem.{name}: {reason}"
    raise InputValidationError(msg)


def _float_array(name: str, value: Any, shape: tuple[int, ...]) -> FloatArray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        msg = f"DimmingProblem.{name}: not numeric ({exc})"
        raise InputValidationError(msg) from exc
    if arr.ndim == 0 and shape:
        arr = np.full(shape, float(arr))
    if arr.shape != shape:
        _bad(name, f"shape {arr.shape}, expected {shape}")
    if np.isnan(arr).any():
        _bad(name, "contains NaN")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class DimmingProblem:
    """One night's dimming problem for ``n`` lights and ``T`` slots, as arrays.

    Array fields are copied, converted and made read-only; scalars given for per-light or
    per-slot fields are broadcast. Every bad field raises
    :class:`~twin._errors.InputValidationError` naming it.

    Parameters
    ----------
    light
        ``(n,)`` light ids.
    time
        ``(T,)`` slot start times, naive UTC ``datetime64``, strictly increasing.
    slot_h
        ``(T,)`` slot durations in hours (> 0; dusk and dawn slots may be shorter).
    power_w
        ``(n,)`` system power at full output, W (> 0).
    required
        ``(n, T)`` EN 13201 requirement as a fraction of full output, in ``[0, 1]``.
    cabinet_index
        ``(n,)`` index of each light's cabinet into ``cabinet``.
    cabinet
        ``(m,)`` cabinet ids.
    driver_floor
        Share of full power drawn at level 0 while on (``[0, 1)``).
    min_level
        ``(n,)`` lowest dim level of each driver, in ``[0, 1]``.
    forced_off
        ``(n, T)`` commune switch-off windows: the light is off (level 0, 0 W). Default none.
    weight
        ``(n, T)`` footfall or traffic weight (>= 0) of the ``service`` objective. Default 1.
    cabinet_cap_w
        ``(m, T)`` contracted power cap, W (``inf`` for none, the default).
    energy_budget_wh
        The night's energy budget, Wh, or ``None``.
    ramp
        Largest level change between consecutive slots (> 0; >= 1 means no limit).
    price_eur_per_kwh
        ``(T,)`` time-of-use tariff for the ``cost`` objective, or ``None``.

    Examples
    --------
    >>> p = DimmingProblem(
    ...     light=["a", "b"],
    ...     time=np.array(["2024-12-01T17:00", "2024-12-01T17:15"], dtype="datetime64[ns]"),
    ...     slot_h=0.25,
    ...     power_w=[50.0, 80.0],
    ...     required=[[1.0, 0.5], [0.3, 0.3]],
    ...     cabinet_index=[0, 0],
    ...     cabinet=["cab:1"],
    ... )
    >>> p.n, p.n_slots, p.lower.tolist()
    (2, 2, [[1.0, 0.5], [0.3, 0.3]])
    """

    light: npt.NDArray[Any]
    time: npt.NDArray[np.datetime64]
    slot_h: FloatArray
    power_w: FloatArray
    required: FloatArray
    cabinet_index: IntArray
    cabinet: npt.NDArray[Any]
    driver_floor: float = 0.1
    min_level: FloatArray | float = 0.0
    forced_off: BoolArray | None = None
    weight: FloatArray | float | None = None
    cabinet_cap_w: FloatArray | float | None = None
    energy_budget_wh: float | None = None
    ramp: float = 1.0
    price_eur_per_kwh: FloatArray | None = None

    def __post_init__(self) -> None:  # noqa: C901 - one check per field
        put = object.__setattr__
        light = np.array(self.light)
        if light.ndim != 1 or light.size == 0:
            _bad("light", "must be a non-empty 1-D array of ids")
        if np.unique(light).size != light.size:
            _bad("light", "ids are not unique")
        light.setflags(write=False)
        put(self, "light", light)
        n = light.size

        tim = np.array(self.time)
        if tim.ndim != 1 or tim.size == 0 or tim.dtype.kind != "M":
            _bad("time", "must be a non-empty 1-D naive UTC datetime64 array")
        if tim.size > 1 and not (np.diff(tim) > np.timedelta64(0)).all():
            _bad("time", "must be strictly increasing")
        tim.setflags(write=False)
        put(self, "time", tim)
        t_n = tim.size

        slot_h = _float_array("slot_h", self.slot_h, (t_n,))
        if not (np.isfinite(slot_h).all() and (slot_h > 0).all()):
            _bad("slot_h", "durations must be finite and > 0 hours")
        put(self, "slot_h", slot_h)

        power = _float_array("power_w", self.power_w, (n,))
        if not (np.isfinite(power).all() and (power > 0).all()):
            _bad("power_w", "full-output power must be finite and > 0 W")
        put(self, "power_w", power)

        floor = float(self.driver_floor)
        if not 0.0 <= floor < 1.0:
            _bad("driver_floor", f"{floor} is not in [0, 1)")
        put(self, "driver_floor", floor)

        min_level = _float_array("min_level", self.min_level, (n,))
        if not ((min_level >= 0).all() and (min_level <= 1).all()):
            _bad("min_level", "dim levels must be in [0, 1]")
        put(self, "min_level", min_level)

        required = _float_array("required", self.required, (n, t_n))
        if not ((required >= 0).all() and (required <= 1).all()):
            _bad("required", "requirement fractions must be in [0, 1]")
        put(self, "required", required)

        if self.forced_off is None:
            off = np.zeros((n, t_n), dtype=bool)
        else:
            off = np.array(self.forced_off)
            if off.dtype != bool:
                _bad("forced_off", f"must be boolean, got {off.dtype}")
            if off.shape != (n, t_n):
                _bad("forced_off", f"shape {off.shape}, expected {(n, t_n)}")
        off.setflags(write=False)
        put(self, "forced_off", off)

        weight = _float_array("weight", 1.0 if self.weight is None else self.weight, (n, t_n))
        if not (np.isfinite(weight).all() and (weight >= 0).all()):
            _bad("weight", "weights must be finite and >= 0")
        put(self, "weight", weight)

        cabinet = np.array(self.cabinet)
        if cabinet.ndim != 1 or cabinet.size == 0:
            _bad("cabinet", "must be a non-empty 1-D array of ids")
        if np.unique(cabinet).size != cabinet.size:
            _bad("cabinet", "ids are not unique")
        cabinet.setflags(write=False)
        put(self, "cabinet", cabinet)
        m = cabinet.size

        cab_idx = np.array(self.cabinet_index)
        if cab_idx.shape != (n,) or cab_idx.dtype.kind not in "iu":
            _bad("cabinet_index", f"need {n} integers, got {cab_idx.dtype} {cab_idx.shape}")
        if n and (cab_idx.min() < 0 or cab_idx.max() >= m):
            _bad("cabinet_index", f"indices must be in [0, {m})")
        cab_idx = cab_idx.astype(np.intp)
        cab_idx.setflags(write=False)
        put(self, "cabinet_index", cab_idx)

        caps = _float_array(
            "cabinet_cap_w", np.inf if self.cabinet_cap_w is None else self.cabinet_cap_w, (m, t_n)
        )
        if (caps < 0).any():
            _bad("cabinet_cap_w", "caps must be >= 0 W")
        put(self, "cabinet_cap_w", caps)

        if self.energy_budget_wh is not None:
            budget = float(self.energy_budget_wh)
            if not (math.isfinite(budget) and budget >= 0):
                _bad("energy_budget_wh", f"{budget} is not a finite energy >= 0 Wh")
            put(self, "energy_budget_wh", budget)

        ramp = float(self.ramp)
        if not (math.isfinite(ramp) and ramp > 0):
            _bad("ramp", f"{ramp} is not a level change > 0 per slot")
        put(self, "ramp", ramp)

        if self.price_eur_per_kwh is not None:
            price = _float_array("price_eur_per_kwh", self.price_eur_per_kwh, (t_n,))
            if not np.isfinite(price).all():
                _bad("price_eur_per_kwh", "prices must be finite")
            put(self, "price_eur_per_kwh", price)

    @property
    def n(self) -> int:
        """Number of lights."""
        return int(self.light.size)

    @property
    def n_slots(self) -> int:
        """Number of time slots."""
        return int(self.time.size)

    @property
    def on(self) -> BoolArray:
        """``(n, T)`` True where the light is not forced off."""
        return ~np.asarray(self.forced_off)

    @property
    def lower(self) -> FloatArray:
        """``(n, T)`` slot-wise lowest level, ``max(required, min_level)`` while on, else 0."""
        return lower_bound_levels(self)


# --------------------------------------------------------------------------------------------
# closed forms: levels, power, energy, envelope


def lower_bound_levels(problem: DimmingProblem) -> FloatArray:
    """Return ``max(required, min_level)`` where on, 0 where forced off, shape ``(n, T)``."""
    lb = np.maximum(problem.required, np.asarray(problem.min_level)[:, None])
    return np.where(problem.on, lb, 0.0)


def min_energy_levels(problem: DimmingProblem) -> FloatArray:
    """Return the ``min_energy`` plan: every light at its requirement (and driver minimum).

    This is the energy floor other plans are compared to; it ignores ramps.

    Examples
    --------
    >>> p = DimmingProblem(light=["a"], time=np.array(["2024-12-01T17:00"], "datetime64[ns]"),
    ...     slot_h=0.25, power_w=50.0, required=[[0.05]], cabinet_index=[0], cabinet=["c"],
    ...     min_level=0.1)
    >>> min_energy_levels(p).tolist()
    [[0.1]]
    """
    return lower_bound_levels(problem)


def power_w(problem: DimmingProblem, level: npt.ArrayLike) -> FloatArray:
    """Return the ``(n, T)`` power in W of a level plan (0 W where forced off)."""
    x = np.asarray(level, dtype=np.float64)
    f = problem.driver_floor
    p = problem.power_w[:, None] * (f + (1.0 - f) * x)
    return np.where(problem.on, p, 0.0)


def energy_wh(problem: DimmingProblem, level: npt.ArrayLike) -> FloatArray:
    """Return the ``(n, T)`` energy in Wh of a level plan.

    Examples
    --------
    >>> p = DimmingProblem(light=["a"], time=np.array(["2024-12-01T17:00"], "datetime64[ns]"),
    ...     slot_h=0.5, power_w=100.0, required=[[0.5]], cabinet_index=[0], cabinet=["c"],
    ...     driver_floor=0.1)
    >>> energy_wh(p, [[0.5]]).tolist()  # 100 W * (0.1 + 0.9 * 0.5) * 0.5 h
    [[27.500000000000004]]
    """
    return power_w(problem, level) * problem.slot_h[None, :]


def cabinet_power_w(problem: DimmingProblem, level: npt.ArrayLike) -> FloatArray:
    """Return the ``(m, T)`` power drawn by each cabinet's lights, W."""
    return _sum_by_cabinet(problem, power_w(problem, level))


def _caps(problem: DimmingProblem) -> FloatArray:
    return np.asarray(problem.cabinet_cap_w, dtype=np.float64)


def _weight(problem: DimmingProblem) -> FloatArray:
    return np.asarray(problem.weight, dtype=np.float64)


def _sum_by_cabinet(problem: DimmingProblem, values: FloatArray) -> FloatArray:
    m, t_n = problem.cabinet.size, problem.n_slots
    out = np.zeros((m, t_n))
    np.add.at(out, problem.cabinet_index, values)
    return out


def ramp_envelope(problem: DimmingProblem) -> FloatArray:
    """Return the ramp-feasible lower envelope ``L``, shape ``(n, T)``.

    ``L[i, t] = max_s (lb[i, s] - ramp * |t - s|)`` over the slots ``s`` of the on-stretch
    that contains ``t`` (0 where forced off), with ``lb = max(required, min_level)``. Every
    plan that meets the requirements and the ramps is ``>= L``, and ``L`` itself meets them
    (when ``L <= 1``), so it is the pointwise smallest feasible plan ignoring caps and budget.
    Two passes (forward, backward) compute it in ``O(n T)``.

    Examples
    --------
    >>> p = DimmingProblem(light=["a"], time=np.arange(5).astype("datetime64[h]"), slot_h=1.0,
    ...     power_w=50.0, required=[[0.0, 0.0, 0.0, 1.0, 0.0]], cabinet_index=[0],
    ...     cabinet=["c"], ramp=0.25, forced_off=[[True, False, False, False, False]])
    >>> ramp_envelope(p).round(2).tolist()
    [[0.0, 0.5, 0.75, 1.0, 0.75]]
    """
    lb = lower_bound_levels(problem)
    on = problem.on
    r = problem.ramp
    env = lb.copy()
    if r >= 1.0:
        return env
    t_n = problem.n_slots
    for t in range(1, t_n):  # forward: max over s <= t
        link = on[:, t] & on[:, t - 1]
        np.maximum(env[:, t], np.where(link, env[:, t - 1] - r, 0.0), out=env[:, t])
    for t in range(t_n - 2, -1, -1):  # backward: max over s >= t
        link = on[:, t] & on[:, t + 1]
        np.maximum(env[:, t], np.where(link, env[:, t + 1] - r, 0.0), out=env[:, t])
    return np.where(on, env, 0.0)


# --------------------------------------------------------------------------------------------
# infeasibility


@dataclass(frozen=True)
class InfeasibilityReport:
    """What makes a dimming problem infeasible, and the smallest relaxation that fixes it.

    Attributes
    ----------
    cap_cabinet, cap_time
        Cabinet id and slot time of each cabinet/slot whose smallest feasible power exceeds its
        cap; ``cap_cabinet_pos`` and ``cap_slot`` are their positions in the problem arrays.
    cap_min_power_w, cap_w
        That smallest power and the cap, W.
    cap_increase_w
        The smallest cap increase that fixes each, W (``cap_min_power_w - cap_w``).
    min_energy_wh, budget_wh
        The smallest feasible energy of the night and the budget, Wh.
    budget_increase_wh
        The smallest budget increase that fixes it (0 when the budget is not in conflict), Wh.
    unreachable_light, unreachable_time
        Lights and slots where the envelope exceeds full output (no ramp reaches the level).
    """

    cap_cabinet: npt.NDArray[Any] = field(default_factory=lambda: np.array([], dtype=object))
    cap_time: npt.NDArray[np.datetime64] = field(
        default_factory=lambda: np.array([], dtype="datetime64[ns]")
    )
    cap_cabinet_pos: IntArray = field(default_factory=lambda: np.array([], dtype=np.intp))
    cap_slot: IntArray = field(default_factory=lambda: np.array([], dtype=np.intp))
    cap_min_power_w: FloatArray = field(default_factory=lambda: np.array([]))
    cap_w: FloatArray = field(default_factory=lambda: np.array([]))
    cap_increase_w: FloatArray = field(default_factory=lambda: np.array([]))
    min_energy_wh: float = 0.0
    budget_wh: float | None = None
    budget_increase_wh: float = 0.0
    unreachable_light: npt.NDArray[Any] = field(default_factory=lambda: np.array([], dtype=object))
    unreachable_time: npt.NDArray[np.datetime64] = field(
        default_factory=lambda: np.array([], dtype="datetime64[ns]")
    )

    @property
    def feasible(self) -> bool:
        """True when nothing conflicts."""
        return (
            self.cap_increase_w.size == 0
            and self.budget_increase_wh <= 0
            and self.unreachable_light.size == 0
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain Python (JSON-serialisable) values."""
        return {
            "cabinet_cap": [
                {
                    "cabinet": str(c),
                    "time": str(t),
                    "min_power_w": float(p),
                    "cap_w": float(k),
                    "increase_w": float(d),
                }
                for c, t, p, k, d in zip(
                    self.cap_cabinet,
                    self.cap_time,
                    self.cap_min_power_w,
                    self.cap_w,
                    self.cap_increase_w,
                    strict=True,
                )
            ],
            "energy_budget": {
                "min_energy_wh": self.min_energy_wh,
                "budget_wh": self.budget_wh,
                "increase_wh": self.budget_increase_wh,
            },
            "unreachable": [
                {"light": str(a), "time": str(t)}
                for a, t in zip(self.unreachable_light, self.unreachable_time, strict=True)
            ],
        }

    def relaxed(self, problem: DimmingProblem, *, fraction: float = 1.0) -> DimmingProblem:
        """Return ``problem`` with ``fraction`` of each cap and budget relaxation applied.

        ``fraction=1`` gives the smallest feasible relaxation (when nothing is unreachable).
        """
        caps = np.array(problem.cabinet_cap_w)
        caps[self.cap_cabinet_pos, self.cap_slot] += fraction * self.cap_increase_w
        budget = problem.energy_budget_wh
        if budget is not None and self.budget_increase_wh > 0:
            budget = budget + fraction * self.budget_increase_wh
        return _replace(problem, cabinet_cap_w=caps, energy_budget_wh=budget)

    def __str__(self) -> str:
        lines = []
        if self.unreachable_light.size:
            pairs = ", ".join(
                f"{a}@{t}"
                for a, t in zip(self.unreachable_light[:5], self.unreachable_time[:5], strict=True)
            )
            lines.append(
                f"{self.unreachable_light.size} light-slot(s) need more than full output to "
                f"meet the ramp limit: {pairs}"
            )
        if self.cap_increase_w.size:
            order = np.argsort(-self.cap_increase_w)[:5]
            worst = ", ".join(
                f"{self.cap_cabinet[k]}@{self.cap_time[k]} +{self.cap_increase_w[k]:.1f} W"
                for k in order
            )
            n_cab = np.unique(self.cap_cabinet_pos).size
            lines.append(
                f"cabinet_cap: {self.cap_increase_w.size} cabinet-slot(s) in {n_cab} cabinet(s) "
                f"need more than their cap even at the lowest feasible levels; smallest increases "
                f"(largest first): {worst}"
            )
        if self.budget_increase_wh > 0:
            lines.append(
                f"energy_budget: the lowest feasible energy is {self.min_energy_wh:.1f} Wh, over "
                f"the budget of {self.budget_wh:.1f} Wh; raise it by "
                f"{self.budget_increase_wh:.1f} Wh"
            )
        return "; ".join(lines) if lines else "feasible"


class InfeasiblePlanError(TwinError, ValueError):
    """No dimming plan meets the constraints; ``.report`` says which and how to relax them."""

    def __init__(self, msg: str, report: InfeasibilityReport) -> None:
        super().__init__(msg)
        self.report = report


def _replace(problem: DimmingProblem, **changes: Any) -> DimmingProblem:
    from dataclasses import replace

    return replace(problem, **changes)


def check_feasibility(problem: DimmingProblem, *, ramps: bool = True) -> InfeasibilityReport:
    """Check caps and budget against the lowest feasible plan, without solving.

    Parameters
    ----------
    problem
        The problem.
    ramps
        Use the ramp envelope (True) or the slot-wise floor ``max(required, min_level)``
        (False, for the ``min_energy`` plan that ignores ramps).

    Returns
    -------
    InfeasibilityReport
        ``report.feasible`` is True when the problem has a plan.
    """
    env = ramp_envelope(problem) if ramps else lower_bound_levels(problem)
    on = problem.on
    bad = on & (env > 1.0 + 1e-12)
    ui, ut = np.nonzero(bad)
    min_cab = cabinet_power_w(problem, np.minimum(env, 1.0))
    caps = _caps(problem)
    over = min_cab > caps + _FEAS_RTOL * np.maximum(np.abs(caps), 1.0)
    ci, ct = np.nonzero(over)
    e_min = float(energy_wh(problem, np.minimum(env, 1.0)).sum())
    budget = problem.energy_budget_wh
    b_inc = 0.0
    if budget is not None and e_min > budget + _FEAS_RTOL * max(abs(budget), 1.0):
        b_inc = e_min - budget
    return InfeasibilityReport(
        cap_cabinet=problem.cabinet[ci],
        cap_time=problem.time[ct],
        cap_cabinet_pos=ci.astype(np.intp),
        cap_slot=ct.astype(np.intp),
        cap_min_power_w=min_cab[ci, ct],
        cap_w=caps[ci, ct],
        cap_increase_w=min_cab[ci, ct] - caps[ci, ct],
        min_energy_wh=e_min,
        budget_wh=budget,
        budget_increase_wh=b_inc,
        unreachable_light=problem.light[ui],
        unreachable_time=problem.time[ut],
    )


def _raise_if_infeasible(problem: DimmingProblem, *, ramps: bool = True) -> None:
    report = check_feasibility(problem, ramps=ramps)
    if not report.feasible:
        msg = f"no dimming plan meets the constraints: {report}"
        raise InfeasiblePlanError(msg, report)


def constraint_violations(problem: DimmingProblem, level: npt.ArrayLike) -> dict[str, float]:
    """Return the largest violation of each named constraint by a level plan (0 when met).

    Keys: ``bounds`` (level outside ``[min_level, 1]`` while on), ``forced_off`` (level not 0
    in a switch-off window), ``requirement``, ``ramp_up``, ``ramp_down`` (level units),
    ``cabinet_cap`` (W) and ``energy_budget`` (Wh).
    """
    x = np.asarray(level, dtype=np.float64)
    if x.shape != (problem.n, problem.n_slots):
        msg = f"level: shape {x.shape}, expected {(problem.n, problem.n_slots)}"
        raise InputValidationError(msg)
    on = problem.on
    ml = np.asarray(problem.min_level)[:, None]
    out = {
        "bounds": float(np.where(on, np.maximum(ml - x, x - 1.0), 0.0).max(initial=0.0)),
        "forced_off": float(np.where(on, 0.0, np.abs(x)).max(initial=0.0)),
        "requirement": float(np.where(on, problem.required - x, 0.0).max(initial=0.0)),
    }
    link = on[:, 1:] & on[:, :-1]
    step = np.diff(x, axis=1)
    out["ramp_up"] = float(np.where(link, step - problem.ramp, 0.0).max(initial=0.0))
    out["ramp_down"] = float(np.where(link, -step - problem.ramp, 0.0).max(initial=0.0))
    cab = cabinet_power_w(problem, x) - _caps(problem)
    out["cabinet_cap"] = float(np.where(np.isfinite(cab), cab, 0.0).max(initial=0.0))
    budget = problem.energy_budget_wh
    e = float(energy_wh(problem, x).sum())
    out["energy_budget"] = 0.0 if budget is None else max(0.0, e - budget)
    return {k: max(v, 0.0) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# objectives


def _check_objective(problem: DimmingProblem, objective: str) -> None:
    if objective not in OBJECTIVES:
        msg = f"objective: {objective!r} is not one of {OBJECTIVES}"
        raise InputValidationError(msg)
    if objective == "cost" and problem.price_eur_per_kwh is None:
        msg = "DimmingProblem.price_eur_per_kwh: the 'cost' objective needs a tariff"
        raise InputValidationError(msg)


def _tiebreak_per_wh(problem: DimmingProblem) -> float:
    on = problem.on
    e_full = problem.power_w[:, None] * problem.slot_h[None, :]
    e_ref = float(e_full[on].mean()) if on.any() else 1.0
    w_max = float(_weight(problem).max(initial=0.0)) or 1.0
    return SERVICE_TIEBREAK * w_max / e_ref


def _linear_objective(problem: DimmingProblem, objective: str) -> tuple[FloatArray, float, int]:
    """Return ``(c, c0, sense)``: objective = ``c0 + sum(c * x)`` over on slots.

    ``sense`` is +1 for maximised objectives, -1 for minimised ones; ``c`` is 0 where off.
    """
    on = problem.on
    f = problem.driver_floor
    h = problem.slot_h[None, :]
    pw = problem.power_w[:, None]
    if objective == "service":
        tb = _tiebreak_per_wh(problem)
        c = np.where(on, _weight(problem) - tb * pw * (1 - f) * h, 0.0)
        c0 = -float(np.where(on, _weight(problem) * problem.required + tb * pw * f * h, 0.0).sum())
        return c, c0, 1
    price = np.asarray(problem.price_eur_per_kwh)[None, :] / 1000.0
    c = np.where(on, price * pw * (1 - f) * h, 0.0)
    c0 = float(np.where(on, price * pw * f * h, 0.0).sum())
    return c, c0, -1


def objective_value(problem: DimmingProblem, level: npt.ArrayLike, objective: str) -> float:
    """Return the value of a named objective for a level plan, in its natural units.

    ``service``: weight x level units, tie-break included (maximised); ``cost``: EUR
    (minimised); ``min_energy``: Wh (minimised).
    """
    _check_objective(problem, objective)
    x = np.asarray(level, dtype=np.float64)
    if objective == "min_energy":
        return float(energy_wh(problem, x).sum())
    c, c0, _ = _linear_objective(problem, objective)
    return c0 + float((c * np.where(problem.on, x, 0.0)).sum())


# --------------------------------------------------------------------------------------------
# the straightforward pulp model


def build_model(
    problem: DimmingProblem,
    *,
    objective: Objective = "service",
    extra_functionality: Callable[[pulp.LpProblem, DimmingProblem], None] | None = None,
) -> pulp.LpProblem:
    """Build the straightforward pulp model: one variable per light and slot.

    Variables are ``level_{i}_{t}`` (``i``, ``t`` positions in the problem arrays) with bounds
    ``[min_level[i], 1]``, for the slots where the light is on (forced-off slots are the
    constant 0). Constraints are named ``requirement_{i}_{t}``, ``ramp_up_{i}_{t}``,
    ``ramp_down_{i}_{t}``, ``cabinet_cap_{c}_{t}`` and ``energy_budget``; redundant ones
    (a requirement at or below the driver minimum, ramps when ``ramp >= 1``, infinite caps)
    are left out. The variables are reachable as ``model.level_vars`` (a dict keyed by
    ``(i, t)``).

    Parameters
    ----------
    problem
        The problem.
    objective
        ``"service"`` (maximised) or ``"cost"`` (minimised); ``"min_energy"`` is a closed form
        and has no model.
    extra_functionality
        ``f(model, problem)``, called last, to add constraints or change the objective.

    Returns
    -------
    pulp.LpProblem
    """
    _check_objective(problem, objective)
    if objective == "min_energy":
        msg = "objective: 'min_energy' is a closed form (min_energy_levels); it has no LP model"
        raise InputValidationError(msg)
    c, c0, sense = _linear_objective(problem, objective)
    model = pulp.LpProblem(
        f"dimming_{objective}", pulp.LpMaximize if sense > 0 else pulp.LpMinimize
    )
    on = problem.on
    ml = np.asarray(problem.min_level)
    keys = [(int(i), int(t)) for i, t in zip(*np.nonzero(on), strict=True)]
    low = {k: float(ml[k[0]]) for k in keys}
    x = _pulp.add_variable_dict(model, "level", keys, low=low, up=1.0)
    model.level_vars = x

    model += pulp.LpAffineExpression([(x[k], float(c[k])) for k in keys], constant=c0)

    req = problem.required
    for i, t in keys:
        if req[i, t] > ml[i]:
            model += (x[i, t] >= float(req[i, t]), f"requirement_{i}_{t}")
    r = problem.ramp
    if r < 1.0:
        for i, t in keys:
            if t > 0 and on[i, t - 1]:
                model += (x[i, t] - x[i, t - 1] <= r, f"ramp_up_{i}_{t}")
                model += (x[i, t - 1] - x[i, t] <= r, f"ramp_down_{i}_{t}")
    f = problem.driver_floor
    pw = problem.power_w
    members: list[list[int]] = [[] for _ in range(problem.cabinet.size)]
    for i, cab in enumerate(problem.cabinet_index):
        members[cab].append(i)
    caps = _caps(problem)
    for cab, lights in enumerate(members):
        for t in range(problem.n_slots):
            if not math.isfinite(caps[cab, t]):
                continue
            lit = [i for i in lights if on[i, t]]
            if not lit:
                continue
            expr = pulp.LpAffineExpression(
                [(x[i, t], float(pw[i] * (1 - f))) for i in lit],
                constant=float(sum(pw[i] * f for i in lit)),
            )
            model += (expr <= float(caps[cab, t]), f"cabinet_cap_{cab}_{t}")
    if problem.energy_budget_wh is not None:
        h = problem.slot_h
        expr = pulp.LpAffineExpression(
            [(x[i, t], float(pw[i] * (1 - f) * h[t])) for i, t in keys],
            constant=float(sum(pw[i] * f * h[t] for i, t in keys)),
        )
        model += (expr <= problem.energy_budget_wh, "energy_budget")
    if extra_functionality is not None:
        extra_functionality(model, problem)
    return model


# --------------------------------------------------------------------------------------------
# solutions


@dataclass(frozen=True)
class DimmingSolution:
    """The result of :func:`solve`.

    Attributes
    ----------
    status
        ``"ok"`` for an optimal plan; otherwise ``"infeasible"``, ``"unbounded"``,
        ``"time_limit"`` or ``"error"``, and ``level`` is all NaN (never a partial plan).
    condition
        The solver's termination text (or ``"closed form"``).
    level
        ``(n, T)`` dim levels (0 where forced off).
    objective
        Objective value of ``level`` in the objective's natural units (see
        :func:`objective_value`), the same whatever the method.
    build_s, solve_s
        Seconds spent building and solving (envelope and reductions count as build).
    method
        ``"fast"``, ``"highs"``, ``"pulp"`` or ``"closed_form"``.
    objective_name
        The objective solved for.
    budget_dual
        Objective improvement per extra Wh of budget (>= 0), or ``None`` without a budget row.
    cap_dual
        ``(m, T)`` objective improvement per extra W of each cap (0 where not binding), or
        ``None``.
    n_columns, n_rows
        Size of the LP that was solved.
    """

    status: str
    condition: str
    level: FloatArray
    objective: float
    build_s: float
    solve_s: float
    method: str
    objective_name: str = "service"
    budget_dual: float | None = None
    cap_dual: FloatArray | None = None
    n_columns: int = 0
    n_rows: int = 0

    @property
    def total_s(self) -> float:
        """Build plus solve time, s."""
        return self.build_s + self.solve_s


def solve(
    problem: DimmingProblem,
    *,
    objective: Objective = "service",
    method: Method = "fast",
    extra_functionality: Callable[[pulp.LpProblem, DimmingProblem], None] | None = None,
    time_limit: float | None = None,
    msg: bool = False,
) -> DimmingSolution:
    """Solve a dimming problem.

    Parameters
    ----------
    problem
        The problem.
    objective
        ``"service"``, ``"cost"`` or ``"min_energy"`` (see the module docstring).
    method
        ``"fast"`` (reduced LP straight to highspy, the default), ``"highs"`` (full LP straight
        to highspy) or ``"pulp"`` (:func:`build_model`, solved by pulp's HiGHS).
    extra_functionality
        Hook for ``method="pulp"`` (see :func:`build_model`).
    time_limit
        Solver time limit in seconds.
    msg
        Show the solver log.

    Returns
    -------
    DimmingSolution

    Raises
    ------
    InfeasiblePlanError
        If the lowest feasible plan already breaks a cap or the budget.
    InputValidationError
        For an unknown objective or method.
    """
    _check_objective(problem, objective)
    if method not in METHODS:
        msg_ = f"method: {method!r} is not one of {METHODS}"
        raise InputValidationError(msg_)
    if extra_functionality is not None and method != "pulp":
        msg_ = "extra_functionality: only method='pulp' builds a pulp model to extend"
        raise InputValidationError(msg_)
    t0 = time.perf_counter()
    if objective == "min_energy":
        _raise_if_infeasible(problem, ramps=False)
        level = min_energy_levels(problem)
        return DimmingSolution(
            status="ok",
            condition="closed form",
            level=level,
            objective=objective_value(problem, level, objective),
            build_s=time.perf_counter() - t0,
            solve_s=0.0,
            method="closed_form",
            objective_name=objective,
        )
    _raise_if_infeasible(problem)
    if method == "pulp":
        return _solve_pulp(problem, objective, extra_functionality, time_limit, msg, t0)
    return _solve_arrays(problem, objective, method == "fast", time_limit, msg, t0)


def _status_of(model_status: str) -> str:
    s = model_status.lower()
    if s == "optimal":
        return "ok"
    if "infeasible" in s:
        return "infeasible"
    if "unbounded" in s:
        return "unbounded"
    if "time limit" in s:
        return "time_limit"
    return "error"


def _nan_level(problem: DimmingProblem) -> FloatArray:
    return np.full((problem.n, problem.n_slots), np.nan)


def _solve_pulp(
    problem: DimmingProblem,
    objective: str,
    extra: Callable[[pulp.LpProblem, DimmingProblem], None] | None,
    time_limit: float | None,
    msg: bool,
    t0: float,
) -> DimmingSolution:
    model = build_model(problem, objective=objective, extra_functionality=extra)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    model.solve(_pulp.highs_solver(msg=msg, time_limit=time_limit))
    t2 = time.perf_counter()
    h = model.solverModel
    condition = h.modelStatusToString(h.getModelStatus())
    status = _status_of(condition)
    level = _nan_level(problem)
    budget_dual = None
    cap_dual = None
    if status == "ok":
        level = np.zeros((problem.n, problem.n_slots))
        for (i, t), var in model.level_vars.items():
            level[i, t] = var.varValue
        # pulp hands HiGHS min(-objective) for a maximisation; improvement = -row dual.
        row = _pulp.constraint_by_name(model, "energy_budget")
        if row is not None:
            budget_dual = -float(row.pi)
        cap_dual = np.zeros_like(problem.cabinet_cap_w)
        for cab in range(problem.cabinet.size):
            for t in range(problem.n_slots):
                row = _pulp.constraint_by_name(model, f"cabinet_cap_{cab}_{t}")
                if row is not None:
                    cap_dual[cab, t] = -float(row.pi)
    return DimmingSolution(
        status=status,
        condition=condition,
        level=level,
        objective=objective_value(problem, level, objective) if status == "ok" else math.nan,
        build_s=t1 - t0,
        solve_s=t2 - t1,
        method="pulp",
        objective_name=objective,
        budget_dual=budget_dual,
        cap_dual=cap_dual,
        n_columns=len(model.level_vars),
        n_rows=int(model.numConstraints()),
    )


# --------------------------------------------------------------------------------------------
# the array path (fast: reduced and aggregated; highs: full)


@dataclass
class _ArrayLp:
    """A minimisation LP in column-wise form, plus how to map its columns back to lights.

    ``matrix`` holds the cap, energy and budget rows; ramp rows are the pairs
    ``-ramp <= x[ramp_hi] - x[ramp_lo] <= ramp``, kept apart so that the fast path can add
    only those a solution violates.
    """

    cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    matrix: sp.csc_matrix
    row_lower: FloatArray
    row_upper: FloatArray
    ramp: float
    ramp_hi: npt.NDArray[np.int64]
    ramp_lo: npt.NDArray[np.int64]
    col_group: IntArray  # group of each level column
    col_slot: IntArray  # slot of each level column
    group_level: FloatArray  # (G, T) level of group slots that have no column
    light_group: IntArray  # group of each light, -1 for lights fixed at the envelope
    base_level: FloatArray  # (n, T) levels of the fixed lights
    cap_row: IntArray  # (m, T) row of each cap, -1 if none
    budget_row: int  # -1 if none
    col_power: FloatArray = field(default_factory=lambda: np.array([]))  # W per unit level
    col_cap_row: IntArray = field(default_factory=lambda: np.array([], dtype=np.intp))
    col_energy: FloatArray = field(default_factory=lambda: np.array([]))  # kWh per unit level

    @property
    def n_level_cols(self) -> int:
        return int(self.col_group.size)


def _group_rows(key: FloatArray) -> tuple[IntArray, IntArray]:
    """Return ``(first, inverse)``: one representative row per distinct row of ``key``."""
    if key.shape[0] == 0:
        return np.array([], dtype=np.intp), np.array([], dtype=np.intp)
    key = np.ascontiguousarray(key)
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return first.astype(np.intp), inverse.reshape(-1).astype(np.intp)


def _build_array_lp(problem: DimmingProblem, objective: str, reduce: bool) -> _ArrayLp:
    """Assemble the LP with numpy/scipy; ``reduce`` applies the exact reductions."""
    n, t_n, m = problem.n, problem.n_slots, problem.cabinet.size
    on = problem.on
    f = problem.driver_floor
    pw = problem.power_w
    h = problem.slot_h
    r = problem.ramp
    cab = problem.cabinet_index
    c_light, _, sense = _linear_objective(problem, objective)
    gain = sense * c_light  # the LP maximises gain . x

    if reduce:
        lower = ramp_envelope(problem)
        # lights that gain nothing from light above the envelope stay on it
        fixed = np.asarray(~(np.where(on, gain, -1.0) > 0).any(axis=1), dtype=bool)
        lp_lights = np.flatnonzero(~fixed)
        # columns identical up to the factor power_w: same cabinet, on pattern, bounds, gain/W
        key = np.concatenate(
            [
                cab[lp_lights, None].astype(np.float64),
                on[lp_lights].astype(np.float64),
                lower[lp_lights],
                gain[lp_lights] / pw[lp_lights, None],
            ],
            axis=1,
        )
        first, inverse = _group_rows(key)
        rep = lp_lights[first]
    else:
        lower = lower_bound_levels(problem)
        fixed = np.zeros(n, dtype=bool)
        lp_lights = np.arange(n)
        rep = lp_lights
        inverse = np.arange(n, dtype=np.intp)
    n_g = rep.size
    light_group = np.full(n, -1, dtype=np.intp)
    light_group[lp_lights] = inverse
    g_power = np.bincount(inverse, weights=pw[lp_lights], minlength=n_g)
    g_gain = np.zeros((n_g, t_n))
    np.add.at(g_gain, inverse, gain[lp_lights])
    g_on = on[rep]
    g_lower = lower[rep]
    g_cab = cab[rep]
    base_level = np.where(fixed[:, None], lower, 0.0)

    # one column per group and slot where it is on, unless the envelope pins it at full output
    col_mask = g_on & (g_lower < 1.0) if reduce else g_on
    group_level = np.where(g_on & ~col_mask, g_lower, 0.0)
    col_g, col_t = np.nonzero(col_mask)
    n_col = col_g.size
    col_of = np.full((n_g, t_n), -1, dtype=np.int64)
    col_of[col_g, col_t] = np.arange(n_col)
    a_g = g_power * (1.0 - f)  # W per unit level of each group
    a_col = np.asarray(a_g[col_g], dtype=np.float64)

    # ramp pairs: -r <= x[t] - x[t-1] <= r
    ramp_hi = np.array([], dtype=np.int64)
    ramp_lo = np.array([], dtype=np.int64)
    if r < 1.0 and t_n > 1:
        link = col_mask[:, 1:] & col_mask[:, :-1]
        if reduce:  # the bounds [envelope, 1] already keep this step within the ramp
            link &= ((1.0 - g_lower[:, :-1]) > r) | ((1.0 - g_lower[:, 1:]) > r)
        rg, rt = np.nonzero(link)
        ramp_hi, ramp_lo = col_of[rg, rt + 1], col_of[rg, rt]

    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[FloatArray] = []
    row_lo: list[FloatArray] = []
    row_hi: list[FloatArray] = []
    n_row = 0

    # cabinet caps: sum of a_g x over the cabinet's columns <= cap - constant power
    const_light = np.where(on, pw[:, None] * (f + (1.0 - f) * base_level), 0.0)
    const_light[~fixed] = np.where(on[~fixed], pw[~fixed, None] * f, 0.0)
    const_group = a_g[:, None] * group_level
    p_const = _sum_by_cabinet(problem, const_light)
    np.add.at(p_const, g_cab, const_group)
    caps = _caps(problem)
    rhs = caps - p_const
    p_var = np.zeros((m, t_n))
    np.add.at(p_var, (g_cab[col_g], col_t), a_col)
    need = np.isfinite(caps) & (p_var > 0)
    if reduce:  # drop caps that full output cannot reach
        need &= p_var > rhs
    cap_row = np.full((m, t_n), -1, dtype=np.intp)
    ci, ct = np.nonzero(need)
    cap_row[ci, ct] = np.arange(ci.size)
    sel = cap_row[g_cab[col_g], col_t]
    use = sel >= 0
    rows.append(sel[use].astype(np.int64))
    cols.append(np.flatnonzero(use).astype(np.int64))
    vals.append(a_col[use])
    row_lo.append(np.full(ci.size, -np.inf))
    row_hi.append(rhs[ci, ct])
    n_row += ci.size

    # energy budget (kWh keeps the row well scaled): one energy column per cabinet,
    # e_c = its columns' energy, and sum(e_c) <= budget; a dense row slows HiGHS badly
    budget_row = -1
    n_extra = 0
    budget = problem.energy_budget_wh
    if budget is not None and n_col:
        e_const = float((const_light * h[None, :]).sum() + (const_group * h[None, :]).sum())
        b_rhs = (budget - e_const) / 1000.0
        b_coef = a_col * h[col_t] / 1000.0
        if not reduce or b_coef.sum() > b_rhs:
            cabs, e_of = np.unique(g_cab[col_g], return_inverse=True)
            n_extra = cabs.size
            e_cols = n_col + np.arange(n_extra, dtype=np.int64)
            e_rows = n_row + np.arange(n_extra, dtype=np.int64)
            rows += [e_rows[e_of.reshape(-1)], e_rows]
            cols += [np.arange(n_col, dtype=np.int64), e_cols]
            vals += [b_coef, -np.ones(n_extra)]
            row_lo.append(np.zeros(n_extra))
            row_hi.append(np.zeros(n_extra))
            n_row += n_extra
            budget_row = n_row
            rows.append(np.full(n_extra, n_row, dtype=np.int64))
            cols.append(e_cols)
            vals.append(np.ones(n_extra))
            row_lo.append(np.array([-np.inf]))
            row_hi.append(np.array([b_rhs]))
            n_row += 1

    matrix = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_row, n_col + n_extra),
    )
    return _ArrayLp(
        cost=np.concatenate([-g_gain[col_g, col_t], np.zeros(n_extra)]),
        col_lower=np.concatenate([g_lower[col_g, col_t], np.zeros(n_extra)]),
        col_upper=np.concatenate([np.ones(n_col), np.full(n_extra, np.inf)]),
        matrix=matrix,
        row_lower=np.concatenate(row_lo),
        row_upper=np.concatenate(row_hi),
        ramp=r,
        ramp_hi=ramp_hi.astype(np.int64),
        ramp_lo=ramp_lo.astype(np.int64),
        col_group=col_g.astype(np.intp),
        col_slot=col_t.astype(np.intp),
        group_level=group_level,
        light_group=light_group,
        base_level=base_level,
        cap_row=cap_row,
        budget_row=budget_row,
        col_power=a_col,
        col_cap_row=sel.astype(np.intp),
        col_energy=a_col * h[col_t] / 1000.0,
    )


def _ramp_block(lp: _ArrayLp, pairs: npt.NDArray[np.int64]) -> sp.csr_matrix:
    k = pairs.size
    n_cols = lp.cost.size
    data = np.tile([1.0, -1.0], k)
    idx = np.column_stack([lp.ramp_hi[pairs], lp.ramp_lo[pairs]]).ravel()
    return sp.csr_matrix((data, idx, np.arange(0, 2 * k + 1, 2)), shape=(k, n_cols))


def _greedy_basis(lp: _ArrayLp) -> tuple[IntArray, IntArray] | None:
    """Return an optimal basis ``(col_status, row_status)`` of ``lp`` without ramp rows.

    Without ramps the LP is a fractional knapsack with nested (laminar) capacities: each
    level column uses ``col_power`` W of its cap row and ``col_energy`` kWh of the budget per
    unit of level. Its feasible set, in the budget each column spends above its lower bound, is
    a polymatroid, so filling columns by decreasing gain per kWh, each as far as its cap row and
    the budget let it, is optimal. The column that stops at its cap row is basic with the row at
    its upper bound, the one that exhausts the budget is basic with the budget row at its upper
    bound; the reduced costs then have the optimal signs (gain per kWh above the budget's
    multiplier at upper, below at lower, rescaled by each binding row's multiplier). HiGHS
    re-solves from it in a handful of pivots (none in exact arithmetic) instead of thousands,
    which keeps the result exactly the LP optimum. Statuses are 0 lower, 1 basic, 2 upper;
    ``None`` when the count of basic variables does not match (never expected).
    """
    k = lp.n_level_cols
    n_rows = lp.row_lower.size
    n_cap = int((lp.cap_row >= 0).sum())
    gain = -lp.cost[:k]
    lo, up = lp.col_lower[:k], lp.col_upper[:k]
    a, row = lp.col_power, lp.col_cap_row
    room = a * (up - lo)  # W each column can add above its lower bound
    cand = np.flatnonzero((gain > 0) & (room > 0))
    per_w = lp.col_energy / a  # kWh per W of each column (one value per slot)
    order = cand[np.argsort(-(gain[cand] / (a[cand] * per_w[cand])), kind="stable")]

    # fill as far as the cap rows allow, each row in the global order
    cap_left = lp.row_upper[:n_cap].copy()
    has_row = row >= 0
    np.subtract.at(cap_left, row[has_row], (a * lo)[has_row])
    fill = room[order]
    r_o = row[order]
    in_row = np.flatnonzero(r_o >= 0)
    srt = in_row[np.argsort(r_o[in_row], kind="stable")]
    r_s = r_o[srt]
    cum = np.cumsum(fill[srt])
    first = np.r_[True, r_s[1:] != r_s[:-1]] if srt.size else np.array([], dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(srt.size), 0))
    cum_row = cum - (cum[start] - fill[srt][start])  # cumulative fill within the row
    fill_s = np.clip(cap_left[r_s] - (cum_row - fill[srt]), 0.0, fill[srt])
    full = cum_row >= cap_left[r_s]
    crossing = full & (first | ~np.r_[False, full[:-1]])
    fill[srt] = fill_s

    # then stop where the budget runs out
    cut = order.size
    if lp.budget_row >= 0:
        left = lp.row_upper[lp.budget_row] - float((lp.col_energy * lo).sum())
        cum_e = np.cumsum(fill * per_w[order])
        cut = int(np.searchsorted(cum_e, left, side="right"))

    col = np.zeros(lp.cost.size, dtype=np.intp)
    col[k:] = 1  # energy columns
    pos = np.arange(order.size)
    col[order[(pos < cut) & (fill >= room[order])]] = 2
    cross_pos = srt[crossing]
    cross_pos = cross_pos[cross_pos < cut]
    col[order[cross_pos]] = 1
    rows = np.ones(n_rows, dtype=np.intp)
    rows[r_o[cross_pos]] = 2
    rows[n_cap:] = 0  # energy rows (equalities) and the budget row
    if lp.budget_row >= 0:
        if cut < order.size:
            col[order[cut]] = 1
            rows[lp.budget_row] = 2
        else:
            rows[lp.budget_row] = 1
    if int((col == 1).sum() + (rows == 1).sum()) != n_rows:
        return None
    return col, rows


_LAZY_WINDOW = 1  # with each violated ramp pair, add the pairs this many slots either side
_RAMP_TOL = 1e-9


def _new_highs(*, msg: bool) -> Any:
    """A ``highspy.Highs``; quiet unless ``msg``.

    HiGHS prints its banner to the process's standard output (file descriptor 1, written by C,
    whatever Python's ``sys.stdout`` is, as in a notebook) when the first instance is made,
    before any option can be set, so descriptor 1 is pointed at ``os.devnull`` for that moment.
    """
    import highspy

    if msg:
        return highspy.Highs()  # type: ignore[no-untyped-call]
    sys.stdout.flush()
    fd = 1
    try:
        saved = os.dup(fd)
    except OSError:  # no standard output at all: nothing to keep quiet
        return highspy.Highs()  # type: ignore[no-untyped-call]
    try:
        with Path(os.devnull).open("w") as null:
            os.dup2(null.fileno(), fd)
            return highspy.Highs()  # type: ignore[no-untyped-call]
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _run_highs(
    lp: _ArrayLp, *, lazy: bool, time_limit: float | None, msg: bool
) -> tuple[str, FloatArray, FloatArray, int]:
    """Solve with highspy; return (condition, column values, row duals, ramp rows used).

    With ``lazy``, ramp rows start out of the model and the first LP starts from the optimal
    basis of :func:`_greedy_basis`; the ramp rows the current solution violates (with their
    neighbours) are added before re-solving from the current basis, until none is violated.
    The last LP is a relaxation of the full one whose optimum meets every ramp, so it is an
    optimum of the full LP, and its duals (0 for the rows left out) are valid duals.
    """
    import highspy

    t_start = time.perf_counter()
    h = _new_highs(msg=msg)
    h.setOptionValue("output_flag", bool(msg))
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("presolve", "off")  # the reductions above are what presolve would find
    # Devex is cheap with many columns from a cold start; from the greedy basis (``lazy``) the
    # few thousand pivots of the ramp rows go faster with dual steepest edge
    h.setOptionValue("simplex_dual_edge_weight_strategy", 2 if lazy else 1)
    n_pairs = lp.ramp_hi.size
    added = np.zeros(n_pairs, dtype=bool)
    matrix = lp.matrix
    row_lower, row_upper = lp.row_lower, lp.row_upper
    if not lazy and n_pairs:
        added[:] = True
        matrix = sp.vstack([matrix, _ramp_block(lp, np.arange(n_pairs)).tocsc()]).tocsc()
        row_lower = np.concatenate([row_lower, np.full(n_pairs, -lp.ramp)])
        row_upper = np.concatenate([row_upper, np.full(n_pairs, lp.ramp)])
    model = highspy.HighsLp()
    model.num_col_ = int(lp.cost.size)
    model.num_row_ = int(row_lower.size)
    model.col_cost_ = lp.cost
    model.col_lower_ = lp.col_lower
    model.col_upper_ = lp.col_upper
    model.row_lower_ = row_lower
    model.row_upper_ = row_upper
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    model.a_matrix_.index_ = matrix.indices.astype(np.int32)
    model.a_matrix_.value_ = matrix.data
    h.passModel(model)
    if lazy:
        start = _greedy_basis(lp)
        if start is not None:
            bs = highspy.HighsBasisStatus
            by_code = [bs.kLower, bs.kBasic, bs.kUpper]
            basis = highspy.HighsBasis()
            basis.col_status = [by_code[v] for v in start[0].tolist()]
            basis.row_status = [by_code[v] for v in start[1].tolist()]
            h.setBasis(basis)
    group = lp.col_group
    while True:
        if time_limit is not None:
            left = time_limit - (time.perf_counter() - t_start)
            h.setOptionValue("time_limit", max(left, 1e-3))
        h.run()
        condition = h.modelStatusToString(h.getModelStatus())
        if condition != "Optimal" or not n_pairs:
            break
        x = np.asarray(h.getSolution().col_value)
        step = np.abs(x[lp.ramp_hi] - x[lp.ramp_lo])
        bad = np.flatnonzero((step > lp.ramp + _RAMP_TOL) & ~added)
        if bad.size == 0:
            break
        pick = np.zeros(n_pairs, dtype=bool)
        g_hi = group[lp.ramp_hi]
        for d in range(-_LAZY_WINDOW, _LAZY_WINDOW + 1):
            j = np.clip(bad + d, 0, n_pairs - 1)
            pick[j[g_hi[j] == g_hi[bad]]] = True
        new = np.flatnonzero(pick & ~added)
        added[new] = True
        block = _ramp_block(lp, new)
        h.addRows(
            int(new.size),
            np.full(new.size, -lp.ramp),
            np.full(new.size, lp.ramp),
            int(block.nnz),
            block.indptr[:-1].astype(np.int32),
            block.indices.astype(np.int32),
            block.data,
        )
    sol = h.getSolution()
    dual = np.asarray(sol.row_dual)[: lp.row_lower.size]
    return condition, np.asarray(sol.col_value), dual, int(added.sum())


def _solve_arrays(
    problem: DimmingProblem,
    objective: str,
    reduce: bool,
    time_limit: float | None,
    msg: bool,
    t0: float,
) -> DimmingSolution:
    lp = _build_array_lp(problem, objective, reduce)
    t1 = time.perf_counter()
    n_col = lp.cost.size
    if n_col == 0:
        condition, x, dual, n_ramp = "closed form", np.array([]), np.zeros(lp.row_lower.size), 0
    else:
        condition, x, dual, n_ramp = _run_highs(lp, lazy=reduce, time_limit=time_limit, msg=msg)
    t2 = time.perf_counter()
    status = "ok" if condition == "closed form" else _status_of(condition)
    method = "fast" if reduce else "highs"
    n_row = lp.row_lower.size + n_ramp
    if status != "ok":
        return DimmingSolution(
            status=status,
            condition=condition,
            level=_nan_level(problem),
            objective=math.nan,
            build_s=t1 - t0,
            solve_s=t2 - t1,
            method=method,
            objective_name=objective,
            n_columns=n_col,
            n_rows=n_row,
        )
    k = lp.n_level_cols
    g_level = lp.group_level.copy()
    g_level[lp.col_group, lp.col_slot] = np.clip(x[:k], lp.col_lower[:k], lp.col_upper[:k])
    level = lp.base_level.copy()
    in_lp = lp.light_group >= 0
    level[in_lp] = g_level[lp.light_group[in_lp]]
    level = np.where(problem.on, level, 0.0)
    cap_dual = np.zeros_like(problem.cabinet_cap_w)
    has = lp.cap_row >= 0
    cap_dual[has] = -dual[lp.cap_row[has]]
    budget_dual: float | None = None
    if problem.energy_budget_wh is not None:
        budget_dual = -float(dual[lp.budget_row]) / 1000.0 if lp.budget_row >= 0 else 0.0
    return DimmingSolution(
        status="ok",
        condition=condition,
        level=level,
        objective=objective_value(problem, level, objective),
        build_s=t1 - t0,
        solve_s=t2 - t1,
        method=method,
        objective_name=objective,
        budget_dual=budget_dual,
        cap_dual=cap_dual,
        n_columns=n_col,
        n_rows=n_row,
    )
