"""Tests of the dimming LP on arrays: model, fast path, closed forms, infeasibility reports."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import highspy
import numpy as np
import pulp
import pytest

from optimize import _highs, _pulp
from optimize import dimming_fast as dfast
from optimize import dimming_lp as dl
from twin._errors import InputValidationError, TwinError

TOL = 1e-6


def _problem(
    *,
    n: int = 40,
    t_n: int = 16,
    m: int = 5,
    seed: int = 0,
    cap_frac: float | None = 0.5,
    budget_frac: float | None = 0.4,
    ramp: float = 0.2,
    n_profiles: int = 4,
    with_off: bool = True,
) -> dl.DimmingProblem:
    """A random night where lights share profiles, caps and budget sit between min and full."""
    rng = np.random.default_rng(seed)
    cab = rng.integers(0, m, n)
    prof = rng.integers(0, n_profiles, n)
    req = rng.choice([0.0, 0.2, 0.3, 0.5, 0.75, 1.0], size=(n_profiles, t_n))[prof]
    pw = rng.choice([40.0, 60.0, 100.0], size=n)
    weight = rng.uniform(0, 2, size=(n_profiles, t_n))[prof] * pw[:, None] / 60.0
    weight[rng.random(n) < 0.15] = 0.0
    weight[rng.random(n) < 0.1] *= 1.3  # breaks some groups
    off = np.zeros((n, t_n), dtype=bool)
    if with_off:
        off_cab = np.flatnonzero(rng.random(m) < 0.4)
        off[np.isin(cab, off_cab), t_n // 3 : t_n // 3 + t_n // 4] = True
    time = np.datetime64("2024-12-20T17:00", "ns") + np.arange(t_n) * np.timedelta64(15, "m")
    slot_h = np.full(t_n, 0.25)
    slot_h[0], slot_h[-1] = 0.1, 0.2
    p = dl.DimmingProblem(
        light=[f"light:{i:04d}" for i in range(n)],
        time=time,
        slot_h=slot_h,
        power_w=pw,
        required=req,
        cabinet_index=cab,
        cabinet=[f"cabinet:{j}" for j in range(m)],
        driver_floor=0.1,
        min_level=rng.choice([0.1, 0.2], n),
        forced_off=off,
        weight=weight,
        ramp=ramp,
        price_eur_per_kwh=rng.uniform(0.1, 0.3, t_n),
    )
    env = dl.ramp_envelope(p)
    full = np.where(p.on, 1.0, 0.0)
    caps = None
    if cap_frac is not None:
        p_min, p_full = dl.cabinet_power_w(p, env), dl.cabinet_power_w(p, full)
        caps = p_min + cap_frac * (p_full - p_min)
    budget = None
    if budget_frac is not None:
        e_min, e_full = dl.energy_wh(p, env).sum(), dl.energy_wh(p, full).sum()
        budget = e_min + budget_frac * (e_full - e_min)
    return replace(p, cabinet_cap_w=caps, energy_budget_wh=budget)


def _assert_feasible(p: dl.DimmingProblem, level: np.ndarray) -> None:
    viol = dl.constraint_violations(p, level)
    assert max(viol.values()) <= TOL, viol


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("power_w", -1.0, "power_w"),
        ("required", 1.5, "required"),
        ("min_level", 2.0, "min_level"),
        ("ramp", 0.0, "ramp"),
        ("driver_floor", 1.0, "driver_floor"),
        ("cabinet_index", np.zeros(40, dtype=int) + 9, "cabinet_index"),
        ("slot_h", 0.0, "slot_h"),
        ("weight", -1.0, "weight"),
        ("energy_budget_wh", float("nan"), "energy_budget_wh"),
        ("forced_off", np.zeros((40, 16)), "forced_off"),
        ("light", ["a"] * 40, "light"),
    ],
)
def test_bad_field_is_named(field: str, value: object, words: str) -> None:
    p = _problem()
    with pytest.raises(InputValidationError, match=words):
        replace(p, **{field: value})


def test_time_must_increase_and_be_datetime() -> None:
    p = _problem()
    with pytest.raises(InputValidationError, match="time"):
        replace(p, time=p.time[::-1])
    with pytest.raises(InputValidationError, match="time"):
        replace(p, time=np.arange(p.n_slots, dtype=float))


def test_problem_arrays_are_read_only() -> None:
    p = _problem()
    with pytest.raises(ValueError, match="read-only"):
        p.required[0, 0] = 0.5


# ------------------------------------------------------------------------------ closed forms


def test_envelope_is_smallest_ramp_feasible_profile() -> None:
    p = _problem(cap_frac=None, budget_frac=None, seed=3)
    env = dl.ramp_envelope(p)
    _assert_feasible(p, env)
    # brute-force definition: max over s in the same on-stretch of lb[s] - ramp |t - s|
    lb = dl.lower_bound_levels(p)
    on = p.on
    for i in range(p.n):
        for t in range(p.n_slots):
            if not on[i, t]:
                assert env[i, t] == 0.0
                continue
            lo = t
            while lo > 0 and on[i, lo - 1]:
                lo -= 1
            hi = t
            while hi < p.n_slots - 1 and on[i, hi + 1]:
                hi += 1
            s = np.arange(lo, hi + 1)
            assert env[i, t] == pytest.approx(np.max(lb[i, s] - p.ramp * np.abs(t - s)))
    # lowering any single light-slot below it breaks a requirement or a ramp
    i, t = np.argwhere(on & (env > dl.lower_bound_levels(p) + 0.05))[0]
    lowered = env.copy()
    lowered[i, t] -= 0.05
    viol = dl.constraint_violations(p, lowered)
    assert viol["ramp_up"] + viol["ramp_down"] > 1e-3


def test_energy_and_min_energy_closed_forms() -> None:
    p = _problem()
    lvl = dl.min_energy_levels(p)
    # the minimum energy under ramps is the envelope; without ramps, the slot-wise floor
    np.testing.assert_array_equal(lvl, dl.ramp_envelope(p))
    floor = np.where(p.on, np.maximum(p.required, p.min_level[:, None]), 0.0)  # type: ignore[index]
    np.testing.assert_array_equal(dl.min_energy_levels(dataclasses.replace(p, ramp=1.0)), floor)
    assert (lvl >= floor).all()
    e = dl.energy_wh(p, lvl)
    i, t = np.argwhere(p.on)[7]
    assert e[i, t] == pytest.approx(p.power_w[i] * (0.1 + 0.9 * lvl[i, t]) * p.slot_h[t])
    assert (e[~p.on] == 0).all()
    sol = dl.solve(p, objective="min_energy")
    assert sol.method == "closed_form"
    assert sol.objective == pytest.approx(e.sum())
    # and it is the LP's optimum: minimum cost at a flat price is minimum energy
    flat = dataclasses.replace(p, price_eur_per_kwh=np.ones(p.n_slots))
    lp_sol = dl.solve(flat, objective="cost", method="highs")
    lp_e = dl.energy_wh(p, lp_sol.level).sum()
    assert abs(lp_e - e.sum()) <= 1e-6 * e.sum()
    # the LP plans never use less than the envelope's energy, which is >= the floor
    fast = dl.solve(p, objective="service")
    assert dl.energy_wh(p, fast.level).sum() >= e.sum() - TOL


# ------------------------------------------------------------------------------ fast == pulp


@pytest.mark.parametrize("seed", range(8))
def test_fast_matches_pulp_on_random_instances(seed: int) -> None:
    p = _problem(
        seed=seed,
        n=30 + 10 * seed,
        t_n=12 + 2 * seed,
        cap_frac=[0.3, 0.5, 0.8][seed % 3],
        budget_frac=[0.3, 0.5, 0.7, None][seed % 4],
        ramp=[0.15, 0.2, 0.3][seed % 3],
        with_off=seed % 2 == 0,
    )
    ref = dl.solve(p, method="pulp")
    fast = dl.solve(p, method="fast")
    full = dl.solve(p, method="highs")
    for sol in (ref, fast, full):
        assert sol.status == "ok"
        _assert_feasible(p, sol.level)
    assert fast.objective == pytest.approx(ref.objective, rel=1e-7)
    assert full.objective == pytest.approx(ref.objective, rel=1e-7)
    # the reductions shrink the LP
    assert fast.n_columns < full.n_columns
    # constraints do bind: the plan is not simply full output
    assert (fast.level[p.on] < 1 - 1e-6).any()
    if p.energy_budget_wh is not None:
        # duals may differ at a degenerate optimum; each must lie between the one-sided
        # derivatives of the optimum with respect to the budget
        right, left = _budget_derivatives(p)
        for sol in (ref, fast, full):
            assert sol.budget_dual is not None
            assert right - 1e-6 * abs(left) - 1e-9 <= sol.budget_dual <= left * (1 + 1e-6) + 1e-9


def test_binding_constraints_are_active_in_the_fixture() -> None:
    p = _problem(seed=1, cap_frac=0.3, budget_frac=0.3)
    sol = dl.solve(p)
    cab = dl.cabinet_power_w(p, sol.level)
    assert (cab >= p.cabinet_cap_w - 1e-6).any()  # some cap binds
    assert dl.energy_wh(p, sol.level).sum() == pytest.approx(p.energy_budget_wh, rel=1e-9)
    # less budget costs service (the budget binds); the optimum is degenerate here (more budget
    # gains nothing), so any dual between the one-sided derivatives is right, 0 included
    right, left = _budget_derivatives(p)
    assert left > 0
    assert right - 1e-9 <= sol.budget_dual <= left * (1 + 1e-6) + 1e-9
    step = np.abs(np.diff(sol.level, axis=1))[p.on[:, 1:] & p.on[:, :-1]]
    assert (step >= p.ramp - 1e-9).any()  # some ramp binds


def _budget_derivatives(p: dl.DimmingProblem, rel_step: float = 1e-6) -> tuple[float, float]:
    """One-sided derivatives (right, left) of the optimum with respect to the budget."""
    assert p.energy_budget_wh is not None
    step = rel_step * p.energy_budget_wh
    mid = dl.solve(p).objective
    more = dl.solve(replace(p, energy_budget_wh=p.energy_budget_wh + step)).objective
    less = dl.solve(replace(p, energy_budget_wh=p.energy_budget_wh - step)).objective
    return (more - mid) / step, (mid - less) / step


def test_budget_dual_is_the_marginal_value() -> None:
    p = _problem(seed=5, cap_frac=None, budget_frac=0.4)
    sol = dl.solve(p)
    right, left = _budget_derivatives(p, rel_step=1e-3)
    assert sol.budget_dual > 0
    assert right - 1e-9 <= sol.budget_dual <= left + 1e-9


def _highs_without_ramps(lp: dfast._ArrayLp) -> highspy.Highs:
    """The reduced LP without its ramp rows, loaded in HiGHS (simplex, no presolve)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("presolve", "off")
    model = highspy.HighsLp()
    model.num_col_ = int(lp.cost.size)
    model.num_row_ = int(lp.row_lower.size)
    model.col_cost_ = lp.cost
    model.col_lower_ = lp.col_lower
    model.col_upper_ = lp.col_upper
    model.row_lower_ = lp.row_lower
    model.row_upper_ = lp.row_upper
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = lp.matrix.indptr.astype(np.int32)
    model.a_matrix_.index_ = lp.matrix.indices.astype(np.int32)
    model.a_matrix_.value_ = lp.matrix.data
    h.passModel(model)
    return h


