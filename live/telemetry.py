"""Topics and telemetry payloads (DESIGN section 5), and their validation on receipt.

Topics::

    twin/<city>/telemetry/<asset_type>/<asset_id>    devices -> twin
    twin/<city>/cmd/<asset_type>/<asset_id>          twin -> devices (commands)
    twin/<city>/ack/<asset_type>/<asset_id>          devices -> twin (acknowledgements)
    twin/<city>/event/<name>                         twin -> anyone (alarms, rule firings)

``asset_type`` is the registry kind (``light``, ``cabinet``, ``junction``, ``sensor``,
``vehicle``); ``asset_id`` is the registry id with its ``:`` (``light:000123``), which MQTT
allows in a topic level. Every payload is a JSON object with ``id`` (message id, unique per
asset), ``ts`` (ISO 8601 with a time zone; UTC by convention) and ``asset`` (the id in the
topic), then the fields of its type below. The JSON Schemas are in ``live/schemas/`` (generated
from these definitions by :func:`schemas`; a test keeps them equal).

Validation is msgspec's: decoding and every type and range check happen in one C pass, which
is what keeps ingestion near the broker's own rate. A rejected payload gets one reason of
:data:`REASONS`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "ASSET_TYPES",
    "KINDS",
    "REASONS",
    "CabinetTelemetry",
    "JunctionTelemetry",
    "LightTelemetry",
    "Reason",
    "SensorTelemetry",
    "Telemetry",
    "VehicleTelemetry",
    "parse_topic",
    "schemas",
    "topic",
]

Reason = Literal["topic", "json", "schema", "range", "unknown_asset", "asset_mismatch", "future"]
#: Why a message is dead-lettered: a topic outside the scheme, not JSON, a field missing or of
#: the wrong type (or an unknown field), a number or string out of range (an id too long, or
#: holding a NUL character), an asset the twin does not hold, a payload ``asset`` that is not
#: the topic's, a time stamp in the future.
REASONS: Final[tuple[Reason, ...]] = (
    "topic",
    "json",
    "schema",
    "range",
    "unknown_asset",
    "asset_mismatch",
    "future",
)

#: An id: 1-64 characters, no NUL (PostgreSQL's text cannot hold one: a NUL in a stored id
#: failed the whole batch's transaction, and the broker resent the same batch for ever).
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern="^[^\\x00]*$")]
UtcTime = Annotated[dt.datetime, Meta(tz=True)]
Level = Annotated[float, Meta(ge=0.0, le=1.0, description="fraction of full output")]
PowerW = Annotated[float, Meta(ge=0.0, le=1.0e6, description="W")]


class _Telemetry(msgspec.Struct, forbid_unknown_fields=True):
    id: Id
    ts: UtcTime
    asset: Id


class LightTelemetry(_Telemetry):
    """A light point, reported by its cabinet's gateway: level, power and fault."""

    level: Level
    power_w: Annotated[float, Meta(ge=0.0, le=5000.0, description="W")]
    fault: Literal["none", "lamp_failure", "driver_failure"] = "none"


class CabinetTelemetry(_Telemetry):
    """A cabinet (feeder): metered power and the meter's energy index."""

    power_w: PowerW
    energy_wh: Annotated[float, Meta(ge=0.0, le=1.0e12, description="meter index, Wh")]
    voltage_v: Annotated[float, Meta(ge=0.0, le=500.0, description="V")] | None = None


class JunctionTelemetry(_Telemetry):
    """A signal controller: mode, running plan and stage, detector counts since the last one."""

    mode: Literal["normal", "flashing_amber", "off"]
    plan: Annotated[str, Meta(max_length=128)] | None = None
    stage: Annotated[int, Meta(ge=0, le=16)] | None = None
    counts: dict[Id, Annotated[int, Meta(ge=0, le=100_000)]] = {}


class SensorTelemetry(_Telemetry):
    """A counter (footfall or loop: ``count`` over ``interval_s``) or a road-weather station."""

    count: Annotated[int, Meta(ge=0, le=1_000_000)] | None = None
    interval_s: Annotated[float, Meta(gt=0.0, le=86_400.0, description="s")] | None = None
    road_temp_c: Annotated[float, Meta(ge=-60.0, le=80.0, description="degC")] | None = None
    air_temp_c: Annotated[float, Meta(ge=-60.0, le=60.0, description="degC")] | None = None
    precip_mm_h: Annotated[float, Meta(ge=0.0, le=500.0, description="mm/h")] | None = None


class VehicleTelemetry(_Telemetry):
    """A fleet vehicle's GPS fix (EPSG:4326)."""

    lon: Annotated[float, Meta(ge=-180.0, le=180.0)]
    lat: Annotated[float, Meta(ge=-90.0, le=90.0)]
    speed_m_s: Annotated[float, Meta(ge=0.0, le=100.0, description="m/s")] = 0.0
    heading_deg: Annotated[float, Meta(ge=0.0, le=360.0)] | None = None


Telemetry = (
    LightTelemetry | CabinetTelemetry | JunctionTelemetry | SensorTelemetry | VehicleTelemetry
)
KINDS: Final[dict[str, type[_Telemetry]]] = {
    "light": LightTelemetry,
    "cabinet": CabinetTelemetry,
    "junction": JunctionTelemetry,
    "sensor": SensorTelemetry,
    "vehicle": VehicleTelemetry,
}
ASSET_TYPES: Final[tuple[str, ...]] = tuple(KINDS)

Channel = Literal["telemetry", "cmd", "ack", "event"]


def topic(city: str, channel: Channel, asset_type: str, asset_id: str) -> str:
    """``twin/<city>/<channel>/<asset_type>/<asset_id>``.

    >>> topic("dijon", "telemetry", "light", "light:000123")
    'twin/dijon/telemetry/light/light:000123'
    """
    return f"twin/{city}/{channel}/{asset_type}/{asset_id}"


def parse_topic(name: str) -> tuple[str, str, str, str] | None:
    """``(city, channel, asset_type, asset_id)`` of a topic, or ``None`` outside the scheme.

    >>> parse_topic("twin/dijon/telemetry/light/light:000123")
    ('dijon', 'telemetry', 'light', 'light:000123')
    >>> parse_topic("twin/dijon/telemetry/toaster/t:1") is None
    True
    """
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != "twin" or parts[3] not in KINDS or not parts[4]:
        return None
    if parts[2] not in ("telemetry", "cmd", "ack"):
        return None
    return parts[1], parts[2], parts[3], parts[4]


def schemas() -> dict[str, dict[str, object]]:
    """The JSON Schema of each asset type's telemetry (what ``live/schemas/`` holds)."""
    out: dict[str, dict[str, object]] = {}
    for kind, struct in KINDS.items():
        s = msgspec.json.schema(struct)
        s["$comment"] = (
            f"Telemetry of a {kind}, on twin/<city>/telemetry/{kind}/<asset_id>; "
            "generated from live/telemetry.py"
        )
        out[kind] = s
    return out
