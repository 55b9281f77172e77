"""Metered energy from the history store: the monthly rollup against the raw readings.

``Store.metered_energy`` reads the ``meter_month`` rollup (one row per cabinet and month), kept
in the same transaction as the telemetry. Each test recomputes the nights from the raw cabinet
telemetry rows and expects the same Dataset, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import zoneinfo
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from live import telemetry as T
from live.ingest import Ingestor
from live.store import Store, open_store

STORES = pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
#: the ingestion's clock: after every reading below (none is "in the future")
CLOCK = dt.datetime(2024, 4, 10, tzinfo=dt.UTC).timestamp


def _reading(cab: str, n: int, t: dt.datetime, wh: float) -> tuple[str, bytes]:
    body = {
        "id": f"r{n}",
        "ts": t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "asset": cab,
        "power_w": 1500.0,
        "energy_wh": wh,
    }
    return T.topic("bondy", "telemetry", "cabinet", cab), json.dumps(body).encode()


def _readings(cabs: list[str], seed: int = 0) -> list[tuple[str, bytes]]:
    """Meter readings at irregular times over nights that cross a month and a DST change.

    Nights of 30-31 January (the second ends in February), 28-29 February (leap year), and
    30 March, which is 23 hours long in Paris; readings from 15:00 to 11:00 the next day: the
    afternoon ones belong to the night that starts that evening, the morning ones to the night
    before.
    """
    rng = np.random.default_rng(seed)
    out, n = [], 0
    for c in cabs:
        wh = float(rng.integers(0, 10**7))
        for evening in ("2024-01-30", "2024-01-31", "2024-02-28", "2024-02-29", "2024-03-30"):
            start = dt.datetime.fromisoformat(evening + "T15:00").replace(tzinfo=PARIS)
            minutes = np.sort(rng.choice(np.arange(0, 20 * 60), size=12, replace=False))
            for m in minutes:
                n += 1
                wh += float(rng.uniform(100.0, 2000.0))
                out.append(_reading(c, n, start + dt.timedelta(minutes=int(m)), round(wh, 3)))
    return out


def _from_raw(store: Store, tz: str = "Europe/Paris") -> xr.Dataset:
    """Each cabinet night's energy recomputed from the raw telemetry rows (the reference)."""
    rows = store.execute("SELECT asset, ts_us, body FROM telemetry WHERE kind = 'cabinet'")
    df = pd.DataFrame(
        {
            "cabinet": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows], unit="us", utc=True),
            "wh": [json.loads(r[2])["energy_wh"] for r in rows],
        }
    )
    local = df["ts"].dt.tz_convert(tz) - pd.Timedelta(hours=12)
    df["night"] = pd.to_datetime(local.dt.strftime("%Y-%m-%d"))
    df = df.sort_values("ts")
    g = df.groupby(["cabinet", "night"])
    first, last = g.first(), g.last()
    span = (last["ts"] - first["ts"]).dt.total_seconds()
    two = span > 0
    table = pd.DataFrame(
        {
            "energy_wh": (last["wh"] - first["wh"]).where(two),
            "metered_hours": (span / 3600.0).where(two),
        }
    )
    ds = xr.Dataset.from_dataframe(table.rename_axis(["cabinet", "time"]))
    return ds.assign_coords(cabinet=ds["cabinet"].values.astype(str))


def _same(got: xr.Dataset, want: xr.Dataset) -> None:
    assert list(got["cabinet"].values) == list(want["cabinet"].values)
    assert list(got["time"].values) == list(want["time"].values)
    for v in ("energy_wh", "metered_hours"):
        np.testing.assert_allclose(got[v].values, want[v].values, rtol=0, atol=1e-6, err_msg=v)


