"""MQTT plumbing: broker URLs, clients, and the ingestion service that feeds an :class:`Ingestor`.

:class:`IngestService` subscribes to ``twin/<city>/telemetry/#`` (MQTT 5; optionally as a
shared subscription ``$share/<group>/...`` so that several worker processes split the stream)
with a persistent session (``clean_start=False``, a fixed client id and a session expiry), so
that the broker keeps what arrives while the service is away. Its network callback only queues
the message; a worker thread takes what has arrived, validates and stores it in one batch, and
only then acknowledges it (manual PUBACK at QoS 1). A message is therefore acknowledged only
once it is durable: if the process dies first, the broker sends it again, and the store's key
drops the copy.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from live.ingest import Ingestor
from twin._errors import InputValidationError

__all__ = ["IngestService", "broker_address", "connect", "publish_many", "session_properties"]

_Queued = tuple[bytes, bytes | bytearray, int, int]  # topic, payload, packet id, QoS


def broker_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``mqtt://host[:port]`` (port 1883 by default).

    >>> broker_address("mqtt://127.0.0.1:18830")
    ('127.0.0.1', 18830)
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        msg = f"--broker: {url!r} is not mqtt://HOST[:PORT]"
        raise InputValidationError(msg)
    return parsed.hostname, parsed.port or 1883


def session_properties(expiry_s: int = 3600) -> Properties:
    """CONNECT properties of a persistent session that outlives a disconnection by ``expiry_s``."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry_s
    return props


