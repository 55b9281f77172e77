"""The MQTT connection, and the receive process of :class:`live.mqtt.IngestService`.

Two things live here, both free of the rest of the package (only paho and the standard
library), so that this file also runs on its own as a child process that starts in a tenth of
a second:

* :func:`connect_client`: a connected paho client, MQTT 5 or 3.1.1 (what
  :func:`live.mqtt.connect` builds on);
* :func:`main`: the receive process. It holds the subscription and does nothing but read from
  the broker and pass the raw messages (topic and payload bytes, packet id, QoS) to its parent
  through a pipe, in frames of a few milliseconds' worth. The parent validates and stores them
  and sends back the packet ids to acknowledge (QoS 1): the broker gets a PUBACK only once the
  message is durable. Validation and storage thus run in another process than paho's network
  thread: they no longer contend with it for the GIL, and on two cores the socket is drained
  as fast as a bare client drains it.

Frames (both directions): one type byte, a 4-byte big-endian length, then a body in
:mod:`marshal` format (tuples of bytes and ints: the fastest Python codec, safe between two
processes of the same interpreter). Child to parent: ``C`` connected ``(session_present,
protocol)``, ``S`` subscribed, ``M`` messages ``[(topic, payload, mid, qos, connection), ...]``,
``E`` end of input (after a ``D``), ``X`` fatal error text. Parent to child: ``A`` acknowledge
``[(mid, qos, connection), ...]``, ``D`` stop passing messages on, ``Q`` disconnect and exit.
End of input on stdin (the parent died) makes the child exit at once, acknowledging nothing:
the broker sends the unacknowledged messages again to the next session.

The ``connection`` number counts the child's connections: an acknowledgement decided during an
earlier connection is dropped, because after a reconnection the broker may have given its
packet id to another message (it resends the unacknowledged one, which is then acknowledged as
a duplicate).
"""

from __future__ import annotations

import collections
import contextlib
import json
import marshal
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = [
    "PROTOCOLS",
    "Queued",
    "ack_all",
    "connect_client",
    "main",
    "read_frame",
    "session_properties",
    "write_frame",
]

#: MQTT protocol versions by the names a broker URL may give (``?protocol=5``).
PROTOCOLS: dict[str, MQTTProtocolVersion] = {"5": paho.MQTTv5, "3.1.1": paho.MQTTv311}

_HEADER = struct.Struct(">cI")
_PUBACK = struct.Struct("!BBH").pack
_U16 = struct.Struct("!H")
_PUBACK_BYTE = 0x40
#: A message passed on: topic, payload, packet id, QoS, connection number.
Queued = tuple[bytes, bytes | bytearray, int, int, int]


