"""Ingestion: validate telemetry, update the state, keep the history, dead-letter the rest.

:class:`Ingestor` takes batches of ``(topic, payload)`` and, for each batch:

1. checks the topic (``twin/<city>/telemetry/<asset_type>/<asset_id>``);
2. decodes and validates the payloads of each asset type in one msgspec call (types, ranges,
   unknown fields; :mod:`live.telemetry`), falling back to one call per payload to find the
   culprits when a batch holds a bad one;
3. checks the asset: known to the twin, and the one the topic names; time stamp not in the
   future (beyond :attr:`Ingestor.max_skew`);
4. drops duplicates by ``(asset, id)`` (in memory for the recent ones, and the store's primary
   key for the rest, so a restarted ingestion never stores a message twice);
5. writes the accepted messages, the dead letters with their reason, and the cabinets' meter
   readings in one transaction;
6. updates the state vectorially: per asset type, arrays of the latest value of each field;
   a message older than the state it would replace (out of order) is kept in the history but
   does not move the state back (counted as ``late``).

Counters (:attr:`Ingestor.counters`): ``received``, ``accepted``, ``duplicate``, ``late`` and one
``rejected.<reason>`` per :data:`live.telemetry.REASONS`. Every message received is exactly one
of accepted, duplicate or rejected.
"""

from __future__ import annotations

import collections
import datetime as dt
import time
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from live.store import Store
from live.telemetry import KINDS, REASONS, Reason, parse_topic

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["Ingestor", "State", "assets_of"]

#: Numeric fields kept in the state, per asset type.
STATE_FIELDS: dict[str, tuple[str, ...]] = {
    "light": ("level", "power_w"),
    "cabinet": ("power_w", "energy_wh", "voltage_v"),
    "junction": ("stage",),
    "sensor": ("count", "road_temp_c", "air_temp_c", "precip_mm_h"),
    "vehicle": ("lon", "lat", "speed_m_s"),
}
#: Text fields kept in the state, per asset type.
STATE_TEXT: dict[str, tuple[str, ...]] = {
    "light": ("fault",),
    "junction": ("mode", "plan"),
}


def assets_of(tw: Twin) -> dict[str, list[str]]:
    """Asset ids per type from a twin's registry (the ingestion's unknown-asset check)."""
    out: dict[str, list[str]] = {}
    for kind in KINDS:
        if kind in tw.registry.kinds:
            out[kind] = tw.registry[kind]["id"].astype(str).tolist()
    return out


class State:
    """The latest value of each field of each asset, as arrays (one block per asset type)."""

    def __init__(self, assets: Mapping[str, Sequence[str]]) -> None:
        self.ids = {k: np.asarray(list(v), dtype=object) for k, v in assets.items()}
        self.index = {k: {a: i for i, a in enumerate(v)} for k, v in assets.items()}
        self.ts_us = {
            k: np.full(len(v), np.iinfo(np.int64).min, np.int64) for k, v in assets.items()
        }
        self.values = {
            k: {f: np.full(len(v), np.nan) for f in STATE_FIELDS.get(k, ())}
            for k, v in assets.items()
        }
        self.text = {
            k: {f: np.full(len(v), None, dtype=object) for f in STATE_TEXT.get(k, ())}
            for k, v in assets.items()
        }

    def update(self, kind: str, idx: np.ndarray, ts_us: np.ndarray, msgs: Sequence[Any]) -> int:
        """Apply messages (already validated) of one type; returns how many were late."""
        if len(idx) == 0:
            return 0
        # newest first per asset: sort by (asset, -ts) and keep the first of each asset
        order = np.lexsort((-ts_us, idx))
        first = np.ones(len(order), bool)
        first[1:] = idx[order][1:] != idx[order][:-1]
        pick = order[first]
        newer = ts_us[pick] > self.ts_us[kind][idx[pick]]
        pick = pick[newer]
        late = int(len(idx) - len(pick))
        if len(pick) == 0:
            return late
        rows = idx[pick]
        self.ts_us[kind][rows] = ts_us[pick]
        chosen = [msgs[i] for i in pick.tolist()]
        for f, arr in self.values[kind].items():
            vals = np.array([getattr(m, f) for m in chosen], dtype=object)
            arr[rows] = np.where(vals == None, np.nan, vals).astype(float)  # noqa: E711
        for f, arr in self.text[kind].items():
            arr[rows] = [getattr(m, f) for m in chosen]
        return late

    def frame(self, kind: str) -> Any:
        """The state of one asset type as a pandas DataFrame indexed by asset id."""
        import pandas as pd

        ts = self.ts_us[kind]
        df = pd.DataFrame(
            {
                "ts": pd.to_datetime(np.where(ts < 0, np.iinfo(np.int64).min, ts), unit="us"),
                **self.values[kind],
                **{f: a for f, a in self.text[kind].items()},
            },
            index=pd.Index(self.ids[kind], name="asset"),
        )
        df.loc[ts < 0, "ts"] = pd.NaT
        df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("UTC")
        return df


