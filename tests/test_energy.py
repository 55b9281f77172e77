"""Tests of twin.energy: baseline, LED rollout and the trajectory against the 65% target."""

from __future__ import annotations

import datetime as dt
import pickle

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.lines import Line2D

from twin import energy
from twin._errors import InputValidationError
from twin.energy import (
    HPS_LAMP_W,
    HPS_SYSTEM_W,
    LED_RATIO,
    Rollout,
    baseline_power_w,
    factors_from_plan,
    front_loaded_shares,
    hps_system_w,
    led_power_w,
    plot_trajectory,
    trajectory,
    year_of_target,
)
from twin.timeutil import dark_hours, night_slots, yearly_dark_hours

matplotlib.use("Agg")

LAT, LON = 47.3220, 5.0415  # Dijon, Place de la Libération
# a small mixed stock: the classes a Dijon street network holds
CLASSES = np.array(
    ["residential"] * 50
    + ["tertiary"] * 15
    + ["secondary"] * 10
    + ["primary"] * 5
    + ["footway"] * 12
    + ["living_street"] * 8,
    dtype=object,
)


@pytest.fixture(scope="module")
def traj() -> xr.Dataset:
    return trajectory(CLASSES, lat=LAT, lon=LON)


# ---------------------------------------------------------------------------------------------
# tables and per-light powers
# ---------------------------------------------------------------------------------------------
def test_hps_table_within_documented_ranges():
    for cls, lamp in HPS_LAMP_W.items():
        assert 70.0 <= lamp <= 250.0, cls
        loss = HPS_SYSTEM_W[cls] / lamp - 1.0
        assert 0.10 - 1e-9 <= loss <= 0.15 + 1e-9, cls
    # the relative ballast loss falls as the lamp power rises
    sys_w = hps_system_w(np.array([70.0, 100.0, 150.0, 250.0]))
    loss = sys_w / np.array([70.0, 100.0, 150.0, 250.0]) - 1.0
    assert np.all(np.diff(loss) < 0)
    table = energy.hps_table()
    assert set(table.index) == set(HPS_LAMP_W)
    assert np.allclose(table["led_system_w"], LED_RATIO * table["hps_system_w"], atol=0.01)


def test_baseline_and_led_power_per_light():
    rc = np.array(["residential", "primary", "residential", "footway"], dtype=object)
    base = baseline_power_w(rc)
    # 70 W lamp + 15 % ballast loss, 250 W lamp + 10 %
    assert base.tolist() == pytest.approx([80.5, 275.0, 80.5, 80.5])
    assert led_power_w(rc).tolist() == pytest.approx((0.5 * base).tolist())
    assert led_power_w(rc, led_ratio=0.4)[1] == pytest.approx(110.0)


def test_unknown_or_missing_road_class_is_named():
    with pytest.raises(
        InputValidationError, match=r"road_class: unknown class\(es\) \['motorwya'\]"
    ):
        baseline_power_w(np.array(["residential", "motorwya"], dtype=object))
    with pytest.raises(InputValidationError, match="road_class: 1 value"):
        baseline_power_w(np.array(["residential", None], dtype=object))
    with pytest.raises(InputValidationError, match="led_ratio"):
        led_power_w(["residential"], led_ratio=0.0)