def session_properties(expiry_s: int = 3600) -> Properties:
    """CONNECT properties of a persistent session that outlives a disconnection by ``expiry_s``."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry_s
    return props


def connect_client(
    host: str,
    port: int,
    client_id: str,
    *,
    protocol: str | None = None,
    persistent: bool = False,
    manual_ack: bool = False,
    timeout: float = 10.0,
    on_message: Any = None,
    on_connect: Any = None,
    on_subscribe: Any = None,
    client_class: Callable[..., paho.Client] = paho.Client,
) -> paho.Client:
    """A connected client with its network loop running; see :func:`live.mqtt.connect`.

    ``protocol`` ``"5"`` or ``"3.1.1"`` connects with that version at once; ``None`` tries
    MQTT 5 first and falls back to 3.1.1 when the broker refuses it or does not answer.
    """
    url = f"mqtt://{host}:{port}"
    tries: tuple[tuple[MQTTProtocolVersion, float], ...]
    if protocol is None:
        tries = ((paho.MQTTv5, min(timeout, 3.0)), (paho.MQTTv311, timeout))
    else:
        tries = ((PROTOCOLS[protocol], timeout),)
    for version, wait in tries:
        client, rc = _attempt(
            host, port, client_id, version, persistent, manual_ack, wait,
            on_message, on_connect, on_subscribe, client_class,
        )  # fmt: skip
        if rc is not None and not rc.is_failure:
            break
        client.loop_stop()
        with contextlib.suppress(OSError):
            client.disconnect()
        more = version == paho.MQTTv5 and len(tries) > 1
        if more and (rc is None or str(rc) == "Unsupported protocol version"):
            continue
        msg = f"--broker: no MQTT broker answered at {url} ({rc or 'timeout'})"
        raise ConnectionError(msg)
    client.on_connect = on_connect
    return client


class _BufferedSocket:
    """A socket that reads 256 KiB at a time and hands paho the bytes it asks for.

    paho reads each packet with three or four ``recv`` calls (its type, its length, its body)
    and goes through ``select`` before each packet: five system calls per message, which is
    most of what a bare paho client spends. Served from one large read, a whole burst of
    messages costs one call. ``pending`` tells paho's loop that bytes are waiting here (it asks
    it of TLS sockets for the same reason), so that it does not wait in ``select`` for them.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        if self._pos >= len(self._buf):
            data: bytes = self._sock.recv(1 << 18)  # BlockingIOError if nothing came: paho's cue
            if not data:  # the broker closed the connection
                return data
            self._buf, self._pos = data, 0
        out: bytes = self._buf[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def pending(self) -> int:
        return len(self._buf) - self._pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _ReceivingClient(paho.Client):
    """paho's client as the receive process uses it: lean reads and lean PUBLISH handling.

    It reads through a :class:`_BufferedSocket`, and hands each PUBLISH of QoS 0 or 1 to
    ``deliver(topic, payload, packet_id, qos)`` as bytes, skipping what paho builds per
    message for a general application (an ``MQTTMessage``, its MQTT 5 properties decoded into
    objects, a log line, the topic matched against per-topic callbacks). The service needs
    none of it: it takes the topic and the payload as bytes, and this client asks for no topic
    aliases (so every PUBLISH carries its topic). QoS 2 and every other packet go through
    paho unchanged.
    """

    def __init__(self, *args: Any, deliver: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deliver = deliver

    def _handle_publish(self) -> MQTTErrorCode:
        cmd = self._in_packet["command"]
        qos = (cmd & 0x06) >> 1
        if qos > 1:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        (size,) = _U16.unpack_from(packet, 0)
        pos = 2 + size
        topic = bytes(packet[2:pos])
        mid = 0
        if qos:
            (mid,) = _U16.unpack_from(packet, pos)
            pos += 2
        if self._protocol == paho.MQTTv5:  # skip the properties (a variable-length size first)
            length, shift = 0, 0
            while True:
                byte = packet[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            pos += length
        self._deliver(topic, bytes(packet[pos:]), mid, qos)
        if qos and not self._manual_ack:
            return self._send_puback(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _create_socket(self) -> Any:
        return _BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        sock: Any = self._sock
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and sock is not None and sock.pending():
            rc = super().loop_read(1)  # every packet already read, without a select between
            sock = self._sock
        return rc


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
    client_class: Callable[..., paho.Client] = paho.Client,
) -> tuple[paho.Client, Any]:
    v5 = protocol == paho.MQTTv5
    client = client_class(
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
    try:
        client.connect(host, port, keepalive=30, **kwargs)
    except OSError as exc:  # a closed port, a host name that does not resolve
        reason = exc.strerror or str(exc) or type(exc).__name__
        msg = f"--broker: no MQTT broker answered at mqtt://{host}:{port} ({reason})"
        raise ConnectionError(msg) from None
    client.loop_start()
    ready.wait(timeout)
    if result and result[0].is_failure:
        client.loop_stop()
    return client, (result[0] if result else None)


def ack_all(client: paho.Client, mids: list[int]) -> None:
    """Acknowledge QoS 1 messages (manual PUBACK), in one write to the socket.

    paho's :meth:`~paho.mqtt.client.Client.ack` queues one packet per message, wakes the
    network thread with one system call each and writes each packet with another: for a batch
    of thousands, the cost of receiving them again. The PUBACKs of a batch are one buffer here
    (MQTT 3.1.1 and 5 alike: ``0x40 0x02 <packet id>``, a success without properties), queued
    as one packet in paho's own outgoing queue, so that it stays in order with the rest.
    Should a paho release lack that queue, each message is acknowledged with ``ack``.
    """
    queue = getattr(client, "_packet_queue", None)
    if queue is None:
        for mid in mids:
            client.ack(mid, 1)
    elif mids:
        queue(_PUBACK_BYTE, b"".join([_PUBACK(_PUBACK_BYTE, 2, mid) for mid in mids]), 0, 1)


def write_frame(out: IO[bytes], kind: bytes, body: Any) -> None:
    """Write one frame (see the module docstring) and flush it."""
    data = marshal.dumps(body)
    out.write(_HEADER.pack(kind, len(data)) + data)
    out.flush()


def read_frame(inp: IO[bytes]) -> tuple[bytes, Any] | None:
    """The next frame ``(kind, body)``, or ``None`` at the end of the stream."""
    head = inp.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    kind, size = _HEADER.unpack(head)
    data = inp.read(size)
    if len(data) < size:
        return None
    return kind, marshal.loads(data)


class _Receiver:
    """The child's side (see the module docstring)."""

    def __init__(self, cfg: dict[str, Any], out: IO[bytes]) -> None:
        self.cfg = cfg
        self.out = out
        self.lock = threading.Lock()
        self.queue: collections.deque[Queued] = collections.deque()
        self.connection = 0
        self.passing = True
        self.client: paho.Client | None = None

    def send(self, kind: bytes, body: Any) -> None:
        with self.lock:
            write_frame(self.out, kind, body)

    def deliver(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        if self.passing:  # a message not passed on is not acknowledged: the broker resends it
            self.queue.append((topic, payload, mid, qos, self.connection))

    def make_client(self, *args: Any, **kwargs: Any) -> paho.Client:
        return _ReceivingClient(*args, deliver=self.deliver, **kwargs)

    def on_connect(self, c: paho.Client, u: Any, flags: Any, rc: Any, props: Any = None) -> None:
        # on every (re)connection: subscribing again is harmless and covers a lost session
        self.connection += 1
        self.send(b"C", (bool(getattr(flags, "session_present", False)), int(c.protocol)))
        if self.cfg["share"] and c.protocol != paho.MQTTv5:
            return  # a 3.1.1 broker would take `$share/...` for a plain topic: never ask it
        c.subscribe(self.cfg["pattern"], qos=self.cfg["qos"])

    def flush(self) -> None:
        q = self.queue
        with self.lock:
            if q:
                write_frame(self.out, b"M", [q.popleft() for _ in range(len(q))])

    def pump(self) -> None:
        period = self.cfg.get("flush_s", 0.02)
        while True:
            time.sleep(period)
            self.flush()

    def run(self, inp: IO[bytes]) -> None:
        cfg = self.cfg
        try:
            client = connect_client(
                cfg["host"],
                cfg["port"],
                cfg["client_id"],
                protocol=cfg["protocol"],
                persistent=True,
                manual_ack=cfg["qos"] > 0,
                timeout=cfg.get("timeout", 15.0),
                on_connect=self.on_connect,
                on_subscribe=lambda *a, **k: self.send(b"S", 0),
                client_class=self.make_client,
            )
        except (ConnectionError, OSError) as exc:
            self.send(b"X", str(exc))
            return
        if cfg["share"] and client.protocol != paho.MQTTv5:
            client.disconnect()
            client.loop_stop()
            self.send(b"X", "shared subscriptions need MQTT 5; the broker speaks 3.1.1 only")
            return
        client.reconnect_delay_set(min_delay=0.05, max_delay=1)  # type: ignore[arg-type]
        self.client = client
        threading.Thread(target=self.pump, name="twin-receive-pump", daemon=True).start()
        while (frame := read_frame(inp)) is not None:
            kind, body = frame
            if kind == b"A":
                now = self.connection
                ack_all(client, [mid for mid, qos, conn in body if conn == now and qos == 1])
            elif kind == b"D":
                self.passing = False
                self.flush()
                self.send(b"E", 0)
            elif kind == b"Q":
                client.disconnect()
                client.loop_stop()
                return
        os._exit(0)  # the parent died: leave at once, acknowledging nothing more


def main(argv: list[str] | None = None) -> None:
    """Run the receive process: ``python _receiver.py CONFIG_JSON`` (see the module docstring)."""
    cfg = json.loads((argv or sys.argv)[1])
    # Ctrl-C reaches the whole process group: the parent stops this process in order (store,
    # acknowledge, then disconnect), and its death alone ends it otherwise (end of stdin)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    with contextlib.suppress(OSError):  # Linux: a larger pipe holds more between two reads
        import fcntl

        fcntl.fcntl(out.fileno(), 1031, 1 << 20)  # F_SETPIPE_SZ
    _Receiver(cfg, out).run(sys.stdin.buffer)


if __name__ == "__main__":
    main()
