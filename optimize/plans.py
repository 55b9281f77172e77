"""Plans as data: what the live layer checks, pushes, audits and rolls back.

(``optimize.plan`` is the dimming planner; this module is ``optimize.plans``.)

A :class:`Plan` is one decision to send to the street, made by a planner and checked by the
live layer's safety gate before any command leaves:

``lighting``
    a night's dimming schedule (:func:`optimize.dimming.plan`, written by ``twin plan night`` as
    ``dimming.nc``): per light and slot the level and the EN 13201 requirement it must meet, and
    the cabinet each light hangs on (commands are batched per cabinet, as lighting networks
    address their lights through the cabinet's gateway);
``signals``
    validated signal-plan documents (:func:`twin.signals.safety.plan_document`, written by
    ``twin optimize signals`` as ``plans.json``), one per junction.

Plans are immutable and content-addressed: the id ends with a hash of what the plan commands,
so the same plan read twice has the same id (a replayed push is recognised) and two different
plans never share one. Times are tz-aware UTC. :meth:`Plan.to_json` and :func:`from_json` are
exact inverses (floats keep their shortest repr).

>>> import numpy as np
>>> times = np.array(["2024-01-15T17:00", "2024-01-15T17:15"], dtype="datetime64[s]")
>>> lc = LightingCommands(
...     times=times, slot_s=np.array([900.0, 900.0]), light=np.array(["light:1", "light:2"]),
...     cabinet=np.array(["cabinet:1", "cabinet:1"]),
...     level=np.array([[1.0, 0.5], [0.8, 0.4]]), required=np.array([[0.9, 0.5], [0.8, 0.3]]))
>>> p = lighting_plan(lc, city="bondy")
>>> p.kind, p.valid_from.isoformat(), p.valid_to.isoformat()
('lighting', '2024-01-15T17:00:00+00:00', '2024-01-15T17:30:00+00:00')
>>> p.groups()
{'cabinet:1': ['light:1', 'light:2']}
>>> from_json(p.to_json()) == p
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import msgspec
import numpy as np
import xarray as xr

from twin._errors import CorruptInputError, InputValidationError

__all__ = [
    "PLAN_FORMAT",
    "LightingCommands",
    "Plan",
    "PlanKind",
    "SignalCommand",
    "from_dimming",
    "from_json",
    "from_signal_documents",
    "lighting_plan",
    "read",
]

PlanKind = Literal["lighting", "signals"]
#: The ``format`` member of a plan's JSON document.
PLAN_FORMAT = "twin-plan/1"


def _utc(t: np.datetime64 | dt.datetime) -> dt.datetime:
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            msg = f"plan time {t.isoformat()} is not tz-aware"
            raise InputValidationError(msg)
        return t.astimezone(dt.UTC)
    seconds = int(np.asarray(t).astype("datetime64[s]").astype("int64"))
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: object, field: str) -> dt.datetime:
    if not isinstance(text, str):
        msg = f"{field}: expected an ISO 8601 time, got {text!r}"
        raise InputValidationError(msg)
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        msg = f"{field}: {text!r} is not an ISO 8601 time"
        raise InputValidationError(msg) from None
    if t.tzinfo is None:
        msg = f"{field}: {text!r} has no time zone (plans are in UTC)"
        raise InputValidationError(msg)
    return t.astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True, eq=False)
class LightingCommands:
    """A dimming schedule per light: what each cabinet's gateway receives.

    Attributes
    ----------
    times : ndarray of datetime64[s]
        Slot starts, naive UTC, increasing (T,).
    slot_s : ndarray of float
        Slot durations, s (T,).
    light, cabinet : ndarray of str
        Light ids and the cabinet each one hangs on (n,).
    level : ndarray of float
        Dim level per light and slot, fraction of full output in [0, 1] (n, T).
    required : ndarray of float
        EN 13201 requirement per light and slot as a fraction of full output (n, T); the
        safety gate refuses a level below it.
    """

    times: np.ndarray
    slot_s: np.ndarray
    light: np.ndarray
    cabinet: np.ndarray
    level: np.ndarray
    required: np.ndarray

    def __post_init__(self) -> None:
        n, t = len(self.light), len(self.times)
        shapes = {
            "slot_s": (self.slot_s.shape, (t,)),
            "cabinet": (self.cabinet.shape, (n,)),
            "level": (self.level.shape, (n, t)),
            "required": (self.required.shape, (n, t)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                msg = f"{name}: shape {got}, expected {want} (lights x slots)"
                raise InputValidationError(msg)
        if n == 0 or t == 0:
            msg = "level: a lighting plan needs at least one light and one slot"
            raise InputValidationError(msg)
        if len(np.unique(self.light)) != n:
            msg = "light: the same light appears twice in the plan"
            raise InputValidationError(msg)
        if t > 1 and not bool(np.all(np.diff(self.times.astype("int64")) > 0)):
            msg = "time: slot starts must increase"
            raise InputValidationError(msg)
        for name in ("slot_s", "level", "required"):
            a = getattr(self, name)
            if not bool(np.all(np.isfinite(a))):
                msg = f"{name}: not a finite number"
                raise InputValidationError(msg)
        if bool(np.any(self.slot_s <= 0)):
            msg = "slot_s: slot durations must be positive"
            raise InputValidationError(msg)

    def groups(self) -> dict[str, list[str]]:
        """Light ids per cabinet, in plan order."""
        out: dict[str, list[str]] = {}
        for light, cab in zip(self.light.tolist(), self.cabinet.tolist(), strict=True):
            out.setdefault(cab, []).append(light)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (for JSON)."""
        return {
            "times": [_iso(_utc(t)) for t in self.times],
            "slot_s": self.slot_s.tolist(),
            "light": self.light.tolist(),
            "cabinet": self.cabinet.tolist(),
            "level": self.level.tolist(),
            "required": self.required.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LightingCommands:
        """Inverse of :meth:`to_dict`; each member checked, the field named on error."""
        for key in ("times", "slot_s", "light", "cabinet", "level", "required"):
            if key not in data:
                msg = f"lighting.{key}: missing"
                raise InputValidationError(msg)
        times = np.array(
            [
                np.datetime64(_parse_time(t, "lighting.times").replace(tzinfo=None), "s")
                for t in data["times"]
            ],
            dtype="datetime64[s]",
        )

        def floats(key: str) -> np.ndarray:
            try:
                return np.asarray(data[key], dtype=float)
            except (TypeError, ValueError):
                msg = f"lighting.{key}: expected numbers"
                raise InputValidationError(msg) from None

        return cls(
            times=times,
            slot_s=floats("slot_s"),
            light=np.asarray(data["light"], dtype=str),
            cabinet=np.asarray(data["cabinet"], dtype=str),
            level=floats("level"),
            required=floats("required"),
        )


@dataclasses.dataclass(frozen=True)
class SignalCommand:
    """One junction's plan: the document of :func:`twin.signals.safety.plan_document`."""

    junction: str
    document: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """A plan to push: lighting schedules or signal plans, for one city and one validity window.

    Build one with :func:`from_dimming`, :func:`from_signal_documents` or :func:`read`.
    """

    id: str
    kind: PlanKind
    city: str
    valid_from: dt.datetime
    valid_to: dt.datetime
    lighting: LightingCommands | None = None
    signals: tuple[SignalCommand, ...] = ()
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("lighting", "signals"):
            msg = f"kind: {self.kind!r} is not 'lighting' or 'signals'"
            raise InputValidationError(msg)
        if (self.kind == "lighting") != (self.lighting is not None):
            msg = "lighting: a lighting plan carries lighting commands, and only it"
            raise InputValidationError(msg)
        if self.kind == "signals" and not self.signals:
            msg = "signals: a signal plan carries at least one junction's plan"
            raise InputValidationError(msg)
        for name in ("valid_from", "valid_to"):
            t = getattr(self, name)
            if t.tzinfo is None:
                msg = f"{name}: {t.isoformat()} is not tz-aware"
                raise InputValidationError(msg)
        if self.valid_to <= self.valid_from:
            msg = f"valid_to: {_iso(self.valid_to)} is not after valid_from"
            raise InputValidationError(msg)

    def groups(self) -> dict[str, list[str]]:
        """Asset ids per command batch: lights per cabinet, or each junction on its own."""
        if self.lighting is not None:
            return self.lighting.groups()
        return {s.junction: [s.junction] for s in self.signals}

    @property
    def assets(self) -> list[str]:
        """Every asset the plan commands."""
        return [a for members in self.groups().values() for a in members]

    def body(self) -> dict[str, Any]:
        """What the plan commands (the hashed part of its id)."""
        if self.lighting is not None:
            return {"lighting": self.lighting.to_dict()}
        return {"signals": [dict(s.document) for s in self.signals]}

    def to_dict(self) -> dict[str, Any]:
        """The plan's JSON document (``format`` :data:`PLAN_FORMAT`)."""
        return {
            "format": PLAN_FORMAT,
            "id": self.id,
            "kind": self.kind,
            "city": self.city,
            "valid_from": _iso(self.valid_from),
            "valid_to": _iso(self.valid_to),
            "meta": dict(self.meta),
            **self.body(),
        }

    def to_json(self) -> bytes:
        """UTF-8 JSON of :meth:`to_dict`."""
        return msgspec.json.encode(self.to_dict())

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path``; returns it."""
        path = Path(path)
        path.write_bytes(self.to_json())
        return path

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plan):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.id)


def _content_id(kind: str, city: str, day: str, body: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()[:12]
    return f"{kind}-{city}-{day}-{digest}"


def lighting_plan(
    commands: LightingCommands,
    *,
    city: str,
    plan_id: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Plan:
    """A lighting plan from its commands; valid from the first slot's start to the last's end."""
    start = _utc(commands.times[0])
    end = _utc(commands.times[-1]) + dt.timedelta(seconds=float(commands.slot_s[-1]))
    body = {"lighting": commands.to_dict()}
    pid = plan_id or _content_id("lighting", city, start.date().isoformat(), body)
    return Plan(pid, "lighting", city, start, end, lighting=commands, meta=dict(meta or {}))


def from_dimming(ds: xr.Dataset, *, plan_id: str | None = None) -> Plan:
    """The lighting plan of a dimming dataset (:func:`optimize.dimming.plan`, ``dimming.nc``).

    Raises
    ------
    InputValidationError
        Naming the variable or attribute that is missing or malformed.
    """
    for name in ("level", "required_level", "cabinet", "slot_s"):
        if name not in ds.variables:
            msg = f"{name}: missing from the dimming plan (is it a `twin plan night` dimming.nc?)"
            raise InputValidationError(msg)
    for dim in ("light", "time"):
        if dim not in ds.dims:
            msg = f"{dim}: dimension missing from the dimming plan"
            raise InputValidationError(msg)
    if "city" not in ds.attrs:
        msg = "city: attribute missing from the dimming plan"
        raise InputValidationError(msg)
    level = ds["level"].transpose("light", "time").to_numpy().astype(float)
    required = ds["required_level"].transpose("light", "time").to_numpy().astype(float)
    commands = LightingCommands(
        times=ds["time"].to_numpy().astype("datetime64[s]"),
        slot_s=ds["slot_s"].to_numpy().astype(float),
        light=ds["light"].to_numpy().astype(str),
        cabinet=ds["cabinet"].to_numpy().astype(str),
        level=level,
        required=required,
    )
    meta = {
        k: ds.attrs[k]
        for k in ("date", "policy", "objective", "saving_pct", "compliance_pct", "optimized_kwh")
        if k in ds.attrs
    }
    meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in meta.items()}
    return lighting_plan(commands, city=str(ds.attrs["city"]), plan_id=plan_id, meta=meta)


def from_signal_documents(
    documents: Sequence[Mapping[str, Any]],
    *,
    city: str,
    plan_id: str | None = None,
    now: dt.datetime | None = None,
    horizon: dt.timedelta = dt.timedelta(days=1),
) -> Plan:
    """A signal plan from junction plan documents (``plans.json`` of ``twin optimize signals``).

    Open-ended validities start at ``now`` (default: the current time) and last ``horizon``.
    """
    if not documents:
        msg = "signals: no junction plan in the documents"
        raise InputValidationError(msg)
    starts, ends, commands = [], [], []
    seen: set[str] = set()
    for i, doc in enumerate(documents):
        where = f"signals[{i}]"
        if not isinstance(doc, Mapping) or doc.get("kind") != "signal_plan":
            msg = f"{where}.kind: not a signal_plan document"
            raise InputValidationError(msg)
        for key in ("junction", "program"):
            if key not in doc:
                msg = f"{where}.{key}: missing"
                raise InputValidationError(msg)
        jid = str(doc["junction"])
        if jid in seen:
            msg = f"{where}.junction: {jid} has two plans"
            raise InputValidationError(msg)
        seen.add(jid)
        if doc.get("valid_from"):
            starts.append(_parse_time(doc["valid_from"], f"{where}.valid_from"))
        if doc.get("valid_until"):
            ends.append(_parse_time(doc["valid_until"], f"{where}.valid_until"))
        commands.append(SignalCommand(jid, dict(doc)))
    t0 = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    start = min(starts) if starts else t0
    end = max(ends) if ends else start + horizon
    body = {"signals": [dict(c.document) for c in commands]}
    pid = plan_id or _content_id("signals", city, start.date().isoformat(), body)
    return Plan(pid, "signals", city, start, end, signals=tuple(commands))


def from_json(data: bytes | str) -> Plan:
    """A plan from :meth:`Plan.to_json`.

    Raises
    ------
    CorruptInputError
        The bytes are not JSON.
    InputValidationError
        A member is missing or wrong; the message names it.
    """
    try:
        doc = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        msg = f"plan: not JSON ({exc})"
        raise CorruptInputError(msg) from None
    if not isinstance(doc, dict) or doc.get("format") != PLAN_FORMAT:
        msg = f"format: not a plan document ({PLAN_FORMAT} expected)"
        raise InputValidationError(msg)
    for key in ("id", "kind", "city", "valid_from", "valid_to"):
        if not isinstance(doc.get(key), str):
            msg = f"{key}: missing or not a string"
            raise InputValidationError(msg)
    kind = doc["kind"]
    if kind not in ("lighting", "signals"):
        msg = f"kind: {kind!r} is not 'lighting' or 'signals'"
        raise InputValidationError(msg)
    lighting = None
    signals: tuple[SignalCommand, ...] = ()
    if kind == "lighting":
        if not isinstance(doc.get("lighting"), dict):
            msg = "lighting: missing"
            raise InputValidationError(msg)
        lighting = LightingCommands.from_dict(doc["lighting"])
    else:
        docs = doc.get("signals")
        if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
            msg = "signals: expected a list of junction plan documents"
            raise InputValidationError(msg)
        signals = tuple(SignalCommand(str(d.get("junction")), d) for d in docs)
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        msg = "meta: expected an object"
        raise InputValidationError(msg)
    return Plan(
        id=doc["id"],
        kind=cast(PlanKind, kind),
        city=doc["city"],
        valid_from=_parse_time(doc["valid_from"], "valid_from"),
        valid_to=_parse_time(doc["valid_to"], "valid_to"),
        lighting=lighting,
        signals=signals,
        meta=meta,
    )


def read(path: str | Path, *, city: str | None = None) -> Plan:
    """A plan from a file or from a folder written by ``twin plan night`` / ``optimize signals``.

    ``dimming.nc`` (or any ``.nc`` dimming dataset) gives a lighting plan; ``plans.json`` (a
    list of signal-plan documents) a signal plan, for ``city`` (default: the one in the folder's
    ``report.json``); any other ``.json`` is read as a plan document (:meth:`Plan.to_json`).
    A folder is searched in that order: ``plan.json``, ``dimming.nc``, ``plans.json``.
    """
    path = Path(path)
    if path.is_dir():
        for name in ("plan.json", "dimming.nc", "plans.json"):
            if (path / name).is_file():
                return read(path / name, city=city)
        msg = f"{path}: no plan.json, dimming.nc or plans.json in the folder"
        raise InputValidationError(msg)
    if not path.is_file():
        msg = f"{path}: no such file"
        raise InputValidationError(msg)
    if path.suffix == ".nc":
        try:
            with xr.open_dataset(path, engine="h5netcdf") as ds:
                return from_dimming(ds.load())
        except (OSError, ValueError) as exc:
            if isinstance(exc, InputValidationError):
                raise
            msg = f"{path}: not a readable NetCDF dimming plan ({exc})"
            raise CorruptInputError(msg) from None
    raw = path.read_bytes()
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        msg = f"{path}: not JSON ({exc})"
        raise CorruptInputError(msg) from None
    if isinstance(doc, list):
        if city is None:
            report = path.parent / "report.json"
            try:
                city = str(msgspec.json.decode(report.read_bytes())["city"])
            except (OSError, KeyError, TypeError, msgspec.DecodeError):
                msg = f"city: {path} holds signal plans but names no city (give one)"
                raise InputValidationError(msg) from None
        return from_signal_documents(doc, city=city)
    return from_json(raw)
