"""Cabinet caps in kVA with a power factor, and the plans where they bind.

The LP of the binding cabinets (windowed, aggregated, one block per cabinet and window: the
default path) is checked against the full straightforward model of the whole night in pulp; the
year on Montpellier against its own caps and its EN 13201 floor.
"""

from __future__ import annotations

import copy
import datetime as dt
import math

import numpy as np
import pandas as pd
import pulp
import pytest

from optimize import dimming, dimming_year
from optimize._highs import solve_quietly
from optimize._pulp import add_variable
from optimize.dimming_caps import SHORTFALL_WEIGHT, _windows, capped_levels
from optimize.dimming_lp import InfeasiblePlanError
from twin._errors import InputValidationError
from twin.assets.cabinet import (
    DEFAULT_POWER_FACTOR,
    TARIFF_STEPS_KVA,
    contracted_caps,
    subscribed_kva,
    with_contracts,
)
from twin.energy.power import DRIVER_FLOOR

WINTER = dt.date(2030, 12, 15)


# ---------------------------------------------------------------------------------------------
# the sizing rule
# ---------------------------------------------------------------------------------------------
def test_subscribed_kva_takes_the_next_tariff_step():
    loads = np.array([0.1, 2.99, 3.0, 3.01, 17.0, 18.5, 36.0, 36.2, 80.0])
    kva = subscribed_kva(loads)
    assert kva.tolist() == [3, 3, 3, 6, 18, 24, 36, 37, 80]
    assert set(kva[loads <= 36]) <= set(TARIFF_STEPS_KVA)
    assert (kva >= loads).all()


def test_caps_from_inventory_where_given_else_the_rule():
    full = np.array([3000.0, 3000.0, 2000.0])
    start = np.array([2600.0, 2600.0, 1700.0])
    caps = contracted_caps(
        full, start, contracted_kva=[np.nan, 12.0, np.nan], power_factor=[np.nan, 0.8, 0.95]
    )
    assert caps["cap_source"].tolist() == ["rule", "inventory", "rule"]
    # 2,600 W at PF 0.9 = 2.89 kVA -> 3 kVA -> 2,700 W of real power
    assert caps["contracted_kva"].tolist() == [3.0, 12.0, 3.0]
    np.testing.assert_allclose(caps["power_factor"], [DEFAULT_POWER_FACTOR, 0.8, 0.95])
    np.testing.assert_allclose(caps["cap_w"], [2700.0, 9600.0, 2850.0])
    # sized on full output instead: 3,000 W / 0.9 = 3.33 kVA -> 6 kVA, which no plan reaches
    full_caps = contracted_caps(full, start, sizing="full_output")
    assert (full_caps["cap_w"] >= full).all()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"power_factor": [0.0]}, "power_factor: cabinet 0"),
        ({"power_factor": [1.2]}, "power_factor: cabinet 0"),
        ({"contracted_kva": [-3.0]}, "contracted_kva: cabinet 0"),
        ({"contracted_kva": [3.0, 6.0]}, "contracted_kva: expected 1"),
        ({"sizing": "hps"}, "sizing"),
    ],
)
def test_bad_cap_input_names_the_field(kwargs, field):
    with pytest.raises(InputValidationError, match=field):
        contracted_caps([1000.0], [900.0], **kwargs)


def _cabinets_and_lights():
    cabs = pd.DataFrame({"id": ["cabinet:0", "cabinet:1", "cabinet:2"]})
    lights = pd.DataFrame(
        {
            "cabinet": ["cabinet:0", "cabinet:0", "cabinet:1", "cabinet:2"],
            "power_w": [1500.0, 1500.0, 2000.0, 500.0],
            "technology": ["LED", "LED", "HPS", "LED"],
            "maintenance_factor": [0.8, np.nan, np.nan, 0.9],
        }
    )
    return cabs, lights


