"""Signal-group programmes and the safety check every plan passes before simulation or push.

A :class:`~twin.scenarios.signals.SignalPlan` is a sequence of stages. What a controller runs,
and what a conflict monitor watches, is a **signal-group programme**: for each signal group
(an approach's vehicle heads, a crossing's pedestrian heads) its green windows in the cycle,
each followed by its amber (vehicles) or its pedestrian clearance (pedestrians: the time a
pedestrian who stepped off at the end of the walk needs to cross). :func:`program_of` derives
it from a plan and a :class:`~twin.signals.junction.JunctionModel`: a group green in two
consecutive stages stays green through the intergreen between them, as a controller does.

:func:`check_program` is the validator, in the spirit of a malfunction management unit (the
conflict monitor of a controller cabinet, NEMA TS 2): it replays the programme exactly (interval
arithmetic over three cycles, or over the horizon of a one-off sequence such as a preemption)
and returns every :class:`Violation` of the rules below, each naming the rule, the groups and
movements, and the seconds required and found. :func:`validate` raises
:class:`~twin._errors.UnsafePlanError` on the first ones. Rules (:data:`RULES`):

``conflict``
    Two conflicting groups are never active (green, amber or pedestrian clearance) at the same
    time. NEMA TS 2-2003 section 6.5 (malfunction management unit): a conflict is the presence
    of a green, yellow or walk on channels that the compatibility programming says are in
    conflict; IISR part 6 art. 110: junction signals separate incompatible streams in time.
``min_green``
    Every vehicle green lasts at least ``min_green_s`` (5 s; DESIGN section 4: 5-7 s) and every
    walk at least ``min_walk_s`` (5 s; MUTCD 2009 4E.06: a walk of at least 7 s, which may be
    reduced to 4 s).
``amber``
    Every vehicle green is followed by an amber of 3 to 6 s, shown in full. MUTCD 2009 4D.26:
    a yellow change interval should last 3 to 6 s; IISR part 6: 3 s in built-up areas; a
    malfunction management unit latches a *short yellow* fault under 2.7 s.
``intergreen``
    From the end of a group's green (walk) to the start of a conflicting group's green, at
    least the junction's intergreen for that pair (amber plus an all-red that clears the
    conflict point; ITE 2020 red clearance ``(W + L) / v``).
``pedestrian_clearance``
    A pedestrian group's clearance lasts at least the crossing width at 1.0 m/s (MUTCD 2009
    4E.06 states the clearance to the far side of the traveled way at 3.5 ft/s).
``max_cycle``
    The cycle is at most ``max_cycle_s`` (120 s; DESIGN section 4).
``max_red``
    No group waits more than ``max_red_s`` (120 s) between two of its greens, so every group is
    served. IISR part 6 art. 110: the normal waiting time may not exceed 120 s.
``all_red``
    A plan's all-red is at most ``all_red_guide_s`` (6 s), or, where the junction's geometry
    needs more (the largest vehicle intergreen at one of the plan's stage changes, less the
    amber), at most that need. MUTCD 2009 4D.26 para 09: a red clearance should not exceed 6 s,
    except to clear an exceptionally wide intersection. Stage plans only (a programme has no
    all-red of its own); that the all-red is long *enough* is the ``intergreen`` rule's.

The JSON form of a plan for the live layer is :func:`plan_document` (documented there).

>>> from twin.signals.junction import crossroads_graph, approaches_of, build_junction
>>> from twin.scenarios.signals import Phase, SignalPlan
>>> g = crossroads_graph()
>>> m = build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))
>>> ns = [m.group(a).edge for a in ("a:1", "a:3")]
>>> ew = [m.group(a).edge for a in ("a:2", "a:4")]
>>> ok = SignalPlan("junction:0", 60.0, 0.0, (Phase(ns, 25), Phase(ew, 25)), all_red_s=2)
>>> check_plan(ok, m)
[]
>>> bad = SignalPlan("junction:0", 60.0, 0.0, (Phase(ns + ew[:1], 25), Phase(ew, 25)), all_red_s=2)
>>> print(check_plan(bad, m)[0])  # doctest: +ELLIPSIS
conflict: a:1 (arm 1) and a:2 (arm 2) are both active ... (movements a:1>... x a:2>...)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twin._errors import InputValidationError, UnsafePlanError
from twin.scenarios.signals import ALL_RED_GUIDE_S
from twin.signals.junction import WALK_SPEED_M_S, JunctionModel

if TYPE_CHECKING:
    from twin.scenarios.signals import SignalPlan

__all__ = [
    "RULES",
    "GroupProgram",
    "SafetyRules",
    "SignalProgram",
    "Violation",
    "check_plan",
    "check_program",
    "plan_document",
    "program_of",
    "validate",
]

RULES: dict[str, str] = {
    "conflict": "conflicting signal groups are never active (green, amber, clearance) together",
    "min_green": "each vehicle green lasts at least min_green_s, each walk at least min_walk_s",
    "amber": "each vehicle green is followed by a full amber of 3 to 6 s",
    "intergreen": "end of green to start of a conflicting green: at least the intergreen",
    "pedestrian_clearance": "a crossing's clearance lasts at least its width at 1.0 m/s",
    "max_cycle": "the cycle lasts at most max_cycle_s",
    "max_red": "no signal group waits more than max_red_s between greens",
    "all_red": "all-red at most 6 s, or what the junction's geometry needs if that is more",
}
"""The rules the validator enforces, by name."""

_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class SafetyRules:
    """Thresholds of the safety rules (see the module docstring for their sources)."""

    min_green_s: float = 5.0
    min_walk_s: float = 5.0
    amber_min_s: float = 3.0
    amber_max_s: float = 6.0
    max_cycle_s: float = 120.0
    max_red_s: float = 120.0
    walk_speed_m_s: float = WALK_SPEED_M_S
    all_red_guide_s: float = ALL_RED_GUIDE_S


@dataclasses.dataclass(frozen=True)
class GroupProgram:
    """Green windows of one signal group.

    Parameters
    ----------
    group : str
        Signal group id.
    greens : tuple of (float, float)
        ``(start, end)`` of each green (walk, for pedestrians), s within the cycle:
        ``0 <= start < cycle`` and ``start < end <= start + cycle`` (a window may run past the
        cycle's end into the next); in a one-off sequence, ``0 <= start < end <= horizon``.
    amber_s : float
        Amber after each green (vehicles) or pedestrian clearance after each walk (s).
    """

    group: str
    greens: tuple[tuple[float, float], ...]
    amber_s: float


@dataclasses.dataclass(frozen=True)
class SignalProgram:
    """What a controller runs: the green windows of every signal group of a junction.

    Parameters
    ----------
    junction : str
    cycle_s : float
        Cycle (s); for a one-off sequence (``horizon_s`` given), the length of the sequence.
    offset_s : float
        Start of the cycle relative to the common time origin (s).
    groups : tuple of GroupProgram
    horizon_s : float, optional
        ``None`` for a cyclic programme; else the sequence runs once over ``[0, horizon_s)``
        (a preemption and its recovery), and what happens outside is not judged.
    """

    junction: str
    cycle_s: float
    offset_s: float
    groups: tuple[GroupProgram, ...]
    horizon_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        j = self.junction
        span = self.cycle_s if self.horizon_s is None else self.horizon_s
        if not (isinstance(span, int | float) and math.isfinite(span) and span > 0):
            msg = f"SignalProgram({j}).cycle_s: {span!r} is not a positive duration (s)"
            raise InputValidationError(msg)
        seen = set()
        for gp in self.groups:
            if gp.group in seen:
                msg = f"SignalProgram({j}).groups: {gp.group!r} appears twice"
                raise InputValidationError(msg)
            seen.add(gp.group)
            if not (math.isfinite(gp.amber_s) and gp.amber_s >= 0):
                msg = f"SignalProgram({j}).{gp.group}.amber_s: {gp.amber_s!r} is not >= 0 s"
                raise InputValidationError(msg)
            for s, e in gp.greens:
                ok = math.isfinite(s) and math.isfinite(e) and s < e
                if self.horizon_s is None:
                    ok = ok and 0 <= s < self.cycle_s and e - s <= self.cycle_s + _EPS
                else:
                    ok = ok and s >= 0 and e <= self.horizon_s + _EPS
                if not ok:
                    msg = (
                        f"SignalProgram({j}).{gp.group}.greens: window ({s!r}, {e!r}) is not "
                        f"within the {'cycle' if self.horizon_s is None else 'horizon'}"
                    )
                    raise InputValidationError(msg)

    def group(self, group: str) -> GroupProgram | None:
        """The programme of ``group`` (``None`` if it has none)."""
        return next((g for g in self.groups if g.group == group), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "junction": self.junction,
            "cycle_s": self.cycle_s,
            "offset_s": self.offset_s,
            "horizon_s": self.horizon_s,
            "groups": {
                g.group: {"greens": [list(w) for w in g.greens], "amber_s": g.amber_s}
                for g in self.groups
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalProgram:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                junction=str(data["junction"]),
                cycle_s=float(data["cycle_s"]),
                offset_s=float(data.get("offset_s", 0.0)),
                horizon_s=None if data.get("horizon_s") is None else float(data["horizon_s"]),
                groups=tuple(
                    GroupProgram(
                        str(k),
                        tuple((float(a), float(b)) for a, b in v["greens"]),
                        float(v["amber_s"]),
                    )
                    for k, v in data["groups"].items()
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"SignalProgram.from_dict: malformed programme ({exc!r})"
            raise InputValidationError(msg) from None


@dataclasses.dataclass(frozen=True)
class Violation:
    """One breach of a safety rule."""

    rule: str
    """Name of the rule (a key of :data:`RULES`)."""
    junction: str
    groups: tuple[str, ...]
    """The signal groups involved."""
    movements: str
    """The movements (or crossing) behind it, for conflicts and intergreens."""
    required_s: float
    """The bound the rule sets (s)."""
    actual_s: float
    """What the programme gives (s)."""
    at_s: float
    """When, in the cycle (or the sequence) (s)."""
    message: str

    def __str__(self) -> str:
        return self.message


# ------------------------------------------------------------------------------------------------
# plan -> programme
# ------------------------------------------------------------------------------------------------
def _merge(windows: list[tuple[float, float]], cycle: float | None) -> list[tuple[float, float]]:
    """Union of windows; cyclic windows are kept with start in ``[0, cycle)``."""
    if not windows:
        return []
    if cycle is not None:
        windows = [(s % cycle, s % cycle + (e - s)) for s, e in windows]
    ws = sorted(windows)
    out = [list(ws[0])]
    for s, e in ws[1:]:
        if s <= out[-1][1] + _EPS:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    if cycle is not None and len(out) > 1 and out[-1][1] >= out[0][0] + cycle - _EPS:
        last = out.pop()
        first = out.pop(0)
        out.append([last[0], max(last[1], first[1] + cycle)])
    if cycle is not None:
        for w in out:
            if w[1] - w[0] > cycle:
                w[1] = w[0] + cycle
    return [(float(a), float(b)) for a, b in sorted(out)]


def program_of(plan: SignalPlan, model: JunctionModel) -> SignalProgram:
    """The signal-group programme of a stage plan on a junction.

    A vehicle group is green during each stage that serves its approach, and stays green
    through the intergreen into the next stage if that serves it too; a pedestrian group walks
    from its stage's start for the stage's walk time (``Phase.walks``), and its clearance is the
    crossing's width at 1.0 m/s. Groups that no stage serves get no window.

    Raises
    ------
    UnknownAssetError
        If a stage names an approach or crossing that is not one of the junction's groups.
    """
    if plan.junction != model.id:
        msg = f"plan for {plan.junction!r} checked against junction model {model.id!r}"
        raise InputValidationError(msg)
    cycle = plan.cycle_s
    starts = plan.phase_starts()
    n = len(plan.phases)
    served = [{model.group_of_edge(a) for a in p.approaches} for p in plan.phases]
    walks = [dict(p.walks) for p in plan.phases]
    for p in plan.phases:
        for c, _ in p.walks:
            model.index(c)
    windows: dict[str, list[tuple[float, float]]] = {g: [] for g in model.group_ids}
    for k, phase in enumerate(plan.phases):
        s = starts[k]
        nxt = starts[k + 1] if k + 1 < n else cycle
        for g in served[k]:
            end = nxt if g in served[(k + 1) % n] and n > 1 else s + phase.green_s
            windows[g].append((s, end))
        for c, w in walks[k].items():
            windows[c].append((s, s + float(w)))
    progs = []
    for sg in model.groups:
        amber = plan.amber_s if sg.kind == "vehicle" else sg.width_m / WALK_SPEED_M_S
        progs.append(GroupProgram(sg.id, tuple(_merge(windows[sg.id], cycle)), amber))
    return SignalProgram(plan.junction, cycle, plan.offset_s, tuple(progs))


# ------------------------------------------------------------------------------------------------
# the validator
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Runs:
    green: list[tuple[float, float]]
    active: list[tuple[float, float]]  # green + amber/clearance shown after it
    amber_shown: list[float]


def _runs(gp: GroupProgram | None, prog: SignalProgram) -> _Runs:
    if gp is None or not gp.greens:
        return _Runs([], [], [])
    if prog.horizon_s is None:
        c = prog.cycle_s
        base = _merge(list(gp.greens), c)
        if len(base) == 1 and base[0][1] - base[0][0] >= c - _EPS:  # always green
            g = [(-2 * c, 3 * c)]
            return _Runs(g, g, [math.inf])
        green = [(s + k * c, e + k * c) for k in (-1, 0, 1, 2) for s, e in base]
    else:
        green = _merge(list(gp.greens), None)
    green.sort()
    active, shown = [], []
    for i, (s, e) in enumerate(green):
        nxt = green[i + 1][0] if i + 1 < len(green) else math.inf
        a_end = min(e + gp.amber_s, nxt)
        active.append((s, a_end))
        shown.append(a_end - e)
    return _Runs(green, active, shown)


def _in_window(t: float, prog: SignalProgram) -> bool:
    """Whether an event at ``t`` is judged (first cycle of the unrolled three, or the horizon)."""
    if prog.horizon_s is None:
        return -_EPS <= t < prog.cycle_s - _EPS
    return -_EPS <= t <= prog.horizon_s + _EPS


def _wrap(t: float, prog: SignalProgram) -> float:
    return t % prog.cycle_s if prog.horizon_s is None else t


def check_program(
    program: SignalProgram, model: JunctionModel, *, rules: SafetyRules | None = None
) -> list[Violation]:
    """Every breach of the safety rules by a signal-group programme.

    Parameters
    ----------
    program : SignalProgram
    model : JunctionModel
        The junction: its groups, conflict and intergreen matrices, crossing widths.
    rules : SafetyRules, optional

    Returns
    -------
    list of Violation
        Empty if the programme is safe. A group of the programme that the junction does not
        have raises :class:`~twin._errors.UnknownAssetError` (listing the nearest ids).
    """
    r = rules or SafetyRules()
    if program.junction != model.id:
        msg = f"programme for {program.junction!r} checked against junction {model.id!r}"
        raise InputValidationError(msg)
    for grp in program.groups:
        model.index(grp.group)
    out: list[Violation] = []
    j = model.id
    cyclic = program.horizon_s is None
    horizon = program.cycle_s if cyclic else float(program.horizon_s or 0.0)
    runs = {g: _runs(program.group(g), program) for g in model.group_ids}
    kinds = {g.id: g.kind for g in model.groups}

    def add(
        rule: str, groups: Sequence[str], why: str, req: float, act: float, at: float, text: str
    ) -> None:
        out.append(Violation(rule, j, tuple(groups), why, req, act, at, f"{rule}: {text}"))

    # max cycle
    if cyclic and program.cycle_s > r.max_cycle_s + _EPS:
        add(
            "max_cycle",
            (),
            "",
            r.max_cycle_s,
            program.cycle_s,
            0.0,
            f"junction {j} cycle {program.cycle_s:g} s is longer than {r.max_cycle_s:g} s",
        )
    ids = model.group_ids
    for gid in ids:
        ru = runs[gid]
        gp = program.group(gid)
        veh = kinds[gid] == "vehicle"
        desc = model.describe(gid)
        # min green / walk
        floor = r.min_green_s if veh else r.min_walk_s
        for s, e in ru.green:
            if not _in_window(s, program):
                continue
            if not cyclic and (s <= _EPS or e >= horizon - _EPS):
                continue  # cut by the sequence's ends
            if e - s < floor - _EPS:
                what = "green" if veh else "walk"
                add(
                    "min_green",
                    (gid,),
                    "",
                    floor,
                    e - s,
                    _wrap(s, program),
                    f"{desc} {what} lasts {e - s:.1f} s from t={_wrap(s, program):.1f} s, "
                    f"less than {floor:g} s",
                )
        if gp is not None and ru.green and veh and ru.amber_shown[0] != math.inf:
            if not r.amber_min_s - _EPS <= gp.amber_s <= r.amber_max_s + _EPS:
                add(
                    "amber",
                    (gid,),
                    "",
                    r.amber_min_s,
                    gp.amber_s,
                    0.0,
                    f"{desc} amber is {gp.amber_s:g} s, outside {r.amber_min_s:g}-"
                    f"{r.amber_max_s:g} s",
                )
            else:
                for (_s, e), shown in zip(ru.green, ru.amber_shown, strict=True):
                    if not _in_window(e, program) or (not cyclic and e >= horizon - _EPS):
                        continue
                    if shown < min(gp.amber_s, r.amber_min_s) - _EPS and shown < horizon:
                        add(
                            "amber",
                            (gid,),
                            "",
                            r.amber_min_s,
                            shown,
                            _wrap(e, program),
                            f"{desc} amber after the green ending at t={_wrap(e, program):.1f} s "
                            f"lasts {shown:.1f} s (green again), less than {r.amber_min_s:g} s",
                        )
        if not veh and gp is not None and ru.green:
            need = model.clearance_s(gid) * WALK_SPEED_M_S / r.walk_speed_m_s
            if gp.amber_s < need - 0.05:
                add(
                    "pedestrian_clearance",
                    (gid,),
                    "",
                    need,
                    gp.amber_s,
                    0.0,
                    f"{desc} clearance is {gp.amber_s:.1f} s; {model.group(gid).width_m:g} m at "
                    f"{r.walk_speed_m_s:g} m/s needs {need:.1f} s",
                )
        # max red (every group served)
        if not ru.green:
            add(
                "max_red",
                (gid,),
                "",
                r.max_red_s,
                math.inf,
                0.0,
                f"{desc} is never green: it would wait for ever (at most {r.max_red_s:g} s)",
            )
        else:
            act = ru.active
            for (_, e0), (s1, _) in zip(act, act[1:], strict=False):
                if _in_window(e0, program) and s1 - e0 > r.max_red_s + _EPS:
                    add(
                        "max_red",
                        (gid,),
                        "",
                        r.max_red_s,
                        s1 - e0,
                        _wrap(e0, program),
                        f"{desc} waits {s1 - e0:.1f} s from t={_wrap(e0, program):.1f} s, "
                        f"more than {r.max_red_s:g} s",
                    )
    # conflicts and intergreens
    n = len(ids)
    for a in range(n):
        for b in range(n):
            if a == b or not model.conflict[a, b]:
                continue
            ga, gb = ids[a], ids[b]
            why = model.reasons.get((ga, gb), "")
            ra, rb = runs[ga], runs[gb]
            if a < b:
                hit = _first_overlap(ra.active, rb.active, program)
                if hit is not None:
                    t0, length = hit
                    add(
                        "conflict",
                        (ga, gb),
                        why,
                        0.0,
                        length,
                        t0,
                        f"{model.describe(ga)} and {model.describe(gb)} are both active for "
                        f"{length:.1f} s from t={t0:.1f} s (movements {why})",
                    )
            need = float(model.intergreen_s[a, b])
            if not math.isfinite(need):
                continue
            starts = [s for s, _ in rb.green]
            for _, e in ra.green:
                if not _in_window(e, program):
                    continue
                later = [s for s in starts if s >= e - _EPS]
                if not later:
                    continue
                gap = min(later) - e
                if gap < need - _EPS:
                    add(
                        "intergreen",
                        (ga, gb),
                        why,
                        need,
                        gap,
                        _wrap(e, program),
                        f"{model.describe(ga)} -> {model.describe(gb)}: {gap:.1f} s from end of "
                        f"green at t={_wrap(e, program):.1f} s to the conflicting green, needs "
                        f"{need:.1f} s (movements {why})",
                    )
                    break
    return out


def _first_overlap(
    a: list[tuple[float, float]], b: list[tuple[float, float]], prog: SignalProgram
) -> tuple[float, float] | None:
    i = k = 0
    while i < len(a) and k < len(b):
        s = max(a[i][0], b[k][0])
        e = min(a[i][1], b[k][1])
        if e - s > _EPS and (_in_window(s, prog) or (prog.horizon_s is None and s < 0 < e)):
            return _wrap(max(s, 0.0) if prog.horizon_s is None and s < 0 else s, prog), e - s
        if a[i][1] < b[k][1]:
            i += 1
        else:
            k += 1
    return None


def check_plan(
    plan: SignalPlan, model: JunctionModel, *, rules: SafetyRules | None = None
) -> list[Violation]:
    """Every breach of the safety rules by a stage plan (through :func:`program_of`)."""
    r = rules or SafetyRules()
    # the plan's own minimum green may be higher than the rule's, never lower
    r = dataclasses.replace(r, min_green_s=max(r.min_green_s, plan.min_green_s))
    out = check_program(program_of(plan, model), model, rules=r)
    if plan.all_red_s > r.all_red_guide_s + _EPS:
        need, pair, why = _all_red_need(plan, model)
        allowed = max(r.all_red_guide_s, need)
        if plan.all_red_s > allowed + _EPS:
            text = (
                f"junction {model.id} all-red {plan.all_red_s:g} s is above "
                f"{r.all_red_guide_s:g} s and more than its geometry needs ({need:.1f} s"
                + (f", {model.describe(pair[0])} -> {model.describe(pair[1])}" if pair else "")
                + ")"
            )
            out.append(
                Violation(
                    "all_red", model.id, pair, why, allowed, plan.all_red_s, 0.0, f"all_red: {text}"
                )
            )
    return out


def _all_red_need(plan: SignalPlan, model: JunctionModel) -> tuple[float, tuple[str, ...], str]:
    """The all-red a plan's stage changes need, the pair of groups that sets it, their movements.

    The largest vehicle intergreen less the amber at one of the plan's stage changes (s, up to
    0.1 s).
    """
    stages = [
        {model.group_of_edge(a) for a in p.approaches} | {c for c, _ in p.walks}
        for p in plan.phases
    ]
    kinds = {g.id: g.kind for g in model.groups}
    need = 0.0
    pair: tuple[str, str] | None = None
    n = len(stages)
    for k in range(n):
        now, nxt = stages[k], stages[(k + 1) % n]
        for a in sorted(now - nxt):
            if kinds[a] != "vehicle":
                continue
            for b in sorted(nxt - now):
                ig = model.intergreen(a, b) - plan.amber_s
                if math.isfinite(ig) and ig > need:
                    need, pair = ig, (a, b)
    need = math.ceil(need * 10.0 - 1e-6) / 10.0
    if pair is None:
        return need, (), ""
    return need, pair, model.reasons.get(pair, "")


def validate(
    plan: SignalPlan | SignalProgram,
    model: JunctionModel,
    *,
    rules: SafetyRules | None = None,
) -> SignalProgram:
    """The programme of a plan, if it is safe; else raise.

    Raises
    ------
    UnsafePlanError
        Naming every rule broken (up to five messages, then a count), with the groups, the
        movements and the seconds.
    """
    if isinstance(plan, SignalProgram):
        program = plan
        bad = check_program(program, model, rules=rules)
    else:
        program = program_of(plan, model)
        bad = check_plan(plan, model, rules=rules)
    if bad:
        lines = [str(v) for v in bad[:5]]
        more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
        msg = f"unsafe plan for {model.id}: " + "; ".join(lines) + more
        raise UnsafePlanError(msg, violations=tuple(bad))
    return program


# ------------------------------------------------------------------------------------------------
# JSON for the live layer
# ------------------------------------------------------------------------------------------------
def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def plan_document(
    plan: SignalPlan,
    model: JunctionModel,
    *,
    rules: SafetyRules | None = None,
    extra: Mapping[str, Any] | None = None,
    variants: Iterable[tuple[str, SignalProgram]] = (),
) -> dict[str, Any]:
    """The JSON document of a validated plan, for the live layer's safety gate and commands.

    The plan is validated first (:func:`validate`); the document then carries both the stages
    (for people and SUMO) and the signal-group programme (what a controller runs and the gate
    re-checks against the junction model, :meth:`JunctionModel.to_dict`)::

        {
          "kind": "signal_plan", "version": 1,
          "id": "plan id", "junction": "junction:12",
          "valid_from": "2024-06-04T06:00:00Z", "valid_until": "2024-06-04T09:00:00Z",
          "cycle_s": 90.0, "offset_s": 12.5,
          "amber_s": 3.0, "all_red_s": 2.0, "min_green_s": 5.0,
          "stages": [{"green_s": 40.0, "groups": ["approach:12.0", "crossing:12.1"],
                      "walks": {"crossing:12.1": 18.0}}, ...],
          "program": {"junction": ..., "cycle_s": ..., "offset_s": ..., "horizon_s": null,
                      "groups": {"approach:12.0": {"greens": [[0.0, 40.0]], "amber_s": 3.0}}},
          "variants": {"bus:approach:12.0:extend": {programme}, ...},
          "safety": {"checked": true, "rules": [...]}
        }

    Times are seconds; ``valid_*`` are ISO 8601 UTC (``null`` when open-ended); ``offset_s``
    is the start of the first stage's green after the common time origin (midnight UTC of the
    plan's day for a coordinated corridor). ``variants`` are alternative programmes the
    controller may switch to (bus priority: green extension, early green), each checked too.
    """
    program = validate(plan, model, rules=rules)
    checked = {}
    for name, prog in variants:
        validate(prog, model, rules=rules)
        checked[name] = prog.to_dict()
    doc = {
        "kind": "signal_plan",
        "version": 1,
        "id": plan.plan_id,
        "junction": plan.junction,
        "valid_from": _iso(plan.valid_from),
        "valid_until": _iso(plan.valid_until),
        "cycle_s": plan.cycle_s,
        "offset_s": plan.offset_s,
        "amber_s": plan.amber_s,
        "all_red_s": plan.all_red_s,
        "min_green_s": plan.min_green_s,
        "stages": [
            {
                "green_s": p.green_s,
                "groups": [model.group_of_edge(a) for a in p.approaches] + [c for c, _ in p.walks],
                "walks": dict(p.walks),
            }
            for p in plan.phases
        ],
        "program": program.to_dict(),
        "variants": checked,
        "safety": {"checked": True, "rules": sorted(RULES)},
    }
    if extra:
        doc.update(extra)
    return doc