@STORES
def test_metered_energy_equals_the_raw_readings_recomputed(store, assets):
    cabs = assets["cabinet"][:4]
    msgs = _readings(cabs)
    order = np.random.default_rng(1).permutation(len(msgs))  # out of order
    shuffled = [msgs[i] for i in order]
    ing = Ingestor(store, city="bondy", assets=assets, clock=CLOCK)
    for i in range(0, len(shuffled), 17):
        ing.ingest(shuffled[i : i + 17] + shuffled[max(i - 3, 0) : i])  # resent: duplicates
    # a restarted ingestion that forgot the ids: the store's key keeps them out of the meter
    blind = Ingestor(store, city="bondy", assets=assets, clock=CLOCK, dedup_window=dt.timedelta(0))
    blind.ingest(msgs[::5])
    assert blind.counters["accepted"] == 0 and ing.counters["accepted"] == len(msgs)

    want = _from_raw(store)
    got = store.metered_energy()
    _same(got, want)
    assert got["energy_wh"].attrs["units"] == "Wh" and got["metered_hours"].attrs["units"] == "h"
    assert got["time"].attrs["timezone"] == "UTC" and got["time"].dtype == "datetime64[ns]"
    nights = [str(t)[:10] for t in got["time"].values]
    assert nights == ["2024-01-30", "2024-01-31", "2024-02-28", "2024-02-29", "2024-03-30"]
    # the night of 31 January ends on 1 February: one night, counted in January
    assert np.isfinite(got["energy_wh"].sel(time="2024-01-31").values).all()

    # a selection of cabinets and dates is the same selection of the whole
    sub = store.metered_energy(cabs[1:3], start=dt.date(2024, 1, 31), end=dt.date(2024, 3, 30))
    _same(sub, want.sel(cabinet=sorted(cabs[1:3]), time=slice("2024-01-31", "2024-03-29")))
    assert len(store.metered_energy(start=dt.date(2024, 4, 1))["time"]) == 0
    assert store.metered_energy([]).sizes == {"cabinet": 0, "time": 0}

    # the query reads the rollup alone: without the raw rows it says the same
    store.execute("DELETE FROM telemetry")
    store.execute("DELETE FROM meter_night")
    _same(store.metered_energy(), want)


@STORES
def test_a_night_with_one_reading_has_no_energy(store, assets):
    cab = assets["cabinet"][0]
    t = dt.datetime(2024, 2, 10, 20, tzinfo=PARIS)
    Ingestor(store, city="bondy", assets=assets, clock=CLOCK).ingest([_reading(cab, 1, t, 5e5)])
    ds = store.metered_energy()
    assert ds.sizes == {"cabinet": 1, "time": 1}
    assert np.isnan(ds["energy_wh"].item()) and np.isnan(ds["metered_hours"].item())
    _same(ds, _from_raw(store))


def _in_two_threads(work: Callable[[int], None]) -> None:
    """Run ``work(0)`` and ``work(1)`` at once; fail with what either raised."""
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors


@STORES
def test_concurrent_writers_keep_every_reading(store_url, assets):
    """Two ingestion workers (as a shared subscription has) write the same cabinets' months."""
    cabs = assets["cabinet"][:2]  # few months: the workers often write the same one at once
    msgs = _readings(cabs, seed=2)
    stores = [open_store(store_url) for _ in range(2)]

    def work(k: int) -> None:
        ing = Ingestor(stores[k], city="bondy", assets=assets, clock=CLOCK)
        mine = msgs[k::2] + msgs[::7]  # every 7th reaches both workers (redelivered)
        for m in mine:  # a transaction per message: many chances to overlap
            ing.ingest([m])

    try:
        _in_two_threads(work)
        _same(stores[0].metered_energy(), _from_raw(stores[0]))
        assert stores[0].count("telemetry") == len(msgs)
    finally:
        for s in stores:
            s.close()


@STORES
def test_a_store_without_the_rollup_builds_it_from_the_nights(store_url, assets):
    """A history written before the monthly rollup existed is rolled up when it is opened."""
    s = open_store(store_url)
    ing = Ingestor(s, city="bondy", assets=assets, clock=CLOCK)
    ing.ingest(_readings(assets["cabinet"][:2], seed=3))
    want = s.metered_energy()
    s.execute("DROP TABLE meter_month")
    s.close()
    with open_store(store_url) as again:
        assert again.count("meter_month") > 0
        _same(again.metered_energy(), want)
        _same(again.metered_energy(), _from_raw(again))


