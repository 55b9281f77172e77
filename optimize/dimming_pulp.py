"""The straightforward pulp model of a dimming problem: one variable per light and slot.

This is the model engineers read and extend (``extra_functionality``); every variable and
constraint is named. :mod:`optimize.dimming_fast` reaches the same optimum at metropolis scale.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pulp

from optimize import _highs, _pulp
from optimize.dimming_problem import (
    DimmingProblem,
    DimmingSolution,
    Objective,
    _caps,
    _check_objective,
    _linear_objective,
    _nan_level,
    _status_of,
    objective_value,
)
from twin._errors import InputValidationError

__all__ = ["build_model", "solve_pulp"]


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
    mx = np.asarray(problem.max_level)
    up = {k: max(float(mx[k]), low[k]) for k in keys}
    x = _pulp.add_variable_dict(model, "level", keys, low=low, up=up)
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


def solve_pulp(
    problem: DimmingProblem,
    objective: Objective,
    extra: Callable[[pulp.LpProblem, DimmingProblem], None] | None,
    time_limit: float | None,
    msg: bool,
    t0: float,
) -> DimmingSolution:
    """Build :func:`build_model`, solve it with pulp's HiGHS, read the plan and the duals."""
    model = build_model(problem, objective=objective, extra_functionality=extra)
    t1 = time.perf_counter()
    _highs.solve_quietly(model, msg=msg, time_limit=time_limit)
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
