"""Tests of optimize.dimming and optimize.nightly: nightly plans on real twins, ``twin plan night``.

The plans are checked against what they document, recomputed here from first principles: the
EN 13201-2 class table (required levels), the power curve (energy), the ramp and cabinet limits,
the local clock on DST nights and the switch-off windows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from optimize import dimming, nightly
from optimize import dimming_lp as lp
from optimize.dimming_lp import InfeasiblePlanError
from twin._errors import InputValidationError
from twin.assets import lighting
from twin.cli import main

WINTER, SUMMER = "2026-12-21", "2026-06-21"
SERVICE_KWH = 0.05  # kWh one unit of footfall-weighted light above EN 13201 is worth
PARIS_TZ = ZoneInfo("Europe/Paris")

PER_LIGHT_TIME = {
    "level": "1",
    "required_level": "1",
    "lighting_class": "1",
    "energy_wh": "Wh",
}
PER_LIGHT = {"design_class": "1", "power_w": "W", "cabinet": "1"}
PER_TIME = {"slot_s": "s", "hour_local": "h"}
REPORT_ATTRS = (
    "baseline_kwh",
    "led_kwh",
    "optimized_kwh",
    "saving_pct",
    "compliance_pct",
    "target_pct",
    "solver_status",
    "solver_build_s",
    "solver_solve_s",
    "solver_objective",
    "driver_floor",
    "slot_minutes",
    "dusk_utc",
    "dawn_utc",
)


# ---------------------------------------------------------------------------------------------
# fixtures: plans built once per module
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mtp_winter(montpellier):
    """Montpellier's winter night: the forecast, the four policies (no nightly budget)."""
    prepared = dimming.problem_for(montpellier, WINTER)
    plans = {
        p: dimming.plan(montpellier, WINTER, policy=p, prepared=prepared)
        for p in ("hps_full", "led_full", "part_night")
    }
    plans["adaptive"], relaxed = nightly.adaptive_plan(montpellier, WINTER, prepared=prepared)
    plans["min_energy"] = dimming.plan(
        montpellier, WINTER, objective="min_energy", prepared=prepared
    )
    return prepared, plans, relaxed


@pytest.fixture(scope="module")
def paris_plans(paris):
    """Paris-Trocadéro, both nights, the three objectives of the adaptive policy."""
    out = {}
    for date in (WINTER, SUMMER):
        prepared = dimming.problem_for(paris, date, service_weight_kwh=SERVICE_KWH)
        for objective in dimming.OBJECTIVES:
            out[date, objective] = dimming.plan(paris, date, objective=objective, prepared=prepared)
    return out


def _all_plans(mtp_winter, paris_plans):
    _, plans, _ = mtp_winter
    named = {f"montpellier/{k}": v for k, v in plans.items()}
    named.update({f"paris/{d}/{o}": v for (d, o), v in paris_plans.items()})
    return named


def _power_w(ds: xr.Dataset) -> np.ndarray:
    """Power per light and slot from the documented curve, W."""
    f = float(ds.attrs["driver_floor"])
    level = ds["level"].to_numpy()
    p = ds["power_w"].to_numpy()[:, None] * (f + (1.0 - f) * level)
    return np.where(level > 0, p, 0.0)


def _local_hour(ds: xr.Dataset) -> np.ndarray:
    t = pd.DatetimeIndex(ds["time"].to_numpy()).tz_localize("UTC").tz_convert(PARIS_TZ)
    wall = t.tz_localize(None)  # the local clock, not the elapsed time since midnight
    return np.asarray((wall - wall.normalize()) / pd.Timedelta(hours=1), dtype=float)


