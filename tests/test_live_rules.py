"""When-then rules in TOML over the state fed by the simulator; the example Node-RED flow."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from live_fixtures import wait_for

import live
from live.devices import Devices
from live.ingest import Ingestor, assets_of
from live.rules import load_rules
from twin._errors import InputValidationError

HERE = Path(live.__file__).parent


def _ingestor(bondy, tmp_path, clock):
    """An ingestion into a fresh SQLite store, on the test's clock (``clock[0]``)."""
    store = live.open_store(f"sqlite:///{tmp_path / 'h.db'}")
    return Ingestor(
        store, city="bondy", assets=assets_of(bondy), clock=lambda: clock[0].timestamp()
    )


def test_example_rules_fire_once_per_episode(bondy, tmp_path):
    rules = load_rules(HERE / "rules" / "example.toml")
    assert [r.name for r in rules.rules] == ["snow plan", "junction fault", "footfall surge"]
    clock = [dt.datetime(2024, 1, 15, 22, tzinfo=dt.UTC)]
    devices = Devices(bondy, "mqtt://unused:1", clock=lambda: clock[0], rng=1)
    ing = _ingestor(bondy, tmp_path, clock)
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
    # the example command is stamped when it is sent, so that a device never finds it expired
    stamp = next(n for n in flow if n["id"] in cmd["wires"][0])
    assert stamp["type"] == "function"
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the function node's code is not run")
    script = f"const msg = {{payload: {cmd['payload']}}};\n"
    script += f"const out = (() => {{ {stamp['func']} }})();\nconsole.log(JSON.stringify(out));"
    run = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
    sent = json.loads(run.stdout)["payload"]
    now = dt.datetime.now(dt.UTC)
    ts, expires = (dt.datetime.fromisoformat(sent[k]) for k in ("ts", "expires"))
    assert abs((ts - now).total_seconds()) < 60 and expires - ts == dt.timedelta(hours=1)
    assert sent["apply_at"] == sent["ts"] and sent["times"] == [sent["ts"]]
    assert sent["lights"] == body["lights"] and sent["id"] != body["id"]


NIGHT = "2024-01-15"


def _reading(asset, t, **fields):
    body = {"id": f"x-{asset}-{t.timestamp()}", "ts": t.isoformat(), "asset": asset, **fields}
    return (f"twin/bondy/telemetry/sensor/{asset}", json.dumps(body).encode())


@pytest.fixture(scope="module")
def adaptive(bondy):
    from optimize import dimming
    from optimize.nightly import adaptive_plan
    from optimize.plans import from_dimming

    return from_dimming(adaptive_plan(bondy, NIGHT, prepared=dimming.problem_for(bondy, NIGHT))[0])


@pytest.fixture
def loop(bondy, adaptive, mosquitto, store_url):
    """Devices, ingestion, rules and actions on one clock inside the plan's night."""
    import time

    from live.actions import Actions, check_actions
    from live.control import AckFollower

    t0 = adaptive.valid_from + dt.timedelta(hours=3)
    offset = [dt.timedelta(0)]
    start = time.monotonic()

    def clock():
        return t0 + offset[0] + dt.timedelta(seconds=time.monotonic() - start)

    store = live.open_store(store_url)
    devices = Devices(bondy, mosquitto.url, clock=clock, rng=3).start()
    ing = Ingestor(store, city="bondy", assets=assets_of(bondy), clock=lambda: clock().timestamp())
    rules = load_rules(HERE / "rules" / "example.toml")
    check_actions(rules.rules)
    actions = Actions(bondy, store, mosquitto.url, timeout_s=1.0, attempts=2, clock=clock)
    follower = AckFollower(store, mosquitto.url, city="bondy", period_s=0.1).start()
    yield {
        "clock": clock, "offset": offset, "store": store, "devices": devices, "ing": ing,
        "rules": rules, "actions": actions,
    }  # fmt: skip
    follower.stop()
    devices.stop()
    store.close()


