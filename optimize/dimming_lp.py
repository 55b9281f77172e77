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
    the night's energy is at most ``energy_budget_wh`` (optional: the contract counts energy
    over a year, so no nightly budget is set by default).

Objectives:

``"min_energy"`` (minimised, closed form; the default of the nightly plan)
    the EN 13201 requirement of each slot is a hard floor and nothing is lit above what it and
    the ramp limits need: the ramp-feasible lower envelope (below), which is the exact optimum
    whenever the problem is feasible (every other constraint is an upper limit on power).
``"cost"`` (minimised)
    ``sum price[t] * energy[i, t]`` in EUR with ``price_eur_per_kwh``. With non-negative prices
    the envelope is optimal as well, so no LP is needed; negative prices (which markets do
    have) make it a real LP.
``"service"`` (maximised)
    ``sum w[i, t] * (x[i, t] - required[i, t])`` over the slots where the light is on: the
    footfall-weighted light given above the requirement. With ``service_weight_kwh`` (``k``)
    the objective is ``k * service - energy_kwh``: light above the standard is bought at the
    stated rate, and the plan's extra kWh over ``min_energy`` say what it spends. Without it (the
    legacy form) a tie-break subtracts ``SERVICE_TIEBREAK * max(weight) / e_ref`` per Wh
    (``e_ref`` is the mean full-output energy of one light over one slot), so that a light-slot
    at full output costs ``1e-5`` of the largest weight and only the budget and the caps hold
    the levels down.

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

The module is the entry point; the parts live in :mod:`optimize.dimming_problem` (data, power,
envelope, objectives), :mod:`optimize.dimming_feasibility` (the report that says what to relax),
:mod:`optimize.dimming_pulp` (the pulp model) and :mod:`optimize.dimming_fast` (the array path).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pulp

from optimize.dimming_fast import solve_arrays
from optimize.dimming_feasibility import (
    InfeasibilityReport,
    InfeasiblePlanError,
    _raise_if_infeasible,
    check_feasibility,
    constraint_violations,
)
from optimize.dimming_problem import (
    METHODS,
    OBJECTIVES,
    SERVICE_TIEBREAK,
    DimmingProblem,
    DimmingSolution,
    Method,
    Objective,
    _check_objective,
    cabinet_power_w,
    energy_wh,
    lower_bound_levels,
    min_energy_levels,
    objective_value,
    power_w,
    ramp_envelope,
)
from optimize.dimming_pulp import build_model, solve_pulp
from twin._errors import InputValidationError

__all__ = [
    "METHODS",
    "OBJECTIVES",
    "SERVICE_TIEBREAK",
    "DimmingProblem",
    "DimmingSolution",
    "InfeasibilityReport",
    "InfeasiblePlanError",
    "Method",
    "Objective",
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
        _raise_if_infeasible(problem)
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
        return solve_pulp(problem, objective, extra_functionality, time_limit, msg, t0)
    return solve_arrays(problem, objective, method == "fast", time_limit, msg, t0)