# ---------------------------------------------------------------------------------------------
# structure and documented figures
# ---------------------------------------------------------------------------------------------
def test_plan_has_documented_variables_with_units(mtp_winter, paris_plans):
    for name, ds in _all_plans(mtp_winter, paris_plans).items():
        for var, unit in PER_LIGHT_TIME.items():
            assert ds[var].dims == ("light", "time"), (name, var)
            assert ds[var].attrs["units"] == unit, (name, var)
            assert ds[var].attrs["long_name"], (name, var)
        for var, unit in PER_LIGHT.items():
            assert ds[var].dims == ("light",), (name, var)
            assert ds[var].attrs["units"] == unit, (name, var)
        for var, unit in PER_TIME.items():
            assert ds[var].dims == ("time",), (name, var)
            assert ds[var].attrs["units"] == unit, (name, var)
        assert ds["time"].dtype == np.dtype("datetime64[ns]")
        assert ds["time"].attrs["timezone"] == "UTC"
        assert ds["light"].to_index().is_unique
        for key in REPORT_ATTRS:
            assert key in ds.attrs, (name, key)
        assert ds.attrs["target_pct"] == dimming.TARGET_PCT
        assert ds.attrs["solver_status"] == "ok"
        # slots cover dusk to dawn exactly
        span = dt.datetime.fromisoformat(ds.attrs["dawn_utc"]) - dt.datetime.fromisoformat(
            ds.attrs["dusk_utc"]
        )
        assert float(ds["slot_s"].sum()) == pytest.approx(span.total_seconds())


def test_policy_energies_ordered_and_part_night_not_compliant(mtp_winter):
    _, plans, _ = mtp_winter
    kwh = {p: plans[p].attrs["optimized_kwh"] for p in dimming.POLICIES}
    assert kwh["hps_full"] > kwh["led_full"] > kwh["adaptive"]
    assert kwh["led_full"] > kwh["part_night"]
    assert plans["hps_full"].attrs["saving_pct"] == pytest.approx(0.0, abs=1e-9)
    assert plans["part_night"].attrs["compliance_pct"] < 100.0
    for p in ("hps_full", "led_full"):
        assert plans[p].attrs["compliance_pct"] == 100.0
        assert (plans[p]["level"] == 1.0).all()


def test_required_level_from_en13201_classes(mtp_winter, paris_plans):
    table = lighting.class_table()["value"]
    for name, ds in _all_plans(mtp_winter, paris_plans).items():
        design = ds["design_class"].to_numpy().astype(str)
        cls = ds["lighting_class"].to_numpy().astype(str)
        clo = ds["clo_factor"].to_numpy()[:, None]
        assert ((clo > 0.8) & (clo <= 1.0)).all(), name
        again = np.minimum(
            1.0, lighting.required_fraction(design[:, None], cls, maintenance_margin=0.0) * clo
        )
        np.testing.assert_allclose(ds["required_level"].to_numpy(), again, atol=1e-12, err_msg=name)
        # and straight from the EN 13201-2 values: min(1, L(required) / L(design) * MF / LLMF)
        on = cls != lighting.OFF
        ratio = (
            table.reindex(cls[on]).to_numpy()
            / table.reindex(np.broadcast_to(design[:, None], cls.shape)[on]).to_numpy()
        )
        expected = np.minimum(1.0, ratio * np.broadcast_to(clo, cls.shape)[on])
        np.testing.assert_allclose(ds["required_level"].to_numpy()[on], expected, rtol=1e-12)
        assert (ds["required_level"].to_numpy()[~on] == 0).all()


def test_energy_from_power_curve(mtp_winter, paris_plans):
    _, plans, _ = mtp_winter
    led_kwh = plans["led_full"].attrs["optimized_kwh"]
    for name, ds in _all_plans(mtp_winter, paris_plans).items():
        slot_h = ds["slot_s"].to_numpy() / 3600.0
        energy = _power_w(ds) * slot_h[None, :]
        np.testing.assert_allclose(ds["energy_wh"].to_numpy(), energy, rtol=1e-12, atol=1e-9)
        kwh = energy.sum() / 1000.0
        assert ds.attrs["optimized_kwh"] == pytest.approx(kwh, rel=1e-12), name
        base = (ds["baseline_power_w"].to_numpy()[:, None] * slot_h).sum() / 1000.0
        assert ds.attrs["baseline_kwh"] == pytest.approx(base, rel=1e-12), name
        assert ds.attrs["saving_pct"] == pytest.approx(100.0 * (1.0 - kwh / base), rel=1e-9)
        level, req = ds["level"].to_numpy(), ds["required_level"].to_numpy()
        compliance = 100.0 * np.mean(level >= req - 1e-9)
        assert ds.attrs["compliance_pct"] == pytest.approx(compliance), name
        if name.startswith("montpellier/"):
            assert ds.attrs["led_kwh"] == pytest.approx(led_kwh, rel=1e-12)
    # hps_full runs on the pre-LED system power
    hps = plans["hps_full"]
    np.testing.assert_array_equal(hps["power_w"], hps["baseline_power_w"])