def _audit(store):
    return store.execute("SELECT who, action, plan_id, result, detail FROM audit ORDER BY n")


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_cold_wet_road_proposes_the_snow_plan_with_its_readings(loop):
    ing, rules, actions, clock = loop["ing"], loop["rules"], loop["actions"], loop["clock"]
    weather = [s for s, k in loop["devices"].sensors.items() if k == "weather"]
    ing.ingest(
        [_reading(s, clock(), road_temp_c=0.4, air_temp_c=-1.0, precip_mm_h=1.5) for s in weather]
    )
    events = [e for e in rules.evaluate(ing.state) if e["rule"] == "snow plan"]
    assert [e["asset"] for e in events] == weather
    results = [r for e in events for r in actions.handle(e, ing.state)]
    assert [r["result"] for r in results] == ["ok"] * len(weather)
    (p,) = actions.proposals()
    assert p["kind"] == "snow" and p["rule"] == "snow plan" and p["status"] == "proposed"
    assert [r["asset"] for r in p["readings"]] == weather
    assert p["readings"][0]["road_temp_c"] == 0.4 and p["readings"][0]["precip_mm_h"] == 1.5
    who, action, pid, result, _ = _audit(loop["store"])[-1]
    assert (who, action, pid, result) == (
        "rule:snow plan",
        "propose",
        f"proposal:{p['n']}",
        "proposed",
    )
    actions.review(p["n"], "accepted", who="operator")
    assert actions.proposals() == [] and actions.proposals(None)[0]["reviewed_by"] == "operator"
    with pytest.raises(InputValidationError, match="no proposal"):
        actions.review(p["n"], "dismissed", who="operator")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_junction_fault_raises_an_alarm_and_messages_the_nearby_sign(loop):
    ing, rules, actions, devices = loop["ing"], loop["rules"], loop["actions"], loop["devices"]
    sign = next(iter(devices.vms))
    near, far = "junction:2", "junction:6"  # 55 m and 1.1 km from Bondy's one sign
    devices.fault("flashing_amber", near)
    devices.fault("flashing_amber", far)
    ing.ingest(devices.telemetry())
    events = {e["asset"]: e for e in rules.evaluate(ing.state) if e["rule"] == "junction fault"}
    assert set(events) == {near, far}
    got = {r["action"]: r for r in actions.handle(events[near], ing.state)}
    assert got["alarm"]["result"] == "ok" and got["alarm"]["raised"]
    assert got["vms"]["result"] == "ok" and got["vms"]["signs"] == [sign]
    assert devices.vms[sign] == "CARREFOUR EN PANNE - PRUDENCE"  # the sign shows it
    # acknowledged (accepted, then applied: the service's follower records the second answer)
    sql = "SELECT plan_id, target, status FROM commands"
    assert wait_for(
        lambda: loop["store"].execute(sql) == [("rule:junction fault", sign, "applied")]
    )
    open_ = actions.alarms.open()
    assert (open_["asset"] + "/" + open_["kind"]).tolist() == [f"{near}/junction_fault"]
    # the far junction: the alarm still, but no sign to reach, and the action says why
    got = {r["action"]: r for r in actions.handle(events[far], ing.state)}
    assert got["alarm"]["result"] == "ok"
    assert got["vms"]["result"] == "failed"
    assert (
        f"no variable-message sign within 500 m of {far} (nearest: {sign} at 1132 m)"
        in got["vms"]["reason"]
    )
    audit = _audit(loop["store"])
    assert ("rule:junction fault", "vms message", "applied") in {(a[0], a[1], a[3]) for a in audit}
    assert audit[-1][:2] == ("rule:junction fault", "vms") and audit[-1][3] == "failed"
    # the controller recovers: the rule stops holding, its alarm clears
    devices.fault("flashing_amber", near, on=False)
    loop["offset"][0] += dt.timedelta(minutes=1)
    ing.ingest(devices.telemetry())
    assert rules.evaluate(ing.state) == []
    for rule, asset in rules.ended:
        actions.ended(rule, asset)
    assert [a for _, a in rules.ended] == [near]
    assert actions.alarms.open()["asset"].tolist() == [far]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_footfall_surge_pushes_a_gated_expiring_override_on_the_exit_routes(loop, adaptive, bondy):
    from live.control import Controller

    ing, rules, actions, devices = loop["ing"], loop["rules"], loop["actions"], loop["devices"]
    store, clock = loop["store"], loop["clock"]
    ctl = Controller(store, loop["devices"].url, city="bondy", who="operator", timeout_s=2.0)
    assert ctl.push(adaptive, now=clock()).status == "applied"  # the night's plan in force
    counter = next(s for s, k in devices.sensors.items() if k == "footfall")
    ing.ingest([_reading(counter, clock(), count=650, interval_s=300.0)])
    (event,) = [e for e in rules.evaluate(ing.state) if e["rule"] == "footfall surge"]
    lights = actions.exit_route_lights(counter, 300.0)
    assert 0 < len(lights) < len(devices.light_ids)
    idx = [devices.light_index[a] for a in lights]
    before = devices.level[idx].copy()
    assert (before < 1.0).any()  # the adaptive plan dims some of them at this hour
    (r,) = actions.handle(event, ing.state)
    assert r["result"] == "ok" and r["status"] == "applied" and r["lights"] == len(lights)
    assert wait_for(lambda: bool((devices.level[idx] == 1.0).all()))
    # light power follows the commanded level: full output draws the registry's power
    reports = {
        json.loads(p)["asset"]: json.loads(p) for t, p in devices.telemetry() if "/light/" in t
    }
    power = bondy.registry["light"].set_index("id")["power_w"]
    np.testing.assert_allclose([reports[a]["power_w"] for a in lights], power[lights], atol=1e-3)
    st = ctl.status(r["plan"])
    assert st["status"] == "applied" and st["audit"][0]["who"] == "rule:footfall surge"
    body = actions._controller("x").load(r["plan"])
    assert body.meta["override"] and body.meta["base"] == adaptive.id
    assert body.valid_to - body.valid_from == dt.timedelta(minutes=30)
    # at its expiry the devices go back to the night's plan
    loop["offset"][0] += dt.timedelta(minutes=31)
    devices.telemetry()
    lc = adaptive.lighting
    k = int(np.searchsorted(lc.times.astype("int64"), clock().timestamp(), "right")) - 1
    rows = [list(lc.light).index(a) for a in lights]
    np.testing.assert_allclose(devices.level[idx], np.round(lc.level[rows, k], 4))
    # the override is no plan to roll back to: the next night's rollback goes to the plan before
    from optimize.plans import lighting_plan

    again = lighting_plan(adaptive.lighting, city="bondy", plan_id="night-after-surge")
    assert ctl.push(again, now=clock()).status == "applied"
    assert ctl.previous(again.id).id == adaptive.id


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_unsafe_override_is_refused_by_the_gate_and_says_why(loop):
    ing, rules, actions, devices = loop["ing"], loop["rules"], loop["actions"], loop["devices"]
    counter = next(s for s, k in devices.sensors.items() if k == "footfall")
    ing.ingest([_reading(counter, loop["clock"](), count=650, interval_s=300.0)])
    (event,) = [e for e in rules.evaluate(ing.state) if e["rule"] == "footfall surge"]
    event["then"] = {"lighting": {"level": 0.5, "around_m": 300}}  # no plan in force: full output
    (r,) = actions.handle(event, ing.state)
    assert r["result"] == "failed" and "refused by the safety gate" in r["reason"]
    assert sum(devices.applied.values()) == 0
    results = {(a[0], a[1], a[3]) for a in _audit(loop["store"])}
    assert {
        ("rule:footfall surge", "push", "refused"),
        ("rule:footfall surge", "lighting", "failed"),
    } <= results


