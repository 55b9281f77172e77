"""What rule events do: act through the same safe paths as everything else, and audit it.

:class:`live.rules.Rules` decides *when* (an event per asset where a rule starts to hold);
:class:`Actions` decides *how*, from the keys of the rule's ``then`` table:

``propose = "snow"``
    a plan proposal the control room reviews (:meth:`Actions.proposals`, :meth:`Actions.review`):
    a row of the ``proposals`` table with the triggering readings of every asset that fired
    (one open proposal per kind: later firings add their readings to it). No plan is made here:
    the snow router comes with the crisis scenarios.
``alarm = "junction_fault"``
    an alarm (:mod:`live.alarms`) on the asset, cleared when the rule stops holding there.
``vms = { near_m = 500, text = "...", minutes = 60 }``
    a message command to each variable-message sign within ``near_m`` of the asset
    (:mod:`live.signs`: the signs the city's data holds), published on
    ``twin/<city>/cmd/vms/<sign>`` with an id, the rule as its plan and an expiry, and
    acknowledged, retried and recorded like plan commands
    (:meth:`live.control.Controller.exchange`).
``lighting = { level = 1.0, around_m = 300, minutes = 30 }``
    raise the lighting on the exit routes of the asset: every light on the walkable streets
    within ``around_m`` along the network from it. A one-slot dimming plan, marked as an
    override, from now for ``minutes``: its level is the rule's, or the level in force where
    that is higher, and it carries the EN 13201 requirement of the plan in force (full output
    where no plan is recorded, the design class). It goes through the safety gate and is pushed
    like any plan (:meth:`live.control.Controller.push`), so it is in ``twin plan status`` and
    the audit log; the devices go back to the schedule under it at its expiry.

Every action is audited with the rule that caused it (``who`` is ``rule:<name>``); an action
that fails is audited as ``failed`` with the reason, and returned as such.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import networkx as nx
import numpy as np

from live.alarms import ALARM_KINDS, Alarms
from live.control import Controller
from live.store import Store, from_us, to_us
from live.telemetry import topic
from optimize.plans import LightingCommands, Plan, from_json, lighting_plan
from twin._errors import InputValidationError, TwinError

if TYPE_CHECKING:
    from live.ingest import State
    from live.rules import Rule
    from twin.model import Twin

__all__ = [
    "ACTIONS",
    "ActionFailedError",
    "Actions",
    "check_actions",
    "proposals",
    "review",
]

ACTIONS = ("propose", "alarm", "vms", "lighting")
"""The keys of a rule's ``then`` that act; any other key (``reason``, ...) is description."""


class ActionFailedError(TwinError, RuntimeError):
    """A rule's action could not be carried out (the message says why)."""


_OPTIONS: dict[str, dict[str, tuple[type | tuple[type, ...], float, float]]] = {
    "vms": {
        "near_m": ((int, float), 0, 5000),
        "text": (str, 1, 120),
        "minutes": ((int, float), 1, 1440),
    },
    "lighting": {
        "level": ((int, float), 0, 1),
        "around_m": ((int, float), 0, 5000),
        "minutes": ((int, float), 1, 720),
    },
}
_REQUIRED = {"vms": ("text",), "lighting": ("level",)}


def check_actions(rules: Sequence[Rule]) -> None:
    """Raise :class:`InputValidationError` naming the field if a rule's action is malformed."""
    for r in rules:
        where = f"rule {r.name!r}.then"
        for key, value in r.then.items():
            if key == "propose" and (not isinstance(value, str) or not value):
                msg = f"{where}.propose: expected the kind of plan to propose (a string)"
                raise InputValidationError(msg)
            if key == "alarm" and value not in ALARM_KINDS:
                msg = f"{where}.alarm: {value!r} is not one of {', '.join(ALARM_KINDS)}"
                raise InputValidationError(msg)
            if key in _OPTIONS:
                if not isinstance(value, dict):
                    msg = f"{where}.{key}: expected a table"
                    raise InputValidationError(msg)
                for name in _REQUIRED[key]:
                    if name not in value:
                        msg = f"{where}.{key}.{name}: missing"
                        raise InputValidationError(msg)
                for name, v in value.items():
                    if name not in _OPTIONS[key]:
                        known = ", ".join(_OPTIONS[key])
                        msg = f"{where}.{key}.{name}: unknown option (known: {known})"
                        raise InputValidationError(msg)
                    types, lo, hi = _OPTIONS[key][name]
                    ok = isinstance(v, types) and not isinstance(v, bool)
                    if not ok or not lo <= (len(v) if isinstance(v, str) else v) <= hi:
                        msg = f"{where}.{key}.{name}: {v!r} is not "
                        msg += f"{'a text of' if types is str else 'a number in'} [{lo}, {hi}]"
                        raise InputValidationError(msg)