def test_adaptive_complies_everywhere_but_under_binding_caps(montpellier, mtp_winter, paris_plans):
    """EN 13201 is met wherever the cabinet's contracted kVA allows it, and only there not."""
    prepared, plans, _ = mtp_winter
    named = {"montpellier": plans["adaptive"]}
    named.update({f"paris/{d}/{o}": v for (d, o), v in paris_plans.items()})
    binding = set(np.asarray(prepared[1]["lights"]["cabinet_ids"])[prepared[1]["cap_binding"]])
    assert binding  # Montpellier's December dusk outgrows the retrofit subscriptions
    assert plans["adaptive"].attrs["cap_binding_cabinets"] == len(binding)
    for name, ds in named.items():
        short = (ds["level"] < ds["required_level"] - 1e-9).to_numpy()
        in_binding = np.isin(ds["cabinet"].to_numpy(), sorted(binding))
        if name != "montpellier":
            assert ds.attrs["compliance_pct"] == 100.0, name
        assert not short[~in_binding].any(), name
        assert ds.attrs["compliance_pct"] == pytest.approx(100.0 * (1 - short.mean())), name
        on = ds["lighting_class"] != lighting.OFF
        assert (ds["level"].where(on, 1.0) <= 1.0 + 1e-9).all(), name


def test_adaptive_respects_ramps_and_cabinet_caps(montpellier, paris, mtp_winter, paris_plans):
    _, plans, _ = mtp_winter
    cases = [(montpellier, plans["adaptive"])]
    cases += [(paris, paris_plans[d, o]) for d in (WINTER, SUMMER) for o in ("service", "cost")]
    for tw, ds in cases:
        ramp = dimming.RAMP_PER_HOUR * ds.attrs["slot_minutes"] / 60.0
        level = ds["level"].to_numpy()
        on = ds["lighting_class"].to_numpy() != lighting.OFF
        both_on = on[:, 1:] & on[:, :-1]
        step = np.abs(np.diff(level, axis=1))
        assert step[both_on].max(initial=0.0) <= ramp + 1e-6, tw.name
        table = dimming.light_table(tw)
        caps = pd.Series(table["cabinet_cap_w"], index=table["cabinet_ids"])
        by_cab = pd.DataFrame(_power_w(ds)).groupby(ds["cabinet"].to_numpy()).sum()
        cap = caps.reindex(by_cab.index).to_numpy()[:, None]
        assert np.isfinite(cap).all()
        assert (by_cab.to_numpy() <= cap * (1 + 1e-9) + 1e-6).all(), tw.name


def test_tight_cabinet_caps_bind_and_hold(paris):
    """Caps between the lowest feasible power and full power: the plan must bend to them."""
    problem, extra = dimming.problem_for(paris, SUMMER, service_weight_kwh=1.0)
    low = lp.cabinet_power_w(problem, lp.ramp_envelope(problem))
    full = lp.cabinet_power_w(problem, np.ones((problem.n, problem.n_slots)))
    caps = low + 0.3 * (full - low)
    tight = dataclasses.replace(problem, cabinet_cap_w=caps, energy_budget_wh=None)
    ds = dimming.plan(paris, SUMMER, objective="service", prepared=(tight, extra))
    by_cab = pd.DataFrame(_power_w(ds)).groupby(ds["cabinet"].to_numpy()).sum()
    cap = pd.DataFrame(caps, index=problem.cabinet).reindex(by_cab.index).to_numpy()
    load = by_cab.to_numpy() / cap
    assert load.max() <= 1 + 1e-7
    assert load.max() > 0.999  # the caps bind somewhere
    assert ds.attrs["compliance_pct"] == 100.0
    # without the caps the same objective draws more than they allow
    free = dimming.plan(
        paris,
        SUMMER,
        objective="service",
        prepared=(dataclasses.replace(tight, cabinet_cap_w=None), extra),
    )
    free_load = pd.DataFrame(_power_w(free)).groupby(free["cabinet"].to_numpy()).sum().to_numpy()
    assert (free_load / cap).max() > 1.01


