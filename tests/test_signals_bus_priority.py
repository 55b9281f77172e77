"""Bus priority by check-in / check-out: the controller's answer to one bus call."""

from __future__ import annotations

import numpy as np
import pytest

from optimize.signals import bus_call, bus_priorities, signal_delay
from twin._errors import InputValidationError
from twin.scenarios.network import REFERENCE_WEEKDAY, signal_plans
from twin.signals.buses import bus_groups, bus_routes
from twin.signals.junction import approaches_of, build_junction, crossroads_graph
from twin.signals.plans import stage_minimums, webster
from twin.signals.safety import SafetyRules, check_program, program_of


@pytest.fixture(scope="module")
def crossroads():  # type: ignore[no-untyped-def]
    g = crossroads_graph()
    m = build_junction(g, "junction:0", nodes=[0], approaches=approaches_of(g, [0]))
    plan = webster(m, {"a:1": 600.0, "a:3": 500.0, "a:2": 500.0, "a:4": 400.0}, cycle_s=80.0)
    bus = m.group_of_edge(plan.phases[0].approaches[0])
    other = m.group_of_edge(plan.phases[1].approaches[0])
    mins = stage_minimums(m, all_red_s=plan.all_red_s)
    return m, plan, bus, other, mins


def _greens(prog, group):  # type: ignore[no-untyped-def]
    gp = prog.group(group)
    return [] if gp is None else list(gp.greens)


def test_a_bus_just_after_its_green_gains_the_extension(crossroads):
    m, plan, bus, other, mins = crossroads
    start, green = plan.phase_starts()[0], plan.phases[0].green_s
    end = start + green
    arrival = end + 4.0  # the bus reaches the stop line 4 s after the plan's green ends
    base = program_of(plan, m)
    assert signal_delay(base, bus, [arrival])[0] > 20.0  # without priority: the next cycle
    call = end - 6.0  # it checked in while its stage was green
    shorter = bus_call(plan, m, bus, call_s=call, extension_s=2.0)
    ans = bus_call(plan, m, bus, call_s=call, extension_s=6.0)
    assert ans.early_s == 0 and ans.extension_s == pytest.approx(6.0)
    assert ans.green_end_s == pytest.approx(end + 6.0)
    assert signal_delay(ans.program, bus, [arrival])[0] == 0.0
    # the 2 s extension is the same programme up to its end: the controller may ask for more
    cut = end + 2.0
    for g in m.group_ids:
        a = [(s, min(e, cut)) for s, e in _greens(shorter.program, g) if s < cut]
        b = [(s, min(e, cut)) for s, e in _greens(ans.program, g) if s < cut]
        np.testing.assert_allclose(np.ravel(a), np.ravel(b))
    # the other stage gives the time back and keeps at least its minimum; the plan resumes
    cyc = plan.cycle_s
    others = _greens(ans.program, other)
    assert others[0][1] - others[0][0] == pytest.approx(plan.phases[1].green_s - 6.0)
    assert others[0][1] - others[0][0] >= mins[1] - 1e-9
    assert others[0][1] == pytest.approx(plan.phase_starts()[1] + plan.phases[1].green_s)
    later = [(s - cyc, e - cyc) for s, e in _greens(ans.program, bus) if s >= cyc]
    np.testing.assert_allclose(later[0], _greens(base, bus)[0])
    assert check_program(ans.program, m) == []
    # an extension is bounded by what the others have above their minimums
    most = bus_call(plan, m, bus, call_s=call, extension_s=500.0)
    assert most.extension_s == pytest.approx(plan.phases[1].green_s - mins[1])


def test_a_bus_at_red_gets_an_early_green_within_the_minimums(crossroads):
    m, plan, bus, other, mins = crossroads
    s1 = plan.phase_starts()[1]
    inter = plan.intergreen_s
    cyc = plan.cycle_s
    # the conflicting stage has just started: it runs its minimum green, then the intergreen
    ans = bus_call(plan, m, bus, call_s=s1 + 1.0)
    assert ans.green_start_s == pytest.approx(s1 + mins[1] + inter)
    assert any(s == pytest.approx(s1 + mins[1] + inter) for s, _ in _greens(ans.program, bus))
    assert ans.green_end_s == pytest.approx(cyc + plan.phases[0].green_s)  # the plan's end
    # past its minimum: it ends at the check-in
    late = s1 + mins[1] + 4.0
    ans = bus_call(plan, m, bus, call_s=late)
    assert ans.green_start_s == pytest.approx(late + inter)
    # never earlier than the minimums allow, wherever the check-in falls in the red
    for c in np.arange(s1 - inter + 0.5, cyc, 0.5):
        ans = bus_call(plan, m, bus, call_s=float(c))
        floor = min(max(float(c), s1 + mins[1]) + inter, cyc)  # cyc: the plan's own start
        assert ans.green_start_s >= floor - 1e-9
        assert check_program(ans.program, m) == []
    # capped: at most max_early_s taken from the others
    ans = bus_call(plan, m, bus, call_s=s1 + 1.0, max_early_s=3.0)
    assert ans.early_s == pytest.approx(3.0)
    assert ans.green_start_s == pytest.approx(cyc - 3.0)


def test_nothing_unsafe_passes(bondy, crossroads):
    m, plan, bus, other, _ = crossroads
    # an extension that would keep the other approaches red longer than the rules allow is
    # refused (by the validator, not by construction)
    base = program_of(plan, m)
    (s, e), cyc = _greens(base, other)[0], plan.cycle_s
    amber = base.group(other).amber_s  # the red is counted from the end of the amber
    strict = SafetyRules(max_red_s=cyc - (e - s) - amber + 3.0)
    end = plan.phase_starts()[0] + plan.phases[0].green_s
    assert check_program(base, m, rules=strict) == []
    ok = bus_call(plan, m, bus, call_s=end - 5.0, extension_s=2.0, rules=strict)
    assert check_program(ok.program, m, rules=strict) == []
    with pytest.raises(InputValidationError):
        bus_call(plan, m, bus, call_s=end - 5.0, extension_s=6.0, rules=strict)
    # on Bondy's bus approaches, every check-in second, with and without extension: each
    # answer passes the validator, and no stage runs below its minimum green
    plans = signal_plans(bondy, day=REFERENCE_WEEKDAY, hour=8)
    prio = bus_priorities(plans, plans.models, bus_groups(bus_routes(bondy), plans.models))
    answered = 0
    for jid, items in prio.items():
        p, model = plans[jid], plans.models[jid]
        for bp in items:
            for c in np.arange(0.0, p.cycle_s, 2.0):
                for ext in (0.0, 6.0, 15.0):
                    try:
                        ans = bus_call(p, model, bp.group, call_s=float(c), extension_s=ext)
                    except InputValidationError:
                        continue
                    answered += 1
                    assert check_program(ans.program, model) == [], (jid, bp.group, c, ext)
                    for gp in ans.program.groups:
                        if model.group(gp.group).kind != "vehicle":
                            continue
                        for s, e in gp.greens:
                            if s > 0.0 and e < ans.program.cycle_s:
                                assert e - s >= p.min_green_s - 1e-6
    assert answered > 0