class Actions:
    """Carries out rule events for one city (see the module docstring).

    Parameters
    ----------
    tw : Twin
    store : Store
    url : str
        The broker.
    timeout_s, attempts :
        Of the commands' acknowledgements (:class:`live.control.Controller`).
    clock : callable, optional
        The current time (tz-aware UTC); default the wall clock.
    """

    def __init__(
        self,
        tw: Twin,
        store: Store,
        url: str,
        *,
        timeout_s: float = 2.0,
        attempts: int = 3,
        clock: Any = None,
    ) -> None:
        self.tw = tw
        self.city = tw.name
        self.store = store
        self.url = url
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.alarms = Alarms(store)
        self._signs: Any = None
        self._walk: nx.Graph | None = None

    # -- dispatch ------------------------------------------------------------------------------
    def handle(self, event: Mapping[str, Any], state: State | None = None) -> list[dict[str, Any]]:
        """Act on one event ``{rule, asset, then}``; one result per action, ``ok`` or ``failed``."""
        out = []
        for key in ACTIONS:
            if key not in event["then"]:
                continue
            rule, asset = str(event["rule"]), str(event["asset"])
            try:
                detail = getattr(self, f"_{key}")(rule, asset, event["then"], state)
                result = "ok"
            except (TwinError, ConnectionError, OSError, ValueError, KeyError) as exc:
                detail, result = {"reason": str(exc)}, "failed"
                self._audit(rule, key, f"{key}:{asset}", "failed", f"on {asset}: {exc}")
            out.append({"rule": rule, "asset": asset, "action": key, "result": result, **detail})
        return out

    def ended(self, rule: Rule, asset: str) -> None:
        """The rule stopped holding on ``asset``: clear the alarm it raised there."""
        kind = rule.then.get("alarm")
        if kind in ALARM_KINDS and self.alarms.clear(asset, kind, self.clock()):
            self._audit(rule.name, "alarm", f"alarm:{asset}", "cleared", f"{kind} on {asset}")

    # -- propose -------------------------------------------------------------------------------
    def _readings(self, asset: str, state: State | None) -> dict[str, Any]:
        if state is None:
            return {"asset": asset}
        kind = next((k for k, ix in state.index.items() if asset in ix), None)
        if kind is None:
            return {"asset": asset}
        i = state.index[kind][asset]
        out: dict[str, Any] = {"asset": asset, "ts": _iso(from_us(int(state.ts_us[kind][i])))}
        for f, v in state.values[kind].items():
            if not np.isnan(v[i]):
                out[f] = float(v[i])
        out |= {f: v[i] for f, v in state.text[kind].items() if v[i] is not None}
        return out

    def _propose(
        self, rule: str, asset: str, then: Mapping[str, Any], state: State | None
    ) -> dict[str, Any]:
        kind = str(then["propose"])
        reading = self._readings(asset, state)
        now = self.clock()
        open_ = self.store.execute(
            "SELECT n, readings FROM proposals WHERE city = ? AND kind = ? AND status = 'proposed'",
            (self.city, kind),
        )
        if open_:
            n, readings = int(open_[0][0]), json.loads(open_[0][1])
            readings.append(reading)
            self.store.execute(
                "UPDATE proposals SET readings = ? WHERE n = ?", (json.dumps(readings), n)
            )
            what = "updated"
        else:
            self.store.execute(
                "INSERT INTO proposals (ts_us, city, kind, rule, status, readings, detail) "
                "VALUES (?, ?, ?, ?, 'proposed', ?, ?)",
                (
                    to_us(now),
                    self.city,
                    kind,
                    rule,
                    json.dumps([reading]),
                    str(then.get("reason", "")),
                ),
            )
            n = int(
                self.store.execute(
                    "SELECT max(n) FROM proposals WHERE city = ? AND kind = ?", (self.city, kind)
                )[0][0]
            )
            what = "proposed"
        self._audit(rule, "propose", f"proposal:{n}", what, f"{kind} plan; {asset}: {reading}")
        return {"proposal": n, "kind": kind, "status": what}

    def proposals(self, status: str | None = "proposed") -> list[dict[str, Any]]:
        """The city's proposals (by default those awaiting review), oldest first."""
        return proposals(self.store, self.city, status=status)

    def review(self, n: int, decision: str, *, who: str) -> None:
        """The control room accepts or dismisses proposal ``n`` (audited)."""
        review(self.store, n, decision, who=who, now=self.clock())

    # -- alarm ---------------------------------------------------------------------------------
    def _alarm(
        self, rule: str, asset: str, then: Mapping[str, Any], state: State | None
    ) -> dict[str, Any]:
        kind = then["alarm"]
        if kind not in ALARM_KINDS:
            msg = f"alarm: {kind!r} is not one of {', '.join(ALARM_KINDS)}"
            raise InputValidationError(msg)
        raised = self.alarms.raise_(asset, kind, f"rule {rule!r}", self.clock())
        self._audit(rule, "alarm", f"alarm:{asset}", "raised" if raised else "already open", kind)
        return {"alarm": kind, "raised": raised}

    # -- variable-message signs ----------------------------------------------------------------
    def _position(self, asset: str) -> Any:
        kind = asset.split(":", 1)[0]
        if kind not in self.tw.registry.kinds:
            msg = f"{asset}: no asset type {kind!r} in the twin"
            raise InputValidationError(msg)
        frame = self.tw.registry[kind]
        hit = frame[frame["id"].astype(str) == asset]
        if hit.empty:
            msg = f"{asset}: not in the twin's registry"
            raise InputValidationError(msg)
        return hit.geometry.iloc[0]

    def _vms(
        self, rule: str, asset: str, then: Mapping[str, Any], state: State | None
    ) -> dict[str, Any]:
        from live.signs import variable_message_signs

        opts = then["vms"]
        near_m = float(opts.get("near_m", 500))
        if self._signs is None:
            self._signs = variable_message_signs(self.tw)
        signs = self._signs
        if signs.empty:
            msg = f"no variable-message sign to reach: {signs.attrs['note']}"
            raise ActionFailedError(msg)
        d = signs.geometry.distance(self._position(asset))
        near = signs[d <= near_m]
        if near.empty:
            k = int(np.argmin(d.to_numpy()))
            msg = (
                f"no variable-message sign within {near_m:.0f} m of {asset} (nearest: "
                f"{signs['id'].iloc[k]} at {d.iloc[k]:.0f} m)"
            )
            raise ActionFailedError(msg)
        now = self.clock()
        push = f"rule:{rule}#{uuid.uuid4().hex[:8]}"
        expires = now + dt.timedelta(minutes=float(opts.get("minutes", 60)))
        cmds = []
        for sign in near["id"].astype(str):
            cid = f"{push}/{sign}"
            body = {
                "id": cid,
                "ts": _iso(now),
                "asset": sign,
                "plan": f"rule:{rule}",
                "push": push,
                "apply_at": _iso(now),
                "expires": _iso(expires),
                "text": str(opts["text"]),
                "cause": asset,
            }
            cmds.append((cid, topic(self.city, "cmd", "vms", sign), msgspec.json.encode(body)))
        ctl = self._controller(rule)
        acks, attempts, _ = ctl.exchange(cmds)
        rows: list[tuple[Any, ...]] = []
        signs_ok: list[str] = []
        failed: dict[str, str] = {}
        for cid, _, _ in cmds:
            sign, a = cid.rsplit("/", 1)[1], acks[cid]
            status = a["status"] if a else "unanswered"
            if a is None or status == "rejected":
                reason = (a or {}).get("reason") or "no acknowledgement"
                failed[sign] = reason
            else:
                reason = ""
                signs_ok.append(sign)
            rows.append(
                (cid, f"rule:{rule}", sign, 1, to_us(now), to_us(expires), attempts[cid], status,
                 reason, to_us(self.clock()) if a else None)
            )  # fmt: skip
        self.store.write(
            [
                (
                    "INSERT INTO commands (id, plan_id, target, assets, sent_us, expires_us, "
                    "attempts, status, reason, acked_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            ]
        )
        result = "applied" if not failed else ("partial" if signs_ok else "failed")
        detail = f"{asset}: {opts['text']!r} on {', '.join(near['id'].astype(str))}"
        if failed:
            detail += f"; failed: {failed}"
        self._audit(rule, "vms message", push, result, detail)
        if not signs_ok:
            msg = f"no sign acknowledged the message ({failed})"
            raise ActionFailedError(msg)
        return {"push": push, "signs": signs_ok, "failed": failed}

    # -- lighting override ---------------------------------------------------------------------
    def exit_route_lights(self, asset: str, around_m: float) -> list[str]:
        """Lights on the walkable streets within ``around_m`` along the network of an asset."""
        segs = self.tw.registry["segment"]
        if self._walk is None:
            walk = segs[segs["walk"].astype(bool)] if "walk" in segs else segs
            g = nx.Graph()
            for u, v, length in zip(walk["u"], walk["v"], walk["length_m"], strict=True):
                if not g.has_edge(u, v) or g[u][v]["length"] > length:
                    g.add_edge(u, v, length=float(length))
            self._walk = g
        kind = asset.split(":", 1)[0]
        row = self.tw.registry[kind]
        seg = row.loc[row["id"].astype(str) == asset, "segment"] if "segment" in row else None
        if seg is None or seg.empty or seg.iloc[0] is None:
            # no street of its own: the nearest segment
            pos = self._position(asset)
            seg_id = str(segs["id"].iloc[int(np.argmin(segs.geometry.distance(pos).to_numpy()))])
        else:
            seg_id = str(seg.iloc[0])
        s = segs[segs["id"].astype(str) == seg_id].iloc[0]
        sources = {n for n in (s["u"], s["v"]) if n in self._walk}
        if not sources:
            return []
        reach = nx.multi_source_dijkstra_path_length(
            self._walk, sources, cutoff=around_m, weight="length"
        )
        near = segs[segs["u"].isin(reach) | segs["v"].isin(reach)]
        near_ids = set(near["id"].astype(str)) | {seg_id}
        lights = self.tw.registry["light"]
        return sorted(lights.loc[lights["segment"].astype(str).isin(near_ids), "id"].astype(str))

    def _in_force(self, now: dt.datetime) -> Plan | None:
        """The last lighting plan (not an override) pushed with success and covering ``now``."""
        rows = self.store.execute(
            "SELECT plan_id FROM audit WHERE action IN ('push', 'rollback') "
            "AND result IN ('applied', 'partial') ORDER BY n DESC"
        )
        seen = set()
        for (pid,) in rows:
            if pid in seen:
                continue
            seen.add(pid)
            body = self.store.execute("SELECT body FROM plans WHERE id = ?", (pid,))
            if not body:
                continue
            p = from_json(bytes(body[0][0]))
            if p.kind == "lighting" and not p.meta.get("override") and p.city == self.city:
                return p if p.valid_from <= now < p.valid_to else None
        return None

    def _lighting(
        self, rule: str, asset: str, then: Mapping[str, Any], state: State | None
    ) -> dict[str, Any]:
        opts = then["lighting"]
        level = float(opts["level"])
        ids = self.exit_route_lights(asset, float(opts.get("around_m", 300)))
        if not ids:
            msg = f"no light on the walkable streets around {asset}"
            raise ActionFailedError(msg)
        now = self.clock().replace(microsecond=0)
        lights = self.tw.registry["light"].set_index("id")
        n = len(ids)
        required = np.ones(n)  # no plan recorded: the design class, at full output
        levels = np.full(n, level)
        base = self._in_force(now)
        if base is not None and base.lighting is not None:
            lc = base.lighting
            starts = lc.times.astype("datetime64[s]").astype("int64")
            k = int(np.searchsorted(starts, now.timestamp(), "right")) - 1
            rows = {a: i for i, a in enumerate(lc.light.tolist())}
            for j, a in enumerate(ids):
                if a in rows:
                    required[j] = lc.required[rows[a], k]
                    levels[j] = max(level, lc.level[rows[a], k])
        minutes = float(opts.get("minutes", 30))
        commands = LightingCommands(
            times=np.array([int(now.timestamp())], dtype="datetime64[s]"),
            slot_s=np.array([minutes * 60.0]),
            light=np.array(ids),
            cabinet=lights.loc[ids, "cabinet"].astype(str).to_numpy(),
            level=levels[:, None],
            required=required[:, None],
        )
        plan = lighting_plan(
            commands,
            city=self.city,
            meta={
                "override": True,
                "rule": rule,
                "asset": asset,
                "base": base.id if base else None,
            },
        )
        ctl = self._controller(rule, ttl=dt.timedelta(minutes=minutes))
        r = ctl.push(plan, now=self.clock())  # the gate refuses an unsafe override (audited)
        if r.status == "failed":
            reasons = sorted(set(r.failed.values()))
            msg = f"override {plan.id}: no cabinet took it ({'; '.join(reasons)})"
            raise ActionFailedError(msg)
        return {"plan": plan.id, "status": r.status, "lights": n, "failed": r.failed}

    # -- plumbing ------------------------------------------------------------------------------
    def _controller(self, rule: str, **kwargs: Any) -> Controller:
        return Controller(
            self.store,
            self.url,
            city=self.city,
            who=f"rule:{rule}",
            timeout_s=self.timeout_s,
            attempts=self.attempts,
            **kwargs,
        )

    def _audit(self, rule: str, action: str, plan_id: str, result: str, detail: str) -> None:
        self.store.execute(
            "INSERT INTO audit (ts_us, who, action, plan_id, result, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (to_us(self.clock()), f"rule:{rule}", action, plan_id, result, detail[:2000]),
        )


def proposals(store: Store, city: str, *, status: str | None = "proposed") -> list[dict[str, Any]]:
    """A city's plan proposals (``status=None``: all of them), oldest first."""
    rows = store.execute(
        "SELECT n, ts_us, kind, rule, status, readings, detail, reviewed_by FROM proposals "
        "WHERE city = ? ORDER BY n",
        (city,),
    )
    return [
        {
            "n": int(n),
            "ts": _iso(from_us(int(t))),
            "kind": k,
            "rule": r,
            "status": st,
            "readings": json.loads(rd),
            "detail": d,
            "reviewed_by": by,
        }
        for n, t, k, r, st, rd, d, by in rows
        if status is None or st == status
    ]


def review(
    store: Store, n: int, decision: str, *, who: str, now: dt.datetime | None = None
) -> None:
    """Accept or dismiss proposal ``n`` awaiting review; audited under ``who``."""
    if decision not in ("accepted", "dismissed"):
        msg = f"decision: {decision!r} is not 'accepted' or 'dismissed'"
        raise InputValidationError(msg)
    rows = store.execute("SELECT status FROM proposals WHERE n = ?", (n,))
    if not rows or rows[0][0] != "proposed":
        msg = f"proposal: no proposal {n} awaiting review"
        raise InputValidationError(msg)
    at = to_us(now or dt.datetime.now(dt.UTC))
    store.execute(
        "UPDATE proposals SET status = ?, reviewed_us = ?, reviewed_by = ? WHERE n = ?",
        (decision, at, who, n),
    )
    store.execute(
        "INSERT INTO audit (ts_us, who, action, plan_id, result, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (at, who, "review", f"proposal:{n}", decision, ""),
    )


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