def test_min_energy_is_the_floor(paris, mtp_winter, paris_plans):
    _, plans, _ = mtp_winter
    min_level = paris.registry["light"]["min_level"]
    for date in (WINTER, SUMMER):
        floor = paris_plans[date, "min_energy"].attrs["optimized_kwh"]
        for objective in ("service", "cost"):
            assert floor <= paris_plans[date, objective].attrs["optimized_kwh"] + 1e-9
        # the floor: every light at max(requirement, driver minimum), raised only as far as the
        # ramp limit needs (recomputed here slot by slot, forward then backward)
        ds = paris_plans[date, "min_energy"]
        on = ds["lighting_class"].to_numpy() != lighting.OFF
        floor_level = np.maximum(
            ds["required_level"].to_numpy(),
            min_level.reindex(ds["light"].to_numpy()).to_numpy()[:, None],
        )
        r = dimming.RAMP_PER_HOUR * ds.attrs["slot_minutes"] / 60.0
        env = np.where(on, floor_level, 0.0)
        for t in range(1, env.shape[1]):
            env[:, t] = np.where(
                on[:, t] & on[:, t - 1], np.maximum(env[:, t], env[:, t - 1] - r), env[:, t]
            )
        for t in range(env.shape[1] - 2, -1, -1):
            env[:, t] = np.where(
                on[:, t] & on[:, t + 1], np.maximum(env[:, t], env[:, t + 1] - r), env[:, t]
            )
        np.testing.assert_allclose(ds["level"].to_numpy()[on], env[on], atol=1e-12)
        assert (env[on] > floor_level[on] + 1e-9).any()  # the ramps do lift some slots
        assert ds.attrs["floor_kwh"] == pytest.approx(ds.attrs["optimized_kwh"], rel=1e-12)
        svc = paris_plans[date, "service"]
        assert svc.attrs["extra_kwh"] > 0  # service says what it spends above the floor
        assert svc.attrs["extra_kwh"] == pytest.approx(
            svc.attrs["optimized_kwh"] - ds.attrs["optimized_kwh"], rel=1e-9
        )
    assert plans["min_energy"].attrs["optimized_kwh"] <= plans["adaptive"].attrs["optimized_kwh"]


def test_netcdf_round_trip(mtp_winter, tmp_path):
    _, plans, _ = mtp_winter
    ds = plans["adaptive"]
    path = tmp_path / "plan.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        back = back.load()
    for var in ds.variables:
        np.testing.assert_array_equal(back[var].to_numpy(), ds[var].to_numpy(), err_msg=var)
        assert back[var].attrs.get("units") == ds[var].attrs.get("units"), var
    assert back["time"].attrs["timezone"] == "UTC"
    for key in REPORT_ATTRS:
        assert back.attrs[key] == ds.attrs[key], key