def test_table_input_uses_registry_columns():
    table = pd.DataFrame(
        {
            "road_class": ["residential", "residential", "primary", "secondary", "tertiary"],
            "technology": ["LED", "HPS", "HPS", "", "LED"],
            "power_w": [30.0, 95.0, np.nan, np.nan, np.nan],
            "baseline_power_w": [np.nan, np.nan, np.nan, np.nan, 120.0],
        }
    )
    ds = trajectory(table, lat=LAT, lon=LON, years=[2030])
    # pre-LED: table (80.5) for the LED light, its own 95 W for the HPS light, table for
    # the rest (275, 168), the given 120 W for the last
    base = 80.5 + 95.0 + 275.0 + 168.0 + 120.0
    # LED: its own 30 W, then half of each pre-LED power
    led = 30.0 + 0.5 * (95.0 + 275.0 + 168.0 + 120.0)
    assert ds.attrs["baseline_power_w"] == pytest.approx(base)
    assert ds.attrs["led_power_w"] == pytest.approx(led)
    assert ds.attrs["n_lights"] == 5
    # the same stock as an xarray Dataset on `light` gives the same result
    as_xr = xr.Dataset({c: ("light", table[c].to_numpy()) for c in table.columns})
    ds2 = trajectory(as_xr, lat=LAT, lon=LON, years=[2030])
    assert ds2.planned_wh.item() == pytest.approx(ds.planned_wh.item())


def test_table_input_errors_name_the_column():
    with pytest.raises(InputValidationError, match="neither a 'road_class'"):
        trajectory(pd.DataFrame({"highway": ["residential"]}), lat=LAT, lon=LON)
    bad_power = pd.DataFrame({"road_class": ["residential"], "power_w": [-3.0]})
    with pytest.raises(InputValidationError, match="power_w: 1 value"):
        trajectory(bad_power, lat=LAT, lon=LON)
    bad_tech = pd.DataFrame({"road_class": ["residential"], "technology": ["plasma"]})
    with pytest.raises(InputValidationError, match=r"technology: unknown value\(s\) \['plasma'\]"):
        trajectory(bad_tech, lat=LAT, lon=LON)
    no_class = pd.DataFrame({"baseline_power_w": [100.0, np.nan]})
    with pytest.raises(InputValidationError, match="road_class: missing"):
        trajectory(no_class, lat=LAT, lon=LON)


# ---------------------------------------------------------------------------------------------
# rollout
# ---------------------------------------------------------------------------------------------
def test_default_rollout_is_front_loaded_to_93_percent():
    r = Rollout()
    shares = r.shares_for(range(2018, 2031))
    assert shares[-1] == pytest.approx(0.93)
    assert 0.0 < shares[0] < 0.2  # works start in February 2018
    assert np.all(np.diff(shares) >= 0)
    # front-loaded: more than half of the programme done on average in 2021, and the yearly
    # gains shrink
    assert shares[3] > 0.93 / 2
    assert np.all(np.diff(np.diff(shares)) <= 1e-12)
    assert r.share(2035) == pytest.approx(0.93)  # holds after the end
    assert r.share(2017) == 0.0  # the pre-contract stock is all HPS
    # picklable (Dask workers) and equal after the round trip
    assert pickle.loads(pickle.dumps(r)) == r
    assert hash(Rollout()) == hash(r)


def test_rollout_user_shares_interpolated():
    r = Rollout({2018: 0.2, 2022: 0.6, 2030: 0.93}, initial_share=0.05)
    assert r.share(2020) == pytest.approx(0.4)
    assert r.share(2017) == pytest.approx(0.05)
    assert r.share(2026) == pytest.approx(0.6 + 0.33 / 2)
    faster = Rollout.front_loaded(time_constant_years=2.0)
    assert faster.share(2020) > Rollout().share(2020)
    assert front_loaded_shares(final_share=0.5)[2030] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"shares": {2018: 0.2, 2020: 1.2}}, r"Rollout\.shares\[2020\]: 1\.2 must be within"),
        ({"shares": {2018: 0.5, 2019: 0.4}}, r"Rollout\.shares\[2019\]: 0\.4 is below 0\.5"),
        ({"shares": {2018: 0.1}, "initial_share": 0.3}, r"Rollout\.shares\[2018\].*initial_share"),
        ({"shares": {"2018": 0.1}}, r"Rollout\.shares: year '2018' is not an integer"),
        ({"shares": {}}, r"Rollout\.shares: expected a non-empty mapping"),
        ({"shares": {2018: float("nan")}}, r"Rollout\.shares\[2018\]"),
        ({"shares": {2018: 0.1}, "initial_share": -0.1}, r"Rollout\.initial_share"),
    ],
)
def test_rollout_validation_names_the_field(kwargs, pattern):
    with pytest.raises(InputValidationError, match=pattern):
        Rollout(**kwargs)