@pytest.mark.parametrize(
    ("then", "message"),
    [
        ("{ alarm = 'fire' }", r"then.alarm: 'fire' is not one of"),
        ("{ vms = { near_m = 500 } }", r"then.vms.text: missing"),
        ("{ lighting = { level = 2.0 } }", r"then.lighting.level: 2.0 is not a number in \[0, 1\]"),
        ("{ lighting = { level = 1, until = 'x' } }", r"then.lighting.until: unknown option"),
        ("{ propose = 3 }", r"then.propose: expected the kind"),
    ],
)
def test_bad_actions_name_the_field(then, message):
    from live.actions import check_actions

    rules = load_rules(
        f"[[rule]]\nname='x'\nwhen.all=[{{type='sensor',field='count',op='>',value=1}}]\nthen={then}\n"
    )
    with pytest.raises(InputValidationError, match=message):
        check_actions(rules.rules)


def _at(devices, clock, t):
    clock[0] = t
    return {json.loads(p)["asset"]: json.loads(p) for _, p in devices.telemetry()}


def test_counters_replay_the_footfall_simulation(bondy):
    from live.devices import COUNT_WINDOW_S
    from twin.scenarios.footfall import run_footfall

    day = dt.date(2024, 1, 15)
    clock = [dt.datetime(2024, 1, 15, 17, tzinfo=dt.UTC)]
    devices = Devices(bondy, "mqtt://unused:1", clock=lambda: clock[0], rng=5)
    ds = run_footfall(bondy, day=day, rng=devices.seed + day.toordinal(), progress=False)
    counters = ds["sensor"].values.astype(str).tolist()
    slots = ds["time"].values[68:76]  # 17:00-19:00 UTC, the evening's way home
    step = dt.timedelta(seconds=COUNT_WINDOW_S)
    for k, start in enumerate(slots):
        t0 = dt.datetime.fromisoformat(str(start)[:19]).replace(tzinfo=dt.UTC)
        got = [_at(devices, clock, t0 + step * (i + 1)) for i in range(3)]  # three windows
        for c in counters:
            assert got[0][c]["interval_s"] == COUNT_WINDOW_S
            assert sum(g[c]["count"] for g in got) == int(ds["count"].sel(sensor=c)[68 + k])
    assert ds["count"].values[:, 68:76].sum() > 0 and devices.footfall_note == ""