# ---------------------------------------------------------------------------------------------
# the 65% budget: infeasible nights and their explicit relaxation
# ---------------------------------------------------------------------------------------------
def test_infeasible_budget_reports_the_smallest_relaxation(montpellier, mtp_winter):
    _, _, none_relaxed = mtp_winter
    assert none_relaxed == {}  # no nightly budget by default: nothing to relax
    prepared = dimming.problem_for(montpellier, WINTER, budget_pct=dimming.TARGET_PCT, clo=False)
    problem, extra = prepared
    with pytest.raises(InfeasiblePlanError, match="energy_budget") as info:
        dimming.plan(montpellier, WINTER, policy="adaptive", prepared=prepared)
    plans = {}
    plans["adaptive"], relaxed = nightly.adaptive_plan(montpellier, WINTER, prepared=prepared)
    report = info.value.report
    assert report.budget_wh == pytest.approx(extra["baseline_wh"] * (1 - dimming.TARGET_PCT / 100))
    assert report.budget_increase_wh == pytest.approx(report.min_energy_wh - report.budget_wh)
    assert report.budget_increase_wh > 0
    # adaptive_plan relaxed exactly that much and said so
    assert relaxed["budget_increase_kwh"] == pytest.approx(report.budget_increase_wh / 1000.0)
    ds = plans["adaptive"]
    assert ds.attrs["saving_pct"] == pytest.approx(relaxed["best_saving_pct"], abs=1e-6)
    assert ds.attrs["saving_pct"] < dimming.TARGET_PCT
    assert json.loads(ds.attrs["budget_relaxed"]) == relaxed
    assert ds.attrs["optimized_kwh"] == pytest.approx(report.min_energy_wh / 1000.0, rel=1e-6)


def test_adaptive_plan_within_a_given_budget_when_feasible(paris, paris_plans):
    ds, relaxed = nightly.adaptive_plan(
        paris, WINTER, objective="service", budget_pct=60.0, service_weight_kwh=SERVICE_KWH
    )
    assert relaxed == {}
    assert ds.attrs["saving_pct"] >= 60.0 - 1e-6
    # the budget holds the service plan down: it draws no more than without it, and the floor
    free = paris_plans[WINTER, "service"].attrs["optimized_kwh"]
    assert ds.attrs["optimized_kwh"] <= free + 1e-6
    assert ds.attrs["optimized_kwh"] >= paris_plans[WINTER, "min_energy"].attrs["optimized_kwh"]


def test_solver_not_ok_raises_and_returns_no_plan(paris, monkeypatch):
    real_solve = lp.solve

    def solve_hitting_time_limit(problem, **kw):
        sol = real_solve(problem, **kw)  # the real solve, reported as stopped by a time limit
        return dataclasses.replace(
            sol, status="time_limit", condition="Time limit reached", level=sol.level * np.nan
        )

    monkeypatch.setattr(lp, "solve", solve_hitting_time_limit)
    with pytest.raises(dimming.PlanNotSolvedError, match="time_limit"):
        dimming.plan(paris, SUMMER)


def test_prepared_forecast_must_match_the_date(paris):
    prepared = dimming.problem_for(paris, SUMMER)
    with pytest.raises(InputValidationError, match="date"):
        dimming.plan(paris, WINTER, prepared=prepared)


def test_budget_pct_sets_the_budget(paris):
    ds = dimming.plan(paris, SUMMER, budget_pct=50.0)
    assert ds.attrs["budget_pct"] == 50.0
    assert ds.attrs["saving_pct"] >= 50.0 - 1e-6
    with pytest.raises(InfeasiblePlanError):
        dimming.plan(paris, SUMMER, budget_pct=95.0)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_bad_policy_names_the_valid_ones(paris):
    with pytest.raises(InputValidationError, match="policy") as info:
        dimming.plan(paris, WINTER, policy="full_moon")
    for p in dimming.POLICIES:
        assert p in str(info.value)


def test_bad_objective_names_the_valid_ones(paris):
    with pytest.raises(InputValidationError, match="objective") as info:
        dimming.plan(paris, WINTER, objective="cheapest")
    for o in dimming.OBJECTIVES:
        assert o in str(info.value)


@pytest.mark.parametrize(
    ("date", "pattern"),
    [
        ("1899-12-31", r"date.*1900"),
        (dt.date(1899, 12, 31), r"date.*1900"),
        ("tomorrow", r"date.*YYYY-MM-DD"),
        ("2026-02-30", r"date"),
    ],
)
def test_bad_date_names_the_field(paris, date, pattern):
    with pytest.raises(InputValidationError, match=pattern):
        dimming.plan(paris, date, policy="led_full")


