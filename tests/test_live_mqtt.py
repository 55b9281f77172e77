"""Telemetry over a real Mosquitto into the store: every message accounted for, nothing lost.

Each test prints its count of messages sent, accepted, rejected and lost (run with -s).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time

import pytest

from live.ingest import Ingestor
from live.mqtt import IngestService, connect
from live.store import open_store

CITY = "bondy"


def _payloads(lights: list[str], n: int, *, start: int = 0, bad_every: int = 0):
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    out = []
    for k in range(start, start + n):
        a = lights[k % len(lights)]
        body = {
            "id": f"m{k}",
            "ts": (t0 + dt.timedelta(milliseconds=k)).isoformat(),
            "asset": a,
            "level": 0.5,
            "power_w": 20.0,
        }
        if bad_every and k % bad_every == 0:
            body["level"] = 7.0  # out of range: dead-lettered
        out.append((f"twin/{CITY}/telemetry/light/{a}", json.dumps(body).encode()))
    return out


class Publisher:
    """A device gateway: QoS 1, persistent session, counts the broker's PUBACKs."""

    def __init__(self, url: str) -> None:
        self.acked = 0
        self.lock = threading.Lock()
        self.client = connect(url, "test-gateway", persistent=True)
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        self.sessions: list[bool] = []
        self.client.on_connect = lambda c, u, f, rc, p=None: self.sessions.append(
            bool(f.session_present)
        )

    def _on_publish(self, *a: object) -> None:
        with self.lock:
            self.acked += 1

    def send(self, msgs) -> None:
        for topic, payload in msgs:
            self.client.publish(topic, payload, qos=1)

    def wait_acked(self, n: int, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while self.acked < n and time.monotonic() < end:
            time.sleep(0.02)
        assert self.acked == n, f"{self.acked} of {n} publications acknowledged by the broker"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(scope="module")
def lights(bondy):
    return bondy.registry["light"]["id"].astype(str).tolist()


def _report(name: str, sent: int, ing: Ingestor, stored: int) -> None:
    c = ing.counters
    print(
        f"\n{name}: sent {sent}, accepted {c['accepted']}, rejected {ing.rejected()}, "
        f"duplicates {c['duplicate']}, lost {sent - c['accepted'] - ing.rejected()}; "
        f"stored {stored}"
    )


def test_telemetry_flows_into_the_store(mosquitto, lights, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city=CITY, assets={"light": lights})
    n = 3000
    with IngestService(ing, mosquitto.url, qos=1) as svc:
        pub = Publisher(mosquitto.url)
        pub.send(_payloads(lights, n, bad_every=10))
        pub.wait_acked(n)
        assert svc.wait_for(n, timeout=60)
        pub.close()
    _report("flow", n, ing, store.count("telemetry"))
    assert ing.counters["received"] == n and ing.accounted()
    assert ing.counters["rejected.range"] == n // 10
    assert store.count("telemetry") == n - n // 10 == ing.counters["accepted"]
    assert store.count("dead_letter") == n // 10
    store.close()


def test_ctrl_c_leaves_the_receive_process_to_the_service(mosquitto, lights, tmp_path):
    """SIGINT reaches the whole process group: the service, not the signal, stops the receiver."""
    import os
    import signal

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city=CITY, assets={"light": lights})
    n = 500
    with IngestService(ing, mosquitto.url, qos=1) as svc:
        assert svc._proc is not None
        os.kill(svc._proc.pid, signal.SIGINT)
        pub = Publisher(mosquitto.url)
        pub.send(_payloads(lights, n))
        pub.wait_acked(n)
        assert svc.wait_for(n, timeout=30)
        pub.close()
    assert store.count("telemetry") == n and ing.accounted()
    store.close()


