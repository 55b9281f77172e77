"""Lighting as the contract counts it: a year of nights, MF and CLO, crossings, tariffs, calendar.

Checked against what no one here wrote: the sun (astral) for the nights, the public-holiday law
(the ``holidays`` package), the EN 13201-2 tables, and the full LP (HiGHS) for the optimum.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import shapely
import xarray as xr

from optimize import dimming, dimming_year, policies
from optimize import dimming_lp as lp
from optimize.dimming_tariff import Tariff, TariffPeriod
from twin._errors import InputValidationError
from twin.assets import lighting
from twin.assets.maintenance import LumenMaintenance, light_ages_h, output_factor
from twin.cli import main
from twin.derive.crossings import SERVING_RADIUS_M
from twin.scenarios.calendar import CalendarDemand, day_type
from twin.timeutil import dusk_dawn

# nights: the spring DST night, a public holiday (14 July), the longest night
NIGHTS = (dt.date(2026, 3, 28), dt.date(2026, 7, 14), dt.date(2026, 12, 21))


@pytest.fixture(scope="module")
def bondy_sample(bondy):
    return dimming_year.plan_year(bondy, 2026, nights=NIGHTS)


# ---------------------------------------------------------------------------------------------
# a year of nights
# ---------------------------------------------------------------------------------------------
def test_year_levers_add_up_and_are_ordered(bondy_sample):
    a = bondy_sample.attrs
    levers = sum(a[f"saving_{k}_pct"] for k in dimming_year.LEVERS)
    assert levers == pytest.approx(a["saving_pct"], abs=1e-9)
    assert a["saving_led_pct"] > a["saving_dimming_pct"] > a["saving_clo_pct"] > 0
    assert a["saving_switch_off_pct"] == 0.0  # no window given
    e = bondy_sample
    assert (e["baseline_wh"] > e["led_full_wh"]).all()
    assert (e["led_full_wh"] > e["dimmed_wh"]).all()
    assert (e["dimmed_wh"] > e["clo_wh"]).all()
    np.testing.assert_allclose(e["energy_wh"].sum("light"), e["planned_wh"], rtol=1e-5)


def test_year_nights_follow_the_sun_and_the_calendar(bondy, bondy_sample):
    lon, lat = bondy.centre
    for k, day in enumerate(NIGHTS):
        dusk, dawn = dusk_dawn(day, lat=lat, lon=lon)  # the evening's dusk, the next dawn
        assert dawn.date() == day + dt.timedelta(days=1)
        hours = (dawn - dusk).total_seconds() / 3600.0
        assert float(bondy_sample["dark_h"][k]) == pytest.approx(hours, abs=1e-6)
    assert bondy_sample["day_type"].values.tolist() == ["saturday", "sunday", "weekday"]


def test_year_plan_is_the_lp_optimum_on_sampled_nights(bondy, bondy_sample):
    """Light by light equals the full LP (HiGHS) of the same night, min energy at a flat price."""
    for k, day in enumerate(NIGHTS):
        problem, _ = dimming.problem_for(bondy, day)
        flat = lp.DimmingProblem(
            **{
                **{f: getattr(problem, f) for f in problem.__dataclass_fields__},
                "price_eur_per_kwh": np.ones(problem.n_slots),
            }
        )
        sol = lp.solve(flat, objective="cost", method="highs")
        e_lp = float(lp.energy_wh(problem, sol.level).sum())
        assert float(bondy_sample["planned_wh"][k]) == pytest.approx(e_lp, rel=1e-6), day


def test_year_file_is_compressed_and_round_trips(bondy_sample, tmp_path):
    path = dimming_year.write_year(bondy_sample, tmp_path / "year.nc")
    with xr.open_dataset(path) as back:
        enc = back["energy_wh"].encoding
        assert enc.get("zlib") is True
        assert enc.get("chunksizes") == (len(NIGHTS), bondy_sample.sizes["light"])
        back = back.load()
    xr.testing.assert_allclose(back["energy_wh"], bondy_sample["energy_wh"])
    assert back.attrs["saving_pct"] == pytest.approx(bondy_sample.attrs["saving_pct"])


def test_trajectory_from_the_year_not_a_night(bondy, bondy_sample):
    from optimize.nightly import trajectory_for

    traj, dimf, offf = trajectory_for(bondy, bondy_sample)
    full = float(bondy_sample["led_full_wh"].sum())
    assert dimf == pytest.approx(float(bondy_sample["planned_wh"].sum()) / full)
    assert offf == 0.0
    assert traj["year"].values.tolist() == list(bondy.city.contract.years)


def test_trajectory_ages_each_led_cohort(bondy, bondy_sample):
    """CLO ageing per year: the dimming factor grows with the lumen depreciation of each cohort."""
    from optimize.nightly import ageing_factors, cohort_factors, trajectory_for
    from twin.energy import front_loaded_shares

    by_age = ageing_factors(bondy, reference_year=2030, nights=NIGHTS)
    ages = sorted(by_age)
    assert ages == list(range(len(bondy.city.contract.years)))
    values = np.array([by_age[a] for a in ages])
    assert (np.diff(values) > 0).all()  # older lights, higher CLO drive, more energy
    # an age-0 stock is a stock installed in the planned year: the same plan as plan_year's
    young = dimming_year.plan_year(bondy, 2030, nights=NIGHTS, install_year=2030)
    assert by_age[0] == pytest.approx(dimming_year.yearly_factors(young)[0])
    traj, dimf, _ = trajectory_for(bondy, bondy_sample, by_age=by_age)
    c = bondy.city.contract
    shares = front_loaded_shares(final_share=c.led_share_end, start=c.start, end=c.end)
    expect = cohort_factors(shares, by_age)
    np.testing.assert_allclose(traj["dimming_factor"].values, [expect[y] for y in c.years])
    assert (np.diff(traj["dimming_factor"].values) > 0).all()  # the stock ages year on year
    assert dimf == pytest.approx(expect[2026])
    flat, _, _ = trajectory_for(bondy, bondy_sample)
    assert float(traj["saving_pct"].sel(year=2030)) < float(flat["saving_pct"].sel(year=2030))


def test_bad_year_names_the_field(bondy):
    with pytest.raises(InputValidationError, match="year"):
        dimming_year.plan_year(bondy, 1850)


# ---------------------------------------------------------------------------------------------
# maintenance factor and CLO
# ---------------------------------------------------------------------------------------------
def test_clo_factor_follows_mf_and_lumen_depreciation():
    m = LumenMaintenance(0.85, 100_000, 0.8)
    ages = light_ages_h([2026, 2022, 2018], 2026, burning_hours_per_year=4100.0)
    f = output_factor([0.85] * 3, m.lumen_share(ages))
    # new: MF x 100 %; then MF / LLMF rises with age, L80 at 100,000 h
    assert f[0] == pytest.approx(0.85)
    assert f[2] == pytest.approx(0.85 / 0.8 ** (8 * 4100 / 100_000))
    assert f[0] < f[1] < f[2] < 1.0
    # past the point where the flux has fallen to MF, full output
    old = output_factor([0.85], m.lumen_share([200_000.0]))
    assert old[0] == 1.0


def test_plan_with_and_without_clo(bondy):
    with_clo = dimming.plan(bondy, "2026-12-21")
    without = dimming.plan(bondy, "2026-12-21", clo=False)
    assert with_clo.attrs["optimized_kwh"] < without.attrs["optimized_kwh"]
    assert (without["clo_factor"] == 1.0).all()
    assert with_clo.attrs["compliance_pct"] == 100.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"maintenance_factor": 0.0}, "maintenance_factor"),
        ({"maintenance_factor": 1.5}, "maintenance_factor"),
        ({"lumen_share_at_rated": 1.2}, "lumen_share_at_rated"),
        ({"rated_hours": -1.0}, "rated_hours"),
        ({"curve": ((0, 1.0), (50_000, 0.8), (100_000, 0.9))}, "curve: the lumen share rises"),
    ],
)
def test_bad_maintenance_names_the_field(kwargs, field):
    with pytest.raises(InputValidationError, match=field):
        LumenMaintenance(**kwargs)


def test_install_year_in_the_future_names_the_light():
    with pytest.raises(InputValidationError, match="install_year: light 1"):
        light_ages_h([2020, 2031], 2026, burning_hours_per_year=4100.0)


# ---------------------------------------------------------------------------------------------
# tariffs, the objective and the calendar
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("periods", "reason"),
    [
        (((22, 6, 0.18), (7, 22, 0.25)), "06:00-07:00 is not covered"),
        (((22, 6, 0.18), (5, 22, 0.25)), "05:00-06:00 is covered twice"),
        (((0, 24.5, 0.2),), "end_hour"),
        (((0, 12, float("nan")), (12, 0, 0.2)), "eur_per_kwh"),
    ],
)
def test_bad_tariff_names_the_field(periods, reason):
    with pytest.raises(InputValidationError, match=reason):
        Tariff(tuple(TariffPeriod(a, b, c) for a, b, c in periods))


def test_cost_objective_uses_the_given_tariff(bondy):
    flat = Tariff((TariffPeriod(0, 0.25, 0.2), TariffPeriod(0.25, 0, 0.2)))
    ds = dimming.plan(bondy, "2026-12-21", objective="cost", tariff=flat)
    assert ds.attrs["compliance_pct"] == 100.0
    assert ds.attrs["optimized_kwh"] == pytest.approx(ds.attrs["floor_kwh"], rel=1e-9)


def test_service_needs_an_explicit_weight(bondy):
    with pytest.raises(InputValidationError, match="service_weight_kwh"):
        dimming.plan(bondy, "2026-12-21", objective="service")


def test_min_energy_is_default_and_has_no_nightly_budget(bondy):
    ds = dimming.plan(bondy, "2026-06-21")
    assert ds.attrs["objective"] == "min_energy"
    assert np.isnan(ds.attrs["budget_pct"])
    assert ds.attrs["extra_kwh"] == pytest.approx(0.0, abs=1e-9)


def test_calendar_public_holidays_take_the_sunday_profile(bondy):
    assert day_type(dt.date(2026, 5, 14)) == "sunday"  # Ascension Thursday
    assert day_type(dt.date(2026, 5, 13)) == "weekday"
    demand = CalendarDemand.from_twin(bondy)
    seg = [demand.daily_traffic.index[int(np.argmax(demand.daily_traffic.to_numpy()))]]
    t = np.array(["2026-05-14T08:00", "2026-05-13T08:00"], dtype="datetime64[ns]")
    tr = demand.traffic(seg, t)[0]
    assert tr[0] < tr[1]  # a holiday morning is quieter than a weekday's
    with pytest.raises(InputValidationError, match="country"):
        CalendarDemand.from_twin(bondy, country="XX")


def test_one_forecast_for_notebook_and_job(bondy):
    """The nightly job's default demand and the notebook's (plan's) are the same forecast."""
    a = dimming.forecast_night(bondy, "2026-12-21")
    b = dimming.forecast_night(bondy, "2026-12-21", demand=dimming.default_demand(bondy))
    np.testing.assert_array_equal(a.traffic_ratio, b.traffic_ratio)
    assert a.demand == "CalendarDemand"


# ---------------------------------------------------------------------------------------------
# crossings
# ---------------------------------------------------------------------------------------------
def test_crossings_are_assets_with_their_serving_lights(bondy):
    c = bondy.registry["crossing"]
    assert len(c) > 100  # Bondy's extract maps ~113 crossing nodes
    lights = bondy.registry["light"]
    # recount the lights within 25 m of each crossing by brute force
    d = shapely.distance(
        np.asarray(c.geometry.values)[:, None], np.asarray(lights.geometry.values)[None, :]
    )
    np.testing.assert_array_equal(c["lights"].to_numpy(), (d <= SERVING_RADIUS_M).sum(axis=1))
    assert set(c["conflict_class"].dropna()) <= set(lighting.class_table().index)
    assert all(str(k).startswith("C") for k in c["conflict_class"].dropna())


def test_lights_serving_crossings_hold_their_design_class(bondy):
    window = dimming.SwitchOff(start_hour=1.0, end_hour=5.0)
    ds = dimming.plan(bondy, "2026-12-21", switch_off=window)
    serving = dimming.light_table(bondy)["serves_crossing"]
    assert serving.sum() > 100
    cls = ds["lighting_class"].to_numpy()
    design = ds["design_class"].to_numpy()
    assert (cls[serving] == design[serving, None]).all()
    assert (ds["level"].to_numpy()[serving] > 0).all()  # never switched off
    assert (cls[~serving] != design[~serving, None]).any()  # the others do dim


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow  # a whole year of Bondy's nights, ~20 s
def test_cli_energy_year_bondy(bondy, tmp_path, capsys):
    out = tmp_path / "energy"
    assert main(["energy", "--city", "bondy", "--year", "2026", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "saving: total" in printed
    annual = json.loads((out / "annual.json").read_text())
    assert annual["nights"] == 365
    assert sum(annual["levers_pct"].values()) == pytest.approx(annual["saving_pct"], abs=1e-2)
    assert set(annual["levers_pct"]) == set(dimming_year.LEVERS)
    assert annual["caps"]["cabinets"] == len(bondy.registry["cabinet"])
    assert annual["maintenance_factor_from"]["default"] == annual["lights"]
    by_year = annual["trajectory"]["dimming_factor_by_year"]
    assert list(by_year) == [str(y) for y in bondy.city.contract.years]
    assert len(annual["trajectory"]["dimming_factor_by_age"]) == len(by_year)
    assert (
        annual["wattage"]["default"] + annual["wattage"]["real"] + annual["wattage"]["inferred"]
        == annual["lights"]
    )
    for name in ("year_levers.png", "trajectory.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
    with xr.open_dataset(out / "year.nc") as year:
        assert year.sizes["night"] == 365
        assert year["energy_wh"].encoding.get("zlib") is True


# ---------------------------------------------------------------------------------------------
# custom policies
# ---------------------------------------------------------------------------------------------
def seventy_after_midnight(night):
    after = (night.hour_local >= 0) & (night.hour_local < 12)
    level = xr.where(after, 0.7, 1.0).broadcast_like(night.floor)
    return level.where(~night.serves_crossing, 1.0)


def never_below_30_near_schools(night):
    near = night.school_hospital_m <= 50.0
    return night.floor.where(~near, np.maximum(night.floor, 0.3))


@pytest.fixture(scope="module")
def bondy_night(bondy):
    prepared = dimming.problem_for(bondy, "2026-12-21")
    return prepared, policies.night_dataset(bondy, "2026-12-21", prepared=prepared)


def test_policy_seventy_after_midnight_crossings_full(bondy, bondy_night):
    prepared, night = bondy_night
    ds = policies.apply(bondy, "2026-12-21", seventy_after_midnight, prepared=prepared, night=night)
    level = ds["level"].to_numpy()
    serving = night["serves_crossing"].to_numpy()
    after = night["hour_local"].to_numpy() < 12
    assert (level[serving] == 1.0).all()
    assert (level[~serving][:, after] == 0.7).all() and (level[~serving][:, ~after] == 1.0).all()
    # the policy breaks EN 13201 where a light needs more than 70 %, and says so per slot
    short = level < ds["required_level"].to_numpy() - 1e-9
    assert short.any()
    np.testing.assert_array_equal(ds["compliant"].to_numpy(), ~short)
    assert ds.attrs["compliance_pct"] == pytest.approx(100.0 * (1 - short.mean()))
    assert ds.attrs["policy"] == "custom" and ds.attrs["ramp_violations"] > 0


def test_policy_never_below_30_near_schools(bondy, bondy_night):
    prepared, night = bondy_night
    ds = policies.apply(
        bondy, "2026-12-21", never_below_30_near_schools, prepared=prepared, night=night
    )
    near = night["school_hospital_m"].to_numpy() <= 50.0
    assert near.sum() > 10  # Bondy's extract has a dozen schools and a hospital
    assert (ds["level"].to_numpy()[near] >= 0.3).all()
    assert ds.attrs["compliance_pct"] == 100.0
    assert ds.attrs["optimized_kwh"] >= ds.attrs["floor_kwh"] - 1e-9  # what the rule costs
    # a stricter rule (60 %) binds and costs energy above the floor
    strict = policies.apply(
        bondy,
        "2026-12-21",
        lambda n: n.floor.where(n.school_hospital_m > 50.0, np.maximum(n.floor, 0.6)),
        prepared=prepared,
        night=night,
    )
    assert strict.attrs["optimized_kwh"] > ds.attrs["optimized_kwh"]


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (lambda night: night.floor.to_numpy()[:, 1:], "shape"),
        (lambda night: night.floor.isel(time=slice(1, None)), "time coordinate"),
        (lambda night: night.floor.where(night.floor < 0.5), r"light:\d+ at slot \d+ .*NaN"),
        (lambda night: night.floor * 2.0, r"light:\d+ at slot \d+ .*outside \[0, 1\]"),
        (lambda night: night.floor.sum("time"), "dims"),
    ],
)
def test_bad_policy_names_the_light_and_slot(bondy, bondy_night, policy, reason):
    prepared, night = bondy_night
    with pytest.raises(policies.PolicyError, match=reason):
        policies.apply(bondy, "2026-12-21", policy, prepared=prepared, night=night)
