"""Live operation benchmark: ingestion beside the raw MQTT ceiling, and the stores' queries.

    python benchmarks/ingestion.py [--quick]

Four parts, each against a real Mosquitto / PostgreSQL started here (live.services). Beside
every rate it prints the CPU time per message of each process involved (from /proc, so Linux
only; clock ticks of 10 ms, i.e. 0.5 us a message over 20,000 and 0.1 us over 100,000), because
on a shared 2-core machine a rate says as much about the other load as about the code, while
CPU per message hardly moves with it.

Ingestion (QoS 0 and QoS 1): a real Mosquitto (live.services, the tests' configuration) holds
N light-telemetry messages queued for a persistent session; a subscriber then connects and
drains them. The reference is a bare paho subscriber that only counts (the raw ceiling);
ours validates every payload, checks the asset, de-duplicates, updates the state and commits
the history to SQLite (WAL) before acknowledging. Both drain the same queue on the same
broker, timed from the connection to the last message (for ours: the last one committed,
and the time to start its receive process included), so the ratio is ours / raw. Targets:
ratio >= 0.8 at both QoS, and nothing lost at QoS 1 (every message stored). CPU per message:
the paho client's process; for ours, the service's process (validation, state, SQLite) plus
its receive process, less the CPU of a start with nothing queued (printed: the receive
process's interpreter and imports, which a service running for days pays once).

Ours runs in two processes (live.mqtt, live._receiver): a receive process holds the MQTT
connection, reads 256 KiB at a time and hands each message over as bytes through a pipe;
validation, state and history run in the service's process and acknowledge after the
commit, a batch's PUBACKs in one write. The receive process spends ~6-9 us per message where
a bare paho client spends ~30 (its MQTTMessage, MQTT 5 properties and per-packet reads), so
ours passes the ceiling as long as the machine has a core for each process; on a loaded
machine the rate ratio falls, since ours needs two processes scheduled where the raw client
needs one, while the CPU ratio stays.

Shared subscription: 1, then 2, worker services (MQTT 5 ``$share/<group>/...``, each in its own
process with its own receive process) join a group and leave; N messages are published at
QoS 1, which Mosquitto shares out between the group's persistent sessions; then the workers
come back and drain them into one PostgreSQL store (fsync on). The rate is N over the time
from their return until they have committed everything (their start-up imports excluded),
so it is the workers' own rate, not the publisher's; the reference is one raw paho
subscriber at QoS 1 (the ceiling above). CPU per message is measured for the publisher and
for Mosquitto while the messages come in, and for Mosquitto, the workers' receive and service
processes and PostgreSQL (all its processes) while they are drained.

Scaling model. On this machine two workers cannot beat one: the broker, PostgreSQL and both
workers' four processes share 2 cores, so the rate is at most 2 cores / (the sum of every
part's CPU per message), whatever the number of workers (printed as "here"). With enough cores
the parts run side by side, and the model printed for W = 1, 2, 4, 8 workers is

    rate(W) = min(W / max(receive, service, PostgreSQL per message),  1 / Mosquitto per message)

with a core for each worker process and PostgreSQL backend, and the cores that rate keeps busy
(rate x the sum). Why: a worker is a pipeline of two processes (receive, then validate and
store), so one worker goes as fast as its slower stage; each worker has its own connection,
its own PostgreSQL backend and its own commits (PostgreSQL groups concurrent commits into one
WAL flush), so workers add up; but every message passes through Mosquitto's single event loop
twice (in from a device, out to a worker), and that thread is the ceiling no number of workers
lifts. Beyond it, the devices must publish to several brokers (a bridge or a cluster), which is
outside this code. The model assumes the CPU per message stays as measured (batches as large,
no cache contention), and devices publishing over many connections: one paho publisher, as
here, costs ~100 us of CPU per QoS 1 message and would itself cap a benchmark near 10,000 msg/s.
What held the scaling before, and is gone: PostgreSQL ``executemany`` at 15-25 us of client
CPU per row (now COPY, ~1 us), paho in the worker at ~30 us per message, and the publisher
running beside the workers.

Push: a full night's plan (full output, 15-minute slots) for every light of a Dijon-sized
stock (34,000 lights resampled from Montpellier's 29,969 real ones with Dijon's sun and time
zone: ``twin.energy.stock.resized_twin``, as ``twin energy --resize 34000 --as-city dijon``;
all LED, so every light is dimmable and in the plan), gated, sent per cabinet and acknowledged
by the equipment simulator; it prints how many lights run their new schedule. Target <= 10 s.
``--quick`` pushes Bondy's.

Store: a year of nightly metered energy for 1,000 cabinets (365,000 nights, which the store
keeps as 12,000 cabinet-months, see live.store) queried as an xarray Dataset, from SQLite and
from PostgreSQL, three times each. Target <= 1 s, on the worst of the three.
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

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat() -> dict[int, tuple[int, float]]:
    """Every live process: pid -> (parent pid, CPU seconds so far), from /proc (Linux)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            text = (d / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        f = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
        out[int(d.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / _TICK)
    return out


def _cpu(pid: int, *, exclude: tuple[int, ...] = ()) -> tuple[float, float]:
    """CPU seconds of a live process, and of its live descendants (but ``exclude``'s trees)."""
    st = _stat()
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p in tree or p in exclude:
            continue
        tree.add(p)
        todo.extend(c for c, (pp, _) in st.items() if pp == p)
    own = st.get(pid, (0, 0.0))[1]
    return own, sum(st[p][1] for p in tree if p in st) - own


def _all(pid: int) -> float:
    """CPU seconds of a process and its descendants (Mosquitto: one process; PostgreSQL: many)."""
    return sum(_cpu(pid))


def _messages(lights: list[str], n: int, prefix: str = "b") -> list[tuple[str, bytes]]:
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    out = []
    for k in range(n):
        a = lights[k % len(lights)]
        ts = (t0 + dt.timedelta(milliseconds=k)).isoformat().replace("+00:00", "Z")
        body = {"id": f"{prefix}{k}", "ts": ts, "asset": a, "level": 0.5, "power_w": 21.6}
        out.append((f"twin/bench/telemetry/light/{a}", json.dumps(body).encode()))
    return out


def _publish(url: str, msgs: list[tuple[str, bytes]], broker: int) -> dict[str, float]:
    """Publish at QoS 1; the CPU per message (us) of the publisher and of the broker taking in."""
    from live.mqtt import connect, publish_many

    c = connect(url, "bench-pub")
    b0, c0 = _all(broker), time.process_time()
    publish_many(c, msgs, qos=1)
    pub, b1 = time.process_time() - c0, _all(broker)
    c.disconnect()
    c.loop_stop()
    return {"publisher": pub * 1e6 / len(msgs), "broker_in": (b1 - b0) * 1e6 / len(msgs)}


def _forget(url: str, client_id: str) -> None:
    """End a persistent session (a clean start), so that the broker stops queuing for it."""
    from live.mqtt import connect

    c = connect(url, client_id)
    c.disconnect()
    c.loop_stop()


def _raw(url: str, qos: int, msgs: list[tuple[str, bytes]], broker: int) -> dict[str, float]:
    """The ceiling: a paho subscriber that counts; its rate and CPU per message (us)."""
    from live.mqtt import connect

    cid = f"raw-{qos}"
    c = connect(url, cid, persistent=True)
    c.subscribe("twin/bench/telemetry/#", qos=qos)
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()
    _publish(url, msgs, broker)
    n = len(msgs)
    got = [0]
    done = threading.Event()

    def on_message(*a: object) -> None:
        got[0] += 1
        if got[0] == n:
            done.set()

    b0 = _all(broker)
    t, c0 = time.perf_counter(), time.process_time()
    c = connect(url, cid, persistent=True, on_message=on_message)
    done.wait(120)
    seconds, cpu, b1 = time.perf_counter() - t, time.process_time() - c0, _all(broker)
    c.disconnect()
    c.loop_stop()
    return {
        "rate": got[0] / seconds,
        "got": got[0],
        "cpu_us": cpu * 1e6 / max(got[0], 1),
        "broker_out_us": (b1 - b0) * 1e6 / max(got[0], 1),
    }


def _ours(
    url: str, qos: int, msgs: list[tuple[str, bytes]], lights: list[str], folder: Path, broker: int
) -> dict[str, float]:
    """Our ingestion drains the queue; its rate, what it stored, and its CPU per message (us).

    The CPU is this process's (validation, state, SQLite) plus the receive process's, less
    what a start with nothing queued costs (the receive process's interpreter and imports,
    ~0.1 s of CPU: 5 us a message over 20,000, and nothing in a service that runs for days).
    """
    from live.ingest import Ingestor
    from live.mqtt import IngestService
    from live.store import open_store

    me = os.getpid()
    store = open_store(f"sqlite:///{folder / f'bench{qos}.db'}")
    ing = Ingestor(store, city="bench", assets={"light": lights})
    svc = IngestService(ing, url, qos=qos, client_id=f"ours-{qos}")
    s0, r0 = time.process_time(), _cpu(me, exclude=(broker,))[1]
    svc.start()
    start_service = time.process_time() - s0
    start_receiver = _cpu(me, exclude=(broker,))[1] - r0
    svc.stop()
    _publish(url, msgs, broker)
    n = len(msgs)
    ing = Ingestor(store, city="bench", assets={"light": lights})
    svc = IngestService(ing, url, qos=qos, client_id=f"ours-{qos}")
    b0, r0 = _all(broker), _cpu(me, exclude=(broker,))[1]
    t, s0 = time.perf_counter(), time.process_time()
    svc.start()
    svc.wait_for(n, timeout=120)  # received counts a message once its batch is committed
    seconds, service = time.perf_counter() - t, time.process_time() - s0 - start_service
    receiver = _cpu(me, exclude=(broker,))[1] - r0 - start_receiver
    b1 = _all(broker)
    rate = ing.counters["received"] / seconds
    svc.stop()
    stored = store.count("telemetry")
    store.close()
    return {
        "rate": rate,
        "accepted": ing.counters["accepted"],
        "stored": stored,
        "service_us": service * 1e6 / n,
        "receiver_us": receiver * 1e6 / n,
        "cpu_us": (service + receiver) * 1e6 / n,
        "broker_out_us": (b1 - b0) * 1e6 / n,
        "start_cpu_s": start_service + start_receiver,
    }


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


def _pid(pg: Any) -> int:
    """The PostgreSQL server's main process (its backends are its children)."""
    return int((Path(pg.data) / "postmaster.pid").read_text().split()[0])


def _worker_cpu(procs: list[Any]) -> tuple[float, float]:
    """CPU seconds of the workers' service processes, and of their receive processes."""
    cpu = [_cpu(p.pid) for p in procs]
    return sum(c[0] for c in cpu), sum(c[1] for c in cpu)


def _shared(
    url: str, pg: Any, workers: int, msgs: list[tuple[str, bytes]], n_lights: int, broker: int
) -> dict[str, float]:
    """MQTT 5 shared subscription: ``workers`` processes drain the group's queue into one store.

    The workers join the group and leave (their persistent sessions stay), the messages are
    published, then the workers come back and drain what Mosquitto queued for them: the rate
    is that of the workers alone, not capped by the publisher. Returns the rate and the CPU
    per message (us) of each part: publisher, broker (taking in, sending out), the workers'
    receive and service processes (less what their start costs), PostgreSQL.
    """
    procs = _workers(url, pg.url, workers, n_lights)
    before = _worker_cpu(procs)
    _tell(procs, "go\n?\n")
    for p in procs:
        p.stdout.readline()  # answered: started and subscribed
    after = _worker_cpu(procs)
    start = (after[0] - before[0], after[1] - before[1])
    _end(procs)  # subscribed, then gone: the group's sessions queue what comes
    pub = _publish(url, msgs, broker)
    procs = _workers(url, pg.url, workers, n_lights)
    w0, b0, g0 = _worker_cpu(procs), _all(broker), _all(_pid(pg))
    t = time.perf_counter()
    _tell(procs, "go\n")
    done = 0
    while done < len(msgs):
        time.sleep(0.01)
        _tell(procs, "?\n")
        done = sum(int(p.stdout.readline()) for p in procs)
    seconds = time.perf_counter() - t
    w1, b1, g1 = _worker_cpu(procs), _all(broker), _all(_pid(pg))
    _end(procs)
    for w in range(workers):  # later runs publish on the same topics
        _forget(url, f"shared-{workers}-{w}")
    n = len(msgs)
    return {
        "rate": n / seconds,
        "publisher_us": pub["publisher"],
        "broker_in_us": pub["broker_in"],
        "broker_out_us": (b1 - b0) * 1e6 / n,
        "receiver_us": (w1[1] - w0[1] - start[1]) * 1e6 / n,
        "service_us": (w1[0] - w0[0] - start[0]) * 1e6 / n,
        "postgres_us": (g1 - g0) * 1e6 / n,
    }


def _scaling(m: dict[str, float], cores: int) -> tuple[list[str], dict[str, int]]:
    """Expected msg/s of W shared-subscription workers on enough cores (see the docstring)."""
    broker = m["broker_in_us"] + m["broker_out_us"]
    worker = max(m["receiver_us"], m["service_us"], m["postgres_us"])
    total = broker + m["receiver_us"] + m["service_us"] + m["postgres_us"]
    lines = [
        f"scaling model, CPU per message: Mosquitto {broker:.1f} us "
        f"({m['broker_in_us']:.1f} in + {m['broker_out_us']:.1f} out, one thread), worker "
        f"receive {m['receiver_us']:.1f} us + service {m['service_us']:.1f} us, PostgreSQL "
        f"{m['postgres_us']:.1f} us; {total:.1f} us in all (publisher {m['publisher_us']:.1f} us)",
        f"  here, {cores} cores shared by all of it: at most {cores * 1e6 / total:,.0f} msg/s "
        "whatever the number of workers",
    ]
    figures = {"model_here_max_msg_s": round(cores * 1e6 / total)}
    for w in (1, 2, 4, 8):
        by_workers, by_broker = w * 1e6 / worker, 1e6 / broker
        rate = min(by_workers, by_broker)
        limit = "the workers" if by_workers < by_broker else "Mosquitto's one thread"
        lines.append(
            f"  {w} worker(s) with a core per process: ~{rate:,.0f} msg/s, limited by {limit}; "
            f"~{rate * total / 1e6:.1f} cores busy"
        )
        figures[f"model_{w}_workers_msg_s"] = round(rate)
    return lines, figures


def _push(url: str, folder: Path, quick: bool) -> dict[str, float]:
    import twin
    from live.control import Controller
    from live.devices import Devices
    from live.store import open_store
    from optimize import dimming
    from optimize.plans import from_dimming

    if quick:
        tw = twin.load("bondy")
    else:  # Dijon-sized: 34,000 lights resampled from Montpellier's real ones, Dijon's sun
        from twin.cities import get_city
        from twin.energy.stock import resized_twin

        city = get_city("dijon")
        tw = resized_twin(twin.load("montpellier"), n_lights=34_000, led_share=1.0, city=city)
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
        scheduled = sum(1 for a in plan.assets if a in devices.schedules)  # lights that got theirs
    store.close()
    print(
        f"push ({tw.name}): {len(plan.assets):,} lights in {result.commands} cabinet commands, "
        f"{result.status} ({result.acked} acknowledged, {applied} applied; {scheduled:,} lights "
        f"running their schedule) in {seconds:.2f} s"
    )
    return {
        "push_lights": len(plan.assets),
        "push_commands": result.commands,
        "push_acked": result.acked,
        "push_lights_scheduled": scheduled,
        "push_s": round(seconds, 3),
    }


def _year_query(url: str, name: str) -> tuple[float, float]:
    """The best and the worst of three reads of a year of 1,000 cabinets' nights (s)."""
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
    times = []
    for _ in range(3):
        t = time.perf_counter()
        ds = store.metered_energy(start=days[0], end=days[-1] + dt.timedelta(days=1))
        times.append(time.perf_counter() - t)
    assert ds["energy_wh"].shape == (1000, 365)
    assert float(ds["energy_wh"].mean()) == 20_000.0
    months = store.count("meter_month")
    store.close()
    print(
        f"store ({name}): a year x 1,000 cabinets ({len(rows):,} nights, read as {months:,} "
        f"cabinet-months) in {min(times):.3f} s, worst of 3 {max(times):.3f} s "
        f"(load average {os.getloadavg()[0]:.2f})"
    )
    return min(times), max(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--messages", type=int, help="messages per run (default 100,000; quick 20,000)")
    args = ap.parse_args()
    n = args.messages or (20_000 if args.quick else 100_000)
    lights = [f"light:{i:06d}" for i in range(34_000)]
    msgs = _messages(lights, n)
    from live.services import Mosquitto, Postgres

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at the start")
    figures: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    targets: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(extra="queue_qos0_messages true\n") as b:
        assert b.proc is not None
        broker = b.proc.pid
        for qos in (0, 1):
            raw = _raw(b.url, qos, msgs, broker)
            ours = _ours(b.url, qos, msgs, lights, Path(tmp), broker)
            for cid in (f"raw-{qos}", f"ours-{qos}"):  # later parts publish on the same topics
                _forget(b.url, cid)
            reference[f"raw_qos{qos}_msg_s"] = round(raw["rate"])
            reference[f"raw_qos{qos}_cpu_us_per_msg"] = round(raw["cpu_us"], 2)
            figures[f"ingest_qos{qos}_msg_s"] = round(ours["rate"])
            figures[f"ingest_qos{qos}_stored"] = ours["stored"]
            figures[f"ingest_qos{qos}_lost"] = n - ours["stored"]
            for k in ("cpu", "receiver", "service", "broker_out"):
                figures[f"ingest_qos{qos}_{k}_us_per_msg"] = round(ours[f"{k}_us"], 2)
            figures[f"ingest_qos{qos}_start_cpu_s"] = round(ours["start_cpu_s"], 3)
            ratios[f"ingest_qos{qos}"] = round(ours["rate"] / raw["rate"], 3)
            ratios[f"ingest_qos{qos}_cpu_per_msg"] = round(ours["cpu_us"] / raw["cpu_us"], 3)
            targets[f"ingest_qos{qos}_ratio"] = target(ratios[f"ingest_qos{qos}"], 0.8, ">=")
            print(
                f"QoS {qos}: raw paho {raw['rate']:,.0f} msg/s ({raw['got']:,} received), "
                f"{raw['cpu_us']:.1f} us CPU/msg; ingestion {ours['rate']:,.0f} msg/s "
                f"({ours['stored']:,} stored of {n:,}), {ours['cpu_us']:.1f} us CPU/msg "
                f"(receive {ours['receiver_us']:.1f} + service {ours['service_us']:.1f}; "
                f"start {ours['start_cpu_s']:.2f} s CPU, left out); ratio "
                f"{ours['rate'] / raw['rate']:.2f} by rate, {ours['cpu_us'] / raw['cpu_us']:.2f} "
                f"by CPU/msg; Mosquitto {ours['broker_out_us']:.1f} us/msg sending to ours"
            )
        targets["ingest_qos1_lost"] = target(figures["ingest_qos1_lost"], 0, "<=")

        raw1 = reference["raw_qos1_msg_s"]
        shared = {}
        with Postgres() as pg:
            for w in (1, 2):
                tagged = _messages(lights, n, prefix=f"s{w}-")
                m = shared[w] = _shared(b.url, pg, w, tagged, len(lights), broker)
                figures[f"shared_{w}_workers_msg_s"] = round(m["rate"])
                for k in ("receiver", "service", "postgres", "broker_in", "broker_out"):
                    figures[f"shared_{w}_workers_{k}_us_per_msg"] = round(m[f"{k}_us"], 2)
                ratios[f"shared_{w}_workers"] = round(m["rate"] / raw1, 3)
                print(
                    f"shared subscription, {w} worker(s) into PostgreSQL: {m['rate']:,.0f} msg/s "
                    f"({m['rate'] / raw1:.2f} of one raw paho subscriber at QoS 1); CPU/msg: "
                    f"receive {m['receiver_us']:.1f} + service {m['service_us']:.1f} us, "
                    f"PostgreSQL {m['postgres_us']:.1f} us, Mosquitto {m['broker_in_us']:.1f} in "
                    f"+ {m['broker_out_us']:.1f} out"
                )
        ratios["shared_2_over_1"] = round(shared[2]["rate"] / shared[1]["rate"], 3)
        print(
            f"scaling, 2 workers over 1: {ratios['shared_2_over_1']:.2f} on "
            f"{os.cpu_count()} cores shared by the broker, PostgreSQL, the publisher's "
            "leftovers and the workers (and whatever else runs)"
        )
        lines, model = _scaling(shared[1], os.cpu_count() or 1)
        print("\n".join(lines))
        figures.update(model)
        figures.update(_push(b.url, Path(tmp), args.quick))
        targets["push_s"] = target(figures["push_s"], 10.0, "<=")
        year = {"sqlite": _year_query(f"sqlite:///{Path(tmp) / 'year.db'}", "SQLite")}
        with Postgres() as pg:
            year["postgresql"] = _year_query(pg.url, "PostgreSQL")
        for k, (best, worst) in year.items():
            figures[f"query_year_{k}_s"] = round(best, 3)
            figures[f"query_year_{k}_worst_s"] = round(worst, 3)
            targets[f"query_year_{k}_s"] = target(round(worst, 3), 1.0, "<=")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    emit("ingestion", figures, reference=reference, ratios=ratios, targets=targets)


if __name__ == "__main__":
    main()