# ---------------------------------------------------------------------------------------------
# trajectory
# ---------------------------------------------------------------------------------------------
def test_trajectory_variables_units_and_netcdf_round_trip(traj, tmp_path):
    assert traj.sizes == {"year": 13}
    assert traj["year"].values.tolist() == list(range(2018, 2031))
    for name in (
        "baseline_wh",
        "led_only_wh",
        "planned_wh",
        "saving_led_wh",
        "saving_dimming_wh",
        "saving_switch_off_wh",
        "saving_pct",
        "target_pct",
        "dark_hours",
        "led_share",
        "metered_wh",
    ):
        assert name in traj.data_vars, name
    for name, var in traj.data_vars.items():
        assert var.attrs.get("units"), name
        assert var.attrs.get("long_name"), name
    assert float(traj.target_pct) == 65.0
    assert traj.attrs["target_pct"] == 65.0
    assert "saving_pct_metered" not in traj.data_vars
    assert np.isnan(traj.metered_wh.values).all()
    path = tmp_path / "trajectory.nc"
    traj.to_netcdf(path)
    with xr.open_dataset(path) as back:
        xr.testing.assert_identical(back.load(), traj)


def test_savings_split_adds_up_to_the_total():
    ds = trajectory(
        CLASSES,
        lat=LAT,
        lon=LON,
        dimming_factor={2019: 0.8, 2022: 0.62, 2026: 0.55},
        switch_off_factor={2020: 0.05, 2024: 0.12},
    )
    split = ds.saving_led_wh + ds.saving_switch_off_wh + ds.saving_dimming_wh
    total = ds.baseline_wh - ds.planned_wh
    np.testing.assert_allclose(split.values, total.values, rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(ds.saving_wh.values, total.values, rtol=1e-12)
    for name in ("saving_led_wh", "saving_switch_off_wh", "saving_dimming_wh"):
        assert (ds[name].values >= 0).all(), name
    # the mappings are step functions: neutral before their first year, held after
    assert ds.dimming_factor.sel(year=2018) == 1.0
    assert ds.dimming_factor.sel(year=2021) == 0.8
    assert ds.dimming_factor.sel(year=2030) == 0.55
    assert ds.switch_off_factor.sel(year=2019) == 0.0
    assert ds.switch_off_factor.sel(year=2023) == 0.05
    # hand-worked 2024: attribution LED first, then switch-off, then dimming
    y = ds.sel(year=2024)
    h, s, d, o = float(y.dark_hours), float(y.led_share), 0.62, 0.12
    p_hps = float(baseline_power_w(CLASSES).sum())
    p_led = 0.5 * p_hps
    assert float(y.saving_led_wh) == pytest.approx(h * s * (p_hps - p_led))
    led_only = h * (s * p_led + (1 - s) * p_hps)
    assert float(y.saving_switch_off_wh) == pytest.approx(o * led_only)
    assert float(y.saving_dimming_wh) == pytest.approx(h * (1 - o) * s * p_led * (1 - d))


def test_baseline_scales_with_real_dark_hours(traj):
    hours = traj.dark_hours.values
    expect = [yearly_dark_hours(y, lat=LAT, lon=LON) for y in range(2018, 2031)]
    np.testing.assert_allclose(hours, expect)
    # about 4,100 h a year at Dijon's latitude (DESIGN section 4)
    assert hours.min() > 3950
    assert hours.max() < 4250
    # the baseline is the stock's power times each year's dark hours
    p_hps = float(baseline_power_w(CLASSES).sum())
    np.testing.assert_allclose(traj.baseline_wh.values, p_hps * hours, rtol=1e-12)
    # years differ by < 1 %
    assert (hours.max() - hours.min()) / hours.min() < 0.01
    # the leap year 2020 has one more night, a late-winter to midwinter one; consecutive
    # ordinary years differ by seconds
    h = traj.dark_hours.to_series()
    extra = h[2020] - h[2019]
    feb29 = dark_hours(dt.date(2020, 2, 29), lat=LAT, lon=LON)
    longest = dark_hours(dt.date(2020, 12, 21), lat=LAT, lon=LON)
    assert feb29 <= extra <= longest
    assert abs(h[2019] - h[2018]) < 0.01
    assert abs(h[2022] - h[2021]) < 0.01
    ratio = traj.baseline_wh.sel(year=2020) / traj.baseline_wh.sel(year=2019)
    assert float(ratio) == pytest.approx(1 + extra / h[2019], rel=1e-12)


def test_led_rollout_alone_gives_46_5_percent(traj):
    # 93 % of the stock at half power, no dimming or switch-off:
    # saving = 0.93 * (1 - 0.5) = 46.5 %
    assert float(traj.led_share.sel(year=2030)) == pytest.approx(0.93)
    assert float(traj.saving_pct.sel(year=2030)) == pytest.approx(46.5, abs=1e-9)
    np.testing.assert_allclose(traj.planned_wh, traj.led_only_wh)
    np.testing.assert_allclose(traj.saving_pct, 100 * 0.5 * traj.led_share, rtol=1e-12)
    assert year_of_target(traj) is None
    # with the low end of the LED range, 0.93 * 0.6 = 55.8 %
    ds = trajectory(CLASSES, lat=LAT, lon=LON, years=[2030], led_ratio=0.4)
    assert ds.saving_pct.item() == pytest.approx(55.8, abs=1e-9)


def test_dimming_reaches_the_target_by_2030():
    # 2030: saving = 1 - (0.07 + 0.93 * 0.5 * f) >= 0.65  <=>  f <= 0.28 / 0.465 = 0.6022
    f_max = 0.28 / 0.465
    ok = trajectory(CLASSES, lat=LAT, lon=LON, dimming_factor=0.60)
    assert float(ok.saving_pct.sel(year=2030)) == pytest.approx(100 * (1 - 0.07 - 0.465 * 0.6))
    year = year_of_target(ok)
    assert year is not None
    assert year <= 2030
    assert float(ok.saving_pct.sel(year=year)) >= 65.0
    if year > 2018:
        assert float(ok.saving_pct.sel(year=year - 1)) < 65.0
    short = trajectory(CLASSES, lat=LAT, lon=LON, dimming_factor=f_max + 0.01)
    assert year_of_target(short) is None
    # a switch-off window closes the gap: 1 - 0.95 * (0.07 + 0.465 * 0.65) = 64.64 % ... not
    # quite; 10 % of the hours off: 1 - 0.9 * (0.07 + 0.465 * 0.65) = 66.5 %
    both = trajectory(CLASSES, lat=LAT, lon=LON, dimming_factor=0.65, switch_off_factor=0.10)
    assert float(both.saving_pct.sel(year=2030)) == pytest.approx(
        100 * (1 - 0.9 * (0.07 + 0.465 * 0.65))
    )
    assert year_of_target(both) is not None


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"dimming_factor": 1.5}, r"dimming_factor: 1\.5 must be within \[0, 1\]"),
        ({"dimming_factor": {2020: 0.7, 2024: -0.1}}, r"dimming_factor\[2024\]"),
        ({"dimming_factor": {}}, r"dimming_factor: empty mapping"),
        ({"switch_off_factor": -0.2}, r"switch_off_factor: -0\.2"),
        ({"switch_off_factor": {"2020": 0.1}}, r"switch_off_factor: year '2020'"),
        ({"metered_wh": {2017: 1e6}}, r"metered_wh: year 2017 is not one of years"),
        ({"metered_wh": {2019: -5.0}}, r"metered_wh\[2019\]: -5\.0 must be finite"),
        ({"metered_wh": [1.0]}, r"metered_wh: expected a mapping"),
        ({"years": []}, r"years: no year given"),
        ({"years": [2020, 2019]}, r"years: must be increasing"),
        ({"years": [2020.5]}, r"years: 2020\.5 is not an integer"),
        ({"rollout": {2018: 0.5}}, r"rollout: expected a Rollout"),
        ({"led_ratio": 1.2}, r"led_ratio: 1\.2 must be in \(0, 1\]"),
        ({"target_pct": 0}, r"target_pct"),
        ({"lat": 123.0}, r"lat: 123\.0 is not a latitude"),
    ],
)
def test_trajectory_validation_names_the_field(kwargs, pattern):
    args = {"lat": LAT, "lon": LON} | kwargs
    with pytest.raises(InputValidationError, match=pattern):
        trajectory(CLASSES, **args)