@pytest.mark.parametrize("seed", range(12))
def test_greedy_basis_is_optimal_without_ramps(seed: int) -> None:
    p = _problem(
        seed=seed,
        n=30 + 7 * seed,
        t_n=8 + seed,
        cap_frac=[0.3, 0.5, 0.8, None][seed % 4],
        budget_frac=[0.3, 0.6, None][seed % 3] if seed % 4 != 3 else 0.5,
        n_profiles=2 + seed % 4,
    )
    lp = dfast._build_array_lp(p, "service", True)
    assert lp.cost.size > 0
    start = dfast._greedy_basis(lp)
    assert start is not None
    col, row = start
    assert (col == 1).sum() + (row == 1).sum() == lp.row_lower.size
    cold = _highs_without_ramps(lp)
    cold.run()
    assert cold.getInfo().simplex_iteration_count > 0
    warm = _highs_without_ramps(lp)
    by_code = [highspy.HighsBasisStatus.kLower, highspy.HighsBasisStatus.kBasic]
    by_code.append(highspy.HighsBasisStatus.kUpper)
    basis = highspy.HighsBasis()
    basis.col_status = [by_code[v] for v in col.tolist()]
    basis.row_status = [by_code[v] for v in row.tolist()]
    warm.setBasis(basis)
    warm.run()
    assert warm.modelStatusToString(warm.getModelStatus()) == "Optimal"
    # the greedy basis is already optimal: HiGHS only checks it
    assert warm.getInfo().simplex_iteration_count == 0
    assert warm.getInfo().objective_function_value == pytest.approx(
        cold.getInfo().objective_function_value, rel=1e-9
    )


