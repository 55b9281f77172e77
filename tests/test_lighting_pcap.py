"""EN 13201-2 Table 3 note: a P class's average must not exceed 1.5 times the class value.

Enforced as an upper bound on output in every LP path (fast, full HiGHS, pulp), not only
checked: a light whose design over-lights its P class is held down to 1.5 x the class.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimize import dimming
from optimize import dimming_lp as lp
from twin._errors import InputValidationError
from twin.assets import lighting

T = np.array(["2026-12-21T22:00", "2026-12-21T22:15", "2026-12-21T22:30"], dtype="datetime64[ns]")


def _problem(max_level=None):
    """Two lights on one cabinet; light 0 is a P3 lantern on a slot needing only P5.

    P5 / P3 = 3 / 7.5 = 0.4 of full output; 1.5 x P5 is 0.6. A service weight that values
    light above the requirement far above its energy would light it at 100 %.
    """
    design = np.array([["P3"] * 3, ["M4"] * 3])
    required_class = np.array([["P5"] * 3, ["M5"] * 3])
    required = np.asarray(lighting.required_fraction(design, required_class, maintenance_margin=0))
    return lp.DimmingProblem(
        light=["light:p3", "light:m4"],
        time=T,
        slot_h=0.25,
        power_w=[35.0, 65.0],
        required=required,
        cabinet_index=[0, 0],
        cabinet=["cabinet:0"],
        min_level=0.1,
        ramp=0.2,
        weight=1.0,
        service_weight_kwh=100.0,
        max_level=max_level,
    ), np.asarray(lighting.p_cap_fraction(design, required_class), dtype=float)


@pytest.mark.parametrize("method", ["fast", "highs", "pulp"])
def test_p_class_average_is_capped_at_one_and_a_half_times_the_class(method):
    free, cap = _problem()
    assert cap[0].tolist() == pytest.approx([0.6] * 3)
    assert np.isinf(cap[1]).all()  # M classes have no such cap
    loose = lp.solve(free, objective="service", method=method)
    assert loose.level[0].min() == pytest.approx(1.0)  # over-lit without the bound
    capped, _ = _problem(max_level=np.minimum(cap, 1.0))
    sol = lp.solve(capped, objective="service", method=method)
    assert sol.status == "ok"
    np.testing.assert_allclose(sol.level[0], 0.6, atol=1e-9)  # held at 1.5 x P5
    np.testing.assert_allclose(sol.level[1], 1.0, atol=1e-9)  # the M light is not capped
    assert (sol.level >= capped.required - 1e-9).all()


def test_max_level_below_what_the_requirement_needs_names_the_field():
    _, cap = _problem()
    bad = np.minimum(cap, 1.0)
    bad[0, 1] = 0.3  # below the 0.4 the P5 requirement needs
    with pytest.raises(InputValidationError, match=r"max_level: light 'light:p3', slot 1"):
        _problem(max_level=bad)
    with pytest.raises(InputValidationError, match="max_level"):
        _problem(max_level=np.full((2, 3), 1.5))


def test_night_plan_holds_p_slots_under_the_cap_but_where_a_ramp_needs_more(paris):
    """On a real night, the service objective (which lights above the floor) stays under 1.5x."""
    day = "2026-06-21"
    problem, extra = dimming.problem_for(paris, day, service_weight_kwh=5.0)
    ds = dimming.plan(paris, day, objective="service", prepared=(problem, extra))
    level = ds["level"].to_numpy()
    cap = np.asarray(problem.max_level)
    assert (level <= cap + 1e-9).all()
    # the bound bites: some P slot would be lit above 1.5 x its class without it
    free = dimming.plan(
        paris,
        day,
        objective="service",
        prepared=(lp.DimmingProblem(**{**vars(problem), "max_level": None}), extra),
    )
    assert free.attrs["over_p_cap_pct"] > ds.attrs["over_p_cap_pct"]
    # what is still flagged is only where the ramp down from a brighter slot forces it
    over = ds["over_p_cap"].to_numpy()
    env = lp.ramp_envelope(problem)
    np.testing.assert_allclose(level[over], env[over], atol=1e-9)
