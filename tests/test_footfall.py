"""Tests of the footfall DES."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_demand import grid_twin

from twin._errors import InputValidationError
from twin.model import Twin
from twin.registry import Registry
from twin.scenarios import demand as D
from twin.scenarios import footfall as F

PARIS = ZoneInfo("Europe/Paris")


def with_sensors(tw: Twin, segments: list[str]) -> Twin:
    seg = tw.registry["segment"]
    sensors = pd.DataFrame(
        {
            "id": [f"sensor:{i}" for i in range(len(segments))],
            "sensor_type": "footfall",
            "segment": segments,
            "approach": None,
            "geometry": [seg.geometry.loc[s].interpolate(0.5, normalized=True) for s in segments],
        }
    )
    reg = Registry({"segment": seg, "sensor": sensors})
    return Twin(tw.city, tw.graph, reg, meta={})


@pytest.fixture(scope="module")
def tw() -> Twin:
    return with_sensors(grid_twin(n=10), ["segment:000010", "segment:000050", "segment:000050"])


def test_run_is_deterministic_and_round_trips(tw: Twin, tmp_path: Path) -> None:
    a = F.run_footfall(tw, day="2026-06-05", rng=11, progress=False)
    b = F.run_footfall(tw, day=dt.date(2026, 6, 5), rng=11, progress=False)
    c = F.run_footfall(tw, day="2026-06-05", rng=12, progress=False)
    xr.testing.assert_identical(a, b)
    assert not a["footfall"].equals(c["footfall"])
    assert a["footfall"].dims == ("segment", "time")
    assert a.sizes["time"] == 96
    assert a["time"].attrs["timezone"] == "UTC"
    assert a.attrs["local_timezone"] == tw.city.timezone
    assert a["time"].dtype == np.dtype("datetime64[ns]")
    assert str(a["time"].values[0]) == "2026-06-04T22:00:00.000000000"
    for v in ("footfall", "rate", "count"):
        assert a[v].attrs["units"]
        assert a[v].attrs["long_name"]
    path = tmp_path / "f.nc"
    a.to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        xr.testing.assert_identical(back.load(), a)


def test_counters_match_their_segment(tw: Twin) -> None:
    ds = F.run_footfall(tw, day="2026-06-05", rng=1, progress=False)
    for s in ds["sensor"].values:
        seg = str(ds["sensor_segment"].sel(sensor=s).values)
        per_slot = ds["footfall"].sel(segment=seg).values * 0.25
        np.testing.assert_allclose(ds["count"].sel(sensor=s).values, per_slot)
    # the two sensors on one segment count the same pedestrians
    np.testing.assert_array_equal(ds["count"].values[1], ds["count"].values[2])


def test_counts_follow_the_rates(tw: Twin) -> None:
    ds = F.run_footfall(tw, day="2026-06-05", rng=5, progress=False)
    sim = float(ds["footfall"].sum()) * 0.25
    exp = float(ds["rate"].sum()) * 0.25
    assert sim == pytest.approx(exp, rel=5 * exp**-0.5)
    # counters simulate pedestrian by pedestrian: check their daily total against the rate
    seg = str(ds["sensor_segment"].values[0])
    n = float(ds["count"].values[0].sum())
    mu = float(ds["rate"].sel(segment=seg).sum()) * 0.25
    assert abs(n - mu) < 5 * mu**0.5
    # more pedestrians at lunchtime than at 4 am (local)
    local = pd.DatetimeIndex(ds["time"].values).tz_localize("UTC").tz_convert(PARIS).hour
    assert ds["rate"].values[:, local == 12].sum() > 10 * ds["rate"].values[:, local == 4].sum()


def test_event_adds_footfall_near_it(tw: Twin) -> None:
    start = dt.datetime(2026, 6, 5, 10, tzinfo=PARIS)
    ev = D.Event("market", "segment:000050", start, start + dt.timedelta(hours=4), attendance=4000)
    base = F.run_footfall(tw, day="2026-06-05", rng=3, progress=False)
    more = F.run_footfall(tw, day="2026-06-05", rng=3, events=[ev], progress=False)
    assert more.attrs["events"] == 1
    local = pd.DatetimeIndex(base["time"].values).tz_localize("UTC").tz_convert(PARIS).hour
    during = (local >= 10) & (local < 14)
    near = more["rate"].sel(segment="segment:000050").values
    near0 = base["rate"].sel(segment="segment:000050").values
    assert (near[during] > near0[during]).all()
    np.testing.assert_array_equal(near[~during], near0[~during])
    far = "segment:000000"
    np.testing.assert_array_equal(
        more["rate"].sel(segment=far).values, base["rate"].sel(segment=far).values
    )
    # the counter on that segment sees the market
    assert int(more["count"].values[1][during].sum()) > int(base["count"].values[1][during].sum())


def test_dst_day_and_bad_input(tw: Twin) -> None:
    ds = F.run_footfall(tw, day="2026-10-25", rng=0, progress=False)
    assert ds.sizes["time"] == 100
    with pytest.raises(InputValidationError, match="day_type"):
        F.run_footfall(tw, day="2026-10-25", day_type="holiday", progress=False)
    with pytest.raises(InputValidationError, match="day"):
        F.run_footfall(tw, day="2026-02-30", progress=False)


def test_simulated_demand_wraps_footfall(tw: Twin) -> None:
    ds = F.run_footfall(tw, day="2026-06-05", rng=2, progress=False)
    sd = D.SimulatedDemand.from_dataset(ds)
    t = ds["time"].values[[40, 41]]
    np.testing.assert_array_equal(
        sd.footfall(["segment:000010"], t),
        ds["footfall"].sel(segment=["segment:000010"]).values[:, 40:42],
    )


@pytest.mark.slow
def test_montpellier_day_takes_seconds(tmp_path_factory: pytest.TempPathFactory) -> None:
    import twin.model

    root = Path(__file__).resolve().parents[1]
    os.environ.setdefault("TWIN_DATA", str((root / "../shared/data").resolve()))
    os.environ.setdefault("TWIN_CACHE", str(tmp_path_factory.mktemp("cache")))
    mtp = twin.model.load("montpellier", progress=False)
    ds = F.run_footfall(mtp, day="2026-06-05", rng=0, progress=False)
    assert ds.sizes["segment"] == len(mtp.registry["segment"])
    assert ds.sizes["time"] == 96
    assert ds.sizes["sensor"] == int((mtp.registry["sensor"]["sensor_type"] == "footfall").sum())
    assert float(ds["count"].sum()) > 0