@pytest.mark.parametrize(("cap_frac", "budget_frac"), [(0.4, 0.5), (None, 0.3), (0.3, None)])
def test_fast_without_ramp_limit_is_the_greedy_optimum(
    cap_frac: float | None, budget_frac: float | None
) -> None:
    # ramp >= 1: no ramp rows, so the plan comes straight from the greedy basis
    p = _problem(seed=21, n=60, t_n=10, cap_frac=cap_frac, budget_frac=budget_frac, ramp=1.0)
    fast = dl.solve(p)
    ref = dl.solve(p, method="pulp")
    assert fast.status == "ok"
    _assert_feasible(p, fast.level)
    assert fast.objective == pytest.approx(ref.objective, rel=1e-7)
    assert (fast.level[p.on] < 1 - 1e-6).any()


def test_cost_objective() -> None:
    p = _problem(seed=2)
    ref = dl.solve(p, objective="cost", method="pulp")
    fast = dl.solve(p, objective="cost")
    assert fast.condition == "closed form"  # non-negative prices: the envelope is optimal
    np.testing.assert_allclose(fast.level, dl.ramp_envelope(p))
    assert fast.objective == pytest.approx(ref.objective, rel=1e-7)
    # negative prices (they happen on spot markets) need the LP
    price = np.array(p.price_eur_per_kwh)
    price[3:7] = -0.05
    q = replace(p, price_eur_per_kwh=price)
    ref = dl.solve(q, objective="cost", method="pulp")
    fast = dl.solve(q, objective="cost")
    assert fast.condition == "Optimal"
    _assert_feasible(q, fast.level)
    assert fast.objective == pytest.approx(ref.objective, rel=1e-7)
    assert fast.objective < dl.objective_value(q, dl.ramp_envelope(q), "cost")


