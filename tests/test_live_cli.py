"""The live commands: twin serve, twin devices, twin plan push|status|rollback."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from twin.cli import main

NIGHT = "2024-01-15"


@pytest.fixture(scope="module")
def night_dir(bondy, tmp_path_factory):
    """A `twin plan night` folder's dimming.nc (the adaptive plan of a Bondy night)."""
    from optimize import dimming
    from optimize.nightly import adaptive_plan

    out = tmp_path_factory.mktemp("night")
    ds, _ = adaptive_plan(bondy, NIGHT, prepared=dimming.problem_for(bondy, NIGHT))
    ds.to_netcdf(out / "dimming.nc", engine="h5netcdf")
    return out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "push", "nowhere", "--broker", "mqtt://h:1"], "nowhere: no such file"),
        (["plan", "push", ".", "--broker", "http://h"], "is not mqtt://HOST[:PORT]"),
        (["plan", "status", "x", "--db", "mysql://h"], "neither sqlite:///PATH nor postgresql"),
        (["serve", "--city", "bondy", "--port", "70000"], "70000 is not a TCP port"),
        (["devices", "--city", "bondy", "--broker", "mqtt://h", "--fault", "fire=x"], "fire=x"),
        (["serve", "--city", "bondy", "--fault", "fire=x", "--devices"], "KIND one of"),
        (["serve", "--city", "bondy", "--cold-night"], "--cold-night: needs --devices"),
        (["serve", "--city", "bondy", "--precip", "1"], "--precip: needs --devices"),
        (["serve", "--devices", "--weather-offset", "-50"], "-50 is not a temperature offset"),
        (["devices", "--broker", "mqtt://h", "--precip", "-1"], "-1 is not a precipitation rate"),
    ],
)
def test_bad_arguments_are_one_line_before_any_work(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_push_status_and_dry_run(bondy, night_dir, mosquitto, tmp_path, capsys):
    import datetime as dt
    import time

    from live.devices import Devices
    from optimize.plans import read

    plan = read(night_dir)
    t0 = plan.valid_from + dt.timedelta(hours=1)
    start = time.monotonic()
    clock = lambda: t0 + dt.timedelta(seconds=time.monotonic() - start)  # noqa: E731
    db = f"sqlite:///{tmp_path / 'h.db'}"
    assert main(["plan", "push", str(night_dir), "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["gate"] == "passed" and dry["compliance_pct"] == 100.0 and dry["energy_kwh"] > 0
    with Devices(bondy, mosquitto.url, clock=clock):
        code = main(
            ["plan", "push", str(night_dir), "--broker", mosquitto.url, "--db", db, "--json"]
        )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "applied" and out["acked"] == out["commands"]
    assert main(["plan", "status", plan.id, "--city", "bondy", "--db", db]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["status"] == "applied" and st["audit"][0]["action"] == "push"
    assert main(["plan", "status", "nope", "--city", "bondy", "--db", db]) == 2
    assert "no plan 'nope'" in capsys.readouterr().err


def test_serve_with_simulated_devices(mosquitto, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    import live

    rules = str(live.__path__[0] + "/rules/example.toml")
    argv = ["serve", "--city", "bondy", "--broker", mosquitto.url, "--db", db, "--devices"]
    argv += ["--rules", rules]
    from live.services import free_port

    port = str(free_port())
    # two rounds of a 1 s period at least; 5 s leaves room for a loaded machine
    assert main([*argv, "--period", "1", "--for", "5", "--port", port]) == 0
    out = capsys.readouterr().out
    counters = json.loads(out.strip().splitlines()[-1])
    assert counters["accepted"] >= 2 * 600 and counters["accepted"] == counters["received"]


def test_bad_rules_file_is_refused_before_work(tmp_path, capsys):
    bad = tmp_path / "r.toml"
    bad.write_text("[[rule]]\nname = 'x'\nthen = {a = 1}\n")
    assert main(["serve", "--city", "bondy", "--rules", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "--rules: rule 'x'.when" in err


def test_rules_with_a_bad_action_are_refused_before_work(tmp_path, capsys):
    bad = tmp_path / "r.toml"
    when = "when.all = [{ type = 'sensor', field = 'count', op = '>', value = 1 }]"
    bad.write_text(f"[[rule]]\nname = 'x'\n{when}\nthen = {{ vms = {{ near_m = 100 }} }}\n")
    assert main(["serve", "--city", "bondy", "--rules", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "--rules: rule 'x'.then.vms.text: missing" in err


def test_plan_proposals_lists_and_reviews_what_the_rules_proposed(tmp_path, capsys):
    import datetime as dt

    import live

    db = f"sqlite:///{tmp_path / 'h.db'}"
    store = live.open_store(db)
    store.execute(
        "INSERT INTO proposals (ts_us, city, kind, rule, status, readings, detail) "
        "VALUES (?, 'bondy', 'snow', 'snow plan', 'proposed', ?, '')",
        (int(dt.datetime(2024, 1, 15, 22, tzinfo=dt.UTC).timestamp() * 1e6),
         json.dumps([{"asset": "sensor:21", "road_temp_c": 0.4}])),
    )  # fmt: skip
    store.close()
    assert main(["plan", "proposals", "--city", "bondy", "--db", db]) == 0
    (p,) = json.loads(capsys.readouterr().out)
    assert p["kind"] == "snow" and p["readings"][0]["road_temp_c"] == 0.4
    assert main(["plan", "proposals", "--city", "bondy", "--db", db, "--accept", str(p["n"])]) == 0
    assert json.loads(capsys.readouterr().out) == []
    argv = ["plan", "proposals", "--city", "bondy", "--db", db, "--dismiss", str(p["n"])]
    assert main(argv) == 2
    assert f"--dismiss: proposal: no proposal {p['n']} awaiting review" in capsys.readouterr().err
    assert main(["plan", "proposals", "--city", "bondy", "--db", db, "--all"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "accepted"


def test_serve_follows_late_acks_and_acts_on_rules(bondy, night_dir, mosquitto, tmp_path, capsys):
    """The service, as deployed: a late acknowledgement completes a plan; a rule proposes."""
    import datetime as dt
    import threading
    import time
    import urllib.request

    from live_fixtures import wait_for

    import live
    from live.actions import proposals
    from live.control import Controller
    from live.devices import Devices
    from live.mqtt import connect
    from live.services import free_port
    from optimize.plans import read

    db = f"sqlite:///{tmp_path / 'h.db'}"
    plan = read(night_dir)
    t0 = plan.valid_from + dt.timedelta(hours=1)
    start = time.monotonic()
    clock = lambda: t0 + dt.timedelta(seconds=time.monotonic() - start)  # noqa: E731
    dead = sorted(plan.groups())[0]
    with live.open_store(db) as store, Devices(bondy, mosquitto.url, clock=clock) as devices:
        devices.fault("offline", dead)  # its link is down during the push
        ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=0.3, attempts=1)
        r = ctl.push(plan, now=clock())
    assert r.status == "partial"
    (cid,) = [c for c, t, _ in ctl.commands(plan, r.push, clock()) if t.endswith(dead)]
    port = free_port()
    rules = str(live.__path__[0] + "/rules/example.toml")
    argv = ["serve", "--city", "bondy", "--broker", mosquitto.url, "--db", db, "--rules", rules]
    argv += ["--period", "0.5", "--for", "5", "--port", str(port)]
    codes = []
    server = threading.Thread(target=lambda: codes.append(main(argv)))
    server.start()

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    assert wait_for(healthy)
    now = dt.datetime.now(dt.UTC).isoformat()
    c = connect(mosquitto.url, "field")
    ack = {"id": "late1", "ts": now, "asset": dead, "command": cid, "status": "applied"}
    reading = {"id": "w1", "ts": now, "asset": "sensor:21", "road_temp_c": 0.3}
    reading |= {"air_temp_c": -0.5, "precip_mm_h": 2.0}
    for topic, body in (
        (f"twin/bondy/ack/cabinet/{dead}", ack),
        ("twin/bondy/telemetry/sensor/sensor:21", reading),
    ):
        c.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()
    server.join(60)
    assert codes == [0]
    out = capsys.readouterr().out
    assert "rule 'snow plan' on sensor:21: propose ok" in out
    with live.open_store(db) as store:
        st = Controller(store, "mqtt://unused", city="bondy").status(plan.id)
        (p,) = proposals(store, "bondy")
    assert st["status"] == "applied" and st["audit"][-1]["action"] == "late ack"
    assert p["kind"] == "snow" and p["readings"][0]["road_temp_c"] == 0.3


@pytest.mark.parametrize("command", ["serve", "devices"])
def test_a_fault_on_an_asset_it_cannot_apply_to_is_refused(bondy, command, capsys):
    cabinet = str(bondy.registry["cabinet"]["id"].iloc[0])
    argv = [command, "--city", "bondy", "--broker", "mqtt://127.0.0.1:1", "--devices"]
    argv = [a for a in argv if command == "serve" or a != "--devices"]
    assert main([*argv, "--fault", f"lamp_failure={cabinet}"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"--fault: lamp_failure={cabinet}: {cabinet} is not a light of bondy" in err
    assert main([*argv, "--fault", "offline=light:nowhere"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--fault: offline=light:nowhere: light:nowhere is not a light or cabinet or" in err


def test_serve_injects_weather_and_faults_into_its_simulator(bondy, mosquitto, tmp_path, capsys):
    """One command, nothing hand-published: the simulated stations report a cold wet road (at
    any date and hour: 35 degC colder), the example snow rule fires on their readings and
    proposes the snow plan; the simulated lamp failure raises its alarm."""
    import re

    import live
    from live.actions import proposals
    from live.services import free_port

    db = f"sqlite:///{tmp_path / 'h.db'}"
    rules = str(live.__path__[0] + "/rules/example.toml")
    sensors = bondy.registry["sensor"]
    weather = set(sensors.loc[sensors["sensor_type"] == "weather", "id"].astype(str))
    light = str(bondy.registry["light"]["id"].iloc[0])
    argv = ["serve", "--city", "bondy", "--broker", mosquitto.url, "--db", db, "--devices"]
    argv += [
        "--rules",
        rules,
        "--weather-offset",
        "-35",
        "--precip",
        "2.5",
        "--fault",
        f"lamp_failure={light}",
    ]
    argv += ["--period", "0.5", "--for", "6", "--port", str(free_port())]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "simulated weather: -35 degC, 2.5 mm/h" in out
    assert f"simulated fault: lamp_failure on {light}" in out
    fired = set(re.findall(r"rule 'snow plan' on (\S+): propose ok", out))
    assert fired and fired <= weather, out[-2000:]
    with live.open_store(db) as store:
        (p,) = proposals(store, "bondy")
        rows = store.execute("SELECT asset, msg_id, ts_us, body FROM telemetry")
        alarms = store.execute("SELECT asset, kind FROM alarms WHERE cleared_us IS NULL")
    assert p["kind"] == "snow" and p["rule"] == "snow plan" and p["status"] == "proposed"
    # each reading the rule acted on is a message the simulator published, stored as received
    stored = {(a, int(t)): json.loads(b) | {"msg_id": m} for a, m, t, b in rows}
    assert {r["asset"] for r in p["readings"]} == fired
    for r in p["readings"]:
        assert r["precip_mm_h"] == 2.5 and r["road_temp_c"] < 1.0
        ts = dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
        msg = stored[(r["asset"], round(ts.timestamp() * 1e6))]
        assert re.fullmatch(r"[0-9a-f]{8}-\d+", msg["msg_id"])  # the simulator's message ids
        assert msg["road_temp_c"] == r["road_temp_c"] and msg["precip_mm_h"] == 2.5
    assert (light, "lamp_failure") in {(str(a), str(k)) for a, k in alarms}


def test_serve_refuses_faults_and_weather_without_the_simulator(bondy, tmp_path):
    from live.serve import serve
    from twin._errors import InputValidationError

    db = f"sqlite:///{tmp_path / 'h.db'}"
    with pytest.raises(InputValidationError, match="they need devices=True"):
        serve(bondy, db=db, weather=(-8.0, 1.0))
    with pytest.raises(InputValidationError, match="'fire' is not one of lamp_failure"):
        serve(bondy, db=db, devices=True, faults=[("fire", "light:000001")])
    assert not (tmp_path / "h.db").exists()  # refused before any work


def test_devices_sets_its_faults_and_weather_before_it_connects(bondy, mosquitto, monkeypatch):
    """As `twin serve --devices` does: commands the broker queued for the simulator arrive with
    its connection, and must find an offline device already offline; and the hour's traffic DES
    has run before the first report."""
    from live.devices import Devices

    at_start = []
    prepared = []
    real_start, real_prepare = Devices.start, Devices.prepare

    def start(self):  # the real start, noting the simulator's faults and weather at that moment
        at_start.append((set(self.offline), self.weather_offset_c, self.precip_mm_h, len(prepared)))
        return real_start(self)

    def prepare(self):  # the real preparation (the hour's DES), counted
        prepared.append(1)
        return real_prepare(self)

    monkeypatch.setattr(Devices, "start", start)
    monkeypatch.setattr(Devices, "prepare", prepare)
    cabinet = str(bondy.registry["cabinet"]["id"].iloc[0])
    argv = ["devices", "--city", "bondy", "--broker", mosquitto.url, "--for", "0.01"]
    argv += ["--fault", f"offline={cabinet}", "--weather-offset", "-8", "--precip", "1.5"]
    assert main(argv) == 0  # a round longer than --for ends the command, not a negative sleep
    assert at_start == [({cabinet}, -8.0, 1.5, 1)]  # prepared once, before the clock runs
