"""MQTT plumbing: broker URLs, clients, and the ingestion service that feeds an :class:`Ingestor`.

:class:`IngestService` subscribes to ``twin/<city>/telemetry/#`` (MQTT 5; optionally as a
shared subscription ``$share/<group>/...`` so that several worker processes split the stream)
with a persistent session (``clean_start=False``, a fixed client id and a session expiry), so
that the broker keeps what arrives while the service is away.

It runs in two processes. A receive process (:mod:`live._receiver`) holds the MQTT connection
and does nothing but read raw messages and pass them on through a pipe; this process takes
what has arrived, validates and stores it in one batch, and only then sends the packet ids
back to be acknowledged (manual PUBACK at QoS 1). A message is therefore acknowledged only
once it is durable: if either process dies first, the broker sends it again, and the store's
key drops the copy. Validation and storage used to run beside paho's network thread, in the
same interpreter: every one of paho's several system calls per message gave the GIL away and
waited to get it back from the worker, and at QoS 0 the socket was drained at two thirds of
the rate of a bare client (``benchmarks/ingestion.py`` measures both).

Broker URLs are ``mqtt://HOST[:PORT][?protocol=5|3.1.1]``. Without ``protocol`` a client tries
MQTT 5 first and falls back to 3.1.1 (a 3.1.1 broker refuses an MQTT 5 CONNECT, or never
answers it: that costs a second); the embedded broker of ``twin serve`` gives its URL with
``?protocol=3.1.1`` so that every client speaks 3.1.1 to it at once. A URL without
``protocol`` that names an embedded broker running in this process (:func:`embedded_3_1_1`)
is taken as 3.1.1 too: amqtt never answers an MQTT 5 CONNECT, and a shared subscription asked
of it is refused before anything connects. Elsewhere a shared subscription connects with
MQTT 5 only, never falling back to 3.1.1, whose brokers take ``$share/...`` for a plain topic.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import paho.mqtt.client as paho

from live._receiver import (
    PROTOCOLS,
    Queued,
    connect_client,
    read_frame,
    session_properties,
    write_frame,
)
from twin._errors import InputValidationError

if TYPE_CHECKING:
    from live.ingest import Ingestor

__all__ = [
    "IngestService",
    "broker_address",
    "broker_protocol",
    "connect",
    "embedded_3_1_1",
    "embedded_broker_at",
    "publish_many",
    "session_properties",
]

_RECEIVER = Path(__file__).with_name("_receiver.py")

#: ``(ip, port)`` of the MQTT 3.1.1-only brokers running in this process (the embedded amqtt
#: broker of ``twin serve``: :func:`live.serve.embedded_broker` adds and removes its own).
_EMBEDDED_3_1_1: set[tuple[str, int]] = set()


def broker_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``mqtt://host[:port]`` (port 1883 by default).

    >>> broker_address("mqtt://127.0.0.1:18830")
    ('127.0.0.1', 18830)
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        msg = f"--broker: {url!r} is not mqtt://HOST[:PORT]"
        raise InputValidationError(msg)
    try:
        port = parsed.port or 1883
    except ValueError:  # urllib's "Port out of range 0-65535", or not a number
        msg = f"--broker: {url!r}: the port is not a TCP port (1-65535)"
        raise InputValidationError(msg) from None
    return parsed.hostname, port


def _ip(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def embedded_3_1_1(url: str) -> bool:
    """Whether ``url`` is the address of an MQTT 3.1.1-only broker running in this process.

    That is the embedded broker of ``twin serve`` (:func:`live.serve.embedded_broker`), by its
    address (a host name is resolved), whatever the URL's ``?protocol=`` says.
    """
    host, port = broker_address(url)
    return (_ip(host), port) in _EMBEDDED_3_1_1


@contextlib.contextmanager
def embedded_broker_at(host: str, port: int) -> Iterator[None]:
    """Mark ``host:port`` as an MQTT 3.1.1-only broker of this process while the block runs."""
    key = (_ip(host), port)
    _EMBEDDED_3_1_1.add(key)
    try:
        yield
    finally:
        _EMBEDDED_3_1_1.discard(key)


def broker_protocol(url: str) -> str | None:
    """The MQTT version to speak to a broker: the URL's ``?protocol=5`` or ``3.1.1``, else ``None``.

    ``None`` means: try MQTT 5, then 3.1.1. A URL without ``protocol`` that names an embedded
    broker of this process (:func:`embedded_3_1_1`) gives ``"3.1.1"``.

    >>> broker_protocol("mqtt://127.0.0.1:1883?protocol=3.1.1")
    '3.1.1'
    >>> broker_protocol("mqtt://127.0.0.1:1883") is None
    True
    """
    given = parse_qs(urlparse(url).query).get("protocol")
    if not given:
        return "3.1.1" if embedded_3_1_1(url) else None
    if given[-1] not in PROTOCOLS:
        msg = f"--broker: {url!r}: protocol={given[-1]} is neither 5 nor 3.1.1"
        raise InputValidationError(msg)
    return given[-1]


def connect(url: str, client_id: str, **options: Any) -> paho.Client:
    """A connected MQTT client with its network loop running (``loop_start``).

    MQTT 5, or 3.1.1 with a broker that speaks only that (see the module docstring). The
    keyword options are those of :func:`live._receiver.connect_client`: ``persistent``,
    ``manual_ack``, ``timeout`` (s), ``on_message``, ``on_connect``, ``on_subscribe``. With
    ``persistent``, the session survives disconnections (``clean_start=False``, one hour
    of session expiry), and the broker queues the client's QoS 1 messages meanwhile; give
    ``on_message`` then, so that the queued messages that arrive with the connection are not
    dropped before a callback is set.
    """
    host, port = broker_address(url)
    return connect_client(host, port, client_id, protocol=broker_protocol(url), **options)


def publish_many(
    client: paho.Client,
    messages: Iterable[tuple[str, bytes]],
    *,
    qos: int = 1,
    window: int = 30_000,
    timeout: float = 60.0,
) -> int:
    """Publish many messages with at most ``window`` unacknowledged at once; returns the count.

    paho numbers QoS 1 messages with 16-bit ids: past 65,535 outstanding ones it reuses ids of
    messages still in flight and loses track of them, so a large burst must be paced.

    A message published while the client is disconnected (the broker restarting) is held by
    paho and sent once it reconnects: it is not waited for (paho's wait reports the
    disconnection at once, for good), and counts as published.
    """
    pending: collections.deque[paho.MQTTMessageInfo] = collections.deque()
    n = 0
    for topic_name, payload in messages:
        pending.append(client.publish(topic_name, payload, qos=qos))
        n += 1
        if qos > 0 and len(pending) > window:
            _wait_published(pending.popleft(), timeout)
    for info in pending:
        if qos > 0:
            _wait_published(info, timeout)
    return n


def _wait_published(info: paho.MQTTMessageInfo, timeout: float) -> None:
    if info.rc == paho.MQTT_ERR_NO_CONN:
        return  # held by paho until it reconnects
    info.wait_for_publish(timeout)


class IngestService:
    """Telemetry from a broker into an :class:`Ingestor` (see the module docstring).

    Parameters
    ----------
    ingestor : Ingestor
    url : str
        ``mqtt://host:port`` (``?protocol=3.1.1`` for a broker that speaks only that).
    qos : 0 or 1
        Subscription QoS; at 1 a message is acknowledged after it is stored.
    client_id : str, optional
        Fixed id of the persistent session (default ``twin-ingest-<city>``).
    share : str, optional
        Join the shared subscription group of that name (workers split the messages). Needs
        an MQTT 5 broker: refused at once (``InputValidationError``) when the URL says
        ``?protocol=3.1.1`` or names the embedded broker, and connected with MQTT 5 only
        otherwise (:meth:`start` raises ``ConnectionError`` if the broker refuses MQTT 5).
    batch : int
        Most messages validated and stored in one transaction.
    linger_s : float
        How long the worker waits for more messages when fewer than ``batch`` have arrived:
        fewer, larger transactions (a PostgreSQL commit waits for its disk flush) for at most
        that much more latency.
    """

    def __init__(
        self,
        ingestor: Ingestor,
        url: str,
        *,
        qos: int = 1,
        client_id: str | None = None,
        share: str | None = None,
        batch: int = 5000,
        linger_s: float = 0.0,
    ) -> None:
        if qos not in (0, 1):
            msg = f"qos: {qos} is neither 0 nor 1"
            raise InputValidationError(msg)
        self.ingestor = ingestor
        self.url = url
        self.host, self.port = broker_address(url)
        self.protocol = broker_protocol(url)
        if share and (self.protocol == "3.1.1" or embedded_3_1_1(url)):
            msg = _share_error(url)
            raise InputValidationError(msg)
        if share:
            # never fall back to 3.1.1: such a broker takes `$share/...` for a plain topic
            self.protocol = "5"
        self.qos = qos
        self.client_id = client_id or f"twin-ingest-{ingestor.city}"
        pattern = f"twin/{ingestor.city}/telemetry/#"
        self.share = share
        self.pattern = f"$share/{share}/{pattern}" if share else pattern
        self.batch = batch
        self.linger_s = linger_s
        self.poll_s = 0.005
        self._queue: collections.deque[Queued] = collections.deque()
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._subscribed = threading.Event()
        self._worker: threading.Thread | None = None
        self._reader: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._send_lock = threading.Lock()
        self._fatal: str | None = None
        self.error: BaseException | None = None
        self.batches = 0
        #: ``session_present`` of each connection: ``False`` after the first means the broker
        #: lost the session (and what it had queued)
        self.sessions: list[bool] = []

    # -- the receive process -----------------------------------------------------------------
    def _spawn(self) -> subprocess.Popen[bytes]:
        cfg = {
            "host": self.host,
            "port": self.port,
            "client_id": self.client_id,
            "protocol": self.protocol,
            "pattern": self.pattern,
            "qos": self.qos,
            "share": bool(self.share),
            "timeout": 15.0,
        }
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        return subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(_RECEIVER), json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=1 << 20,
        )

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        q = self._queue
        while (frame := read_frame(proc.stdout)) is not None:
            kind, body = frame
            if kind == b"M":
                q.extend(body)
            elif kind == b"C":
                self.sessions.append(bool(body[0]))
            elif kind == b"S":
                self._subscribed.set()
            elif kind == b"E":
                break
            elif kind == b"X":
                self._fatal = str(body)
                break
        self._ended.set()
        self._subscribed.set()

    def _tell(self, kind: bytes, body: Any) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return False
        with self._send_lock:
            try:
                write_frame(proc.stdin, kind, body)
            except (BrokenPipeError, ValueError):  # the receiver is gone
                return False
        return True

    def _receiver_error(self, what: str) -> ConnectionError:
        detail = self._fatal or ""
        if not detail and self._stderr is not None:
            self._stderr.seek(0)
            tail = self._stderr.read()[-800:].decode("utf-8", "replace").strip()
            detail = tail.splitlines()[-1] if tail else "no message"
        detail = detail.removeprefix("--broker: ")  # `what` names the broker already
        if "shared subscriptions need MQTT 5" in detail:
            detail = _share_error(self.url)
        elif self.share and "no MQTT broker answered" in detail:
            detail += " with MQTT 5, which a shared subscription needs (Mosquitto speaks it)"
        return ConnectionError(f"{what}: {detail}")

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> IngestService:
        """Start the receive process and the worker; return once subscribed.

        Raises ``ConnectionError`` when no broker answers at the URL, or when a shared
        subscription is asked of a broker that speaks only MQTT 3.1.1.
        """
        self._proc = self._spawn()
        self._reader = threading.Thread(target=self._read, name="twin-ingest-read", daemon=True)
        self._reader.start()
        self._worker = threading.Thread(target=self._run, name="twin-ingest", daemon=True)
        self._worker.start()
        if not self._subscribed.wait(30) or self._ended.is_set():
            error = self._receiver_error(
                f"--broker: the ingestion could not subscribe at {self.url}"
            )
            self.stop(drain=False)
            raise error
        return self

    def _run(self) -> None:
        q = self._queue
        while True:
            if not q:
                if self._ended.is_set():
                    return
                self._ended.wait(self.poll_s)  # polled: waking the worker per frame costs more
                continue
            if self.linger_s and len(q) < self.batch and not self._ended.is_set():
                self._ended.wait(self.linger_s)
            msgs: list[Queued] = []
            while q and len(msgs) < self.batch:
                msgs.append(q.popleft())
            try:
                self.ingestor.ingest([(t.decode("utf-8", "replace"), p) for t, p, *_ in msgs])
            except BaseException as exc:  # the store failed: leave unacknowledged, stop
                self.error = exc
                return
            self.batches += 1
            if self.qos > 0:
                self._tell(b"A", [(mid, qos, conn) for _, _, mid, qos, conn in msgs if qos])

    def stop(self, *, drain: bool = True) -> None:
        """Stop: with ``drain``, store (and acknowledge) what has arrived first; then disconnect.

        Messages that arrive while stopping are neither stored nor acknowledged: at QoS 1 the
        broker keeps them for the next session.
        """
        proc = self._proc
        if proc is None:
            return
        if drain and self._tell(b"D", 0) and self._reader is not None:
            self._reader.join(timeout=30)
        else:
            self._queue.clear()
        self._ended.set()
        if self._worker is not None:
            self._worker.join(timeout=60)
        self._tell(b"Q", 0)
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
        self._proc = None

    def wait_for(self, n: int, *, timeout: float = 60.0) -> bool:
        """Wait until ``n`` messages were received by the ingestor; ``False`` on timeout.

        Raises the store's error if storing failed, and ``ConnectionError`` if the receive
        process ended.
        """
        end = time.monotonic() + timeout
        while self.ingestor.counters["received"] < n:
            if self.error is not None:
                raise self.error
            if self._ended.is_set() and not self._queue and self._proc is not None:
                what = "the MQTT receive process ended"
                raise self._receiver_error(what)
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def __enter__(self) -> IngestService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _share_error(url: str) -> str:
    return (
        f"--broker: {url}: shared subscriptions ($share/...) need an MQTT 5 broker, and this "
        "one speaks MQTT 3.1.1 only (as the embedded amqtt broker of `twin serve` does): "
        "give a Mosquitto broker with --broker mqtt://HOST:PORT, or run one worker"
    )
