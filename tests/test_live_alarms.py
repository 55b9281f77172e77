"""Alarms from the simulator's faults: raise, acknowledge, clear, each with its time stamp."""

from __future__ import annotations

import datetime as dt

from live.alarms import Alarms, evaluate
from live.devices import Devices
from live.ingest import Ingestor, assets_of
from live.store import open_store


def test_faults_raise_alarms_that_are_acked_and_cleared(bondy, tmp_path):
    t = [dt.datetime(2024, 1, 15, 22, tzinfo=dt.UTC)]
    devices = Devices(bondy, "mqtt://unused:1", clock=lambda: t[0], rng=1)  # not connected
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city="bondy", assets=assets_of(bondy), clock=lambda: t[0].timestamp())
    alarms = Alarms(store)
    lights = bondy.registry["light"][["id", "cabinet", "power_w"]]
    types = dict(
        zip(bondy.registry["sensor"]["id"], bondy.registry["sensor"]["sensor_type"], strict=True)
    )
    light = devices.light_ids[5]
    cabinet = next(c for c in devices.cabinet_lights if devices.light_cabinet[5] != c)
    junction = devices.junctions[0]
    sensor = next(s for s, k in types.items() if k == "footfall")

    def tick(minutes: float) -> dict[str, int]:
        t[0] += dt.timedelta(minutes=minutes)
        got = ing.ingest(devices.telemetry())
        assert got["accepted"] == got["received"]
        return evaluate(alarms, ing.state, lights, now=t[0], sensor_types=types)

    assert tick(0) == {"raised": 0, "cleared": 0}  # a healthy city: no alarm
    devices.fault("lamp_failure", light)
    devices.fault("power_anomaly", cabinet, factor=1.5)
    devices.fault("flashing_amber", junction)
    devices.fault("offline", sensor)
    tick(5)
    tick(20)  # the sensor has now been silent for 20 minutes
    open_ = alarms.open()
    assert sorted(zip(open_["asset"], open_["kind"], strict=True)) == sorted(
        [
            (light, "lamp_failure"),
            (cabinet, "power_anomaly"),
            (junction, "flashing_amber"),
            (sensor, "silent_sensor"),
        ]
    )
    row = open_[open_["kind"] == "power_anomaly"].iloc[0]
    assert "+50%" in row["detail"]
    # the controller that went to flashing amber is still in contact: no offline alarm
    assert not ((open_["asset"] == junction) & (open_["kind"] == "offline")).any()
    n = int(open_[open_["kind"] == "lamp_failure"]["n"].iloc[0])
    alarms.ack(n, "operator", t[0])
    tick(5)  # still faulty: nothing raised twice
    assert len(alarms.open()) == 4
    for kind, asset in (
        ("lamp_failure", light),
        ("power_anomaly", cabinet),
        ("flashing_amber", junction),
        ("offline", sensor),
    ):
        devices.fault(kind, asset, on=False)
    assert tick(5)["cleared"] == 4
    log = alarms.all()
    assert len(log) == 4 and log["cleared"].notna().all()
    lamp = log[log["kind"] == "lamp_failure"].iloc[0]
    assert lamp["raised"] < lamp["acked"] < lamp["cleared"] and lamp["acked_by"] == "operator"
    store.close()


def test_a_controller_never_heard_from_is_out_of_contact_once_the_service_has_waited(
    bondy, tmp_path
):
    t0 = dt.datetime(2024, 1, 15, 22, tzinfo=dt.UTC)
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city="bondy", assets=assets_of(bondy), clock=lambda: t0.timestamp())
    alarms = Alarms(store)
    lights = bondy.registry["light"][["id", "cabinet", "power_w"]]
    # nothing heard yet (the state's times are the int64 minimum): no overflow, no verdict
    assert evaluate(alarms, ing.state, lights, now=t0) == {"raised": 0, "cleared": 0}
    early = t0 + dt.timedelta(minutes=5)
    assert evaluate(alarms, ing.state, lights, now=early, since=t0)["raised"] == 0
    late = t0 + dt.timedelta(minutes=16)
    got = evaluate(alarms, ing.state, lights, now=late, since=t0)
    n_junction = len(bondy.registry["junction"])
    n_sensor = len(bondy.registry["sensor"])
    assert got["raised"] == n_junction + n_sensor
    assert set(alarms.open()["kind"]) == {"offline", "silent_sensor"}
    store.close()