def test_metered_figures_fill_the_metered_column(traj):
    p_hps = float(baseline_power_w(CLASSES).sum())
    metered = {2019: 0.70 * p_hps * 4110.0, 2021: 0.52 * p_hps * 4110.0}
    ds = trajectory(CLASSES, lat=LAT, lon=LON, metered_wh=metered)
    m = ds.metered_wh.to_series()
    assert m[2019] == metered[2019]
    assert m[2021] == metered[2021]
    assert m.drop([2019, 2021]).isna().all()
    # the modelled figures do not change
    np.testing.assert_array_equal(ds.planned_wh.values, traj.planned_wh.values)
    sm = ds.saving_pct_metered.to_series()
    assert sm[2021] == pytest.approx(
        100 * (1 - metered[2021] / float(ds.baseline_wh.sel(year=2021)))
    )
    assert sm.drop([2019, 2021]).isna().all()
    assert ds.saving_pct_metered.attrs["units"] == "%"
    assert year_of_target(ds, variable="saving_pct_metered") is None
    hit = trajectory(CLASSES, lat=LAT, lon=LON, metered_wh={2025: 0.3 * p_hps * 4110.0})
    assert year_of_target(hit, variable="saving_pct_metered") == 2025
    with pytest.raises(InputValidationError, match="variable: 'saving_pct_metered'"):
        year_of_target(traj, variable="saving_pct_metered")