def test_cost_needs_a_tariff() -> None:
    p = replace(_problem(), price_eur_per_kwh=None)
    with pytest.raises(InputValidationError, match="price_eur_per_kwh"):
        dl.solve(p, objective="cost")


def test_unknown_objective_and_method() -> None:
    p = _problem()
    with pytest.raises(InputValidationError, match="objective"):
        dl.solve(p, objective="comfort")  # type: ignore[arg-type]
    with pytest.raises(InputValidationError, match="method"):
        dl.solve(p, method="cbc")  # type: ignore[arg-type]


def test_zero_weight_lights_sit_on_the_envelope() -> None:
    p = _problem(seed=4, budget_frac=None, cap_frac=None)
    weight = np.array(p.weight)
    weight[:5] = 0.0
    q = replace(p, weight=weight)
    sol = dl.solve(q)
    np.testing.assert_allclose(sol.level[:5], dl.ramp_envelope(q)[:5], atol=1e-9)
    # without budget or caps, weighted lights go to full output
    pos = (weight > 0).all(axis=1) & q.on.all(axis=1)
    assert np.allclose(sol.level[pos], 1.0)


def test_aggregation_gives_identical_lights_identical_levels() -> None:
    base = _problem(seed=6, n=20)
    # duplicate every light with a different power and proportional weight: same group
    idx = np.concatenate([np.arange(base.n), np.arange(base.n)])
    scale = np.concatenate([np.ones(base.n), np.full(base.n, 2.0)])
    p = dl.DimmingProblem(
        light=[f"l{k}" for k in range(idx.size)],
        time=base.time,
        slot_h=base.slot_h,
        power_w=base.power_w[idx] * scale,
        required=base.required[idx],
        cabinet_index=base.cabinet_index[idx],
        cabinet=base.cabinet,
        min_level=base.min_level[idx],  # type: ignore[index]
        forced_off=base.forced_off[idx],  # type: ignore[index]
        weight=base.weight[idx] * scale[:, None],
        ramp=base.ramp,
        cabinet_cap_w=base.cabinet_cap_w * 3.0,
        energy_budget_wh=None if base.energy_budget_wh is None else 3 * base.energy_budget_wh,
    )
    fast = dl.solve(p)
    ref = dl.solve(p, method="pulp")
    assert fast.objective == pytest.approx(ref.objective, rel=1e-7)
    np.testing.assert_allclose(fast.level[: base.n], fast.level[base.n :])
    assert fast.n_columns <= dl.solve(base).n_columns + 1  # no more columns than the original