def test_registry_contract_by_the_rule_where_no_inventory():
    cabs, lights = _cabinets_and_lights()
    out = with_contracts(cabs, lights, maintenance_factor=0.85, driver_floor=0.1)
    assert out["contract_source"].tolist() == ["rule"] * 3
    # cabinet 0: 1500 x (0.1 + 0.9 x 0.8) + 1500 x (0.1 + 0.9 x 0.85) = 2527.5 W; / 0.9 = 2.81 kVA
    # cabinet 1: an HPS lamp is not dimmed, 2000 W / 0.9 = 2.22 kVA; cabinet 2: 0.46 kVA
    assert out["contracted_kva"].tolist() == [3.0, 3.0, 3.0]
    np.testing.assert_allclose(out["power_factor"], DEFAULT_POWER_FACTOR)
    np.testing.assert_allclose(out["contracted_power_w"], [2700.0, 2700.0, 2700.0])


def test_registry_contract_from_the_inventory_where_given():
    cabs, lights = _cabinets_and_lights()
    cabs["contracted_kva"] = [np.nan, 12.0, 6.0]
    cabs["power_factor"] = [0.95, 0.8, np.nan]
    out = with_contracts(cabs, lights, maintenance_factor=0.85, driver_floor=0.1)
    assert out["contract_source"].tolist() == ["rule", "inventory", "inventory"]
    # the rule's step with the inventory's power factor: 2527.5 W / 0.95 = 2.66 kVA -> 3 kVA
    assert out["contracted_kva"].tolist() == [3.0, 12.0, 6.0]
    np.testing.assert_allclose(out["power_factor"], [0.95, 0.8, DEFAULT_POWER_FACTOR])
    np.testing.assert_allclose(out["contracted_power_w"], [2850.0, 9600.0, 5400.0])


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [
        ("contracted_kva", 0.0, "contracted_kva: cabinet 1"),
        ("contracted_kva", -6.0, "contracted_kva: cabinet 1"),
        ("power_factor", 0.0, "power_factor: cabinet 1"),
        ("power_factor", 1.01, "power_factor: cabinet 1"),
        ("power_factor", -0.5, "power_factor: cabinet 1"),
    ],
)
def test_registry_contract_bad_input_names_the_field(column, value, field):
    cabs, lights = _cabinets_and_lights()
    cabs[column] = [np.nan, value, np.nan]
    with pytest.raises(InputValidationError, match=field):
        with_contracts(cabs, lights, maintenance_factor=0.85, driver_floor=0.1)
    lights.loc[3, "cabinet"] = "cabinet:9"
    cabs[column] = np.nan
    with pytest.raises(InputValidationError, match="cabinet: light of unknown cabinet"):
        with_contracts(cabs, lights, maintenance_factor=0.85, driver_floor=0.1)


def test_plans_use_the_registry_contract(bondy):
    """The caps the plans read are the registry's contracts: inventory where given, else rule."""
    table = dimming.light_table(bondy)
    cab = bondy.registry["cabinet"]
    np.testing.assert_allclose(table["cabinet_cap_w"], cab["contracted_power_w"])
    assert table["cabinet_cap_source"].tolist() == cab["contract_source"].tolist()
    given = cab.copy()
    given.loc[given.index[0], ["contracted_kva", "power_factor", "contract_source"]] = [
        36.0,
        0.95,
        "inventory",
    ]
    twin = copy.deepcopy(bondy)  # the session's twin stays as built
    twin.registry.replace("cabinet", given)
    table = dimming.light_table(twin)
    assert table["cabinet_cap_source"][0] == "inventory"
    assert table["cabinet_cap_w"][0] == pytest.approx(36.0 * 1000.0 * 0.95)


