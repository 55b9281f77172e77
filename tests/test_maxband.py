"""MAXBAND: a two-way band on a real arterial, its optimum, infeasibility with binding groups."""

from __future__ import annotations

import numpy as np
import pytest

from optimize.maxband import Arterial, MaxbandInfeasibleError, corridors, maxband


def _band_fits(ds) -> None:  # type: ignore[no-untyped-def]
    """Replay the outbound band: it meets no red at any signal."""
    c = ds.attrs["cycle_s"]
    b = ds.attrs["band_out_s"]
    pos, red, centre = ds["position"].values, ds["red"].values, ds["red_centre"].values
    t = centre[0] + red[0] / 2 + ds["w"].values[0]
    for i in range(len(pos)):
        if i:
            t += (pos[i] - pos[i - 1]) / (ds["speed_out"].values[i - 1] / 3.6)
        for s in np.linspace(t, t + b, 7)[1:-1]:
            off = (s - (centre[i] - red[i] / 2)) % c
            assert off >= red[i] - 1e-6, (i, s)


def test_maxband_ten_signals_two_way_band():
    rng = np.random.default_rng(1)
    art = Arterial(
        "test",
        tuple(f"j{i}" for i in range(10)),
        tuple(rng.uniform(150, 450, 9)),
        tuple(rng.uniform(30, 50, 10)),
        90.0,
    )
    ds = maxband(art)
    assert ds.attrs["status"] == "Optimal"
    assert ds.attrs["band_out_s"] + ds.attrs["band_in_s"] > 10
    assert ds.attrs["band_out_s"] <= 90 - max(art.red_s) + 1e-6
    _band_fits(ds)
    # progression speeds within the range asked
    assert (ds["speed_out"] <= 50.0 + 1e-6).all() and (ds["speed_out"] >= 0.85 * 50 - 1e-6).all()


def _green_at(ds, i: int, s: float) -> bool:  # type: ignore[no-untyped-def]
    period, red, centre = ds["period"].values, ds["red"].values, ds["red_centre"].values
    x = (s - (centre[i] - red[i] / 2)) % period[i]  # time since the red started
    return bool(x >= red[i] - 1e-6 or x <= 1e-6)  # a band may end as the red starts


def test_maxband_double_cycled_signals_pass_the_band_in_either_green():
    """A signal at half the common cycle shows its green twice per cycle. Counting only one of
    them (a red of C - g) leaves no two-way band here; a band through either green exists,
    and both bands, replayed at each signal's own cycle, meet no red."""
    dist = (220.0, 160.0, 300.0, 180.0, 250.0)
    half = (True, True, False, True, True, True)
    green = (30.0, 28.0, 50.0, 30.0, 32.0, 28.0)
    c = 120.0
    one_green = Arterial(
        "one green", tuple(f"j{i}" for i in range(6)), dist, tuple(c - g for g in green), c
    )
    with pytest.raises(MaxbandInfeasibleError):
        maxband(one_green)
    art = Arterial(
        "double-cycled",
        tuple(f"j{i}" for i in range(6)),
        dist,
        tuple((c / 2 if h else c) - g for h, g in zip(half, green, strict=True)),
        c,
        period_s=tuple(c / 2 if h else c for h in half),
    )
    ds = maxband(art)
    b, bb = ds.attrs["band_out_s"], ds.attrs["band_in_s"]
    assert b + bb > 10.0
    assert b <= min(green) + 1e-6 and bb <= min(green) + 1e-6
    pos, w, ww = ds["position"].values, ds["w"].values, ds["ww"].values
    red, centre = ds["red"].values, ds["red_centre"].values
    t = centre[0] + red[0] / 2 + w[0]  # outbound band's start at the first signal
    for i in range(6):
        if i:
            t += (pos[i] - pos[i - 1]) / (ds["speed_out"].values[i - 1] / 3.6)
        assert all(_green_at(ds, i, s) for s in np.linspace(t, t + b, 9)[1:-1]), ("out", i)
    t = ds.attrs["band_in_start_s"]  # ww[5] before one of the last signal's reds
    assert (t - (centre[5] - red[5] / 2 - ww[5] - bb)) % (c / 2) == pytest.approx(0.0, abs=1e-6)
    for i in range(5, -1, -1):
        if i < 5:
            t += (pos[i + 1] - pos[i]) / (ds["speed_in"].values[i] / 3.6)
        assert all(_green_at(ds, i, s) for s in np.linspace(t, t + bb, 9)[1:-1]), ("in", i)


def test_maxband_infeasible_names_binding_constraints():
    art = Arterial(
        "tight",
        tuple(f"j{i}" for i in range(6)),
        (300.0,) * 5,
        (40.0,) * 6,
        90.0,
        speed_limit_kph=(30.0, 30.0, 50.0, 50.0, 50.0),
    )
    with pytest.raises(MaxbandInfeasibleError, match="binding constraints") as err:
        maxband(art, speed_range=(0.95, 1.0), max_speed_change_kph=5.0)
    assert "speed_change[1]" in err.value.binding


def test_corridors_of_montpellier(montpellier):
    from twin.scenarios.network import signal_plans

    plans = signal_plans(montpellier)
    arts = corridors(montpellier, plans)
    assert arts and all(len(a.junctions) >= 5 for a in arts)
    ds = maxband(arts[0])
    assert ds.attrs["status"] == "Optimal"
    _band_fits(ds)