# ---------------------------------------------------------------------------------------------
# factors from an optimiser plan
# ---------------------------------------------------------------------------------------------
def _night_plan(*, with_slot_s: bool) -> tuple[xr.Dataset, float, float]:
    """A 3-light plan over a real Dijon night, with the factors worked out by loops."""
    night = night_slots(dt.date(2026, 1, 15), lat=LAT, lon=LON, slot_minutes=15)
    n_t = len(night)
    power = np.array([40.0, 60.0, 100.0])
    hour = night.hour_local
    level = np.ones((3, n_t))
    cls = np.full((3, n_t), "M4", dtype=object)
    late = (hour >= 23.0) | (hour < 5.0)
    level[:, late] = 0.5
    cls[:, late] = "M5"
    # light 0 (a footpath) is switched off from 01:00 to 05:00 local
    off = (hour >= 1.0) & (hour < 5.0)
    level[0, off] = 0.0
    cls[0, off] = "off"
    # a driver floor: energy is 0.05 + 0.95 * level of full power when on
    slot_h = night.duration_s / 3600.0
    energy = np.where(cls == "off", 0.0, (0.05 + 0.95 * level)) * power[:, None] * slot_h

    full_total = 0.0
    full_lit = 0.0
    used_lit = 0.0
    for i in range(3):
        for t in range(n_t):
            e_full = power[i] * slot_h[t]
            full_total += e_full
            if cls[i, t] != "off":
                full_lit += e_full
                used_lit += energy[i, t]
    data = {
        "power_w": ("light", power, {"units": "W"}),
        "level": (("light", "time"), level, {"units": "1"}),
        "energy_wh": (("light", "time"), energy, {"units": "Wh"}),
        "lighting_class": (("light", "time"), cls.astype(str)),
    }
    if with_slot_s:
        data["slot_s"] = ("time", night.duration_s, {"units": "s"})
    plan = xr.Dataset(
        data,
        coords={"light": ["light:000001", "light:000002", "light:000003"], "time": night.start},
    )
    return plan, used_lit / full_lit, 1.0 - full_lit / full_total


