"""When-then rules in TOML over the state fed by the simulator; the example Node-RED flow."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import live
from live.devices import Devices
from live.ingest import Ingestor, assets_of
from live.rules import load_rules
from twin._errors import InputValidationError

HERE = Path(live.__file__).parent


def test_example_rules_fire_once_per_episode(bondy, tmp_path):
    rules = load_rules(HERE / "rules" / "example.toml")
    assert [r.name for r in rules.rules] == ["snow plan", "junction fault", "footfall surge"]
    clock = [dt.datetime(2024, 1, 15, 22, tzinfo=dt.UTC)]
    devices = Devices(bondy, "mqtt://unused:1", clock=lambda: clock[0], rng=1)
    ing = Ingestor(
        live.open_store(f"sqlite:///{tmp_path / 'h.db'}"),
        city="bondy",
        assets=assets_of(bondy),
        clock=lambda: clock[0].timestamp(),
    )
    ing.ingest(devices.telemetry())
    assert rules.evaluate(ing.state) == []  # 2 degC and dry, no fault, no crowd
    junction = devices.junctions[0]
    devices.fault("flashing_amber", junction)
    weather = [s for s, k in devices.sensors.items() if k == "weather"]
    # the simulated weather turns: road at 0.5 degC with snow
    clock[0] += dt.timedelta(minutes=5)
    t = clock[0]
    ing.ingest(
        [
            (
                f"twin/bondy/telemetry/sensor/{s}",
                json.dumps(
                    {
                        "id": f"w{s}",
                        "ts": (t + dt.timedelta(seconds=1)).isoformat(),
                        "asset": s,
                        "road_temp_c": 0.5,
                        "precip_mm_h": 2.0,
                    }
                ).encode(),
            )
            for s in weather
        ]
        + devices.telemetry()
    )
    events = rules.evaluate(ing.state)
    fired = sorted((e["rule"], e["asset"]) for e in events)
    assert ("junction fault", junction) in fired
    assert {a for r, a in fired if r == "snow plan"} == set(weather)
    assert next(e for e in events if e["rule"] == "snow plan")["then"]["propose"] == "snow"
    assert rules.evaluate(ing.state) == []  # still holding: not fired again


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[rule]]\nname = 'x'\nthen = {a = 1}", r"rule 'x'.when: expected exactly one"),
        (
            "[[rule]]\nname='x'\nwhen.all=[{type='sensor',field='temp',op='<',value=1}]\nthen={a=1}",
            r"when.all\[0\].field: 'temp' is not a field of sensor",
        ),
        (
            "[[rule]]\nname='x'\nwhen.all=[{type='light',field='level',op='~',value=1}]\nthen={a=1}",
            r"when.all\[0\].op: '~'",
        ),
        (
            "[[rule]]\nname='x'\nwhen.all=[{type='light',field='level',op='<',value='a'}]\nthen={a=1}",
            r"value: 'a' is not a number",
        ),
        ("[[rule]\n", "rules: not TOML"),
    ],
)
def test_bad_rules_name_the_field(text, message):
    with pytest.raises(InputValidationError, match=message):
        load_rules(text)


def test_node_red_example_flow_uses_our_topics():
    flow = json.loads((HERE / "flows" / "node-red-example.json").read_text())
    topics = [n["topic"] for n in flow if n.get("type") in ("mqtt in", "inject")]
    assert any("/telemetry/" in t for t in topics) and any("/ack/" in t for t in topics)
    cmd = next(n for n in flow if n["type"] == "inject")
    body = json.loads(cmd["payload"])
    assert {"id", "ts", "asset", "plan", "apply_at", "expires", "times", "lights"} <= set(body)
