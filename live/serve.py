"""``twin serve``: the live loop on one machine.

:func:`serve` starts, in one process:

* a broker, unless one is given: amqtt, an MQTT broker written in Python, so that one command
  works on a machine without Mosquitto. It speaks MQTT 3.1.1 only, and says so in its URL
  (``mqtt://127.0.0.1:PORT?protocol=3.1.1``): every client connects with 3.1.1 at once rather
  than trying MQTT 5 first. MQTT 5 shared subscriptions (several ingestion workers) need
  Mosquitto: asked of the embedded broker, they fail at once with a message that says so.
  Deployments use Mosquitto (``--broker mqtt://host:1883``);
* the ingestion service (:class:`live.mqtt.IngestService`) into the history store;
* optionally the equipment simulator (:class:`live.devices.Devices`), prepared first (the
  current hour's traffic DES for its detector counts, the day's footfall), reporting every
  ``period_s`` seconds, with the faults (:func:`check_faults`) and the weather
  (:meth:`live.devices.Devices.weather`) asked for: ``weather=(-8, 1)`` is a cold wet night
  that the example snow rule turns into a snow-plan proposal;
* the acknowledgement follower (:class:`live.control.AckFollower`): acknowledgements that
  arrive after a push gave up waiting still update the plan's record;
* the alarms (:mod:`live.alarms`) and the TOML rules (:mod:`live.rules`, optional),
  evaluated against the state every ``period_s`` seconds; rule firings are published on
  ``twin/<city>/event/<rule>`` and acted on (:mod:`live.actions`: proposals, alarms, sign
  messages, lighting overrides through the safety gate) in a worker thread, so that a push
  waiting for acknowledgements never holds up ingestion;
* an HTTP endpoint: ``GET /health`` answers 200 once everything is ready, with the ingestion
  counters; ``GET /state/<asset_type>`` gives the latest state and ``GET /alarms`` the open
  alarms, as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import gc
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from live.ingest import Ingestor, assets_of
from live.mqtt import IngestService, embedded_broker_at
from live.services import free_port, wait_port
from live.store import open_store
from twin._errors import InputValidationError

if TYPE_CHECKING:
    from live.devices import Fault
    from twin.model import Twin

__all__ = ["FAULT_TARGETS", "check_faults", "embedded_broker", "serve"]

#: The asset types each fault of the simulator (:meth:`live.devices.Devices.fault`) applies to.
FAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "lamp_failure": ("light",),
    "power_anomaly": ("cabinet",),
    "offline": ("light", "cabinet", "junction", "sensor", "vehicle"),
    "flashing_amber": ("junction",),
    "slow": ("cabinet", "junction"),
}


def check_faults(tw: Twin, faults: Sequence[tuple[str, str]]) -> None:
    """Raise :class:`InputValidationError` unless each ``(kind, asset)`` can be simulated.

    The kind must be one of :data:`FAULT_TARGETS`, and the asset one of the twin's assets of a
    type that fault applies to (a lamp failure on a light, a power anomaly on a cabinet...).
    """
    ids: dict[str, set[str]] = {}
    for kind, asset in faults:
        types = FAULT_TARGETS.get(kind)
        if types is None:
            msg = f"fault: {kind!r} is not one of {', '.join(FAULT_TARGETS)}"
            raise InputValidationError(msg)
        for t in types:
            if t not in ids:
                known = tw.registry[t]["id"] if t in tw.registry.kinds else []
                ids[t] = {str(a) for a in known}
        if not any(asset in ids[t] for t in types):
            msg = f"fault: {kind}={asset}: {asset} is not a {' or '.join(types)} of {tw.name}"
            raise InputValidationError(msg)


@contextlib.contextmanager
def embedded_broker(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Run an amqtt broker in a background thread; yields its URL (with ``?protocol=3.1.1``)."""
    from amqtt.broker import Broker

    port = port or free_port()
    # amqtt logs every probe and refused MQTT 5 CONNECT as an error; ours are expected
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, _context: None)
    # amqtt 0.12's own form (its older keys sys_interval, auth and topic-check are deprecated):
    # anonymous clients, no $SYS topics, no topic filter plugin
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            holder["broker"] = Broker(config, loop=loop)
            await holder["broker"].start()

        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="twin-broker", daemon=True)
    thread.start()
    wait_port(port, host=host)
    try:
        with embedded_broker_at(host, port):  # a bare URL of it is taken as 3.1.1 too
            yield f"mqtt://{host}:{port}?protocol=3.1.1"
    finally:
        if "broker" in holder:
            fut = asyncio.run_coroutine_threadsafe(holder["broker"].shutdown(), loop)
            with contextlib.suppress(Exception):
                fut.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        # amqtt leaves the stream writers of closed connections to the garbage collector, which
        # warns of each: collect them now, quietly, rather than at some later unrelated moment
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            if not thread.is_alive():
                loop.close()
            gc.collect()


