"""Signal plans optimised: green splits by LP, bus priority, emergency preemption.

Every plan and every programme made here passes :func:`twin.signals.safety.validate` on its
junction model before it is returned.

* :func:`optimise_splits`: an LP (pulp + HiGHS) for the stage greens of one junction at a given
  cycle, with the pedestrian stages' minimums (walk plus clearance, :func:`stage_minimums`).
  ``objective="delay"`` minimises the flow-weighted uniform delay of Webster (1958),
  ``d = C (1 - g/C)^2 / (2 (1 - y))`` per approach, convex in ``g`` and written as the upper
  envelope of its tangents (an exact LP of the piecewise-linear convex function);
  ``objective="reserve"`` maximises the reserve capacity multiplier ``mu`` (Allsop 1972): every
  approach's capacity ``s g / C`` is at least ``mu q``. Returns the plan and an
  ``xr.Dataset`` of the solution.
* :func:`bus_priority`: green extension and early green for the stage of a bus approach (the
  two actions a Dijon-type priority gives a bus): the extended and the early programmes, each
  validated (the other stages keep their minimums, the cycle stays within 120 s).
* :func:`bus_call`: the controller's answer to one bus check-in (check-in / check-out bus
  priority): an early green if the bus's stage is red, an extension while the bus has not
  checked out if green, the other stages at no less than their minimums, back to the plan with
  its offset; a one-off programme validated over its horizon and the cycle before it.
* :func:`preemption`: a one-off sequence that gives green to an emergency vehicle's approach as
  soon as safely possible (current greens keep their minimum, then amber and all-red), holds it,
  and recovers to the coordinated plan by a transition stage that re-synchronises the offset;
  validated over its whole horizon.
* :func:`signal_delay`: the exact wait of a vehicle arriving at a signal at each second, with and
  without priority or preemption: the evaluation of bus delay and emergency travel time along a
  route, without queues (a vehicle that has priority is at the head of the queue).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pulp
import xarray as xr

from optimize._highs import solve_quietly
from optimize._pulp import add_variable, add_variable_dict
from twin._errors import InputValidationError, UnsafePlanError
from twin.scenarios.signals import SATURATION_FLOW_PCU_H_LANE, SignalPlan
from twin.signals.junction import AMBER_S, JunctionModel
from twin.signals.plans import all_red_for, stage_minimums, stage_plan, stage_ratios
from twin.signals.safety import (
    GroupProgram,
    SafetyRules,
    SignalProgram,
    program_of,
    validate,
)

__all__ = [
    "OBJECTIVES",
    "BusCall",
    "BusPriority",
    "solve_quietly",
    "optimise_splits",
    "preemption",
    "bus_call",
    "bus_priorities",
    "bus_priority",
    "signal_delay",
]

OBJECTIVES = ("delay", "reserve")

RESUME_CYCLES = 4
"""How many cycles after the hold :func:`preemption` looks for a green start to resume at."""


def optimise_splits(
    model: JunctionModel,
    flows_pcu_h: Mapping[str, float],
    *,
    cycle_s: float,
    objective: str = "delay",
    lanes: Mapping[str, int] | None = None,
    saturation_flow: float = SATURATION_FLOW_PCU_H_LANE,
    offset_s: float = 0.0,
    rules: SafetyRules | None = None,
    max_saturation: float = 0.95,
    plan_id: str = "",
) -> tuple[SignalPlan, xr.Dataset]:
    """Green splits of one junction by LP at a given cycle.

    Parameters
    ----------
    model : JunctionModel
    flows_pcu_h : mapping group id -> float
        Arrival flow of each vehicle group (pcu/h).
    cycle_s : float
        Cycle (s), e.g. Webster's, or a corridor's common cycle.
    objective : {"delay", "reserve"}
    lanes : mapping, optional
    saturation_flow : float
    offset_s : float
    rules : SafetyRules, optional
    max_saturation : float
        With ``objective="delay"``, each stage's critical degree of saturation is kept at most
        this where the cycle allows (a soft bound: its excess is penalised).
    plan_id : str

    Returns
    -------
    plan : SignalPlan
        Validated.
    solution : xarray.Dataset
        Dims ``stage``: ``green`` (s), ``minimum`` (s), ``y``; attrs ``objective``, ``value``,
        ``status``, ``build_s``, ``solve_s``, ``reserve_capacity`` (``mu``).
    """
    if objective not in OBJECTIVES:
        msg = f"objective: {objective!r} is not one of {OBJECTIVES}"
        raise InputValidationError(msg)
    r = rules or SafetyRules()
    stages = model.stages
    n = len(stages)
    red = all_red_for(model, stages)
    lost = n * (AMBER_S + red)
    mins = stage_minimums(model, stages, rules=r, all_red_s=red)
    if sum(mins) + lost > cycle_s + 1e-6:
        msg = (
            f"cycle_s: {cycle_s:g} s is shorter than the minimum greens and intergreens of "
            f"{model.id} ({sum(mins) + lost:.1f} s)"
        )
        raise InputValidationError(msg)
    ys = stage_ratios(
        model, flows_pcu_h, stages=stages, lanes=lanes, saturation_flow=saturation_flow
    )
    q_stage = []
    for s in stages:
        q = [float(flows_pcu_h.get(g, 0.0)) for g in s if model.group(g).kind == "vehicle"]
        q_stage.append(max(sum(q), 1e-6))
    t0 = time.perf_counter()
    sense = pulp.LpMinimize if objective == "delay" else pulp.LpMaximize
    prob = pulp.LpProblem(f"splits_{model.id.replace(':', '_')}", sense)
    g = add_variable_dict(prob, "g", range(n), low={k: mins[k] for k in range(n)})
    prob += (pulp.lpSum(g.values()) == cycle_s - lost, "cycle")
    if objective == "reserve":
        mu = add_variable(prob, "mu", low=0.0)
        # no flow on any stage (a junction the assignment leaves empty at the hour): the
        # reserve is unbounded; equal weights share the spare green evenly instead
        weights = ys if any(y > 0 for y in ys) else [1.0] * n
        for k in range(n):
            # capacity share g_k / C of stage k carries mu times its critical flow ratio
            prob += (weights[k] * cycle_s * mu <= g[k], f"reserve_{k}")
        prob += mu
    else:
        d = add_variable_dict(prob, "d", range(n), low=0.0)
        over = add_variable_dict(prob, "over", range(n), low=0.0)
        for k in range(n):
            y = min(ys[k], 0.99)
            # uniform delay C (1 - g/C)^2 / (2 (1 - y)): tangents at 12 greens
            for i, gg in enumerate(np.linspace(mins[k], cycle_s - lost, 12)):
                lam = gg / cycle_s
                val = cycle_s * (1 - lam) ** 2 / (2 * (1 - y))
                slope = -(1 - lam) / (1 - y)
                prob += (d[k] >= val + slope * (g[k] - gg), f"delay_{k}_{i}")
            # degree of saturation x = y C / g <= max_saturation, softly
            prob += (ys[k] * cycle_s - max_saturation * g[k] <= over[k], f"saturation_{k}")
        prob += pulp.lpSum(q_stage[k] * d[k] + 1e4 * over[k] for k in range(n))
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    status = solve_quietly(prob)
    solve_s = time.perf_counter() - t1
    if pulp.LpStatus[status] != "Optimal":
        msg = f"splits of {model.id}: the LP is {pulp.LpStatus[status]}"
        raise InputValidationError(msg)
    greens = [max(float(g[k].value()), mins[k]) for k in range(n)]
    # the greens sum to C - L up to the solver's tolerance: give the rest to the longest stage
    greens[int(np.argmax(greens))] += cycle_s - lost - sum(greens)
    plan = stage_plan(
        model, greens, stages=stages, offset_s=offset_s, all_red_s=red, rules=r, plan_id=plan_id
    )
    mu_val = min(greens[k] / (ys[k] * cycle_s) if ys[k] > 0 else math.inf for k in range(n))
    ds = xr.Dataset(
        {
            "green": ("stage", greens, {"units": "s", "long_name": "stage green"}),
            "minimum": ("stage", mins, {"units": "s", "long_name": "least green of the stage"}),
            "y": ("stage", ys, {"units": "1", "long_name": "critical flow ratio"}),
        },
        coords={"stage": np.arange(n)},
        attrs={
            "junction": model.id,
            "objective": objective,
            "value": float(pulp.value(prob.objective) or 0.0),
            "status": pulp.LpStatus[status],
            "cycle_s": cycle_s,
            "reserve_capacity": float(mu_val),
            "build_s": build_s,
            "solve_s": solve_s,
        },
    )
    return plan, ds


# ------------------------------------------------------------------------------------------------
# bus priority
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BusPriority:
    """Priority programmes of one junction for buses arriving on one approach.

    Attributes
    ----------
    junction, group : str
        The junction and the bus's approach (signal group).
    stage : int
        The stage that serves the approach.
    extend_s : float
        Longest green extension (s): the bus's stage goes on while the others give up time
        down to their minimums.
    early_s : float
        Longest early green (s): the stages before it are cut down to their minimums.
    extended, early : SignalProgram
        The programmes the controller switches to on a bus call, both validated.
    """

    junction: str
    group: str
    stage: int
    extend_s: float
    early_s: float
    extended: SignalProgram
    early: SignalProgram


def bus_priority(
    plan: SignalPlan,
    model: JunctionModel,
    group: str,
    *,
    max_extension_s: float = 15.0,
    rules: SafetyRules | None = None,
) -> BusPriority:
    """Green extension and early green for a bus approach, within the plan's cycle.

    The extension lengthens the bus's stage by at most ``max_extension_s``, taken from the
    following stages down to their minimums; the early green starts the bus's stage earlier by
    cutting the stages before it (down to their minimums). The cycle, and so the coordination,
    is kept. Both programmes are validated on the junction.
    """
    r = rules or SafetyRules()
    model.index(group)
    stages = _stages_of(plan, model)
    serving = [k for k, s in enumerate(stages) if group in s]
    if not serving:
        msg = f"bus_priority: no stage of {plan.plan_id} serves {group}"
        raise InputValidationError(msg)
    k = serving[0]
    n = len(plan.phases)
    mins = stage_minimums(model, stages, rules=r, all_red_s=plan.all_red_s)
    greens = [p.green_s for p in plan.phases]
    spare = [max(greens[i] - mins[i], 0.0) for i in range(n)]
    others = [i for i in range(n) if i != k]
    extend = min(max_extension_s, sum(spare[i] for i in others))
    early = min(max_extension_s, sum(spare[i] for i in others))

    def shifted(gain: float, order: Sequence[int]) -> list[float]:
        out, left = list(greens), gain
        for i in order:
            take = min(spare[i], left)
            out[i] -= take
            left -= take
        out[k] += gain - left
        return out

    after = [(k + i) % n for i in range(1, n)]
    before = [(k - i) % n for i in range(1, n)]
    ext_greens = shifted(extend, after)
    early_greens = shifted(early, before)
    ext = program_of(_replan(plan, ext_greens, model, r), model)
    ear = program_of(_replan(plan, early_greens, model, r), model)
    validate(ext, model, rules=r)
    validate(ear, model, rules=r)
    return BusPriority(plan.junction, group, k, extend, early, ext, ear)


def bus_priorities(
    plans: Mapping[str, SignalPlan],
    models: Mapping[str, JunctionModel],
    groups: Mapping[str, Mapping[str, Sequence[str]]],
    *,
    max_extension_s: float = 15.0,
    rules: SafetyRules | None = None,
) -> dict[str, list[BusPriority]]:
    """:func:`bus_priority` on every bus approach of every planned junction.

    Parameters
    ----------
    plans, models : mapping of junction id
        Plans and the junction models they were made on.
    groups : mapping
        ``{junction: {group: lines}}``, the bus approaches
        (:func:`twin.signals.buses.bus_groups`).

    Returns
    -------
    dict of str to list of BusPriority
        Per junction with a plan and a bus approach, one entry per bus approach.
    """
    out: dict[str, list[BusPriority]] = {}
    for jid, by_group in groups.items():
        if jid not in plans:
            continue
        for g in sorted(by_group):
            out.setdefault(jid, []).append(
                bus_priority(
                    plans[jid], models[jid], g, max_extension_s=max_extension_s, rules=rules
                )
            )
    return out


@dataclasses.dataclass(frozen=True)
class BusCall:
    """The controller's answer to one bus check-in (:func:`bus_call`).

    Attributes
    ----------
    program : SignalProgram
        One-off programme (``horizon_s``), its time 0 at the start of the plan's cycle that
        holds the check-in; the plan before the check-in, the priority from it, the plan again
        from ``handback_s``. Validated over its whole horizon.
    cycle_start_s : float
        That cycle's start, in the plan's time (offset included).
    green_start_s, green_end_s : float
        The bus's green (programme time): the stage occurrence that serves it.
    handback_s : float
        From then on (programme time) the programme is the plan's (same offset).
    early_s, extension_s : float
        Seconds the bus's green starts earlier and ends later than the plan's.
    """

    program: SignalProgram
    cycle_start_s: float
    green_start_s: float
    green_end_s: float
    handback_s: float
    early_s: float
    extension_s: float

    @property
    def changed(self) -> bool:
        """Whether the programme differs from the plan."""
        return self.early_s > 0 or self.extension_s > 0


def bus_call(
    plan: SignalPlan,
    model: JunctionModel,
    group: str,
    *,
    call_s: float,
    extension_s: float = 0.0,
    max_early_s: float | None = None,
    rules: SafetyRules | None = None,
) -> BusCall:
    """The programme that answers a bus checking in on ``group`` at ``call_s``.

    As a check-in / check-out bus priority does (SCOOT and MOVA bus priority, the French
    "priorité bus" with its check-in and check-out loops): if the bus's stage is green at the
    check-in, it is extended by ``extension_s`` (the controller asks for more, a few seconds at
    a time, while the bus has not checked out at the stop line); the following stages give the
    time back, each down to its minimum (:func:`~twin.signals.plans.stage_minimums`), so the
    cycle and the offset are kept. If it is red, the bus gets an early green (a recall): the
    running stage ends as soon as the check-in comes and its minimum green is reached, the
    stages before the bus's run at their minimums (at most ``max_early_s`` taken in all; all
    they have above their minimums if ``None``), and the bus's stage, starting that much
    earlier, ends where the plan ends it (then ``extension_s`` may lengthen it too). No stage
    is skipped; a running green is never cut before its minimum. Where cutting the running
    stage at once would end a crossing's walk too late for its clearance, it is cut a second at
    a time later.

    The same ``call_s`` with a longer ``extension_s`` gives the same programme up to the end of
    the shorter extension, so the controller may switch from one to the next.

    Parameters
    ----------
    plan, model : the junction's plan and the model it was made on
    group : str
        The bus's approach (signal group).
    call_s : float
        The check-in, in the plan's time (offset included; any cycle).
    extension_s : float
        Green extension asked for (s); :attr:`BusCall.extension_s` is what the other stages
        can give.
    max_early_s : float, optional
        Most the early green may take from the other stages (s).
    rules : SafetyRules, optional

    Raises
    ------
    InputValidationError
        If no stage serves ``group``, or if no safe programme answers the call.
    """
    r = rules or SafetyRules()
    model.index(group)
    stages = _stages_of(plan, model)
    serving = {k for k, s in enumerate(stages) if group in s}
    if not serving:
        msg = f"bus_call: no stage of {plan.plan_id} serves {group}"
        raise InputValidationError(msg)
    n, cyc = len(stages), plan.cycle_s
    mins = stage_minimums(model, stages, rules=r, all_red_s=plan.all_red_s)
    greens = [p.green_s for p in plan.phases]
    starts = plan.phase_starts()
    c = (call_s - plan.offset_s) % cyc
    occ = [(i, starts[i] + m * cyc) for m in range(3) for i in range(n)]
    cur = max(q for q in range(len(occ)) if occ[q][1] <= c + 1e-9)
    i_cur, s_cur = occ[cur]
    green_now = i_cur in serving and (
        c < s_cur + greens[i_cur] - 1e-9 or occ[cur + 1][0] in serving
    )
    if green_now:
        target = cur
        while target + 1 < cur + n and occ[target + 1][0] in serving:
            target += 1
    else:
        target = next(q for q in range(cur + 1, cur + n + 1) if occ[q][0] in serving)
    cap = math.inf if max_early_s is None else max(float(max_early_s), 0.0)
    base = program_of(plan, model)
    last_err: Exception | None = None
    running_end = s_cur + greens[i_cur]
    pads = range(int(math.ceil(max(running_end - c, 0.0))) + 1) if not green_now else range(1)
    for pad in pads:
        new: dict[int, float] = {}  # occurrence -> its green
        saved = 0.0
        if not green_now:
            for q in range(cur, target):
                i, s = occ[q]
                if q == cur:
                    if c >= s + greens[i] - 1e-9:
                        continue  # in its intergreen: it has ended
                    g = min(greens[i], max(c - s, mins[i]) + pad)
                else:
                    g = min(greens[i], mins[i])
                g = max(g, greens[i] - (cap - saved))
                saved += greens[i] - g
                new[q] = g
        left = max(float(extension_s), 0.0)
        for q in range(target + 1, cur + n):
            i = occ[q][0]
            take = min(max(greens[i] - mins[i], 0.0), left)
            if take > 0:
                new[q] = greens[i] - take
                left -= take
        granted = max(float(extension_s), 0.0) - left
        new[target] = greens[occ[target][0]] + saved + granted
        g_start = occ[target][1] - saved
        g_end = occ[target][1] + greens[occ[target][0]] + granted
        changed = [q for q, g in new.items() if abs(g - greens[occ[q][0]]) > 1e-9]
        if not changed:
            prog, _ = _one_off(base, base, 0.0, c, c, cyc)
            return BusCall(prog, call_s - c, g_start, g_end, c, 0.0, 0.0)
        handback = occ[max(changed) + 1][1]
        chosen_greens = list(greens)
        for q, g in new.items():
            chosen_greens[occ[q][0]] = g
        # the chosen plan's cycle from the first changed occurrence holds every change (they
        # are on distinct stages); it starts that occurrence when the plan does
        i_f = occ[min(changed)][0]
        shift = sum(greens[i] - chosen_greens[i] for i in range(i_f))
        try:
            chosen = stage_plan(
                model,
                chosen_greens,
                stages=stages,
                offset_s=plan.offset_s + shift,
                all_red_s=plan.all_red_s,
                rules=r,
                plan_id=plan.plan_id,
            )
            prog, context = _one_off(base, program_of(chosen, model), shift, c, handback, cyc)
            validate(context, model, rules=r)
        except (UnsafePlanError, InputValidationError) as exc:
            last_err = exc
            continue
        return BusCall(prog, call_s - c, g_start, g_end, handback, saved, granted)
    msg = f"bus call of {group} at {plan.junction}: no safe programme ({last_err})"
    raise InputValidationError(msg)


def _one_off(
    base: SignalProgram,
    chosen: SignalProgram,
    shift_s: float,
    at_s: float,
    until_s: float,
    cycle_s: float,
) -> tuple[SignalProgram, SignalProgram]:
    """A one-off programme from a cycle start of ``base``: three segments spliced.

    ``base`` up to ``at_s``, ``chosen`` (its windows ``shift_s`` later) to ``until_s``, then
    ``base`` for at least one more cycle. Returned twice: as it runs, and with the cycle of
    ``base`` before it prepended (its times one cycle later), for the validator to see the
    reds and intergreens that run into the splice from before it.
    """
    horizon = (math.ceil(until_s / cycle_s - 1e-9) + 1) * cycle_s
    segments = (
        (base, 0.0, -cycle_s, at_s),
        (chosen, shift_s, at_s, until_s),
        (base, 0.0, until_s, horizon),
    )
    runs, context = [], []
    for gp in base.groups:
        wins: list[tuple[float, float]] = []
        for prog, d, lo, hi in segments:
            own = prog.group(gp.group)
            for m in range(-3, int(horizon / cycle_s) + 2):
                for s, e in own.greens if own is not None else ():
                    a, b = max(s + d + m * cycle_s, lo), min(e + d + m * cycle_s, hi)
                    if b > a + 1e-9:
                        wins.append((a, b))
        merged: list[tuple[float, float]] = []
        for s, e in sorted(wins):
            if merged and s <= merged[-1][1] + 1e-9:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        mine = tuple((max(s, 0.0), e) for s, e in merged if e > 1e-9)
        runs.append(GroupProgram(gp.group, mine, gp.amber_s))
        shifted = tuple((s + cycle_s, e + cycle_s) for s, e in merged)
        context.append(GroupProgram(gp.group, shifted, gp.amber_s))
    full = horizon + cycle_s
    return (
        SignalProgram(base.junction, horizon, base.offset_s, tuple(runs), horizon_s=horizon),
        SignalProgram(base.junction, full, base.offset_s, tuple(context), horizon_s=full),
    )


def _stages_of(plan: SignalPlan, model: JunctionModel) -> list[tuple[str, ...]]:
    """The stages of a plan made on ``model`` (its vehicle groups must match the model's)."""
    mine = [tuple(sorted(model.group_of_edge(a) for a in p.approaches)) for p in plan.phases]
    veh = set(model.vehicle_groups)
    theirs = [tuple(sorted(g for g in s if g in veh)) for s in model.stages]
    if mine != theirs:
        msg = f"{plan.plan_id}: its stages are not those of junction model {model.id}"
        raise InputValidationError(msg)
    return [tuple(s) for s in model.stages]


def _replan(
    plan: SignalPlan, greens: Sequence[float], model: JunctionModel, r: SafetyRules
) -> SignalPlan:
    stages = _stages_of(plan, model)
    return stage_plan(
        model,
        greens,
        stages=stages,
        offset_s=plan.offset_s,
        all_red_s=plan.all_red_s,
        rules=r,
        plan_id=plan.plan_id,
    )


# ------------------------------------------------------------------------------------------------
# emergency preemption
# ------------------------------------------------------------------------------------------------
def preemption(
    plan: SignalPlan,
    model: JunctionModel,
    group: str,
    *,
    call_s: float,
    hold_s: float = 20.0,
    rules: SafetyRules | None = None,
) -> SignalProgram:
    """The one-off sequence that serves an emergency vehicle on ``group``, then recovers.

    From the call at ``call_s`` (s in the plan's cycle, offset included), groups that are green
    keep it until their minimum green is reached, then show amber and the all-red that the
    junction's intergreens ask for; ``group`` (and every group compatible with all of it) then
    gets green for ``hold_s`` (such a group green at the call stays green through to it: no
    amber is cut short); the sequence then returns to the plan at the first green start of
    the plan (a stage start, the cycle boundary among them) after the hold that gives a safe
    sequence: the recovery. The plan resumes on its own timeline, so the coordination keeps
    its offset, and at the first stage start the other approaches wait no longer than the
    hold needs; waiting for the cycle boundary would keep a crossing served late in the cycle
    red for up to two cycles. A group held with ``group`` that the plan has red there ends its
    green in time to clear before the plan's first conflicting green; a group conflicting with
    ``group`` that the plan turns green less than their intergreen after the hold starts late
    by the missing seconds (the hold is never cut short). Unless ``rules`` say otherwise, a group
    may wait up to 240 s during the sequence (IISR part 6 art. 110 allows 240 s for
    public-transport priority; 120 s otherwise).

    Returns
    -------
    SignalProgram
        A one-off programme (``horizon_s``) from the start of the cycle of the call to one
        cycle after the green start where the plan resumes, validated over its horizon.
    """
    # an emergency run may hold the others longer than a normal wait: up to the 240 s the
    # IISR (part 6 art. 110) allows for public-transport priority, never longer
    r = rules or SafetyRules(max_red_s=240.0)
    model.index(group)
    cyc = plan.cycle_s
    base = program_of(plan, model)
    call = (call_s - plan.offset_s) % cyc  # in the plan's own cycle
    # the plan's windows, unrolled over a few cycles from the one before: a green or a walk
    # that runs across the cycle's start is running at a call early in the cycle, and must be
    # cut and cleared like any other
    windows = {
        gp.group: sorted((s + k * cyc, e + k * cyc) for k in range(-1, 5) for s, e in gp.greens)
        for gp in base.groups
    }
    amber = {gp.group: gp.amber_s for gp in base.groups}
    kind = {g.id: g.kind for g in model.groups}
    served = [g for g in model.group_ids if not model.conflicts(g, group)]
    served = [g for g in served if all(not model.conflicts(g, h) for h in served)] or [group]
    if group not in served:
        served.append(group)
    out: dict[str, list[tuple[float, float]]] = {g: [] for g in model.group_ids}
    release = call
    for g in model.group_ids:
        for s, e in windows[g]:
            if e <= call:
                out[g].append((s, e))
            elif s <= call < e:
                if g in served:
                    out[g].append((s, e))  # keep it; extended below
                else:
                    floor = r.min_green_s if kind[g] == "vehicle" else r.min_walk_s
                    cut = max(call, s + floor)
                    out[g].append((s, cut))
                    for h in served:
                        if model.conflicts(g, h):
                            release = max(release, cut + model.intergreen(g, h))
            elif s > call:
                break
        # a group still in its amber or clearance at the call clears first
        ends = [e for s, e in windows[g] if e <= call]
        if ends and g in served and call - max(ends) < amber[g]:
            release = max(release, max(ends) + amber[g])  # its own amber is shown in full
        if ends and g not in served:
            e = max(ends)
            for h in served:
                if model.conflicts(g, h):
                    release = max(release, e + model.intergreen(g, h))
    hold_end = release + hold_s
    # a held group green at the call keeps that green through to the hold: ended before the
    # hold starts, it would show its amber and turn green again, an amber cut short whenever
    # the hold starts less than an amber after the plan ends that green (a conflicting group
    # cut at the call still clearing, say); nothing that conflicts with it is active meanwhile
    for g in served:
        keep = [w for w in out[g] if w[1] <= call]
        cur = [w for w in out[g] if w[1] > call]
        out[g] = keep + [(min([w[0] for w in cur] + [release]), hold_end)]
    # recovery: every other group stays red until a green start R of the plan, where the plan
    # resumes as it was (on its own timeline: the offset, so the coordination, is kept); a held
    # group that the plan has green at R stays green until then. The first R that gives a safe
    # sequence is taken.
    starts = sorted(
        {0.0} | {s % cyc for gp in base.groups if kind[gp.group] == "vehicle" for s, _ in gp.greens}
    )
    k0 = int(hold_end // cyc)
    resumes = [
        k * cyc + s for k in range(k0, k0 + 5) for s in starts if k * cyc + s >= hold_end - 1e-9
    ][: RESUME_CYCLES * len(starts)]
    last_err: Exception | None = None
    for resume in resumes:
        resume_k = int(resume // cyc)
        horizon = resume + cyc
        trial = {g: list(ws) for g, ws in out.items()}
        for g in model.group_ids:
            plan_w = [
                (s + k * cyc, e + k * cyc)
                for k in range(resume_k - 1, resume_k + 3)
                for s, e in base.group(g).greens  # type: ignore[union-attr]
            ]
            for s, e in sorted(plan_w):
                if e <= resume or s >= horizon:
                    continue
                if g in served and s <= resume and trial[g]:
                    trial[g][-1] = (trial[g][-1][0], min(e, horizon))  # green through to it
                    continue
                floor = r.min_green_s if kind[g] == "vehicle" else r.min_walk_s
                if s < resume and e - resume < floor:
                    # the plan's green began before R, while the sequence held the group red:
                    # what is left of it after R is shorter than a green may be; the group
                    # waits for its next green instead
                    continue
                trial[g].append((max(s, resume), min(e, horizon)))
        # the called group's hold is never cut short: a group that conflicts with it and that
        # the plan turns green less than their intergreen after the hold ends starts late, by
        # the seconds missing (its green then ends as planned; a remnant shorter than a green
        # may be waits for the next one). Without it, a hold ending a few tenths of a second too
        # close to R would put the recovery a whole cycle later, every other group red meanwhile.
        k_called = len(out[group]) - 1
        called_end = trial[group][k_called][1]
        for h in model.group_ids:
            if h in served or not model.conflicts(group, h):
                continue
            earliest = called_end + model.intergreen(group, h)
            floor = r.min_green_s if kind[h] == "vehicle" else r.min_walk_s
            late = []
            for s, e in trial[h]:
                if s > call and s < earliest - 1e-9:
                    if e - earliest < floor - 1e-9:
                        continue
                    s = earliest
                late.append((s, e))
            trial[h] = late
        # a held group other than the called one, red in the plan at R, ends its green in time
        # to clear (its amber, or a walk's clearance) before the first conflicting green from R
        # on; never before its minimum, nor before the call
        for g in served:
            if g == group or abs(trial[g][len(out[g]) - 1][1] - hold_end) > 1e-9:
                continue
            s0, e0 = trial[g][len(out[g]) - 1]
            clear = min(
                (
                    s - model.intergreen(g, h)
                    for h in model.group_ids
                    if model.conflicts(g, h)
                    for s, _ in trial[h]
                    if s > s0 + 1e-9
                ),
                default=e0,
            )
            floor = r.min_green_s if kind[g] == "vehicle" else r.min_walk_s
            end = max(clear, s0 + floor, call)
            if end < e0 - 1e-9:
                trial[g][len(out[g]) - 1] = (s0, end)
        groups = []
        for g in model.group_ids:
            merged: list[tuple[float, float]] = []
            for s, e in sorted(trial[g]):
                if merged and s <= merged[-1][1] + 1e-9:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], e))
                elif e > s:
                    merged.append((s, e))
            mine = tuple((max(s, 0.0), e) for s, e in merged if e > 1e-9)  # from the cycle start
            groups.append(GroupProgram(g, mine, amber[g]))
        prog = SignalProgram(
            plan.junction, horizon, plan.offset_s, tuple(groups), horizon_s=horizon
        )
        try:
            validate(prog, model, rules=r)
        except UnsafePlanError as exc:  # try the next green start
            last_err = last_err or exc
            continue
        return prog
    msg = (
        f"preemption of {group} at {plan.junction}: no safe recovery within {RESUME_CYCLES} "
        f"cycles ({last_err})"
    )
    raise InputValidationError(msg)


# ------------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------------
def signal_delay(program: SignalProgram, group: str, arrivals_s: Sequence[float]) -> np.ndarray:
    """Wait (s) of a vehicle of ``group`` arriving at each time, until its next green.

    Times are s since the programme's start (for a cyclic programme, any time: taken modulo
    the cycle); a vehicle arriving on green passes at once. A one-off programme's vehicle that
    finds no green before the horizon waits until the horizon.
    """
    gp = program.group(group)
    if gp is None or not gp.greens:
        return np.full(len(arrivals_s), np.inf)
    out = []
    cyc = program.cycle_s
    for t in arrivals_s:
        if program.horizon_s is None:
            tc = t % cyc
            wins = [(s + k * cyc, e + k * cyc) for k in (-1, 0, 1) for s, e in gp.greens]
        else:
            tc = t
            wins = list(gp.greens)
        wait = math.inf
        for s, e in wins:
            if s <= tc < e:
                wait = 0.0
                break
            if s > tc:
                wait = min(wait, s - tc)
        if not math.isfinite(wait) and program.horizon_s is not None:
            wait = program.horizon_s - tc
        out.append(wait)
    return np.asarray(out, dtype=float)
