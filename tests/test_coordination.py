"""The timing of a coordinated run (optimize.coordination.time_run): the common cycle, double
cycling and the members left out, chosen by the delay they give rather than by the longest
member's cycle."""

from __future__ import annotations

import pytest

from optimize.coordination import RunMember, run_delay, time_run
from twin._errors import InputValidationError
from twin.signals.junction import approaches_of, build_junction, crossroads_graph
from twin.signals.plans import webster


def _member(jid: str, main: float, side: float, *, prev: float, nxt: float) -> RunMember:
    """A cross-roads on the run: ``main`` pcu/h on each arm of the street (a:1, a:3, stage 0),
    ``side`` on each side street; ``prev`` / ``nxt`` of the street's flow come from the
    previous / next signal of the run."""
    g = crossroads_graph()
    m = build_junction(g, jid, nodes=[0], approaches=approaches_of(g, [0]))
    flows = {"a:1": main, "a:3": main, "a:2": side, "a:4": side}
    lanes = dict.fromkeys(flows, 1)
    own = webster(m, flows, lanes=lanes)
    street = next(k for k, s in enumerate(m.stages) if "a:1" in s)
    return RunMember(m, flows, lanes, own.cycle_s, street, prev, nxt)


def _timing_delay(members: list[RunMember], periods: tuple[float | None, ...]) -> float:
    tot = 0.0
    for i, (m, p) in enumerate(zip(members, periods, strict=True)):
        if p is None:
            tot += run_delay(m, m.own_cycle_s)
            continue
        prog = (m.from_prev_pcu_h if i > 0 and periods[i - 1] is not None else 0.0) + (
            m.from_next_pcu_h if i < len(members) - 1 and periods[i + 1] is not None else 0.0
        )
        tot += run_delay(m, p, progressed_pcu_h=prog)
    return tot


def test_a_long_cycle_that_costs_more_than_the_band_saves_is_not_imposed():
    """A busy junction whose Webster cycle is long beside a light one at 40 s: both at the
    longer cycle (its platoons progressed both ways) give more delay than each at its own;
    the run is timed otherwise, and no worse than the two left uncoordinated."""
    busy = _member("junction:0", 900.0, 360.0, prev=0.0, nxt=100.0)
    light = _member("junction:1", 300.0, 100.0, prev=100.0, nxt=0.0)
    members = [busy, light]
    longest = max(m.own_cycle_s for m in members)
    assert busy.own_cycle_s > 60.0 and light.own_cycle_s == pytest.approx(40.0)
    # the premise: the longest member's cycle for both costs more than it saves
    at_longest = _timing_delay(members, (longest, longest))
    own = _timing_delay(members, (None, None))
    assert at_longest > own
    t = time_run(members)
    assert t.own_delay_veh_h == pytest.approx(own)
    assert t.delay_veh_h <= own + 1e-9
    assert t.period_s != (longest, longest)
    # the delay it reports is that of the timing it returns
    assert t.delay_veh_h == pytest.approx(_timing_delay(members, t.period_s))
    if any(p is not None for p in t.period_s):
        assert all(p is not None for p in t.period_s)  # a run of two needs both
        assert all(p in (t.cycle_s, t.cycle_s / 2) for p in t.period_s)  # type: ignore[operator]


def test_double_cycling_only_where_it_pays():
    """Three signals of a street carrying heavy platoons: the middle one alone is busy. The
    light ones run at half the common cycle where that gives them less delay than the whole
    cycle (not merely where their own cycle fits in the half); the run is coordinated."""
    a = _member("junction:0", 600.0, 60.0, prev=0.0, nxt=500.0)
    b = _member("junction:1", 900.0, 500.0, prev=500.0, nxt=500.0)
    c = _member("junction:2", 600.0, 60.0, prev=500.0, nxt=0.0)
    members = [a, b, c]
    t = time_run(members)
    assert all(p is not None for p in t.period_s)
    assert t.delay_veh_h < t.own_delay_veh_h
    for i, (m, p) in enumerate(zip(members, t.period_s, strict=True)):
        assert p is not None
        prog = (m.from_prev_pcu_h if i > 0 else 0.0) + (m.from_next_pcu_h if i < 2 else 0.0)
        other = t.cycle_s if p < t.cycle_s else t.cycle_s / 2
        # the period it got gives it no more delay than the other one would
        assert (
            run_delay(m, p, progressed_pcu_h=prog)
            <= run_delay(m, other, progressed_pcu_h=prog) + 1e-9
            or other < 40.0
        )
    assert t.delay_veh_h == pytest.approx(_timing_delay(members, t.period_s))


def test_a_cycle_too_short_for_the_minimums_is_infinite_delay():
    m = _member("junction:0", 600.0, 60.0, prev=0.0, nxt=0.0)
    assert run_delay(m, 10.0) == float("inf")
    assert run_delay(m, 60.0) < run_delay(m, 120.0)


def test_progression_lowers_the_delay_of_the_street_only():
    m = _member("junction:0", 600.0, 200.0, prev=600.0, nxt=0.0)
    free = run_delay(m, 70.0)
    banded = run_delay(m, 70.0, progressed_pcu_h=600.0)
    assert banded < free
    side_only = _member("junction:0", 600.0, 200.0, prev=0.0, nxt=0.0)
    assert run_delay(side_only, 70.0) == pytest.approx(free)


def test_unknown_common_cycle_rule_is_refused(montpellier):
    from optimize.coordination import coordinated_plans
    from twin.scenarios.network import REFERENCE_WEEKDAY, signal_plans

    plans = signal_plans(montpellier, day=REFERENCE_WEEKDAY, hour=8)
    with pytest.raises(InputValidationError, match="common_cycle"):
        coordinated_plans(montpellier, plans, common_cycle="shortest")