class Ingestor:
    """Validation, state and history for one city's telemetry (see the module docstring).

    Parameters
    ----------
    store : Store
        Where the history, the dead letters and the meter readings go.
    city : str
        Only topics of this city are accepted (``twin/<city>/telemetry/...``).
    assets : mapping of asset type to ids
        The assets the twin holds (:func:`assets_of`).
    timezone : str
        The city's time zone: a cabinet reading belongs to the night whose evening is the local
        date twelve hours earlier.
    dedup_window : timedelta
        Message ids received within it are kept in memory at start (from the store) for the
        duplicate check; older duplicates are still caught by the store's key.
    max_skew : timedelta
        How far in the future a time stamp may be (device clock skew).
    max_seen : int
        Most message ids kept in memory for the duplicate check.
    """

    def __init__(
        self,
        store: Store,
        *,
        city: str,
        assets: Mapping[str, Sequence[str]],
        timezone: str = "Europe/Paris",
        dedup_window: dt.timedelta = dt.timedelta(hours=6),
        max_skew: dt.timedelta = dt.timedelta(minutes=5),
        clock: Any = None,
        max_seen: int = 2_000_000,
    ) -> None:
        self.store = store
        self.city = city
        self.state = State(assets)
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.max_skew_us = int(max_skew.total_seconds() * 1e6)
        self._clock = clock or time.time
        self._decoders = {k: msgspec.json.Decoder(list[s]) for k, s in KINDS.items()}  # type: ignore[valid-type]
        self._one = {k: msgspec.json.Decoder(s) for k, s in KINDS.items()}
        self._any = msgspec.json.Decoder()
        self.counters: collections.Counter[str] = collections.Counter()
        for key in ("received", "accepted", "duplicate", "late", *_rejected_keys()):
            self.counters[key] = 0
        since = int((self._clock() - dedup_window.total_seconds()) * 1e6)
        self.seen: set[tuple[str, str]] = store.recent_ids(since)
        # bounded: the oldest ids leave memory first (the store's key still catches them)
        self._order: collections.deque[tuple[str, str]] = collections.deque(self.seen)
        self.max_seen = max_seen
        self._prefix = f"twin/{city}/telemetry/"

    def _now_us(self) -> int:
        return int(self._clock() * 1e6)

    def ingest(self, batch: Sequence[tuple[str, bytes | bytearray]]) -> dict[str, int]:
        """Ingest one batch; returns this batch's counts (the totals are :attr:`counters`)."""
        now = self._now_us()
        counts: collections.Counter[str] = collections.Counter(received=len(batch))
        dead: list[tuple[int, str, str, str, bytes]] = []

        def reject(topic: str, payload: bytes | bytearray, reason: Reason, detail: str) -> None:
            dead.append((now, topic, reason, detail[:500], bytes(payload)))
            counts[f"rejected.{reason}"] += 1

        groups: dict[str, list[tuple[str, str, bytes | bytearray]]] = collections.defaultdict(list)
        for topic, payload in batch:
            parsed = parse_topic(topic) if topic.startswith(self._prefix) else None
            if parsed is None or parsed[1] != "telemetry":
                reject(topic, payload, "topic", f"not a telemetry topic of {self.city}")
                continue
            groups[parsed[2]].append((topic, parsed[3], payload))

        rows: list[tuple[str, str, str, int, int, str]] = []
        meters: dict[tuple[str, str], list[Any]] = {}
        applied: list[tuple[str, np.ndarray, np.ndarray, list[Any]]] = []
        for kind, items in groups.items():
            msgs = self._decode(kind, items, reject)
            index = self.state.index.get(kind, {})
            keep_idx, keep_ts, keep_msgs = [], [], []
            for (topic, asset, payload), m in zip(items, msgs, strict=True):
                if m is None:
                    continue
                if m.asset != asset:
                    reject(topic, payload, "asset_mismatch", f"asset {m.asset!r} on {topic}")
                    continue
                i = index.get(asset)
                if i is None:
                    reject(topic, payload, "unknown_asset", f"{asset} is not a {kind} of the twin")
                    continue
                ts = _us(m.ts)
                if ts > now + self.max_skew_us:
                    reject(topic, payload, "future", f"ts {m.ts.isoformat()} is in the future")
                    continue
                key = (asset, m.id)
                if key in self.seen:
                    counts["duplicate"] += 1
                    continue
                self.seen.add(key)
                self._order.append(key)
                rows.append((asset, m.id, kind, ts, now, payload.decode()))
                keep_idx.append(i)
                keep_ts.append(ts)
                keep_msgs.append(m)
                if kind == "cabinet":
                    night = self._night(ts)
                    cur = meters.get((asset, night))
                    if cur is None:
                        meters[(asset, night)] = [ts, m.energy_wh, ts, m.energy_wh]
                    else:
                        if ts < cur[0]:
                            cur[0], cur[1] = ts, m.energy_wh
                        if ts > cur[2]:
                            cur[2], cur[3] = ts, m.energy_wh
            applied.append(
                (kind, np.asarray(keep_idx, np.int64), np.asarray(keep_ts, np.int64), keep_msgs)
            )
        while len(self._order) > self.max_seen:
            self.seen.discard(self._order.popleft())
        inserted, _, _ = self.store.write(
            [
                (Store.INSERT_TELEMETRY, rows),
                (Store.INSERT_DEAD, dead),
                (Store.UPSERT_METER, [(c, n, *v) for (c, n), v in meters.items()]),
            ]
        )
        # a message the memory did not know but the store did (received before a restart)
        counts["duplicate"] += len(rows) - inserted
        counts["accepted"] += inserted
        for kind, idx, stamps, msgs in applied:
            counts["late"] += self.state.update(kind, idx, stamps, msgs)
        self.counters.update(counts)
        return dict(counts)

    def _decode(
        self, kind: str, items: list[tuple[str, str, bytes | bytearray]], reject: Any
    ) -> list[Any]:
        try:  # the whole group in one call: the common case
            out: list[Any] = self._decoders[kind].decode(
                b"[" + b",".join(p for *_, p in items) + b"]"
            )
            if len(out) == len(items):
                return out
        except msgspec.DecodeError:
            pass
        one = self._one[kind]
        res: list[Any] = []
        for topic, _, payload in items:
            try:
                res.append(one.decode(payload))
            except msgspec.ValidationError as exc:
                text = str(exc)
                reason: Reason = "range" if _is_range(text) else "schema"
                try:  # msgspec may stop at a schema error before reaching broken JSON after it
                    self._any.decode(payload)
                except msgspec.DecodeError as bad:
                    reason, text = "json", str(bad)
                reject(topic, payload, reason, text)
                res.append(None)
            except msgspec.DecodeError as exc:
                reject(topic, payload, "json", str(exc))
                res.append(None)
        return res

    def _night(self, ts_us: int) -> str:
        local = dt.datetime.fromtimestamp(ts_us / 1e6, tz=self.tz) - dt.timedelta(hours=12)
        return local.date().isoformat()

    def accounted(self) -> bool:
        """Every message received is accepted, a duplicate or rejected."""
        c = self.counters
        rejected = sum(c[k] for k in _rejected_keys())
        return c["received"] == c["accepted"] + c["duplicate"] + rejected

    def rejected(self) -> int:
        """Messages rejected, all reasons."""
        return sum(self.counters[k] for k in _rejected_keys())


def _rejected_keys() -> Iterable[str]:
    return (f"rejected.{r}" for r in REASONS)


def _is_range(text: str) -> bool:
    return any(s in text for s in (">=", "<=", "> ", "< ", "length", "matching regex"))


def _us(t: dt.datetime) -> int:
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