# ------------------------------------------------------------------------------ infeasibility


def test_infeasible_caps_and_budget_report_smallest_relaxation() -> None:
    p = _problem(seed=7)
    env = dl.ramp_envelope(p)
    p_min = dl.cabinet_power_w(p, env)
    caps = np.array(p.cabinet_cap_w)
    lit1 = np.flatnonzero(p_min[1] > 50)[:3]
    lit3 = np.flatnonzero(p_min[3] > 50)[-1]
    caps[1, lit1] = 0.8 * p_min[1, lit1]
    caps[3, lit3] = 0.5 * p_min[3, lit3]
    bad = replace(p, cabinet_cap_w=caps, energy_budget_wh=0.9 * dl.energy_wh(p, env).sum())
    with pytest.raises(dl.InfeasiblePlanError) as info:
        dl.solve(bad)
    err = info.value
    assert isinstance(err, TwinError)
    assert isinstance(err, ValueError)
    rep = err.report
    got = set(zip(rep.cap_cabinet_pos.tolist(), rep.cap_slot.tolist(), strict=True))
    assert got == {(1, int(t)) for t in lit1} | {(3, int(lit3))}
    assert "cabinet:1" in str(err)
    assert "cabinet:3" in str(err)
    assert "energy_budget" in str(err)
    where = (rep.cap_cabinet_pos, rep.cap_slot)
    np.testing.assert_allclose(rep.cap_increase_w, p_min[where] - caps[where])
    assert rep.budget_increase_wh == pytest.approx(0.1 * dl.energy_wh(p, env).sum())
    d = rep.as_dict()
    assert len(d["cabinet_cap"]) == 4
    assert d["energy_budget"]["increase_wh"] > 0
    # the relaxation is enough ...
    fixed = rep.relaxed(bad)
    assert dl.check_feasibility(fixed).feasible
    sol = dl.solve(fixed)
    assert sol.status == "ok"
    _assert_feasible(fixed, sol.level)
    ref = dl.solve(fixed, method="pulp")
    assert ref.status == "ok"
    assert sol.objective == pytest.approx(ref.objective, rel=1e-7)
    # ... and the smallest: 99 % of it is not
    with pytest.raises(dl.InfeasiblePlanError):
        dl.solve(rep.relaxed(bad, fraction=0.99))
    # each part is needed: 99 % of one of them alone keeps the problem infeasible
    only_caps = replace(rep.relaxed(bad), energy_budget_wh=bad.energy_budget_wh)
    assert not dl.check_feasibility(only_caps).feasible
    # and the pulp model of the 99 % relaxation is indeed infeasible for HiGHS
    almost = rep.relaxed(bad, fraction=0.99)
    model = dl.build_model(almost)
    model.solve(_highs.highs_solver())
    assert pulp.LpStatus[model.status] == "Infeasible"