def test_factors_from_plan_match_hand_sums():
    plan, dim, off = _night_plan(with_slot_s=True)
    d, o = factors_from_plan(plan)
    assert d == pytest.approx(dim, rel=1e-12)
    assert o == pytest.approx(off, rel=1e-12)
    assert 0.5 < d < 1.0
    assert 0.0 < o < 0.2


def test_factors_from_plan_without_slot_s_uses_time_spacing():
    plan, _, _ = _night_plan(with_slot_s=True)
    # regular hourly slots: the derived durations are exact
    hourly = plan.isel(time=slice(4, None, 4)).drop_vars("slot_s")
    hourly = hourly.assign(
        slot_s=("time", np.full(hourly.sizes["time"], 3600.0)),
        energy_wh=hourly.energy_wh * 4,  # the sub-sampled slots now last an hour
    )
    expected = factors_from_plan(hourly)
    assert factors_from_plan(hourly.drop_vars("slot_s")) == pytest.approx(expected)


def test_factors_from_plan_feed_the_trajectory():
    plan, _, _ = _night_plan(with_slot_s=True)
    d, o = factors_from_plan(plan)
    all_led = Rollout({2026: 1.0})
    ds = trajectory(
        CLASSES,
        lat=LAT,
        lon=LON,
        years=[2026],
        rollout=all_led,
        dimming_factor={2026: d},
        switch_off_factor={2026: o},
    )
    # with the whole stock on LED, planned / LED-only is the plan's energy over its
    # full-power energy
    full = float((plan.power_w * plan.slot_s / 3600.0).sum())
    ratio = float(plan.energy_wh.where(plan.lighting_class != "off", 0.0).sum()) / full
    assert (ds.planned_wh / ds.led_only_wh).item() == pytest.approx(ratio, rel=1e-12)


def test_factors_from_plan_errors_name_the_variable():
    plan, _, _ = _night_plan(with_slot_s=True)
    with pytest.raises(InputValidationError, match="lighting_class: missing"):
        factors_from_plan(plan.drop_vars("lighting_class"))
    with pytest.raises(InputValidationError, match="energy_wh: units 'kWh'"):
        factors_from_plan(plan.assign(energy_wh=plan.energy_wh.assign_attrs(units="kWh")))
    with pytest.raises(InputValidationError, match="slot_s"):
        factors_from_plan(plan.isel(time=[0]).drop_vars("slot_s"))
    with pytest.raises(InputValidationError, match="energy_wh: the lit slots draw"):
        factors_from_plan(plan.assign(energy_wh=plan.energy_wh * 3))
    # without energy_wh, the level is used (linear power, no driver floor)
    d, _ = factors_from_plan(plan.drop_vars("energy_wh"))
    lit = plan.lighting_class != "off"
    full = plan.power_w * plan.slot_s
    assert d == pytest.approx(float((plan.level * full).where(lit).sum() / full.where(lit).sum()))


# ---------------------------------------------------------------------------------------------
# plot
# ---------------------------------------------------------------------------------------------
def _has_target_line(fig, y: float) -> bool:
    for ax in fig.axes:
        for line in ax.get_lines():
            ydata = np.asarray(line.get_ydata(), dtype=float)
            if isinstance(line, Line2D) and ydata.size and np.allclose(ydata, y):
                return True
    return False