# ---------------------------------------------------------------------------------------------
# the joint LP of the binding cabinets against the full model
# ---------------------------------------------------------------------------------------------
def _instance(seed: int):
    rng = np.random.default_rng(seed)
    n, t_n = 14, 36
    cab = np.repeat([0, 1, 2], [6, 5, 3])
    power = rng.choice([30.0, 45.0, 60.0], size=n)
    # evening peak, a dip after midnight, a morning rise; two lights share a profile
    hour = np.linspace(0, 1, t_n)
    shape = 0.35 + 0.65 * np.clip(np.abs(hour - 0.55) * 2.2, 0, 1)
    floor = np.clip(shape[None, :] * rng.uniform(0.7, 1.0, size=(n, 1)), 0.1, 1.0)
    floor[1] = floor[0]
    on = np.ones((n, t_n), dtype=bool)
    on[12, 14:20] = False  # a switch-off window
    full = np.bincount(cab, weights=power)
    caps = np.array([0.7, 0.78, 2.0]) * full  # cabinets 0 and 1 bind at dusk and dawn
    return power, floor, on, cab, caps, np.full(t_n, 0.25), np.full(n, 0.1)


def _full_model(power, floor, on, cab, caps, slot_h, min_level, ramp):
    """The straightforward model: every light and slot, every row, no window."""
    n, t_n = floor.shape
    m = pulp.LpProblem("caps", pulp.LpMinimize)
    f = DRIVER_FLOOR
    x = {}
    s = {}
    z = {}
    for c in range(caps.size):
        for t in range(t_n):
            z[c, t] = add_variable(m, f"z_{c}_{t}", low=0.0, up=1.0)
    obj = []
    for i in range(n):
        for t in range(t_n):
            if on[i, t]:
                x[i, t] = add_variable(m, f"x_{i}_{t}", low=float(min_level[i]), up=1.0)
                s[i, t] = add_variable(m, f"s_{i}_{t}", low=0.0, up=1.0)
                m += x[i, t] + s[i, t] >= float(floor[i, t])
                m += z[cab[i], t] >= s[i, t]
                obj.append(slot_h[t] * power[i] * ((1 - f) * x[i, t] + SHORTFALL_WEIGHT * s[i, t]))
                if t > 0 and on[i, t - 1]:
                    m += x[i, t] - x[i, t - 1] <= ramp
                    m += x[i, t - 1] - x[i, t] <= ramp
    for c in range(caps.size):
        members = np.flatnonzero(cab == c)
        for t in range(t_n):
            lit = [i for i in members if on[i, t]]
            m += pulp.lpSum(power[i] * (f + (1 - f) * x[i, t]) for i in lit) <= float(caps[c])
            obj.append(slot_h[t] * power[members].sum() * z[c, t])
    m += pulp.lpSum(obj)
    assert pulp.LpStatus[solve_quietly(m)] == "Optimal"
    level = np.zeros((n, t_n))
    for (i, t), v in x.items():
        level[i, t] = v.varValue
    return level, pulp.value(m.objective)


