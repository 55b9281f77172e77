"""Live operation benchmark: ingestion beside the raw MQTT ceiling, and the stores' queries.

    python benchmarks/ingestion.py [--quick]

Three parts, each against a real Mosquitto / PostgreSQL started here (live.services).

Ingestion (QoS 0 and QoS 1): a real Mosquitto (live.services, the tests' configuration) holds
N light-telemetry messages queued for a persistent session; a subscriber then connects and
drains them. The reference is a bare paho subscriber that only counts (the raw ceiling);
ours validates every payload, checks the asset, de-duplicates, updates the state and commits
the history to SQLite (WAL) before acknowledging. Both drain the same queue on the same
broker, timed from the connection to the last message (for ours: the last one committed,
and the time to start its receive process included), so the ratio is ours / raw. Targets:
ratio >= 0.8 at both QoS, and nothing lost at QoS 1 (every message stored).

Ours runs in two processes (live.mqtt, live._receiver): a receive process holds the MQTT
connection, reads 256 KiB at a time and hands each message over as bytes through a pipe;
validation, state and history run in the service's process and acknowledge after the
commit, a batch's PUBACKs in one write. In one process, every one of paho's system calls
(five per message) handed the GIL to the worker and waited to get it back, and QoS 0 ran at
0.54-0.75 of the ceiling. Now the receive process spends ~9 us per message where a bare paho
client spends ~30 (its MQTTMessage, MQTT 5 properties and per-packet reads), so ours passes
the ceiling as long as the machine has a core for each process; on a loaded machine the
ratio falls, since ours needs two processes scheduled where the raw client needs one.

Shared subscription: 1, then 2, worker services (MQTT 5 ``$share/<group>/...``, each in its own
process with its own receive process) join a group and leave; N messages are published at
QoS 1, which Mosquitto shares out between the group's persistent sessions; then the workers
come back and drain them into one PostgreSQL store (fsync on). The rate is N over the time
from their return until they have committed everything (their start-up imports excluded),
so it is the workers' own rate, not the publisher's; the reference is one raw paho
subscriber at QoS 1 (the ceiling above).

What held the scaling, and what changed: with ``executemany`` PostgreSQL cost 15-25 us of
client CPU per row, and a worker received through paho at ~30 us per message in the same
interpreter; while the publisher ran beside them (as this benchmark measured before), one
worker made 5,200 msg/s and two 4,800: the publisher (one paho client, ~one core) was the
limit, and two workers only added a second connection's commits and context switches on
the two cores. Now rows go through COPY (~1 us each), a worker lingers up to 20 ms to fill a
batch (one disk flush for hundreds of rows), and the receive process reads and forwards at
~9 us per message: one worker drains faster than a raw paho subscriber, and the measure
leaves the publisher out.

Expectation on more cores: a worker is two processes, its receive process (~9 us per
message: ~100,000 msg/s on a core) and its validation and COPY (~5 us per message).
Mosquitto's single event loop sends to all of them: on this machine, with 2 cores for the
broker, PostgreSQL and the workers, two workers cannot beat one (expect a ratio near 1 or
below: the second worker takes CPU from the broker that feeds both). With 2 free cores per
worker plus one for Mosquitto and one for PostgreSQL, W workers scale near-linearly until
Mosquitto's thread is the limit (of the order of 100,000-200,000 small messages a second
on loopback) - PostgreSQL groups the commits of concurrent workers into one WAL flush (group
commit), so the store is not the limit before the broker is. Beyond one broker thread, the
devices must publish to several brokers (a bridge or cluster), which is outside this code.

Push: a full night's plan (full output, 15-minute slots) for every light of
Montpellier (29,969 real light points, the largest real set here; Dijon has 34,000), gated,
sent per cabinet and acknowledged by the equipment simulator. Target <= 10 s.

Store: a year of nightly metered energy for 1,000 cabinets (365,000 rows) queried as an
xarray Dataset, from SQLite and from PostgreSQL. Target <= 1 s each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit, target  # noqa: E402


def _messages(lights: list[str], n: int, prefix: str = "b") -> list[tuple[str, bytes]]:
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    out = []
    for k in range(n):
        a = lights[k % len(lights)]
        ts = (t0 + dt.timedelta(milliseconds=k)).isoformat().replace("+00:00", "Z")
        body = {"id": f"{prefix}{k}", "ts": ts, "asset": a, "level": 0.5, "power_w": 21.6}
        out.append((f"twin/bench/telemetry/light/{a}", json.dumps(body).encode()))
    return out


def _publish(url: str, msgs: list[tuple[str, bytes]]) -> float:
    from live.mqtt import connect, publish_many

    c = connect(url, "bench-pub")
    t = time.perf_counter()
    publish_many(c, msgs, qos=1)
    dt_s = time.perf_counter() - t
    c.disconnect()
    c.loop_stop()
    return dt_s


def _forget(url: str, client_id: str) -> None:
    """End a persistent session (a clean start), so that the broker stops queuing for it."""
    from live.mqtt import connect

    c = connect(url, client_id)
    c.disconnect()
    c.loop_stop()


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
    svc.wait_for(n, timeout=120)  # received counts a message once its batch is committed
    rate = ing.counters["received"] / (time.perf_counter() - t)
    svc.stop()
    stored = store.count("telemetry")
    store.close()
    return rate, ing.counters["accepted"], stored


WORKER = """
import sys
from live.ingest import Ingestor
from live.mqtt import IngestService
from live.store import open_store
url, db, cid, n_lights, group = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
lights = [f"light:{i:06d}" for i in range(n_lights)]
ing = Ingestor(open_store(db), city="bench", assets={"light": lights})
print("loaded", flush=True)
sys.stdin.readline()  # go
svc = IngestService(ing, url, qos=1, client_id=cid, share=group, linger_s=0.02).start()
for line in sys.stdin:  # each line asks how many are committed
    print(ing.counters["received"], flush=True)
