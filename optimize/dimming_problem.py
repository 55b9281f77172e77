"""The dimming problem of one night, on plain arrays: data, power curve, envelope, objectives.

``n`` lights, ``T`` time slots. Each light ``i`` runs at a dim level ``x[i, t]`` in
``[min_level[i], 1]`` unless a commune switch-off window forces it off (``forced_off``: level 0,
power 0). A light that is on draws ``power_w[i] * (driver_floor + (1 - driver_floor) * x[i, t])``
(:func:`twin.energy.power.drawn_fraction`, the one definition of the power curve). The model,
its constraints and objectives are described in :mod:`optimize.dimming_lp`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import numpy as np
import numpy.typing as npt

from twin._errors import InputValidationError
from twin.energy.power import DRIVER_FLOOR, drawn_power_w

__all__ = [
    "OBJECTIVES",
    "METHODS",
    "SERVICE_TIEBREAK",
    "DimmingProblem",
    "DimmingSolution",
    "Method",
    "Objective",
    "cabinet_power_w",
    "energy_wh",
    "envelope_levels",
    "lower_bound_levels",
    "min_energy_levels",
    "objective_value",
    "power_w",
    "ramp_envelope",
]

Objective = Literal["service", "cost", "min_energy"]
Method = Literal["fast", "highs", "pulp"]
OBJECTIVES: tuple[str, ...] = ("service", "cost", "min_energy")
"""Objective names accepted by :func:`optimize.dimming_lp.build_model` and ``solve``."""
METHODS: tuple[str, ...] = ("fast", "highs", "pulp")
"""Solution methods accepted by :func:`optimize.dimming_lp.solve`."""
SERVICE_TIEBREAK = 1e-5
"""Cost of one light-slot at full output in the ``service`` objective, as a share of max weight."""

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
    service_weight_kwh
        For the ``service`` objective: the kWh that one unit of weighted light above the
        requirement (weight x level x slot) is worth; the objective is then that value minus
        the energy drawn, so the plan says what it spends. ``None``: the legacy tie-break.
    max_level
        ``(n, T)`` highest level per light and slot, in ``[0, 1]`` (default 1): the EN 13201-2
        rule that a P class's average may not exceed 1.5 times the class value
        (:func:`twin.assets.lighting.p_cap_fraction`), as an upper bound on output. It must
        leave room for the ramp-feasible lower envelope of the requirement.

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
    driver_floor: float = DRIVER_FLOOR
    min_level: FloatArray | float = 0.0
    forced_off: BoolArray | None = None
    weight: FloatArray | float | None = None
    cabinet_cap_w: FloatArray | float | None = None
    energy_budget_wh: float | None = None
    ramp: float = 1.0
    price_eur_per_kwh: FloatArray | None = None
    service_weight_kwh: float | None = None
    max_level: FloatArray | float | None = None

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

        if self.service_weight_kwh is not None:
            sw = float(self.service_weight_kwh)
            if not (math.isfinite(sw) and sw >= 0):
                _bad("service_weight_kwh", f"{sw} is not a finite weight >= 0 kWh")
            put(self, "service_weight_kwh", sw)

        upper = _float_array(
            "max_level", 1.0 if self.max_level is None else self.max_level, (n, t_n)
        )
        if not ((upper >= 0).all() and (upper <= 1).all()):
            _bad("max_level", "levels must be in [0, 1]")
        put(self, "max_level", upper)
        if self.max_level is not None:
            env = ramp_envelope(self)
            below = off.__invert__() & (upper < env - 1e-9)
            if below.any():
                i, t = (int(v[0]) for v in np.nonzero(below))
                _bad(
                    "max_level",
                    f"light '{light[i]}', slot {t}: {upper[i, t]:.4g} is below the level the "
                    f"requirement and the ramps need there ({env[i, t]:.4g})",
                )

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
    """Return the ``min_energy`` plan: the ramp-feasible lower envelope of the requirement.

    The envelope (:func:`ramp_envelope`) is the pointwise smallest plan that meets every
    requirement and ramp limit; power rises with the level, so it also has the least energy of
    all such plans (and the least cost under any non-negative tariff). Caps and a budget are
    upper limits on power and energy: the envelope meets them if any plan does, so it is the
    exact optimum whenever the problem is feasible (:func:`check_feasibility` says when not).
    With no ramp limit it is ``max(required, min_level)`` slot by slot.

    Examples
    --------
    >>> p = DimmingProblem(light=["a"], time=np.array(["2024-12-01T17:00"], "datetime64[ns]"),
    ...     slot_h=0.25, power_w=50.0, required=[[0.05]], cabinet_index=[0], cabinet=["c"],
    ...     min_level=0.1)
    >>> min_energy_levels(p).tolist()
    [[0.1]]
    """
    return ramp_envelope(problem)


def power_w(problem: DimmingProblem, level: npt.ArrayLike) -> FloatArray:
    """Return the ``(n, T)`` power in W of a level plan (0 W where forced off)."""
    x = np.asarray(level, dtype=np.float64)
    return drawn_power_w(problem.power_w, x, driver_floor=problem.driver_floor, on=problem.on)


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
    return envelope_levels(lower_bound_levels(problem), problem.on, problem.ramp)


def envelope_levels(lb: npt.ArrayLike, on: npt.ArrayLike, ramp: float) -> FloatArray:
    """The ramp-feasible lower envelope of a floor ``lb`` on plain arrays, shape ``(n, T)``.

    ``L[i, t] = max_s (lb[i, s] - ramp * |t - s|)`` over the slots ``s`` of the on-stretch of
    ``t`` (0 where ``on`` is False). Lights are independent, so one pass over the slots handles
    all of them at once (what the year of nights runs on, :mod:`optimize.dimming_year`).

    Examples
    --------
    >>> envelope_levels([[0.0, 1.0, 0.0, 0.0]], [[True] * 4], 0.3).round(2).tolist()
    [[0.7, 1.0, 0.7, 0.4]]
    """
    lb_a = np.asarray(lb, dtype=np.float64)
    on_b = np.broadcast_to(np.asarray(on, dtype=bool), lb_a.shape)
    r = float(ramp)
    if r >= 1.0 or lb_a.shape[1] < 2:
        return np.where(on_b, lb_a, 0.0)
    # slot-major copies, so that each step of the passes reads contiguous memory
    env = np.ascontiguousarray(np.where(on_b, lb_a, 0.0).T)
    link = np.ascontiguousarray(on_b[:, 1:] & on_b[:, :-1]).T.copy()  # (T-1, n): t-1 and t on
    t_n = env.shape[0]
    tmp = np.empty(env.shape[1])
    for t in range(1, t_n):  # forward: max over s <= t
        np.subtract(env[t - 1], r, out=tmp)
        np.maximum(env[t], tmp, out=tmp, where=link[t - 1])
        env[t] = np.where(link[t - 1], tmp, env[t])
    for t in range(t_n - 2, -1, -1):  # backward: max over s >= t
        np.subtract(env[t + 1], r, out=tmp)
        env[t] = np.where(link[t], np.maximum(env[t], tmp), env[t])
    return np.asarray(env.T, dtype=np.float64)


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
    if objective == "service" and problem.service_weight_kwh is not None:
        k = problem.service_weight_kwh
        w = _weight(problem)
        c = np.where(on, k * w - pw * (1 - f) * h / 1000.0, 0.0)
        c0 = -float(np.where(on, k * w * problem.required + pw * f * h / 1000.0, 0.0).sum())
        return c, c0, 1
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
