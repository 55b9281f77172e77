"""The paho-mqtt 2.x internals that the receive process (live/_receiver.py) relies on.

The receive process reads PUBLISH packets itself, through private members of
``paho.mqtt.client.Client``: it overrides ``_handle_publish``, ``_create_socket`` and
``loop_read``, reads ``_in_packet["command"]`` and ``_in_packet["packet"]``, ``_protocol`` and
``_manual_ack``, acknowledges with ``_send_puback`` and ``_packet_queue``, and counts on paho's
network loop reading through ``_sock.recv`` and asking the socket for ``pending()`` bytes.
A paho release that renames or changes any of them fails here, with a message saying which
and what to do, before it silently breaks ingestion. Everything here runs offline.
"""

from __future__ import annotations

import inspect
import struct
from importlib.metadata import version

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from live._receiver import _PUBACK_BYTE, _BufferedSocket, _ReceivingClient, ack_all

PAHO = version("paho-mqtt")
FIX = (
    f"live/_receiver.py reads MQTT packets through paho-mqtt 2.x internals (installed: {PAHO}): "
    "keep paho-mqtt below 3 in pyproject.toml, or port the receive process to this release"
)


def _params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_paho_is_the_2_x_series():
    assert PAHO.split(".")[0] == "2", FIX


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("_handle_publish", ["self"]),
        ("_create_socket", ["self"]),
        ("loop_read", ["self", "max_packets"]),
        ("_send_puback", ["self", "mid"]),
        ("_packet_queue", ["self", "command", "packet", "mid", "qos", "info"]),
        ("_sock_recv", ["self", "bufsize"]),
        ("_packet_handle", ["self"]),
        ("_loop", ["self", "timeout"]),
    ],
)
def test_the_methods_used_keep_their_names_and_parameters(name, params):
    method = getattr(paho.Client, name, None)
    assert callable(method), f"paho.mqtt.client.Client.{name} is gone. {FIX}"
    assert _params(method) == params, (
        f"paho.mqtt.client.Client.{name}{inspect.signature(method)} no longer takes {params}. {FIX}"
    )


def test_the_network_loop_reads_and_dispatches_as_the_receiver_expects():
    """paho reads from ``_sock.recv``, asks ``_sock.pending()`` and sends PUBLISH to the hook."""
    sources = {
        "_sock_recv": (inspect.getsource(paho.Client._sock_recv), "self._sock.recv("),
        "_loop": (inspect.getsource(paho.Client._loop), ".pending()"),
        "_packet_handle": (inspect.getsource(paho.Client._packet_handle), "_handle_publish()"),
        "_packet_read": (inspect.getsource(paho.Client._packet_read), "'packet'"),
    }
    for name, (source, needle) in sources.items():
        assert needle in source, f"paho.mqtt.client.Client.{name} no longer uses {needle}. {FIX}"


@pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311])
def test_instance_state_read_by_the_receiver(protocol):
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pin", protocol=protocol)
    for name in ("_in_packet", "_protocol", "_manual_ack", "_out_packet", "_sock"):
        assert hasattr(client, name), f"paho client instances have no {name} any more. {FIX}"
    assert {"command", "packet"} <= set(client._in_packet), (
        f"paho's _in_packet has keys {sorted(client._in_packet)}, not command and packet. {FIX}"
    )
    assert client._protocol == protocol and client._manual_ack is False, FIX


def _publish_packet(topic: bytes, payload: bytes, mid: int, *, v5: bool) -> bytearray:
    """The variable header and payload of a QoS 1 PUBLISH (what paho keeps in ``packet``)."""
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid)
    if v5:  # two properties: a content type and a message expiry (7 + 5 bytes)
        props = b"\x03" + struct.pack("!H", 4) + b"json" + b"\x02" + struct.pack("!I", 60)
        body += bytes([len(props)]) + props
    return bytearray(body + payload)


@pytest.mark.parametrize("protocol", [paho.MQTTv5, paho.MQTTv311])
@pytest.mark.parametrize("manual_ack", [False, True])
def test_the_receiver_reads_a_publish_as_paho_itself_does(protocol, manual_ack):
    """Fed the same packet, our hook and paho's own handler agree on topic, payload and id."""
    topic, payload, mid = b"twin/bondy/telemetry/light/light:000001", b'{"level": 0.5}', 4242
    packet = _publish_packet(topic, payload, mid, v5=protocol == paho.MQTTv5)
    got: list[tuple[bytes, bytes, int, int]] = []
    ours = _ReceivingClient(
        CallbackAPIVersion.VERSION2,
        client_id="pin",
        protocol=protocol,
        manual_ack=manual_ack,
        deliver=lambda *a: got.append(a),
    )
    ours._in_packet = {"command": 0x32, "packet": bytearray(packet)}  # PUBLISH, QoS 1
    rc = ours._handle_publish()
    # no socket here: a PUBACK is queued but cannot be written (paho's "no connection")
    assert rc == (MQTTErrorCode.MQTT_ERR_SUCCESS if manual_ack else MQTTErrorCode.MQTT_ERR_NO_CONN)
    assert got == [(topic, payload, mid, 1)], FIX
    # acknowledged at once unless the ack is manual: one PUBACK queued, as paho queues it
    queued = [bytes(p["packet"]) for p in ours._out_packet]
    assert queued == ([] if manual_ack else [struct.pack("!BBH", _PUBACK_BYTE, 2, mid)]), FIX

    theirs = paho.Client(CallbackAPIVersion.VERSION2, client_id="ref", protocol=protocol)
    heard: list[paho.MQTTMessage] = []
    theirs.on_message = lambda c, u, m: heard.append(m)
    theirs._in_packet = {"command": 0x32, "packet": bytearray(packet)}
    theirs._handle_publish()
    assert len(heard) == 1, FIX
    m = heard[0]
    assert (m.topic.encode(), m.payload, m.mid, m.qos) == got[0], (
        f"paho reads this PUBLISH as {(m.topic, m.payload, m.mid, m.qos)}, the receiver as "
        f"{got[0]}. {FIX}"
    )


def test_a_batch_of_acknowledgements_is_one_queued_packet():
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="pin", manual_ack=True)
    ack_all(client, [1, 2, 65535])
    assert len(client._out_packet) == 1, FIX
    out = client._out_packet[0]
    assert bytes(out["packet"]) == b"".join(struct.pack("!BBH", 0x40, 2, m) for m in (1, 2, 65535))
    assert out["to_process"] == 12 and out["pos"] == 0, FIX


def test_the_buffered_socket_serves_paho_s_small_reads_from_one_large_one():
    class Wire:
        def __init__(self, data: bytes) -> None:
            self.data, self.calls = data, 0

        def recv(self, size: int) -> bytes:
            self.calls += 1
            out, self.data = self.data[:size], self.data[size:]
            return out

    wire = Wire(b"\x30\x05hello" * 3)
    sock = _BufferedSocket(wire)
    parts = [sock.recv(1), sock.recv(1), sock.recv(5)]
    assert parts == [b"\x30", b"\x05", b"hello"] and sock.pending() == 14
    assert wire.calls == 1
