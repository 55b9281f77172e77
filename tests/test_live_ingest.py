"""Ingestion and the history store, the same tests on SQLite (WAL) and on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from live import telemetry as T
from live.ingest import Ingestor

STORES = pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
T0 = dt.datetime(2024, 1, 15, 18, 0, tzinfo=dt.UTC)
CLOCK = (T0 + dt.timedelta(days=1)).timestamp


def _msg(asset: str, n: int, t: dt.datetime, **fields) -> tuple[str, bytes]:
    kind = asset.split(":")[0]
    body = {"id": f"m{n}", "ts": t.isoformat().replace("+00:00", "Z"), "asset": asset, **fields}
    return T.topic("bondy", "telemetry", kind, asset), json.dumps(body).encode()


def _light(asset: str, n: int, t: dt.datetime, level: float = 0.5) -> tuple[str, bytes]:
    return _msg(asset, n, t, level=level, power_w=40.0 * level)


@STORES
def test_valid_messages_are_stored_and_update_the_state(store, assets):
    ing = Ingestor(store, city="bondy", assets=assets, clock=CLOCK)
    lights, cab, jn, sen, veh = (assets[k][0] for k in T.KINDS)
    batch = [
        _light(lights, 1, T0, 0.7),
        _light(assets["light"][1], 1, T0, 0.3),
        _msg(cab, 1, T0, power_w=1200.0, energy_wh=5.0e6, voltage_v=231.0),
        _msg(jn, 1, T0, mode="normal", plan="p1", stage=2, counts={"approach:2.0": 12}),
        _msg(sen, 1, T0, count=40, interval_s=300.0),
        _msg(veh, 1, T0, lon=2.48, lat=48.9, speed_m_s=8.0),
    ]
    got = ing.ingest(batch)
    assert got["accepted"] == 6 and ing.accounted() and ing.rejected() == 0
    assert store.count("telemetry") == 6 and store.count("dead_letter") == 0
    st = ing.state.frame("light")
    assert st.loc[lights, "level"] == 0.7 and st.loc[assets["light"][1], "level"] == 0.3
    assert st.loc[lights, "ts"] == T0
    assert ing.state.frame("junction").loc[jn, "mode"] == "normal"
    hist = store.history([lights], fields=["level", "power_w"])
    assert hist.index.tz is not None and hist["level"].tolist() == [0.7]


@STORES
def test_duplicates_and_out_of_order(store, assets):
    ing = Ingestor(store, city="bondy", assets=assets, clock=CLOCK)
    a = assets["light"][0]
    later, earlier = T0 + dt.timedelta(minutes=10), T0
    ing.ingest([_light(a, 2, later, 0.4), _light(a, 2, later, 0.4)])  # same id twice in a batch
    ing.ingest([_light(a, 2, later, 0.4)])  # and again later
    ing.ingest([_light(a, 1, earlier, 0.9)])  # out of order: kept, but the state stays newer
    c = ing.counters
    assert (c["received"], c["accepted"], c["duplicate"], c["late"]) == (4, 2, 2, 1)
    assert ing.state.frame("light").loc[a, "level"] == 0.4
    assert store.count("telemetry") == 2
    # a restarted ingestion knows the ids (from the store), and the store's key is the backstop
    again = Ingestor(store, city="bondy", assets=assets, clock=CLOCK)
    again.ingest([_light(a, 2, later, 0.4)])
    blind = Ingestor(store, city="bondy", assets=assets, clock=CLOCK, dedup_window=dt.timedelta(0))
    blind.ingest([_light(a, 1, earlier, 0.9)])
    assert again.counters["duplicate"] == 1 and blind.counters["duplicate"] == 1
    assert blind.counters["accepted"] == 0 and store.count("telemetry") == 2
    assert again.accounted() and blind.accounted()
    # the memory of ids is bounded; an id it forgot is still caught by the store
    small = Ingestor(store, city="bondy", assets=assets, clock=CLOCK, max_seen=1)
    small.ingest([_light(a, k, later + dt.timedelta(seconds=k), 0.4) for k in range(10, 13)])
    assert len(small.seen) == 1
    small.ingest([_light(a, 10, later + dt.timedelta(seconds=10), 0.4)])
    assert small.counters["duplicate"] == 1 and store.count("telemetry") == 5


@STORES
def test_large_batches_with_awkward_strings_and_a_restart(store, assets):
    """Batches of thousands (PostgreSQL's COPY path) keep every byte, and the store's key."""
    lights = assets["light"]
    odd = ["tab\tid", "new\nline", "back\\slash", "quo'te\"", "\\N", "caf\u00e9 \U0001f4a1"]
    batch = [_light(lights[k % len(lights)], k, T0 + dt.timedelta(seconds=k)) for k in range(3000)]
    for k, name in enumerate(odd):  # ids that COPY's text format must escape
        topic, body = _light(lights[k], 0, T0)
        batch.append((topic, body.replace(b'"m0"', json.dumps(name).encode())))
    ing = Ingestor(store, city="bondy", assets=assets, clock=CLOCK)
    assert ing.ingest(batch)["accepted"] == len(batch)
    assert store.count("telemetry") == len(batch)
    got = {
        r[0] for r in store.execute("SELECT msg_id FROM telemetry WHERE msg_id NOT LIKE ?", ["m%"])
    }
    assert got == set(odd)
    # restarted with no memory of ids: the old ones are duplicates by the store's key alone
    blind = Ingestor(store, city="bondy", assets=assets, clock=CLOCK, dedup_window=dt.timedelta(0))
    more = [_light(lights[0], k, T0 + dt.timedelta(seconds=k)) for k in range(3000, 3100)]
    got = blind.ingest(batch[:2000] + more)
    assert (got["accepted"], got["duplicate"]) == (100, 2000) and blind.accounted()
    assert store.count("telemetry") == len(batch) + 100


@STORES
def test_every_rejection_is_dead_lettered_with_its_reason(store, assets):
    ing = Ingestor(store, city="bondy", assets=assets, clock=CLOCK)
    a = assets["light"][0]
    topic = T.topic("bondy", "telemetry", "light", a)
    good = json.loads(_light(a, 1, T0)[1])
    cases = {
        "topic": ("twin/paris/telemetry/light/" + a, json.dumps(good)),
        "json": (topic, '{"id": "x", "ts": '),
        "schema": (topic, json.dumps({**good, "level": "bright"})),
        "range": (topic, json.dumps({**good, "level": 1e308})),
        "unknown_asset": (
            T.topic("bondy", "telemetry", "light", "light:999999"),
            json.dumps({**good, "asset": "light:999999"}),
        ),
        "asset_mismatch": (topic, json.dumps({**good, "asset": assets["light"][1]})),
        "future": (topic, json.dumps({**good, "ts": "2030-01-01T00:00:00Z"})),
    }
    assert set(cases) == set(T.REASONS)
    ing.ingest([(t, p.encode()) for t, p in cases.values()] + [(topic, json.dumps(good).encode())])
    assert ing.counters["accepted"] == 1 and ing.accounted()
    for reason in T.REASONS:
        assert ing.counters[f"rejected.{reason}"] == 1, reason
    dl = store.dead_letters()
    assert sorted(dl["reason"]) == sorted(T.REASONS)
    row = dl[dl["reason"] == "range"].iloc[0]
    assert "level" in row["detail"] and row["payload"] == cases["range"][1].encode()
    # an injection string is data, never SQL
    evil = json.dumps({**good, "id": "x'); DROP TABLE telemetry; --"})
    ing.ingest([(topic, evil.encode())])
    assert store.count("telemetry") == 2


@STORES
def test_metered_energy_per_cabinet_and_night(store, assets):
    ing = Ingestor(store, city="bondy", assets=assets, clock=CLOCK)
    cabs = assets["cabinet"][:3]
    batch, n = [], 0
    # readings every 30 min from 17:00 to 08:00 UTC, 2 kW per cabinet (1 kWh per reading)
    for k in range(31):
        t = dt.datetime(2024, 1, 14, 17, tzinfo=dt.UTC) + dt.timedelta(minutes=30 * k)
        for j, c in enumerate(cabs):
            n += 1
            batch.append(_msg(c, n, t, power_w=2000.0, energy_wh=1e6 * (j + 1) + 1000.0 * k))
    np.random.default_rng(0).shuffle(batch)  # arrival order must not matter
    for i in range(0, len(batch), 20):
        ing.ingest(batch[i : i + 20])
    ds = store.metered_energy()
    assert ds["energy_wh"].attrs["units"] == "Wh" and ds["time"].attrs["timezone"] == "UTC"
    assert list(ds["cabinet"].values) == sorted(cabs)
    assert ds.sizes["time"] == 1 and str(ds["time"].values[0])[:10] == "2024-01-14"
    np.testing.assert_allclose(ds["energy_wh"].values[:, 0], 30_000.0)
    np.testing.assert_allclose(ds["metered_hours"].values[:, 0], 15.0)


def test_schemas_in_the_docs_are_the_validators():
    folder = Path(T.__file__).parent / "schemas"
    for kind, schema in T.schemas().items():
        on_disk = json.loads((folder / f"{kind}.json").read_text())
        assert on_disk == json.loads(json.dumps(schema)), f"regenerate live/schemas/{kind}.json"