def test_bad_slot_minutes_names_the_field(paris):
    with pytest.raises(InputValidationError, match="slot_minutes"):
        dimming.plan(paris, WINTER, policy="led_full", slot_minutes=7)


def test_bad_switch_off_hour_names_the_field():
    with pytest.raises(InputValidationError, match="start_hour"):
        dimming.SwitchOff(start_hour=25.0)


# ---------------------------------------------------------------------------------------------
# the local clock: DST nights
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("date", "clock_shift_h"), [("2026-03-28", +1), ("2026-10-24", -1)])
def test_dst_night_slots(paris, date, clock_shift_h):
    ds = dimming.plan(paris, date, policy="adaptive", slot_minutes=15)
    dusk = pd.Timestamp(ds.attrs["dusk_utc"])
    dawn = pd.Timestamp(ds.attrs["dawn_utc"])
    # slot starts: dusk, then every quarter hour of the (whole-hour offset) clock until dawn
    step = pd.Timedelta(minutes=15)
    grid = pd.date_range(dusk.ceil("15min"), dawn, freq=step, inclusive="left")
    expected = len(grid) + (0 if dusk == dusk.ceil("15min") else 1)
    assert ds.sizes["time"] == expected
    assert float(ds["slot_s"].sum()) == pytest.approx((dawn - dusk).total_seconds())
    # the local clock jumps: the wall-clock span differs from the elapsed time by the shift
    wall = dawn.tz_convert(PARIS_TZ).tz_localize(None) - dusk.tz_convert(PARIS_TZ).tz_localize(None)
    assert (wall - (dawn - dusk)) == pd.Timedelta(hours=clock_shift_h)
    np.testing.assert_allclose(ds["hour_local"].to_numpy(), _local_hour(ds))
    in_two = ((ds["hour_local"] >= 2.0) & (ds["hour_local"] < 3.0)).sum().item()
    assert in_two == (0 if clock_shift_h > 0 else 8)  # 02:xx skipped in spring, twice in autumn
    assert ds.attrs["compliance_pct"] == 100.0


# ---------------------------------------------------------------------------------------------
# switch-off windows
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("city", ["bondy", "paris"])
@pytest.mark.parametrize(("start", "end"), [(1.0, 5.0), (23.0, 2.5)])
def test_switch_off_only_residential_p_within_hours(request, city, start, end):
    tw = request.getfixturevalue(city)
    window = dimming.SwitchOff(start_hour=start, end_hour=end)
    ds = dimming.plan(tw, SUMMER, policy="adaptive", objective="cost", switch_off=window)
    hour = _local_hour(ds)
    in_hours = (hour >= start) & (hour < end) if start < end else (hour >= start) | (hour < end)
    road = tw.registry["segment"]["highway"].reindex(ds["segment"].to_numpy()).to_numpy()
    series = np.array([c[0] for c in ds["design_class"].to_numpy()])
    street = np.isin(road, ["residential", "living_street", "service"]) & (series == "P")
    # lights serving a pedestrian crossing stay lit for its conflict area
    street &= ~dimming.light_table(tw)["serves_crossing"]
    expected = street[:, None] & in_hours[None, :]
    assert expected.any() and (~expected).any()
    off = ds["lighting_class"].to_numpy() == lighting.OFF
    np.testing.assert_array_equal(off, expected)
    assert (ds["level"].to_numpy()[off] == 0).all()
    assert (ds["energy_wh"].to_numpy()[off] == 0).all()
    assert (ds["level"].to_numpy()[~off] > 0).all()
    assert ds.attrs["compliance_pct"] == 100.0


def test_switch_off_saves_energy(paris):
    base = dimming.plan(paris, WINTER, objective="min_energy")
    off = dimming.plan(paris, WINTER, objective="min_energy", switch_off=dimming.SwitchOff())
    assert off.attrs["optimized_kwh"] < base.attrs["optimized_kwh"]
    assert off.attrs["baseline_kwh"] == pytest.approx(base.attrs["baseline_kwh"])