@pytest.mark.parametrize(("seed", "ramp"), [(1, 0.2), (2, 0.2), (5, 0.35), (6, 0.1)])
def test_joint_lp_of_binding_cabinets_is_the_full_optimum(seed, ramp):
    power, floor, on, cab, caps, slot_h, lo = _instance(seed)
    got = capped_levels(
        power, floor, on, ramp=ramp, cabinet_index=cab, cap_w=caps, slot_h=slot_h,
        driver_floor=DRIVER_FLOOR, min_level=lo,
    )  # fmt: skip
    assert got.binding.tolist() == [0, 1]
    assert got.path == "per-light + joint LP on 2 cabinets"
    # the caps bind at dusk and at dawn, far apart: each cabinet is solved as two blocks
    env_draw = np.zeros((caps.size, floor.shape[1]))
    np.add.at(
        env_draw,
        cab,
        np.where(on, power[:, None] * (DRIVER_FLOOR + (1 - DRIVER_FLOOR) * got.envelope), 0),
    )
    over = env_draw > caps[:, None]
    assert [len(_windows(over[c], math.ceil(1 / ramp), floor.shape[1])) for c in (0, 1)] == [2, 2]
    ref, ref_obj = _full_model(power, floor, on, cab, caps, slot_h, lo, ramp)

    def objective(level):
        short = np.where(on, np.maximum(floor - level, 0), 0)
        e = (slot_h * power[:, None] * (1 - DRIVER_FLOOR) * level * on).sum()
        deficit = (slot_h * power[:, None] * short).sum()
        zmax = np.zeros((caps.size, floor.shape[1]))
        np.maximum.at(zmax, cab, short)
        spread = (slot_h * np.bincount(cab, weights=power)[:, None] * zmax).sum()
        return e + SHORTFALL_WEIGHT * deficit + spread

    assert objective(got.level) == pytest.approx(ref_obj, rel=1e-7)
    assert objective(ref) == pytest.approx(ref_obj, rel=1e-7)
    # feasible: caps, ramps, bounds; the non-binding cabinet keeps its envelope
    draw = np.where(on, power[:, None] * (DRIVER_FLOOR + (1 - DRIVER_FLOOR) * got.level), 0)
    by_cab = np.zeros((caps.size, floor.shape[1]))
    np.add.at(by_cab, cab, draw)
    assert (by_cab <= caps[:, None] * (1 + 1e-7)).all()
    both = on[:, 1:] & on[:, :-1]
    assert np.abs(np.diff(got.level, axis=1))[both].max() <= ramp + 1e-7
    np.testing.assert_array_equal(got.level[cab == 2], got.envelope[cab == 2])
    assert got.shortfall[cab == 2].max() == 0.0
    assert got.shortfall.max() > 0.0


def test_a_start_from_the_night_before_changes_pivots_not_the_optimum():
    power, floor, on, cab, caps, slot_h, lo = _instance(1)
    kw = {
        "ramp": 0.2, "cabinet_index": cab, "slot_h": slot_h, "driver_floor": DRIVER_FLOOR,
        "min_level": lo,
    }  # fmt: skip
    starts: dict = {}
    for scale in (1.0, 0.99, 0.97):  # three nights, the caps a little tighter each
        cold = capped_levels(power, floor, on, cap_w=caps * scale, **kw)
        warm = capped_levels(power, floor, on, cap_w=caps * scale, starts=starts, **kw)
        assert sorted(starts) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # (cabinet, window)
        assert _objective(warm, power, on, cab, slot_h) == pytest.approx(
            _objective(cold, power, on, cab, slot_h), rel=1e-9
        )


def _objective(c, power, on, cab, slot_h):
    """The capped plan's LP objective: energy above the driver floor, deficit, its spread."""
    e = (slot_h * power[:, None] * (1 - DRIVER_FLOOR) * c.level * on).sum()
    deficit = (slot_h * power[:, None] * c.shortfall).sum()
    zmax = np.zeros((cab.max() + 1, on.shape[1]))
    np.maximum.at(zmax, cab, c.shortfall)
    return (
        e
        + SHORTFALL_WEIGHT * deficit
        + (slot_h * np.bincount(cab, weights=power)[:, None] * zmax).sum()
    )


