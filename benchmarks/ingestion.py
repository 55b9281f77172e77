"""Live operation benchmark: ingestion beside the raw MQTT ceiling, and the stores' queries.

    python benchmarks/ingestion.py [--quick]

Ingestion (QoS 0 and QoS 1): a real Mosquitto (live.services, the tests' configuration) holds
N light-telemetry messages queued for a persistent session; a subscriber then connects and
drains them. The reference is a bare paho subscriber that only counts (the raw ceiling);
ours validates every payload, checks the asset, de-duplicates, updates the state and commits
the history to SQLite (WAL) before acknowledging. Both drain the same queue on the same
broker, so the ratio is ours / raw. Targets: ratio >= 0.8 at both QoS, and nothing lost at
QoS 1 (every message stored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit, target  # noqa: E402


def _messages(lights: list[str], n: int) -> list[tuple[str, bytes]]:
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    out = []
    for k in range(n):
        a = lights[k % len(lights)]
        ts = (t0 + dt.timedelta(milliseconds=k)).isoformat().replace("+00:00", "Z")
        body = {"id": f"b{k}", "ts": ts, "asset": a, "level": 0.5, "power_w": 21.6, "fault": "none"}
        out.append((f"twin/bench/telemetry/light/{a}", json.dumps(body).encode()))
    return out


def _publish(url: str, msgs: list[tuple[str, bytes]]) -> float:
    from live.mqtt import connect

    c = connect(url, "bench-pub")
    done = threading.Event()
    left = [len(msgs)]

    def on_publish(*a: object) -> None:
        left[0] -= 1
        if left[0] == 0:
            done.set()

    c.on_publish = on_publish
    t = time.perf_counter()
    for topic, payload in msgs:
        c.publish(topic, payload, qos=1)
    done.wait(600)
    dt_s = time.perf_counter() - t
    c.disconnect()
    c.loop_stop()
    return dt_s


def _raw(url: str, qos: int, msgs: list[tuple[str, bytes]]) -> tuple[float, int]:
    """The ceiling: a paho subscriber that counts."""
    from live.mqtt import connect

    cid = f"raw-{qos}"
    c = connect(url, cid, persistent=True)
    c.subscribe("twin/bench/telemetry/#", qos=qos)
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()
    _publish(url, msgs)
    n = len(msgs)
    got = [0]
    done = threading.Event()

    def on_message(*a: object) -> None:
        got[0] += 1
        if got[0] == n:
            done.set()

    t = time.perf_counter()
    c = connect(url, cid, persistent=True, on_message=on_message)
    done.wait(120)
    rate = got[0] / (time.perf_counter() - t)
    c.disconnect()
    c.loop_stop()
    return rate, got[0]


def _ours(url: str, qos: int, msgs: list[tuple[str, bytes]], lights: list[str], folder: Path):
    from live.ingest import Ingestor
    from live.mqtt import IngestService
    from live.store import open_store

    store = open_store(f"sqlite:///{folder / f'bench{qos}.db'}")
    ing = Ingestor(store, city="bench", assets={"light": lights})
    svc = IngestService(ing, url, qos=qos, client_id=f"ours-{qos}").start()
    svc.stop()
    _publish(url, msgs)
    n = len(msgs)
    ing = Ingestor(store, city="bench", assets={"light": lights})
    svc = IngestService(ing, url, qos=qos, client_id=f"ours-{qos}")
    t = time.perf_counter()
    svc.start()
    svc.wait_for(n, timeout=120)
    while svc.batches and svc._queue:  # the last batch committed
        time.sleep(0.001)
    rate = ing.counters["received"] / (time.perf_counter() - t)
    svc.stop()
    stored = store.count("telemetry")
    store.close()
    return rate, ing.counters["accepted"], stored


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 20_000 if args.quick else 200_000
    lights = [f"light:{i:06d}" for i in range(34_000)]
    msgs = _messages(lights, n)
    from live.services import Mosquitto

    figures, reference, ratios, targets = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(extra="queue_qos0_messages true\n") as b:
        for qos in (0, 1):
            raw, raw_got = _raw(b.url, qos, msgs)
            ours, accepted, stored = _ours(b.url, qos, msgs, lights, Path(tmp))
            reference[f"raw_qos{qos}_msg_s"] = round(raw)
            figures[f"ingest_qos{qos}_msg_s"] = round(ours)
            figures[f"ingest_qos{qos}_stored"] = stored
            figures[f"ingest_qos{qos}_lost"] = n - stored
            ratios[f"ingest_qos{qos}"] = round(ours / raw, 3)
            targets[f"ingest_qos{qos}_ratio"] = target(ratios[f"ingest_qos{qos}"], 0.8, ">=")
            print(
                f"QoS {qos}: raw paho {raw:,.0f} msg/s ({raw_got:,} received), "
                f"ingestion {ours:,.0f} msg/s ({stored:,} stored of {n:,}): "
                f"ratio {ours / raw:.2f}"
            )
        targets["ingest_qos1_lost"] = target(figures["ingest_qos1_lost"], 0, "<=")
    emit("ingestion", figures, reference=reference, ratios=ratios, targets=targets)


if __name__ == "__main__":
    main()