def connect(
    url: str,
    client_id: str,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    timeout: float = 10.0,
    on_message: Any = None,
    on_connect: Any = None,
    on_subscribe: Any = None,
) -> paho.Client:
    """A connected MQTT 5 client with its network loop running (``loop_start``).

    With ``persistent``, the session survives disconnections (``clean_start=False``, one hour
    of session expiry), and the broker queues the client's QoS 1 messages meanwhile; give
    ``on_message`` then, so that the queued messages that arrive with the connection are not
    dropped before a callback is set.
    """
    host, port = broker_address(url)
    # MQTT 5 first; a 3.1.1 broker (amqtt, the embedded one) refuses it or never answers a
    # CONNECT with properties: then speak 3.1.1 (clean_session=False keeps the session)
    for protocol, wait in ((paho.MQTTv5, min(timeout, 3.0)), (paho.MQTTv311, timeout)):
        client, rc = _attempt(
            host, port, client_id, protocol, persistent, manual_ack, wait,
            on_message, on_connect, on_subscribe,
        )  # fmt: skip
        if rc is not None and not rc.is_failure:
            break
        client.loop_stop()
        with contextlib.suppress(OSError):
            client.disconnect()
        if protocol == paho.MQTTv5 and (rc is None or str(rc) == "Unsupported protocol version"):
            continue
        msg = f"--broker: no MQTT broker answered at {url} ({rc or 'timeout'})"
        raise ConnectionError(msg)
    client.on_connect = on_connect
    return client


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
    """
    pending: collections.deque[paho.MQTTMessageInfo] = collections.deque()
    n = 0
    for topic_name, payload in messages:
        pending.append(client.publish(topic_name, payload, qos=qos))
        n += 1
        if qos > 0 and len(pending) > window:
            pending.popleft().wait_for_publish(timeout)
    for info in pending:
        if qos > 0:
            info.wait_for_publish(timeout)
    return n


def _attempt(
    host: str,
    port: int,
    client_id: str,
    protocol: MQTTProtocolVersion,
    persistent: bool,
    manual_ack: bool,
    timeout: float,
    on_message: Any,
    on_connect: Any,
    on_subscribe: Any,
) -> tuple[paho.Client, Any]:
    v5 = protocol == paho.MQTTv5
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        manual_ack=manual_ack,
        clean_session=None if v5 else not persistent,
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    ready = threading.Event()
    result: list[Any] = []

    def connected(c: paho.Client, u: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if on_connect is not None and not rc.is_failure:
            on_connect(c, u, flags, rc, props)
        result.append(rc)
        ready.set()

    client.on_connect = connected
    if on_message is not None:
        client.on_message = on_message
    if on_subscribe is not None:
        client.on_subscribe = on_subscribe
    kwargs: dict[str, Any] = {}
    if v5:
        kwargs["clean_start"] = not persistent
        kwargs["properties"] = session_properties() if persistent else None
    client.connect(host, port, keepalive=30, **kwargs)
    client.loop_start()
    ready.wait(timeout)
    if result and result[0].is_failure:
        client.loop_stop()
    return client, (result[0] if result else None)


class IngestService:
    """Telemetry from a broker into an :class:`Ingestor` (see the module docstring).

    Parameters
    ----------
    ingestor : Ingestor
    url : str
        ``mqtt://host:port``.
    qos : 0 or 1
        Subscription QoS; at 1 a message is acknowledged after it is stored.
    client_id : str, optional
        Fixed id of the persistent session (default ``twin-ingest-<city>``).
    share : str, optional
        Join the shared subscription group of that name (workers split the messages).
    batch : int
        Most messages validated and stored in one transaction.
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
    ) -> None:
        self.ingestor = ingestor
        self.url = url
        self.qos = qos
        self.client_id = client_id or f"twin-ingest-{ingestor.city}"
        pattern = f"twin/{ingestor.city}/telemetry/#"
        self.pattern = f"$share/{share}/{pattern}" if share else pattern
        self.batch = batch
        self.poll_s = 0.01
        self._queue: collections.deque[_Queued] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._worker: threading.Thread | None = None
        self.client: paho.Client | None = None
        self.error: BaseException | None = None
        self.batches = 0
        #: ``session_present`` of each connection: ``False`` after the first means the broker
        #: lost the session (and what it had queued)
        self.sessions: list[bool] = []

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        # nothing else on the network thread; a tuple of bytes and ints, not the message object:
        # the cyclic GC skips such tuples, where thousands of queued messages cost it dearly
        self._queue.append((msg._topic, msg.payload, msg.mid, msg.qos))

    def _on_connect(self, c: paho.Client, u: Any, flags: Any, rc: Any, props: Any = None) -> None:
        # on every (re)connection: the broker keeps the subscription of a persistent session;
        # subscribing again is harmless and covers a session the broker lost
        if not getattr(rc, "is_failure", False):
            self.sessions.append(bool(getattr(flags, "session_present", False)))
            c.subscribe(self.pattern, qos=self.qos)

    def start(self) -> IngestService:
        """Start the worker, connect and subscribe (the worker drains from the first message)."""
        self._worker = threading.Thread(target=self._run, name="twin-ingest", daemon=True)
        self._worker.start()
        subscribed = threading.Event()
        self._subscribed = subscribed
        client = connect(
            self.url,
            self.client_id,
            persistent=True,
            manual_ack=self.qos > 0,
            timeout=15,
            on_message=self._on_message,
            on_connect=self._on_connect,
            on_subscribe=lambda *a, **k: subscribed.set(),
        )
        subscribed.wait(10)
        # paho types the delays as int; it sleeps on floats (a broker restart is back in ~0.1 s)
        client.reconnect_delay_set(min_delay=0.05, max_delay=1)  # type: ignore[arg-type]
        self.client = client
        self._ready.set()
        return self

    def _run(self) -> None:
        q = self._queue
        while not (self._stop.is_set() and not q):
            if not q:
                self._wake.wait(self.poll_s)  # polled: waking the worker per message costs more
                continue
            msgs: list[_Queued] = []
            while q and len(msgs) < self.batch:
                msgs.append(q.popleft())
            try:
                self.ingestor.ingest([(t.decode("utf-8", "replace"), p) for t, p, _, _ in msgs])
            except BaseException as exc:  # the store failed: leave unacknowledged, stop
                self.error = exc
                return
            self.batches += 1
            if self.qos > 0:
                self._ready.wait()
                client = self.client
                assert client is not None
                for _, _, mid, qos in msgs:
                    if qos > 0:
                        client.ack(mid, qos)

    def stop(self, *, drain: bool = True) -> None:
        """Stop: with ``drain``, store what has arrived first; then disconnect."""
        if not drain:
            self._queue.clear()
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=60)
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None

    def wait_for(self, n: int, *, timeout: float = 60.0) -> bool:
        """Wait until ``n`` messages were received by the ingestor; ``False`` on timeout."""
        end = time.monotonic() + timeout
        while self.ingestor.counters["received"] < n:
            if self.error is not None:
                raise self.error
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def __enter__(self) -> IngestService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