@STORES
def test_meter_rows_written_directly_are_rolled_up(store):
    """Any writer of nights (not only the ingestion) keeps the rollup, repeated keys included."""

    def night(cab: str, evening: str, t0: str, wh0: float, t1: str, wh1: float) -> tuple:
        us = [int(dt.datetime.fromisoformat(t).timestamp() * 1e6) for t in (t0, t1)]
        return (cab, evening, us[0], wh0, us[1], wh1)

    rows = [
        night("cabinet:2", "2025-03-01", "2025-03-01T18:00Z", 100.0, "2025-03-02T06:00Z", 900.0),
        night("cabinet:1", "2025-03-31", "2025-03-31T18:00Z", 10.0, "2025-04-01T05:00Z", 40.0),
        # the same night again, with an earlier first and a later last reading
        night("cabinet:2", "2025-03-01", "2025-03-01T17:00Z", 50.0, "2025-03-02T05:00Z", 800.0),
        night("cabinet:2", "2025-03-01", "2025-03-01T19:00Z", 150.0, "2025-03-02T07:00Z", 1000.0),
    ]
    store.write([(Store.UPSERT_METER, rows[:2]), (Store.UPSERT_METER, rows[2:3])])
    store.write([(Store.UPSERT_METER, rows[3:])])
    ds = store.metered_energy()
    assert list(ds["cabinet"].values) == ["cabinet:1", "cabinet:2"]
    assert [str(t)[:10] for t in ds["time"].values] == ["2025-03-01", "2025-03-31"]
    e = ds["energy_wh"].values
    np.testing.assert_array_equal(e, [[np.nan, 30.0], [950.0, np.nan]])
    np.testing.assert_array_equal(ds["metered_hours"].values, [[np.nan, 11.0], [14.0, np.nan]])


def test_metered_energy_rejects_a_bad_selection(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'h.db'}") as s:
        with pytest.raises(ValueError, match="start: 2024-02-02 is after end: 2024-02-01"):
            s.metered_energy(start=dt.date(2024, 2, 2), end=dt.date(2024, 2, 1))
        with pytest.raises(ValueError, match="night: '2024-2-1' is not a date YYYY-MM-DD"):
            s.write([(Store.UPSERT_METER, [("cabinet:1", "2024-2-1", 0, 0.0, 1, 1.0)])])


@STORES
def test_concurrent_writes_of_one_month_lose_no_night(store_url):
    """Two writers, a transaction per night, all in one cabinet's month: every night is kept."""
    rng = np.random.default_rng(4)
    base = int(dt.datetime(2025, 5, 1, 18, tzinfo=dt.UTC).timestamp() * 1e6)
    hour = 3600 * 10**6
    rows = []
    for _ in range(400):
        d = int(rng.integers(0, 31))
        t0 = base + d * 24 * hour + int(rng.integers(0, 3)) * hour
        t1 = t0 + int(rng.integers(1, 12)) * hour
        rows.append(
            ("cabinet:1", f"2025-05-{d + 1:02d}", t0, float(t0 // 10**6), t1, float(t1 // 10**6))
        )
    stores = [open_store(store_url) for _ in range(2)]

    def work(k: int) -> None:
        for r in rows[k::2]:
            stores[k].write([(Store.UPSERT_METER, [r])])

    try:
        _in_two_threads(work)
        got = stores[0].metered_energy()
    finally:
        for s in stores:
            s.close()
    df = pd.DataFrame(rows, columns=["cabinet", "night", "f_us", "f_wh", "l_us", "l_wh"])
    g = df.groupby("night")
    want = ((g["l_us"].max() - g["f_us"].min()) / 10**6).to_numpy()  # the meter reads seconds
    assert [str(t)[:10] for t in got["time"].values] == list(g.groups)
    np.testing.assert_array_equal(got["energy_wh"].values[0], want)