def _http(
    host: str, port: int, ing: Ingestor, ready: threading.Event, alarms: Any = None
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path == "/health":
                if ready.is_set():
                    self._send(200, {"status": "ok", "counters": dict(ing.counters)})
                else:
                    self._send(503, {"status": "starting"})
            elif self.path == "/alarms" and alarms is not None:
                frame = alarms.open()
                self._send(200, json.loads(frame.to_json(orient="records", date_format="iso")))
            elif self.path.startswith("/state/"):
                kind = self.path.removeprefix("/state/")
                if kind not in ing.state.ids:
                    self._send(404, {"error": f"no asset type {kind!r}"})
                    return
                frame = ing.state.frame(kind)
                frame = frame[frame["ts"].notna()]
                self._send(200, json.loads(frame.to_json(orient="index", date_format="iso")))
            else:
                self._send(404, {"error": "GET /health or /state/<asset_type>"})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:  # the port taken, or an address not of this machine
        why = "is taken" if exc.errno == errno.EADDRINUSE else "cannot be listened on"
        msg = f"--port: {host}:{port} {why} ({exc.strerror or exc})"
        raise OSError(msg) from None
    threading.Thread(target=server.serve_forever, name="twin-http", daemon=True).start()
    return server


def serve(
    tw: Twin,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    broker: str | None = None,
    db: str | None = None,
    devices: bool = False,
    period_s: float = 10.0,
    duration_s: float | None = None,
    rules: str | None = None,
    faults: Sequence[tuple[str, str]] = (),
    weather: tuple[float, float] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, int]:
    """Run the live loop until ``duration_s`` has passed (or Ctrl-C); returns the counters.

    ``faults`` (``(kind, asset)`` pairs, see :func:`check_faults`) and ``weather``
    (``(offset_c, precip_mm_h)``) are injected into the simulator, so they need ``devices``.
    """
    if (faults or weather is not None) and not devices:
        msg = "faults, weather: injected into the simulator, they need devices=True"
        raise InputValidationError(msg)
    check_faults(tw, faults)
    store = open_store(db or f"sqlite:///twin-live-{tw.name}.db")
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        if broker is None:
            broker = stack.enter_context(embedded_broker(host))
            say(f"embedded MQTT broker at {broker}")
        ready = threading.Event()
        ing = Ingestor(store, city=tw.name, assets=assets_of(tw), timezone=tw.city.timezone)
        from live.alarms import Alarms, evaluate

        alarms = Alarms(store)
        server = _http(host, port, ing, ready, alarms)
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        svc = IngestService(ing, broker, qos=1)
        svc.start()
        stack.callback(svc.stop)
        from live.control import AckFollower

        follower = AckFollower(store, broker, city=tw.name).start()
        stack.callback(follower.stop)
        sim = None
        if devices:
            from live.devices import Devices

            sim = Devices(tw, broker)
            if weather is not None:
                sim.weather(offset_c=weather[0], precip_mm_h=weather[1])
                say(f"simulated weather: {weather[0]:+g} degC, {weather[1]:g} mm/h")
            for kind, asset in faults:
                sim.fault(cast("Fault", kind), asset)
                say(f"simulated fault: {kind} on {asset}")
            t = time.perf_counter()
            sim.prepare()  # the hour's traffic DES and the day's footfall, before the clock runs
            say(
                f"simulated devices ready in {time.perf_counter() - t:.1f} s"
                + (f" ({sim.detector_note})" if sim.detector_note else "")
            )
            sim.start()
            stack.callback(sim.stop)
        ready.set()
        say(
            f"{tw.name}: ingesting twin/{tw.name}/telemetry/# into {store.url}; "
            f"health at http://{host}:{port}/health" + ("; simulated devices on" if sim else "")
        )
        end = None if duration_s is None else time.monotonic() + duration_s
        next_round = time.monotonic()
        published = 0
        lights = tw.registry["light"][["id", "cabinet", "power_w"]]
        types = (
            dict(
                zip(tw.registry["sensor"]["id"], tw.registry["sensor"]["sensor_type"], strict=True)
            )
            if "sensor" in tw.registry.kinds
            else {}
        )
        next_check = time.monotonic() + period_s
        started = dt.datetime.now(dt.UTC)
        engine = None
        events_out = None
        actions = None
        worker = None
        if rules is not None:
            from concurrent.futures import ThreadPoolExecutor

            from live.actions import Actions, check_actions
            from live.mqtt import connect
            from live.rules import load_rules

            engine = load_rules(Path(rules))
            check_actions(engine.rules)
            acts = actions = Actions(tw, store, broker)
            worker = ThreadPoolExecutor(1, thread_name_prefix="twin-actions")
            stack.callback(worker.shutdown)
            events_out = connect(broker, f"twin-rules-{tw.name}")
            stack.callback(events_out.loop_stop)
            stack.callback(events_out.disconnect)

            def act(ev: dict[str, Any]) -> None:
                try:
                    results = acts.handle(ev, ing.state)
                except Exception as exc:  # noqa: BLE001 - the service goes on; say why
                    say(f"rule {ev['rule']!r} on {ev['asset']}: action failed: {exc!r}")
                    return
                for r in results:
                    why = f": {r['reason']}" if r["result"] == "failed" else ""
                    say(f"rule {r['rule']!r} on {r['asset']}: {r['action']} {r['result']}{why}")

        while end is None or time.monotonic() < end:
            if time.monotonic() >= next_check:
                next_check += period_s
                got = evaluate(
                    alarms,
                    ing.state,
                    lights,
                    now=dt.datetime.now(dt.UTC),
                    sensor_types=types,
                    since=started,
                )
                if got["raised"] or got["cleared"]:
                    say(f"alarms: {got['raised']} raised, {got['cleared']} cleared")
                if engine is not None and events_out is not None:
                    for ev in engine.evaluate(ing.state):
                        name = ev["rule"].replace(" ", "_")
                        events_out.publish(
                            f"twin/{tw.name}/event/{name}", json.dumps(ev).encode(), qos=1
                        )
                        say(f"rule {ev['rule']!r} fired on {ev['asset']}")
                        if worker is not None:
                            worker.submit(act, ev)
                    if actions is not None and worker is not None:
                        for rule, asset in engine.ended:
                            worker.submit(actions.ended, rule, asset)
            if sim is not None and time.monotonic() >= next_round:
                n = sim.publish_telemetry()
                published += n
                next_round += period_s
                c = ing.counters
                say(
                    f"published {n}; received {c['received']}, accepted {c['accepted']}, "
                    f"rejected {ing.rejected()}, duplicates {c['duplicate']}"
                )
            time.sleep(0.05)
        if sim is not None:
            svc.wait_for(published, timeout=30)
        return dict(ing.counters)