def test_broker_restart_mid_stream_loses_nothing(mosquitto, lights, tmp_path):
    """QoS 1, persistent sessions: the broker stops (its state saved) and comes back."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city=CITY, assets={"light": lights})
    n = 4000
    msgs = _payloads(lights, n)
    svc = IngestService(ing, mosquitto.url, qos=1).start()
    pub = Publisher(mosquitto.url)
    pub.send(msgs[: n // 2])
    pub.wait_acked(n // 2)  # the broker holds these (delivered, or queued and persisted)
    mosquitto.restart()
    pub.send(msgs[n // 2 :])  # queued in the client while it reconnects, then sent
    pub.wait_acked(n)
    assert svc.wait_for(n, timeout=60), (ing.counters, svc.sessions)
    assert svc.sessions == [False, True], "the broker lost the ingestion's session"
    time.sleep(0.5)  # redeliveries of messages stored but not yet acknowledged at the restart
    svc.stop()
    pub.close()
    stored = store.count("telemetry")
    _report("broker restart", n, ing, stored)
    assert stored == n, f"lost {n - stored}"
    assert ing.accounted() and ing.counters["accepted"] == n and ing.rejected() == 0
    store.close()


KILLABLE = """
import sys, time
from live.ingest import Ingestor
from live.mqtt import IngestService
from live.store import open_store
url, db, lights = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
ing = Ingestor(open_store(db), city="bondy", assets={"light": lights})
IngestService(ing, url, qos=1, batch=200).start()
print("ready", flush=True)
while True:
    time.sleep(1)
"""


def test_ingestion_killed_and_restarted_keeps_the_history_whole(mosquitto, lights, tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    n = 6000
    msgs = _payloads(lights, n)
    args = [sys.executable, "-c", KILLABLE, mosquitto.url, db, ",".join(lights)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    pub = Publisher(mosquitto.url)
    pub.send(msgs)
    store = open_store(db)
    while store.count("telemetry") < n // 3:  # killed mid-stream
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    pub.wait_acked(n)
    killed_at = store.count("telemetry")
    # the same service again: the broker resends what was not acknowledged
    ing = Ingestor(store, city=CITY, assets={"light": lights})
    with IngestService(ing, mosquitto.url, qos=1):
        end = time.monotonic() + 60
        while store.count("telemetry") < n and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.3)
    pub.close()
    stored = store.count("telemetry")
    distinct = store.execute("SELECT COUNT(DISTINCT msg_id) FROM telemetry")[0][0]
    print(
        f"\nkill/restart: sent {n}, stored before the kill {killed_at}, after {stored} "
        f"(distinct {distinct}), duplicates dropped {ing.counters['duplicate']}, "
        f"lost {n - stored}"
    )
    assert killed_at < n and stored == n == distinct
    assert ing.accounted()
    store.close()


def test_shared_subscription_splits_the_stream_between_workers(mosquitto, lights, tmp_path):
    """MQTT 5 ``$share``: two workers into one store; each message stored once, none lost."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ings = [Ingestor(store, city=CITY, assets={"light": lights}) for _ in range(2)]
    svcs = [
        IngestService(ing, mosquitto.url, qos=1, client_id=f"w{k}", share="g").start()
        for k, ing in enumerate(ings)
    ]
    n = 4000
    pub = Publisher(mosquitto.url)
    pub.send(_payloads(lights, n, bad_every=8))
    pub.wait_acked(n)
    end = time.monotonic() + 60
    while sum(i.counters["received"] for i in ings) < n and time.monotonic() < end:
        time.sleep(0.02)
    for svc in svcs:
        svc.stop()
    pub.close()
    got = [i.counters["received"] for i in ings]
    accepted = sum(i.counters["accepted"] for i in ings)
    rejected = sum(i.rejected() for i in ings)
    stored = store.count("telemetry")
    print(f"\nshared: sent {n}, per worker {got}, accepted {accepted}, rejected {rejected}, lost "
          f"{n - accepted - rejected}; stored {stored}")  # fmt: skip
    assert sum(got) == n and min(got) > 0, got  # split, and no message given to both
    assert all(i.accounted() for i in ings)
    assert rejected == n // 8 == store.count("dead_letter")
    assert stored == accepted == n - n // 8
    store.close()