@pytest.mark.parametrize("seed", [1, 2, 4])
def test_water_filling_is_feasible_and_close_to_the_lp(seed):
    """The heuristic: caps and ramps held, deficit within a few % of the LP's optimum."""
    power, floor, on, cab, caps, slot_h, lo = _instance(seed)
    kw = {
        "ramp": 0.2, "cabinet_index": cab, "cap_w": caps, "slot_h": slot_h,
        "driver_floor": DRIVER_FLOOR, "min_level": lo,
    }  # fmt: skip
    fill = capped_levels(power, floor, on, method="fill", **kw)
    best = capped_levels(power, floor, on, **kw)
    assert fill.path == "per-light + water-filling on 2 cabinets"
    draw = np.where(on, power[:, None] * (DRIVER_FLOOR + (1 - DRIVER_FLOOR) * fill.level), 0)
    by_cab = np.zeros((caps.size, floor.shape[1]))
    np.add.at(by_cab, cab, draw)
    assert (by_cab <= caps[:, None] * (1 + 1e-7)).all()
    both = on[:, 1:] & on[:, :-1]
    assert np.abs(np.diff(fill.level, axis=1))[both].max() <= 0.2 + 1e-9
    assert (fill.level[on] >= np.repeat(lo[:, None], floor.shape[1], 1)[on] - 1e-12).all()
    np.testing.assert_array_equal(fill.level[cab == 2], fill.envelope[cab == 2])

    def deficit(c):
        return float((slot_h * power[:, None] * c.shortfall).sum())

    assert deficit(best) <= deficit(fill) + 1e-9  # the LP is the optimum
    assert deficit(fill) <= 1.05 * deficit(best)


def test_no_binding_cap_is_the_envelope_and_a_cap_below_the_drivers_fails():
    power, floor, on, cab, caps, slot_h, lo = _instance(3)
    kw = {"cabinet_index": cab, "slot_h": slot_h, "driver_floor": DRIVER_FLOOR, "min_level": lo}
    free = capped_levels(power, floor, on, ramp=0.2, cap_w=caps * 10, **kw)
    assert free.path == "per-light" and free.binding.size == 0
    np.testing.assert_array_equal(free.level, free.envelope)
    with pytest.raises(InfeasiblePlanError, match="cabinet_cap_w: below the draw"):
        capped_levels(power, floor, on, ramp=0.2, cap_w=caps * 0.05, **kw)


# ---------------------------------------------------------------------------------------------
# Montpellier: caps bind at the December dusk of 2030, and only there the floor gives
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_montpellier_caps_bind_and_cost_compliance_only_there(montpellier):
    capped = dimming_year.plan_year(montpellier, 2030, nights=[WINTER])
    free = dimming_year.plan_year(montpellier, 2030, nights=[WINTER], cap_sizing="full_output")
    a, b = capped.attrs, free.attrs
    assert a["cap_binding_cabinets"] > 0 and a["cap_path"].startswith("per-light + joint LP")
    assert b["cap_binding_cabinets"] == 0 and b["cap_path"] == "per-light"
    assert a["cap_source_rule"] == a["cabinets"] == len(montpellier.registry["cabinet"])
    # uncapped, the two are the same plan; the caps only take energy away (below EN 13201)
    assert float(capped["uncapped_wh"][0]) == pytest.approx(float(free["planned_wh"][0]))
    assert float(capped["planned_wh"][0]) < float(capped["uncapped_wh"][0])
    assert a["saving_caps_pct"] > 0 and b["saving_caps_pct"] == 0
    assert float(free["below_floor_lh"][0]) == 0.0 < float(capped["below_floor_lh"][0])
    levers = sum(a[f"saving_{k}_pct"] for k in dimming_year.LEVERS)
    assert levers == pytest.approx(a["saving_pct"], abs=1e-9)
    # the night plan sees the same caps: its draw stays under them, its shortfall inside them
    problem, extra = dimming.problem_for(montpellier, WINTER)
    ds = dimming.plan(montpellier, WINTER, prepared=(problem, extra))
    table = extra["lights"]
    draw = ds["energy_wh"].to_numpy() / (ds["slot_s"].to_numpy() / 3600.0)
    by_cab = np.zeros((len(table["cabinet_ids"]), draw.shape[1]))
    np.add.at(by_cab, table["cabinet_index"], draw)
    assert (by_cab <= table["cabinet_cap_w"][:, None] * (1 + 1e-7) + 1e-6).all()
    short = (ds["level"] < ds["required_level"] - 1e-9).to_numpy().any(axis=1)
    assert np.isin(table["cabinet_index"][short], extra["cap_binding"]).all()
    assert ds.attrs["cap_binding_cabinets"] == extra["cap_binding"].size > 0
