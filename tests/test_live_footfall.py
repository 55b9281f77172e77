"""The footfall calibration on counters' telemetry kept in a real history store.

Bondy's footfall counters report quarter-hour counts drawn from a known demand (the truth of
``test_footfall_calibration``) through the ingestion into SQLite and PostgreSQL; the
calibration reads them back from the store, accounts for every report, and finds the truth.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from live import telemetry as T
from live.counts import footfall_observations
from live.ingest import Ingestor
from twin.scenarios import footfall_calibration as fc
from twin.scenarios.calendar import CalendarDemand
from twin.scenarios.profiles import local_slots

STORES = pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
TRUTH = fc.FootfallCalibration(scale=1.4, night_share=0.26)
DAYS = [dt.date(2025, 3, 3) + dt.timedelta(days=k) for k in range(7)]
CLOCK = dt.datetime(2025, 4, 1, tzinfo=dt.UTC).timestamp


def _message(sensor: str, n: int, ts: dt.datetime, **fields: object) -> tuple[str, bytes]:
    body = {"id": f"m{n}", "ts": ts.isoformat().replace("+00:00", "Z"), "asset": sensor}
    body.update(fields)
    return T.topic("bondy", "telemetry", "sensor", sensor), json.dumps(body).encode()


@STORES
def test_counts_from_the_store_are_accounted_for_and_calibrate(
    store, store_url, assets, bondy, tmp_path, capsys
):
    sensors = bondy.registry["sensor"]
    foot = sensors[sensors["sensor_type"] == "footfall"]
    ids = [str(s) for s in foot.index]
    truth = TRUTH.apply(CalendarDemand.from_twin(bondy), timezone=bondy.city.timezone)
    rng = np.random.default_rng(5)
    batch, n = [], 0
    for day in DAYS:
        times, _ = local_slots(day, tz=bondy.city.timezone, slot_minutes=15)
        counts = rng.poisson(truth.footfall(foot["segment"].astype(str).tolist(), times) * 0.25)
        ends = [
            dt.datetime.fromisoformat(str(t)[:19]).replace(tzinfo=dt.UTC) + dt.timedelta(minutes=15)
            for t in times
        ]
        for j, sid in enumerate(ids):
            for t, c in zip(ends, counts[j], strict=True):
                n += 1
                batch.append(_message(sid, n, t, count=int(c), interval_s=900.0))
    # a report without an interval and one without a count: refused, with their counter
    late = dt.datetime(2025, 3, 5, 12, tzinfo=dt.UTC)
    batch.append(_message(ids[0], n + 1, late + dt.timedelta(seconds=1), count=3))
    batch.append(_message(ids[1], n + 2, late + dt.timedelta(seconds=2), interval_s=900.0))
    ing = Ingestor(store, city="bondy", assets=assets, clock=CLOCK)
    ing.ingest(batch)
    assert ing.counters["accepted"] == len(batch)

    obs = footfall_observations(store, bondy)
    assert len(obs) == len(batch)
    got = fc.calibrate_footfall(bondy, obs, holdout=0.0)
    assert got.accepted == len(batch) - 2
    assert sorted(zip(got.rejected["counter"], got.rejected["reason"], strict=True)) == sorted(
        [(ids[0], "not a time"), (ids[1], "negative or NaN count")]
    )
    c = got.calibration
    assert abs(c.scale / TRUTH.scale - 1) < 0.02, c
    assert abs(c.night_share - TRUTH.night_share) < 0.01, c
    # a range: reports stamped outside it are not read
    first_day = footfall_observations(
        store,
        bondy,
        start=dt.datetime(2025, 3, 3, tzinfo=dt.UTC),
        end=dt.datetime(2025, 3, 4, tzinfo=dt.UTC),
    )
    assert 0 < len(first_day) < len(obs)
    assert (first_day["end"] < "2025-03-04").all()
    # the command line reads the same store
    from twin.cli import main

    out = tmp_path / "fcal"
    argv = ["footfall", "calibrate", "--city", "bondy", "--db", store_url, "--holdout", "0"]
    assert main([*argv, "--out", str(out)]) == 0
    report = json.loads((out / fc.FILE).read_text())
    assert report["observations"]["accepted"] == got.accepted
    assert report["params"]["scale"] == pytest.approx(c.scale)
    assert "2 rejected" in capsys.readouterr().out