svc.stop()
"""


def _workers(url: str, db: str, workers: int, n_lights: int) -> list[Any]:
    import subprocess

    procs = []
    for w in range(workers):
        # a group per run: a persistent member that left keeps its share of the stream queued
        cid, group = f"shared-{workers}-{w}", f"bench{workers}"
        args = [sys.executable, "-c", WORKER, url, db, cid, str(n_lights), group]
        p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "loaded"
        procs.append(p)
    return procs


def _tell(procs: list[Any], line: str) -> None:
    for p in procs:
        p.stdin.write(line)
        p.stdin.flush()


def _end(procs: list[Any]) -> None:
    for p in procs:
        p.stdin.close()
        p.wait(timeout=60)
        p.stdout.close()


def _shared(url: str, db: str, workers: int, msgs: list[tuple[str, bytes]], n_lights: int) -> float:
    """MQTT 5 shared subscription: ``workers`` processes drain the group's queue into one store.

    The workers join the group and leave (their persistent sessions stay), the messages are
    published, then the workers come back and drain what Mosquitto queued for them: the rate
    is that of the workers alone, not capped by the publisher.
    """
    procs = _workers(url, db, workers, n_lights)
    _tell(procs, "go\n")
    _end(procs)  # subscribed, then gone: the group's sessions queue what comes
    _publish(url, msgs)
    procs = _workers(url, db, workers, n_lights)
    t = time.perf_counter()
    _tell(procs, "go\n")
    done = 0
    while done < len(msgs):
        time.sleep(0.01)
        _tell(procs, "?\n")
        done = sum(int(p.stdout.readline()) for p in procs)
    rate = len(msgs) / (time.perf_counter() - t)
    _end(procs)
    for w in range(workers):  # later runs publish on the same topics
        _forget(url, f"shared-{workers}-{w}")
    return rate


def _push(url: str, folder: Path, quick: bool) -> dict[str, float]:
    import twin
    from live.control import Controller
    from live.devices import Devices
    from live.store import open_store
    from optimize import dimming
    from optimize.plans import from_dimming

    tw = twin.load("bondy" if quick else "montpellier")
    plan = from_dimming(dimming.plan(tw, "2024-01-15", policy="led_full"))
    t0 = plan.valid_from + dt.timedelta(hours=1)
    start = time.monotonic()
    clock = lambda: t0 + dt.timedelta(seconds=time.monotonic() - start)  # noqa: E731
    store = open_store(f"sqlite:///{folder / 'push.db'}")
    with Devices(tw, url, clock=clock) as devices:
        ctl = Controller(store, url, city=tw.name, timeout_s=10.0)
        t = time.perf_counter()
        result = ctl.push(plan, now=clock())
        seconds = time.perf_counter() - t
        applied = sum(devices.applied.values())
    store.close()
    print(
        f"push: {len(plan.assets):,} lights in {result.commands} cabinet commands, "
        f"{result.status} ({result.acked} acknowledged, {applied} applied) in {seconds:.2f} s"
    )
    return {
        "push_lights": len(plan.assets),
        "push_commands": result.commands,
        "push_acked": result.acked,
        "push_s": round(seconds, 3),
    }


def _year_query(url: str, name: str) -> float:
    from live.store import Store, open_store

    store = open_store(url)
    cabs = [f"cabinet:{i:04d}" for i in range(1000)]
    days = [dt.date(2025, 1, 1) + dt.timedelta(days=d) for d in range(365)]
    rows = []
    for c in cabs:
        wh = 0.0
        for d in days:
            t = int(dt.datetime(d.year, d.month, d.day, 17, tzinfo=dt.UTC).timestamp() * 1e6)
            rows.append((c, d.isoformat(), t, wh, t + 14 * 3600 * 10**6, wh + 20_000.0))
            wh += 20_000.0
    store.write([(Store.UPSERT_METER, rows)])
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        ds = store.metered_energy(start=days[0], end=days[-1] + dt.timedelta(days=1))
        best = min(best, time.perf_counter() - t)
    assert ds["energy_wh"].shape == (1000, 365)
    assert float(ds["energy_wh"].mean()) == 20_000.0
    store.close()
    print(f"store ({name}): a year x 1,000 cabinets ({len(rows):,} nights) in {best:.3f} s")
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--messages", type=int, help="messages per run (default 100,000; quick 20,000)")
    args = ap.parse_args()
    n = args.messages or (20_000 if args.quick else 100_000)
    lights = [f"light:{i:06d}" for i in range(34_000)]
    msgs = _messages(lights, n)
    from live.services import Mosquitto

    figures, reference, ratios, targets = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(extra="queue_qos0_messages true\n") as b:
        for qos in (0, 1):
            raw, raw_got = _raw(b.url, qos, msgs)
            ours, accepted, stored = _ours(b.url, qos, msgs, lights, Path(tmp))
            for cid in (f"raw-{qos}", f"ours-{qos}"):  # later parts publish on the same topics
                _forget(b.url, cid)
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
        from live.services import Postgres

        raw1 = reference["raw_qos1_msg_s"]
        with Postgres() as pg:
            for w in (1, 2):
                tagged = _messages(lights, n, prefix=f"s{w}-")
                rate = _shared(b.url, pg.url, w, tagged, len(lights))
                figures[f"shared_{w}_workers_msg_s"] = round(rate)
                ratios[f"shared_{w}_workers"] = round(rate / raw1, 3)
                print(
                    f"shared subscription, {w} worker(s) into PostgreSQL: {rate:,.0f} msg/s "
                    f"({rate / raw1:.2f} of one raw paho subscriber at QoS 1)"
                )
            ratios["shared_2_over_1"] = round(
                figures["shared_2_workers_msg_s"] / figures["shared_1_workers_msg_s"], 3
            )
            print(
                f"scaling, 2 workers over 1: {ratios['shared_2_over_1']:.2f} on "
                f"{os.cpu_count()} cores shared by the broker, PostgreSQL and the workers; "
                "expected near-linear with 2 free cores per worker, up to Mosquitto's one "
                "thread (see the docstring)"
            )
        figures.update(_push(b.url, Path(tmp), args.quick))
        targets["push_s"] = target(figures["push_s"], 10.0, "<=")
        figures["query_year_sqlite_s"] = round(
            _year_query(f"sqlite:///{Path(tmp) / 'year.db'}", "SQLite"), 3
        )
        from live.services import Postgres

        with Postgres() as pg:
            figures["query_year_postgresql_s"] = round(_year_query(pg.url, "PostgreSQL"), 3)
        for k in ("sqlite", "postgresql"):
            targets[f"query_year_{k}_s"] = target(figures[f"query_year_{k}_s"], 1.0, "<=")
    emit("ingestion", figures, reference=reference, ratios=ratios, targets=targets)


if __name__ == "__main__":
    main()