def test_a_concert_crowd_at_a_counter_fires_the_footfall_surge(bondy, tmp_path):
    import zoneinfo

    from twin.scenarios.events import Event

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    counter = "sensor:18"
    seg = bondy.registry["sensor"].loc[counter, "segment"]
    end = dt.datetime(2024, 1, 15, 22, tzinfo=paris)
    concert = Event("concert", seg, end - dt.timedelta(hours=2), end, attendance=10_000.0)
    clock = [end - dt.timedelta(hours=1)]
    devices = Devices(bondy, "mqtt://unused:1", clock=lambda: clock[0], rng=2, events=[concert])
    ing = _ingestor(bondy, tmp_path, clock)
    rules = load_rules(HERE / "rules" / "example.toml")
    ing.ingest(devices.telemetry())  # during the concert: the streets are quiet
    assert [e for e in rules.evaluate(ing.state) if e["rule"] == "footfall surge"] == []
    quiet = ing.state.values["sensor"]["count"][ing.state.index["sensor"][counter]]
    clock[0] = end + dt.timedelta(minutes=15)  # the audience leaves
    ing.ingest(devices.telemetry())
    crowd = ing.state.values["sensor"]["count"][ing.state.index["sensor"][counter]]
    print(f"\ncounter {counter}: {quiet:.0f} in 5 min during the concert, {crowd:.0f} after it")
    surge = [e["asset"] for e in rules.evaluate(ing.state) if e["rule"] == "footfall surge"]
    assert counter in surge and crowd > 5 * max(quiet, 1)


def test_road_weather_follows_the_day_and_a_cold_wet_night_fires_the_snow_rule(bondy, tmp_path):
    clock = [dt.datetime(2024, 7, 15, 12, tzinfo=dt.UTC)]  # 14:00 in Paris, summer
    devices = Devices(bondy, "mqtt://unused:1", clock=lambda: clock[0], rng=4)
    station = next(s for s, k in devices.sensors.items() if k == "weather")
    summer = _at(devices, clock, clock[0])[station]
    winter_day = _at(devices, clock, dt.datetime(2024, 1, 15, 12, tzinfo=dt.UTC))[station]
    winter_night = _at(devices, clock, dt.datetime(2024, 1, 15, 4, tzinfo=dt.UTC))[station]
    temps = [x["road_temp_c"] for x in (summer, winter_day, winter_night)]
    print(
        "\nroad temperature, degC: July 14:00 {}, January 13:00 {}, January 05:00 {}".format(*temps)
    )
    assert 22 < summer["road_temp_c"] < 35 and summer["road_temp_c"] > summer["air_temp_c"]
    assert winter_night["road_temp_c"] < winter_day["road_temp_c"] < summer["road_temp_c"]
    assert winter_night["precip_mm_h"] == 0.0
    ing = _ingestor(bondy, tmp_path, clock)
    rules = load_rules(HERE / "rules" / "example.toml")
    clock[0] = dt.datetime(2024, 1, 15, 21, tzinfo=dt.UTC)
    ing.ingest(devices.telemetry())
    assert [e for e in rules.evaluate(ing.state) if e["rule"] == "snow plan"] == []  # dry
    devices.weather(offset_c=-8.0, precip_mm_h=1.5)  # the injected cold, snowy night
    clock[0] += dt.timedelta(minutes=5)
    ing.ingest(devices.telemetry())
    assert [e["asset"] for e in rules.evaluate(ing.state) if e["rule"] == "snow plan"] == [station]
    with pytest.raises(ValueError, match="precip_mm_h: -1"):
        devices.weather(precip_mm_h=-1)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_override_no_cabinet_takes_fails_and_says_why(loop, bondy):
    ing, rules, actions, devices = loop["ing"], loop["rules"], loop["actions"], loop["devices"]
    counter = next(s for s, k in devices.sensors.items() if k == "footfall")
    lights = actions.exit_route_lights(counter, 300.0)
    cabinets = set(bondy.registry["light"].set_index("id").loc[lights, "cabinet"])
    for cab in cabinets:
        devices.fault("offline", cab)
    ing.ingest([_reading(counter, loop["clock"](), count=650, interval_s=300.0)])
    (event,) = [e for e in rules.evaluate(ing.state) if e["rule"] == "footfall surge"]
    (r,) = actions.handle(event, ing.state)
    assert r["result"] == "failed" and "no cabinet took it (no acknowledgement)" in r["reason"]
    audit = {(a[0], a[1], a[3]) for a in _audit(loop["store"])}
    assert {
        ("rule:footfall surge", "push", "failed"),
        ("rule:footfall surge", "lighting", "failed"),
    } <= audit