def test_cap_increase_values() -> None:
    p = _problem(seed=8, budget_frac=None)
    env = dl.ramp_envelope(p)
    p_min = dl.cabinet_power_w(p, env)
    caps = np.array(p.cabinet_cap_w)
    t = int(np.argmax(p_min[2]))
    caps[2, t] = p_min[2, t] - 17.5
    rep = dl.check_feasibility(replace(p, cabinet_cap_w=caps))
    assert rep.cap_increase_w.tolist() == pytest.approx([17.5])
    assert rep.cap_cabinet.tolist() == ["cabinet:2"]
    assert list(rep.cap_time) == [p.time[t]]


def test_min_energy_checks_caps_without_ramps() -> None:
    p = _problem(seed=9, budget_frac=None)
    lb = dl.lower_bound_levels(p)
    caps = np.array(p.cabinet_cap_w)
    caps[0] = dl.cabinet_power_w(p, lb)[0] * 0.5
    with pytest.raises(dl.InfeasiblePlanError, match="cabinet:0"):
        dl.solve(replace(p, cabinet_cap_w=caps), objective="min_energy")


# ------------------------------------------------------------------------------ pulp model


def test_build_model_names_and_extra_functionality() -> None:
    p = _problem(seed=10, n=12, t_n=8)

    req = np.array(p.required)
    req[0] = np.minimum(req[0], 0.3)
    p = replace(p, required=req)
    i = 0
    limit = float(dl.ramp_envelope(p)[i].max()) + 0.05
    assert limit < 1.0

    def cap_light_zero(model: pulp.LpProblem, problem: dl.DimmingProblem) -> None:
        x = model.level_vars
        for t in range(problem.n_slots):
            if (i, t) in x:
                model += (x[i, t] <= limit, f"engineer_cap_{t}")

    model = dl.build_model(p, extra_functionality=cap_light_zero)
    for name in ("energy_budget", f"engineer_cap_{int(np.argmax(p.on[i]))}"):
        assert _pulp.constraint_by_name(model, name) is not None
    prefixes = {"requirement", "ramp_up", "ramp_down", "cabinet_cap"}
    found = {v.name.split("_")[0] for v in model.variables()}
    assert found == {"level"}
    for prefix in prefixes:
        assert any(
            _pulp.constraint_by_name(model, f"{prefix}_{i}_{t}") is not None
            for i in range(p.n)
            for t in range(p.n_slots)
        ), prefix
    sol = dl.solve(p, method="pulp", extra_functionality=cap_light_zero)
    assert sol.status == "ok"
    assert sol.level[i].max() <= limit + 1e-9
    assert dl.solve(p).level[i].max() > limit  # the hook changed the plan
    with pytest.raises(InputValidationError, match="extra_functionality"):
        dl.solve(p, method="fast", extra_functionality=cap_light_zero)


def test_non_optimal_status_gives_no_plan() -> None:
    p = _problem(seed=11, n=10, t_n=6)

    def impossible(model: pulp.LpProblem, problem: dl.DimmingProblem) -> None:
        x = model.level_vars
        model += (x[next(iter(x))] >= 2.0, "impossible")

    sol = dl.solve(p, method="pulp", extra_functionality=impossible)
    assert sol.status == "infeasible"
    assert np.isnan(sol.level).all()


def test_highs_solver_helper() -> None:
    solver = _highs.highs_solver(time_limit=5.0)
    assert solver.name == "HiGHS"
    m = pulp.LpProblem("t", pulp.LpMaximize)
    x = _pulp.add_variable(m, "x", low=0.0, up=3.0)
    m += x
    m.solve(solver)
    assert x.varValue == pytest.approx(3.0)


@pytest.mark.slow
def test_fast_matches_full_lp_on_medium_instance() -> None:
    p = _problem(seed=12, n=1500, t_n=48, m=50, n_profiles=30, cap_frac=0.4, budget_frac=0.4)
    fast = dl.solve(p)
    full = dl.solve(p, method="highs")
    _assert_feasible(p, fast.level)
    _assert_feasible(p, full.level)
    assert fast.objective == pytest.approx(full.objective, rel=1e-7)
    ref = dl.solve(p, method="pulp")
    assert fast.objective == pytest.approx(ref.objective, rel=1e-7)