def test_plot_writes_png_with_target_line(tmp_path):
    p_hps = float(baseline_power_w(CLASSES).sum())
    ds = trajectory(
        CLASSES,
        lat=LAT,
        lon=LON,
        dimming_factor={2021: 0.6},
        switch_off_factor={2023: 0.05},
        metered_wh={2019: 0.7 * p_hps * 4110.0},
    )
    fig = plot_trajectory(ds, title="Dijon", attribution="© OpenStreetMap contributors")
    path = tmp_path / "trajectory.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _has_target_line(fig, 65.0)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for expected in ("planned energy", "LED only", "metered", "saving: dimming", "target 65%"):
        assert any(expected in label for label in labels), expected
    assert any("OpenStreetMap" in t.get_text() for t in fig.texts)
    # on given axes, the figure of those axes is returned
    from matplotlib.figure import Figure

    other = Figure()
    ax = other.add_subplot()
    assert plot_trajectory(ds, ax=ax) is other
    with pytest.raises(InputValidationError, match="ds: missing variable"):
        plot_trajectory(ds.drop_vars("planned_wh"))


def test_lamp_table_agrees_with_the_road_class_defaults():
    # twin.assets.lighting.ROAD_CLASSES carries the same HPS lamp powers; keep them in step
    lighting = pytest.importorskip("twin.assets.lighting")
    table = lighting.ROAD_CLASSES
    assert set(table.index) == set(HPS_LAMP_W)
    for highway, lamp in table["hps_lamp_w"].items():
        assert HPS_LAMP_W[highway] == lamp, highway


# ---------------------------------------------------------------------------------------------
# a stock of another city's size (the Dijon-sized table)
# ---------------------------------------------------------------------------------------------
def test_resized_twin_keeps_the_real_mix_at_the_asked_size(bondy):
    from optimize import dimming_year
    from twin.cities import get_city
    from twin.energy.stock import resized_twin

    dijon = get_city("dijon")
    src = bondy.registry["light"]
    n = 3 * len(src) + 7
    tw = resized_twin(bondy, n_lights=n, led_share=0.9, city=dijon, rng=5)
    again = resized_twin(bondy, n_lights=n, led_share=0.9, city=dijon, rng=5)
    lights = tw.registry["light"]
    assert len(lights) == n and tw.meta["resized"]["resampled"] == n - len(src)
    pd.testing.assert_frame_equal(lights, again.registry["light"])  # seeded
    # every real light kept once; the copies repeat the real mix of classes and streets
    assert set(lights["ref"]) == set(src.index)
    assert set(lights["design_class"]) <= set(src["design_class"])
    hps = lights["technology"] == "HPS"
    assert int(hps.sum()) == round(0.1 * n)
    np.testing.assert_array_equal(lights.loc[hps, "power_w"], lights.loc[hps, "baseline_power_w"])
    assert tw.centre == pytest.approx(tuple(dijon.centre)) and tw.city.contract == dijon.contract
    cab = tw.registry["cabinet"]
    assert cab["n_lights"].sum() == n and cab["n_lights"].max() <= 60
    year = dimming_year.plan_year(tw, 2030, nights=[dt.date(2030, 12, 15)])
    e = year["energy_wh"].isel(night=0).to_numpy()
    full = year["power_w"].to_numpy() * float(year["dark_h"][0])
    np.testing.assert_allclose(e[hps.to_numpy()], full[hps.to_numpy()], rtol=1e-5)  # not dimmed
    assert (e[~hps.to_numpy()] < full[~hps.to_numpy()]).all()
    with pytest.raises(InputValidationError, match="led_share"):
        resized_twin(bondy, n_lights=10, led_share=1.5)
    with pytest.raises(InputValidationError, match="n_lights"):
        resized_twin(bondy, n_lights=0, led_share=0.9)
