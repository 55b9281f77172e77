"""10,000+ hostile telemetry payloads from hypothesis, each made with its expected verdict.

Each payload starts as a valid message of a real asset and is then broken in one known way (or
left valid): bad JSON, wrong types, missing or unknown fields, huge or out-of-range numbers,
over-long strings, unknown assets, a payload naming another asset than its topic, time stamps
in the future, injection strings. Ingestion must not crash, must accept every valid one and
dead-letter every invalid one with the expected reason; the JSON Schemas published in
``live/schemas`` (checked by the reference validator, jsonschema) must agree with it.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live import telemetry as T
from live.ingest import Ingestor, assets_of
from live.store import open_store

N = int(os.environ.get("TWIN_FUZZ_EXAMPLES", "10000"))
NOW = dt.datetime(2024, 1, 16, 12, tzinfo=dt.UTC)
VALID = {
    "light": {"level": 0.5, "power_w": 30.0, "fault": "none"},
    "cabinet": {"power_w": 900.0, "energy_wh": 1.0e6, "voltage_v": 230.0},
    "junction": {"mode": "normal", "plan": "p", "stage": 1, "counts": {"approach:1.0": 3}},
    "sensor": {"count": 12, "interval_s": 300.0},
    "vehicle": {"lon": 2.48, "lat": 48.9, "speed_m_s": 4.0},
}
#: a numeric field per type and a value beyond its bounds
RANGES = {
    "light": ("level", [1.0000001, -0.1, 1e308, -1e308, 2]),
    "cabinet": ("power_w", [-1.0, 1e12, 1e308]),
    "junction": ("stage", [17, -1, 10**18]),
    "sensor": ("count", [-5, 10**7, 10**30]),
    "vehicle": ("lat", [90.5, -91.0, 1e300]),
}
INJECTION = st.sampled_from(
    [
        "'; DROP TABLE telemetry; --",
        '" OR 1=1 --',
        "<script>alert(1)</script>",
        "$(rm -rf /)",
        "\u0000nul",
        "../../etc/passwd",
        "{{7*7}}",
        "\U0001f4a1 ampoule",
    ]
)
MUTATIONS = [
    "valid",
    "injection",
    "bad_json",
    "not_object",
    "wrong_type",
    "missing",
    "unknown_field",
    "range",
    "long_id",
    "unknown_asset",
    "mismatch",
    "future",
    "naive_ts",
    "topic",
]


@st.composite
def case(draw, assets):
    kind = draw(st.sampled_from(list(VALID)))
    asset = draw(st.sampled_from(assets[kind]))
    mutation = draw(st.sampled_from(MUTATIONS))
    ts = NOW - dt.timedelta(seconds=draw(st.integers(0, 86_400)))
    body = {"id": "", "ts": ts.isoformat(), "asset": asset, **VALID[kind]}
    topic = T.topic("bondy", "telemetry", kind, asset)
    verdict = "accepted"
    if mutation == "injection":
        body["id"] = draw(INJECTION)
        if "\u0000" in body["id"]:  # PostgreSQL's text cannot hold a NUL: refused everywhere
            verdict = "range"
    elif mutation == "bad_json":
        raw = json.dumps(body)
        cut = draw(st.integers(1, len(raw) - 1))
        broken = raw[:cut] + draw(st.sampled_from(["", "}", "{{", "\\"]))
        try:
            json.loads(broken)
            broken += "{{"  # the cut happened to close the object: trailing junk
        except ValueError:
            pass
        return topic, broken.encode(), "json"
    elif mutation == "not_object":
        payload = draw(st.sampled_from(["[]", "42", '"x"', "null", "true"]))
        return topic, payload.encode(), "schema"
    elif mutation == "wrong_type":
        field = draw(st.sampled_from(sorted(VALID[kind]) + ["ts", "asset"]))
        current = body[field]
        if isinstance(current, dict):
            wrong = [[1], True, "x", 1.5]
        elif isinstance(current, str) and field not in ("ts", "mode", "fault"):
            wrong = [[1], {"a": 1}, True, 5]
        else:
            wrong = [[1], {"a": 1}, True, "1.5x"]
        body[field] = draw(st.sampled_from(wrong))
        verdict = "schema"
    elif mutation == "missing":
        required = {"light": "level", "cabinet": "energy_wh", "junction": "mode"}
        field = draw(st.sampled_from(["ts", "asset", required.get(kind, "ts")]))
        del body[field]
        verdict = "schema"
    elif mutation == "unknown_field":
        body[draw(st.sampled_from(["extra", "LEVEL", "__proto__"]))] = 1
        verdict = "schema"
    elif mutation == "range":
        field, values = RANGES[kind]
        body[field] = draw(st.sampled_from(values))
        verdict = "range"
    elif mutation == "long_id":
        body["id"] = "x" * draw(st.integers(65, 5000))
        verdict = "range"
    elif mutation == "unknown_asset":
        other = f"{kind}:{draw(st.integers(10**6, 10**9))}"
        topic = T.topic("bondy", "telemetry", kind, other)
        body["asset"] = other
        verdict = "unknown_asset"
    elif mutation == "mismatch":
        others = [a for a in assets[kind] if a != asset]
        body["asset"] = draw(st.sampled_from(others))
        verdict = "asset_mismatch"
    elif mutation == "future":
        body["ts"] = (NOW + dt.timedelta(hours=draw(st.integers(1, 10**5)))).isoformat()
        verdict = "future"
    elif mutation == "naive_ts":
        body["ts"] = ts.replace(tzinfo=None).isoformat()
        verdict = "schema"
    elif mutation == "topic":
        topic = draw(
            st.sampled_from(
                [
                    f"twin/paris/telemetry/{kind}/{asset}",
                    f"twin/bondy/telemetry/toaster/{asset}",
                    f"twin/bondy/cmd/{kind}/{asset}",
                    "twin/bondy/telemetry",
                ]
            )
        )
        verdict = "topic"
    return topic, body, verdict


@pytest.mark.slow
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_hostile_payloads_each_get_their_verdict(bondy, tmp_path, store_url):
    """One message at a time into SQLite; then all of them again in batches into PostgreSQL."""
    assets = assets_of(bondy)
    assets = {k: v[:50] for k, v in assets.items()}
    store = open_store(f"sqlite:///{tmp_path / 'fuzz.db'}")
    ing = Ingestor(store, city="bondy", assets=assets, clock=NOW.timestamp)
    schemas = {
        k: json.loads((Path(T.__file__).parent / "schemas" / f"{k}.json").read_text())
        for k in T.KINDS
    }
    validators = {
        k: jsonschema.Draft202012Validator(s, format_checker=jsonschema.FormatChecker())
        for k, s in schemas.items()
    }
    sent = collections.Counter()
    seq = [0]
    played: list[tuple[str, bytes]] = []

    @settings(
        max_examples=N,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case(assets))
    def one(c):
        topic, body, verdict = c
        seq[0] += 1
        if isinstance(body, dict):
            if not body.get("id"):
                body["id"] = f"f{seq[0]}"
            elif verdict in ("accepted", "range"):  # keep injection ids unique
                body["id"] = f"{body['id']}#{seq[0]}"
            payload = json.dumps(body).encode()
            kind = topic.split("/")[3] if len(topic.split("/")) == 5 else None
            if kind in validators and verdict in ("accepted", "schema", "range"):
                valid = validators[kind].is_valid(body)
                assert valid == (verdict == "accepted"), (verdict, body)
        else:
            payload = body
        sent[verdict] += 1
        played.append((topic, payload))
        got = ing.ingest([(topic, payload)])
        want = "accepted" if verdict == "accepted" else f"rejected.{verdict}"
        assert got.get(want) == 1, (verdict, topic, payload[:200], got)

    one()
    total = sum(sent.values())
    c = ing.counters
    print(
        f"\nfuzz: sent {total}, accepted {c['accepted']}, rejected {ing.rejected()}, "
        f"duplicates {c['duplicate']}, lost {total - c['accepted'] - ing.rejected()}; "
        f"by verdict {dict(sorted(sent.items()))}"
    )
    assert total >= N and ing.accounted() and c["received"] == total
    assert c["accepted"] == sent["accepted"] == store.count("telemetry")
    assert store.count("dead_letter") == total - sent["accepted"]
    by_reason = collections.Counter(store.dead_letters()["reason"])
    assert by_reason == {r: n for r, n in sent.items() if r != "accepted"}
    store.close()
    # the same messages in batches of 500 (PostgreSQL's COPY path, and the per-message fallback
    # of a batch that holds bad ones): the same verdicts, and not one batch lost to an error
    pg = open_store(store_url)
    batched = Ingestor(pg, city="bondy", assets=assets, clock=NOW.timestamp)
    for k in range(0, len(played), 500):
        batched.ingest(played[k : k + 500])

    def verdicts(c: collections.Counter[str]) -> dict[str, int]:
        return {k: v for k, v in c.items() if k != "late"}  # order within a batch moves "late"

    assert verdicts(batched.counters) == verdicts(ing.counters)
    assert pg.count("telemetry") == sent["accepted"]
    assert collections.Counter(pg.dead_letters()["reason"]) == by_reason
    pg.close()