# amqtt (the embedded broker, in this process) leaves the sockets of closed connections to the
# garbage collector, which warns about them whenever it runs: amqtt's housekeeping, not ours
AMQTT_LEAKS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@AMQTT_LEAKS
def test_embedded_broker_speaks_3_1_1_at_once_and_carries_telemetry(lights, tmp_path):
    import paho.mqtt.client as paho

    from live.serve import embedded_broker

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city=CITY, assets={"light": lights})
    with embedded_broker() as url:
        assert url.endswith("?protocol=3.1.1")
        client = connect(url, "probe")
        assert client.protocol == paho.MQTTv311  # no MQTT 5 attempt first
        client.disconnect()
        client.loop_stop()
        n = 300
        with IngestService(ing, url, qos=1) as svc:
            pub = Publisher(url)
            pub.send(_payloads(lights, n))
            pub.wait_acked(n)
            assert svc.wait_for(n, timeout=30)
            pub.close()
    assert ing.accounted() and store.count("telemetry") == ing.counters["accepted"] == n
    store.close()


@AMQTT_LEAKS
@pytest.mark.parametrize("form", ["as given", "bare", "host name", "says 5"])
def test_shared_subscription_on_the_embedded_broker_is_refused_before_connecting(
    lights, tmp_path, form
):
    """Whatever the URL says of the protocol, the embedded broker's address is refused at once.

    Nothing is started: the refusal comes from the constructor, before any process or
    connection, so no running service can outlive the test.
    """
    import paho.mqtt.client as paho

    from live.mqtt import broker_protocol
    from live.serve import embedded_broker
    from twin._errors import InputValidationError

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city=CITY, assets={"light": lights})
    need = r"shared subscriptions .* need an MQTT 5 .*amqtt.* Mosquitto"
    services: list[IngestService] = []
    try:
        with embedded_broker() as given:
            bare = given.split("?", 1)[0]
            url = {
                "as given": given,
                "bare": bare,
                "host name": bare.replace("127.0.0.1", "localhost"),
                "says 5": bare + "?protocol=5",
            }[form]
            if form != "says 5":
                assert broker_protocol(url) == "3.1.1"
                probe = connect(url, "probe", timeout=2.0)  # 3.1.1 at once: no MQTT 5 attempt
                assert probe.protocol == paho.MQTTv311
                probe.disconnect()
                probe.loop_stop()
            with pytest.raises(InputValidationError, match=need):
                services.append(IngestService(ing, url, share="g"))
            assert ing.counters["received"] == 0
        # the broker is gone: its address is no longer taken for an embedded one
        assert broker_protocol(bare) is None
    finally:
        for svc in services:  # only if the refusal failed: stop what it started
            svc.stop(drain=False)
        store.close()


def test_shared_subscription_connects_with_mqtt_5_only(mosquitto, lights, tmp_path):
    """A bare URL with a shared subscription never falls back to MQTT 3.1.1."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city=CITY, assets={"light": lights})
    svc = IngestService(ing, mosquitto.url, share="g", client_id="w-share")
    try:
        assert svc.protocol == "5"
        svc.start()
        assert svc.sessions and svc.pattern.startswith("$share/g/")
    finally:
        svc.stop(drain=False)
    assert svc._proc is None
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mqtt://127.0.0.1:1883?protocol=4", "protocol=4 is neither 5 nor 3.1.1"),
        ("http://127.0.0.1:1883", "is not mqtt://HOST[:PORT]"),
    ],
)
def test_bad_broker_url_names_the_field(url, message):
    from twin._errors import InputValidationError

    with pytest.raises(InputValidationError, match="--broker: .*" + message.replace("[", r"\[")):
        connect(url, "x")


@pytest.mark.parametrize("qos", [0, 1])
def test_publish_properties_are_skipped_not_mistaken_for_payload(mosquitto, lights, tmp_path, qos):
    """MQTT 5 PUBLISH properties (which the broker forwards) stand between topic and payload."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city=CITY, assets={"light": lights})
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("gateway", "cabinet:0001"), ("firmware", "x" * 300)]
    props.MessageExpiryInterval = 3600
    props.ContentType = "application/json"
    n = 200
    with IngestService(ing, mosquitto.url, qos=qos, client_id=f"props-{qos}") as svc:
        pub = Publisher(mosquitto.url)
        for topic, payload in _payloads(lights, n):
            pub.client.publish(topic, payload, qos=1, properties=props)
        pub.wait_acked(n)
        assert svc.wait_for(n, timeout=30)
        pub.close()
    assert ing.counters["accepted"] == n == store.count("telemetry") and ing.accounted()
    store.close()
