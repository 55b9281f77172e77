"""Stage plans on a junction model: its stages timed, with walks and intergreens, and Webster's.

:func:`stage_plan` turns stage greens into a :class:`~twin.scenarios.signals.SignalPlan` that is
safe by construction on a :class:`~twin.signals.junction.JunctionModel`: the all-red is the
largest the junction's intergreen matrix asks for between a stage and the next, each crossing
walks from the start of the first stage that serves it until its clearance ends just as the
next conflicting green starts, and the plan is validated (:func:`twin.signals.safety.validate`)
before it is returned. :func:`stage_minimums` gives the least green of each stage (the minimum
green, or more where a crossing needs its walk and clearance); :func:`webster` sizes the cycle
and splits by Webster's method (Webster 1958; DESIGN section 4):
``C0 = (1.5 L + 5) / (1 - Y)``, ``g_k = (y_k / Y)(C0 - L)``.

>>> from twin.signals.junction import crossroads_graph, approaches_of, build_junction
>>> g = crossroads_graph()
>>> m = build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))
>>> p = webster(m, {"a:1": 600.0, "a:3": 500.0, "a:2": 300.0, "a:4": 200.0})
>>> round(p.cycle_s, 1), [round(ph.green_s, 1) for ph in p.phases], round(p.all_red_s, 1)
(40.0, [20.1, 10.1], 1.9)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from twin._errors import InputValidationError
from twin.scenarios.signals import (
    CYCLE_MAX_S,
    CYCLE_MIN_S,
    SATURATION_FLOW_PCU_H_LANE,
    Phase,
    SignalPlan,
)
from twin.signals.junction import AMBER_S, JunctionModel
from twin.signals.safety import SafetyRules, validate

__all__ = [
    "all_red_for",
    "split_greens",
    "stage_minimums",
    "stage_plan",
    "stage_ratios",
    "webster",
]

_EPS = 1e-6


def _ceil(x: float, step: float = 0.1) -> float:
    return math.ceil(x / step - 1e-9) * step


def all_red_for(
    model: JunctionModel, stages: Sequence[Sequence[str]], *, amber_s: float = AMBER_S
) -> float:
    """The all-red a stage sequence needs: the largest vehicle intergreen at a stage change."""
    n = len(stages)
    need = 0.0
    for k in range(n):
        now, nxt = set(stages[k]), set(stages[(k + 1) % n])
        for a in now - nxt:
            if model.group(a).kind != "vehicle":
                continue
            for b in nxt - now:
                ig = model.intergreen(a, b)
                if math.isfinite(ig):
                    need = max(need, ig - amber_s)
    return _ceil(need)


def _runs(stages: Sequence[Sequence[str]], p: str) -> list[tuple[int, int]]:
    """(first stage, number of stages) of each run of consecutive stages serving ``p``."""
    n = len(stages)
    inside = [p in s for s in stages]
    if all(inside):
        return [(0, n)]
    runs = []
    for k in range(n):
        if inside[k] and not inside[k - 1]:
            length = 1
            while inside[(k + length) % n]:
                length += 1
            runs.append((k, length))
    return runs


def stage_minimums(
    model: JunctionModel,
    stages: Sequence[Sequence[str]] | None = None,
    *,
    rules: SafetyRules | None = None,
    amber_s: float = AMBER_S,
    all_red_s: float | None = None,
) -> list[float]:
    """Least green of each stage (s): the minimum green, or what a crossing's walk needs.

    A crossing served by stages ``k .. k+r-1`` walks from the start of ``k`` and must end its
    clearance by the next conflicting green: the greens of the run plus ``r`` intergreens cover
    ``min_walk_s`` plus the clearance; the other stages of the run count at their minimum.
    """
    r = rules or SafetyRules()
    stages = model.stages if stages is None else stages
    red = all_red_for(model, stages, amber_s=amber_s) if all_red_s is None else all_red_s
    inter = amber_s + red
    mins = [r.min_green_s] * len(stages)
    for p in model.pedestrian_groups:
        for k, length in _runs(stages, p):
            if length == len(stages):
                continue
            need = r.min_walk_s + model.clearance_s(p) - length * inter
            need -= (length - 1) * r.min_green_s
            mins[k] = max(mins[k], _ceil(need))
    return mins


def stage_ratios(
    model: JunctionModel,
    flows_pcu_h: Mapping[str, float],
    *,
    stages: Sequence[Sequence[str]] | None = None,
    lanes: Mapping[str, int] | None = None,
    saturation_flow: float = SATURATION_FLOW_PCU_H_LANE,
) -> list[float]:
    """Critical flow ratio ``y_k`` of each stage: the largest ``q / s`` of its vehicle groups.

    A group served by several stages shares its flow between them.
    """
    stages = model.stages if stages is None else stages
    count = {g: sum(g in s for s in stages) for g in model.vehicle_groups}
    out = []
    for s in stages:
        ys = [0.0]
        for g in s:
            if model.group(g).kind != "vehicle":
                continue
            q = float(flows_pcu_h.get(g, 0.0))
            if not math.isfinite(q) or q < 0:
                msg = f"flows_pcu_h[{g!r}]: {q!r} is not a non-negative flow (pcu/h)"
                raise InputValidationError(msg)
            n = max(int((lanes or {}).get(g, 1)), 1)
            ys.append(q / (n * saturation_flow) / max(count[g], 1))
        out.append(max(ys))
    return out


def stage_plan(
    model: JunctionModel,
    greens_s: Sequence[float],
    *,
    stages: Sequence[Sequence[str]] | None = None,
    offset_s: float = 0.0,
    amber_s: float = AMBER_S,
    all_red_s: float | None = None,
    rules: SafetyRules | None = None,
    plan_id: str = "",
    check: bool = True,
) -> SignalPlan:
    """A validated plan from the greens of the stages.

    Parameters
    ----------
    model : JunctionModel
    greens_s : sequence of float
        Green of each stage (s).
    stages : sequence of sequences of group ids, optional
        Default ``model.stages``.
    offset_s : float
        Start of the first stage's green after the common origin (s), taken modulo the cycle.
    amber_s, all_red_s : float
        Amber (3 s) and all-red (default :func:`all_red_for`).
    rules : SafetyRules, optional
    plan_id : str
    check : bool
        Validate (raises :class:`~twin._errors.UnsafePlanError`).

    Returns
    -------
    SignalPlan
        Cycle ``sum(greens) + n (amber + all_red)``; each crossing walks from the start of the
        first stage of each run that serves it, until its clearance ends as the next
        conflicting group's green starts.
    """
    r = rules or SafetyRules()
    stages = model.stages if stages is None else stages
    if len(greens_s) != len(stages):
        msg = f"greens_s: {len(greens_s)} greens for {len(stages)} stages"
        raise InputValidationError(msg)
    red = all_red_for(model, stages, amber_s=amber_s) if all_red_s is None else all_red_s
    inter = amber_s + red
    greens = [float(g) for g in greens_s]
    n = len(stages)
    starts = [sum(greens[:k]) + k * inter for k in range(n)]
    cycle = sum(greens) + n * inter
    for bound in (CYCLE_MIN_S, CYCLE_MAX_S):  # a cycle at its bound up to rounding is the bound
        if abs(cycle - bound) < 1e-6:
            cycle = bound
    walks: list[dict[str, float]] = [{} for _ in stages]
    for p in model.pedestrian_groups:
        for k, length in _runs(stages, p):
            if length == n:
                walks[k][p] = cycle  # never in conflict: always walking
                continue
            nxt = (k + length) % n
            t_next = starts[nxt] + (cycle if nxt <= k else 0.0)
            clear = max(
                (model.intergreen(p, b) for b in stages[nxt] if model.conflicts(p, b)),
                default=model.clearance_s(p),
            )
            walks[k][p] = max(math.floor((t_next - clear - starts[k]) * 10 + 1e-6) / 10, 0.1)
    phases = []
    for k, st in enumerate(stages):
        edges = tuple(e for g in st if (e := model.group(g).edge) is not None)
        phases.append((edges, greens[k], tuple(walks[k].items())))
    plan = SignalPlan(
        model.id,
        cycle,
        offset_s % cycle,
        tuple(Phase(e, g, w) for e, g, w in phases),
        amber_s=amber_s,
        all_red_s=red,
        min_green_s=r.min_green_s,
        plan_id=plan_id,
    )
    if check:
        validate(plan, model, rules=r)
    return plan


def webster(
    model: JunctionModel,
    flows_pcu_h: Mapping[str, float],
    *,
    lanes: Mapping[str, int] | None = None,
    stages: Sequence[Sequence[str]] | None = None,
    saturation_flow: float = SATURATION_FLOW_PCU_H_LANE,
    rules: SafetyRules | None = None,
    offset_s: float = 0.0,
    cycle_s: float | None = None,
    plan_id: str = "",
) -> SignalPlan:
    """Webster's cycle and splits on a junction model, safe by construction.

    Parameters
    ----------
    model : JunctionModel
    flows_pcu_h : mapping group id -> float
        Arrival flow of each vehicle group (pcu/h).
    lanes : mapping group id -> int, optional
        Lanes of each approach (default 1).
    stages : optional
        Default ``model.stages``.
    saturation_flow : float
        Per lane (pcu/h/lane).
    rules : SafetyRules, optional
    offset_s : float
    cycle_s : float, optional
        Impose the cycle (a coordinated corridor's common cycle) instead of Webster's.
    plan_id : str

    Returns
    -------
    SignalPlan
        Lost time ``L = n (amber + all_red)``; ``C0`` clamped to 40-120 s (120 s when
        ``Y >= 1``); greens ``(y_k / Y)(C - L)`` raised to :func:`stage_minimums`, the others
        cut back (not below their minimums) so that the cycle stays at most 120 s.

    Raises
    ------
    InputValidationError
        If the minimum greens alone exceed the longest cycle.
    """
    r = rules or SafetyRules()
    stages = model.stages if stages is None else stages
    red = all_red_for(model, stages)
    inter = AMBER_S + red
    n = len(stages)
    mins = stage_minimums(model, stages, rules=r, all_red_s=red)
    ys = stage_ratios(
        model, flows_pcu_h, stages=stages, lanes=lanes, saturation_flow=saturation_flow
    )
    lost = n * inter
    y_sum = sum(ys)
    if cycle_s is not None:
        cycle = float(cycle_s)
    elif y_sum >= 1.0:
        cycle = CYCLE_MAX_S
    else:
        cycle = min(max((1.5 * lost + 5.0) / (1.0 - y_sum), CYCLE_MIN_S), CYCLE_MAX_S)
    cycle_cap = min(r.max_cycle_s, CYCLE_MAX_S) if cycle_s is None else float(cycle_s)
    if sum(mins) + lost > cycle_cap + _EPS:
        msg = (
            f"junction {model.id}: the minimum greens {[round(m, 1) for m in mins]} s and "
            f"intergreens need a {sum(mins) + lost:.1f} s cycle, more than {cycle_cap:g} s"
        )
        raise InputValidationError(msg)
    shares = [y / y_sum for y in ys] if y_sum > 0 else [1.0 / n] * n
    greens = split_greens(shares, mins, max(cycle, sum(mins) + lost) - lost)
    if cycle_s is None:
        # a stage held at its minimum green (a pedestrian crossing of a wide street) is time
        # the other stages cannot use: it counts as lost time in Webster's formula, which the
        # other stages' ratios alone then size; otherwise a 40 s cycle leaves a busy street
        # what the crossing does not take (8.7 s of 40 on Avenue de Toulouse, x = 1.9)
        for _ in range(n):
            held = [k for k in range(n) if greens[k] <= mins[k] + _EPS and ys[k] * cycle < mins[k]]
            y_rest = sum(ys[k] for k in range(n) if k not in held)
            if not held or y_rest <= 0 or y_rest >= 1.0:
                break
            lost_held = lost + sum(mins[k] for k in held)
            again = min(max((1.5 * lost_held + 5.0) / (1.0 - y_rest), CYCLE_MIN_S), CYCLE_MAX_S)
            if again <= cycle + _EPS:
                break
            cycle = again
            greens = split_greens(shares, mins, max(cycle, sum(mins) + lost) - lost)
    if sum(greens) + lost > cycle_cap + _EPS:
        greens = split_greens(shares, mins, cycle_cap - lost)
    return stage_plan(
        model, greens, stages=stages, offset_s=offset_s, all_red_s=red, rules=r, plan_id=plan_id
    )


def split_greens(shares: Sequence[float], mins: Sequence[float], total: float) -> list[float]:
    """Split ``total`` in proportion to ``shares``, no part below its minimum.

    >>> split_greens([0.2, 0.6], [7.0, 7.0], 40.0)
    [10.0, 30.0]
    >>> split_greens([0.05, 0.6], [7.0, 7.0], 40.0)
    [7.0, 33.0]
    """
    fixed: dict[int, float] = {}
    while True:
        free = [k for k in range(len(shares)) if k not in fixed]
        rest = total - sum(fixed.values())
        w = sum(shares[k] for k in free)
        out = dict(fixed)
        for k in free:
            out[k] = rest * shares[k] / w if w > 0 else rest / max(len(free), 1)
        low = [k for k in free if out[k] < mins[k] - _EPS]
        if not low:
            return [out[k] for k in range(len(shares))]
        for k in low:
            fixed[k] = mins[k]
        if len(fixed) == len(shares):
            return [fixed[k] for k in range(len(shares))]