# ---------------------------------------------------------------------------------------------
# the CLI: twin plan night (and its alias twin demo)
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # ~15 s, most of it the demo's footfall simulation; close to the limit
def test_cli_plan_night_montpellier(montpellier, tmp_path, capsys):
    out = tmp_path / "night"
    args = ["--city", "montpellier", "--date", "2026-12-15", "--out", str(out)]
    code = main(["plan", "night", *args])
    assert code == 0
    printed = capsys.readouterr().out
    assert "hps_full" in printed and "adaptive" in printed
    for name in (
        "report.json",
        "dimming.nc",
        "night_profile.png",
        "levels_0200.png",
        "trajectory.png",
    ):
        assert (out / name).is_file(), name
    for name in ("night_profile.png", "levels_0200.png", "trajectory.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    report = json.loads((out / "report.json").read_text())
    for key in (
        "city",
        "date",
        "lights",
        "slots",
        "baseline_kwh",
        "led_kwh",
        "optimized_kwh",
        "saving_pct",
        "compliance_pct",
        "target_pct",
        "solver",
    ):
        assert key in report, key
    for key in ("status", "build_s", "solve_s", "objective"):
        assert key in report["solver"], key
    assert report["city"] == "montpellier"
    assert report["date"] == "2026-12-15"
    assert report["target_pct"] == dimming.TARGET_PCT
    assert report["target_is_annual"] is True
    assert report["wattage"] == {
        "real": 0,
        "inferred": 0,
        "default": len(montpellier.registry["light"]),
    }
    year = report["annual"]
    assert year["nights_sampled"] == 12
    levers = sum(year[f"saving_{k}_pct"] for k in ("led", "dimming", "clo", "switch_off", "caps"))
    assert levers == pytest.approx(year["saving_pct"], abs=1e-6)
    assert year["on_track"] == (year["saving_pct"] >= 65.0)

    with xr.open_dataset(out / "dimming.nc") as nc:
        ds = nc.load()
    assert report["lights"] == ds.sizes["light"] == len(montpellier.registry["light"])
    assert report["slots"] == ds.sizes["time"]
    slot_h = ds["slot_s"].to_numpy() / 3600.0
    baseline = (ds["baseline_power_w"].to_numpy()[:, None] * slot_h).sum() / 1000.0
    led = (ds["power_w"].to_numpy()[:, None] * slot_h).sum() / 1000.0
    opt = (_power_w(ds) * slot_h).sum() / 1000.0
    level, req = ds["level"].to_numpy(), ds["required_level"].to_numpy()
    assert report["baseline_kwh"] == pytest.approx(baseline, abs=1e-3)
    assert report["led_kwh"] == pytest.approx(led, abs=1e-3)
    assert report["optimized_kwh"] == pytest.approx(opt, abs=1e-3)
    assert report["saving_pct"] == pytest.approx(100.0 * (1 - opt / baseline), abs=1e-3)
    assert report["compliance_pct"] == pytest.approx(100.0 * np.mean(level >= req - 1e-9), abs=1e-3)
    # below 100 % only in the cabinets whose cap binds at dusk (tests/test_lighting_caps.py)
    assert 90.0 < report["compliance_pct"] < 100.0
    assert report["solver"]["status"] == ds.attrs["solver_status"] == "ok"
    assert report["solver"]["objective"] == pytest.approx(ds.attrs["solver_objective"])
    assert report["solver"]["build_s"] == pytest.approx(ds.attrs["solver_build_s"])
    assert report["solver"]["solve_s"] == pytest.approx(ds.attrs["solver_solve_s"])
    assert report["budget_relaxed"] is None  # no nightly budget: the target is annual
    assert report["extra_kwh"] == pytest.approx(0.0, abs=1e-6)  # min_energy is the floor
    # compressed, chunked by light: a fraction of the raw arrays
    raw = sum(v.nbytes for v in ds.data_vars.values())
    assert (out / "dimming.nc").stat().st_size < raw / 5
