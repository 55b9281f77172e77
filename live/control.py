"""Control: plans through the safety gate, out as commands, back as acknowledgements.

:func:`gate` refuses an unsafe plan before anything is sent:

* lighting: every light's level in every slot at least the EN 13201 requirement the plan
  carries (``required_level`` of :func:`optimize.dimming.plan`: the class re-weighted for the
  slot's traffic as CEN/TR 13201-1 allows, as a fraction of full output), and within [0, 1].
  One exception, checked against the twin and never taken from the plan: a cabinet's contracted
  power is physical (above it the supply's breaker trips and the whole street goes dark), so
  where the requirement draws more than the contract, the planner lets the floor give way in
  that cabinet (:mod:`optimize.dimming_caps`). A light below its requirement passes only if its
  cabinet draws its contracted power (to 0.1%) in that very slot, by the twin's light powers and
  contracts; the gate returns what it let through that way, and the push audits it. Without the
  twin, no shortfall passes;
* signals: every junction's signal-group programme re-checked by :mod:`twin.signals.safety`
  (conflicts, minimum green, amber, intergreens, pedestrian clearance, cycle, longest red)
  against the junction model built from the twin, never against what the plan says of itself.

:func:`dry_run` gives the expected energy and compliance. :class:`Controller` pushes: one
command per cabinet (its lights' schedules) or per junction (its programme), each with a unique
id, the plan id, the time to apply it and an expiry, published at QoS 1 on
``twin/<city>/cmd/<type>/<id>``; devices answer on ``twin/<city>/ack/<type>/<id>`` with
``accepted`` (scheduled), ``applied`` or ``rejected`` and a reason. Missing answers are sent
again with the same id (a device that already has it acknowledges without applying it twice)
after a timeout that doubles at each attempt. The plan ends ``applied`` (every command
acknowledged), ``partial`` (the assets that failed are listed) or ``failed``. Every push and
rollback is in the audit log (who, when, what, plan, result).

A push holds a persistent MQTT session: a stable client id per city and pusher
(``twin-control-<city>-<who>``), ``clean_start=False`` with a session expiry, and a QoS 1
subscription to the acknowledgements, made again at every connection. If the broker restarts
during a push (Mosquitto with persistence keeps the session on disk), the acknowledgements
that devices send before the controller is connected again are queued for it, not lost; and
its commands published while the broker is down are held by the client and sent once it is
back. At the end of a push the controller waits for the broker to take every command it
published, then unsubscribes (so that the broker queues nothing more for a session nobody
reads) and disconnects.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import getpass
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import numpy as np

from live.mqtt import connect
from live.store import Store, from_us, to_us
from live.telemetry import topic
from optimize.plans import LightingCommands, Plan, from_json
from twin._errors import InputValidationError, TwinError, UnsafePlanError

if TYPE_CHECKING:
    import paho.mqtt.client as paho

    from twin.model import Twin

__all__ = [
    "AckFollower",
    "Controller",
    "PlanNotFoundError",
    "PushResult",
    "PushStatus",
    "dry_run",
    "gate",
]

PushStatus = Literal["applied", "partial", "failed"]


class PlanNotFoundError(TwinError, KeyError):
    """No plan with that id in the store (or no earlier plan to roll back to)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def gate(
    plan: Plan,
    *,
    models: Mapping[str, Any] | None = None,
    twin: Twin | None = None,
    tol: float = 1e-9,
) -> list[str]:
    """Raise :class:`UnsafePlanError` if the plan may not reach a street (see module doc).

    ``models`` maps junction ids to :class:`twin.signals.junction.JunctionModel` (from
    :func:`twin.signals.junction.junction_models`); needed for a signal plan. ``twin`` gives the
    lights' powers and the cabinets' contracted power, against which a lighting plan's
    shortfalls under binding caps are checked. Returns notes on what passed by that exception.
    """
    problems: list[str] = []
    notes: list[str] = []
    if plan.lighting is not None:
        lc = plan.lighting
        low = (lc.level < lc.required - tol) & (lc.required > 0)
        capped = _capped_slots(lc, twin) if twin is not None and low.any() else None
        if capped is not None:
            forced = low & capped
            low &= ~capped
            if forced.any():
                cabinets = np.unique(lc.cabinet[forced.any(axis=1)])
                notes.append(
                    f"{int(forced.sum())} light-slots below the EN 13201 requirement in "
                    f"{len(cabinets)} cabinets whose contracted power binds (first "
                    f"{cabinets[0]}): let through, the cap being physical"
                )
        out = (lc.level < 0) | (lc.level > 1)
        for mask, why in ((out, "outside [0, 1]"), (low, "below the EN 13201 requirement")):
            if mask.any():
                i, j = np.argwhere(mask)[0]
                problems.append(
                    f"{int(mask.sum())} light-slots {why}, first {lc.light[i]} at "
                    f"{np.datetime_as_string(lc.times[j])}Z: level {lc.level[i, j]:.3f}, "
                    f"required {lc.required[i, j]:.3f}"
                )
    else:
        from twin.signals.safety import SignalProgram, check_program

        for cmd in plan.signals:
            model = (models or {}).get(cmd.junction)
            if model is None:
                problems.append(f"{cmd.junction}: no junction model in the twin to check it with")
                continue
            try:
                program = SignalProgram.from_dict(cmd.document["program"])
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"{cmd.junction}: programme unreadable ({exc})")
                continue
            if program.junction != cmd.junction:
                problems.append(f"{cmd.junction}: programme is for {program.junction}")
                continue
            bad = check_program(program, model)
            problems.extend(f"{cmd.junction}: {v}" for v in bad[:3])
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        msg = f"plan {plan.id} refused by the safety gate: " + "; ".join(problems[:5]) + more
        raise UnsafePlanError(msg)
    return notes


#: A cabinet "draws its contracted power" within this share of it.
CAP_TOLERANCE = 1e-3


def _capped_slots(lc: LightingCommands, tw: Twin) -> np.ndarray:
    """``(n, T)``: where the light's cabinet draws its contracted power in the slot.

    Powers and contracts are the twin's registry's, never the plan's; a light or cabinet the
    twin does not know is never capped.
    """
    from twin.energy.power import drawn_power_w

    lights = tw.registry["light"]
    cabinets = tw.registry["cabinet"]
    known = np.isin(lc.light, lights.index.to_numpy()) & np.isin(
        lc.cabinet, cabinets.index.to_numpy()
    )
    power = np.where(known, lights["power_w"].reindex(lc.light).to_numpy(dtype=float), 0.0)
    draw = drawn_power_w(power, lc.level, on=lc.level > 0)
    cab, pos = np.unique(lc.cabinet, return_inverse=True)
    total = np.zeros((len(cab), len(lc.times)))
    np.add.at(total, pos, draw)
    if "contracted_power_w" in cabinets.columns:
        cap = cabinets["contracted_power_w"].reindex(cab).to_numpy(dtype=float)
    else:
        cap = np.full(len(cab), np.nan)
    at_cap = total >= (1.0 - CAP_TOLERANCE) * cap[:, None]  # NaN (unknown): never
    return np.asarray(at_cap[pos] & known[:, None], dtype=bool)


def dry_run(plan: Plan, tw: Twin | None = None) -> dict[str, Any]:
    """Expected energy (with the twin's light powers) and compliance of a plan, nothing sent."""
    out: dict[str, Any] = {
        "plan": plan.id,
        "kind": plan.kind,
        "commands": len(plan.groups()),
        "assets": len(plan.assets),
    }
    if plan.lighting is not None:
        from optimize.dimming import DRIVER_FLOOR

        lc = plan.lighting
        ok = (lc.level >= lc.required - 1e-9) | (lc.required <= 0)
        out["compliance_pct"] = round(100.0 * float(ok.mean()), 3)
        if tw is not None:
            lights = tw.registry["light"].set_index("id")
            known = np.isin(lc.light, lights.index)
            power = np.where(known, lights["power_w"].reindex(lc.light).to_numpy(), 0.0)
            on = lc.level > 0
            draw = np.where(on, power[:, None] * (DRIVER_FLOOR + (1 - DRIVER_FLOOR) * lc.level), 0)
            out["energy_kwh"] = round(float((draw * lc.slot_s[None, :]).sum()) / 3.6e6, 3)
            out["unknown_lights"] = int((~known).sum())
    return out


@dataclasses.dataclass
class PushResult:
    """How a push ended."""

    plan: str
    push: str
    status: PushStatus
    commands: int
    acked: int
    failed: dict[str, str]  # asset -> reason
    attempts: int
    seconds: float
    gate_notes: list[str] = dataclasses.field(default_factory=list)  # what passed by exception

    def summary(self) -> str:
        """One line for people (and a line per note of the safety gate)."""
        s = f"plan {self.plan}: {self.status} ({self.acked}/{self.commands} commands acknowledged"
        s += f", {self.attempts} rounds, {self.seconds:.2f} s)"
        if self.failed:
            shown = ", ".join(sorted(self.failed)[:10])
            more = f" and {len(self.failed) - 10} more" if len(self.failed) > 10 else ""
            s += f"; failed: {shown}{more}"
        return "\n".join([s, *(f"safety gate: {n}" for n in self.gate_notes)])


class Controller:
    """Pushes plans to one city's devices over a broker; keeps plans, commands and audit.

    Parameters
    ----------
    store : Store
    url : str
        The broker, ``mqtt://host:port``.
    city : str
    who : str
        Recorded in the audit log (default: the login name).
    timeout_s : float
        First wait for acknowledgements; doubled at each retry (backoff).
    attempts : int
        Rounds of sending before an unanswered command counts as failed.
    ttl : timedelta
        A command expires at the plan's end, or this long after sending if that comes first
        (a device must not apply a stale command after a long outage).
    client_id : str, optional
        Id of the persistent MQTT session of the pushes (default
        ``twin-control-<city>-<who>``). Pushes of this process with the same id take turns.
    """

    _turns: dict[str, threading.Lock] = {}
    _turns_lock = threading.Lock()

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        city: str,
        who: str | None = None,
        timeout_s: float = 2.0,
        attempts: int = 3,
        ttl: dt.timedelta = dt.timedelta(hours=24),
        client_id: str | None = None,
    ) -> None:
        self.store = store
        self.url = url
        self.city = city
        self.who = who or _login()
        self.client_id = client_id or _client_id(f"twin-control-{city}-{self.who}")
        #: ``session_present`` of each connection of the last push: ``[False, True]`` is a
        #: push that found its session again after a reconnection (a broker restart)
        self.sessions: list[bool] = []
        #: publications of commands by the last push (first sendings and retries)
        self.published = 0
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.ttl = ttl
        self._acks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._decoder = msgspec.json.Decoder()

    # -- acknowledgements ----------------------------------------------------------------------
    def _on_ack(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            ack = self._decoder.decode(msg.payload)
            cmd = str(ack["command"])
            status = str(ack["status"])
        except (msgspec.DecodeError, KeyError, TypeError):
            return  # not an acknowledgement of ours; the telemetry ingestion accounts for junk
        with self._arrived:
            prev = self._acks.get(cmd)
            # 'applied' or 'rejected' are final; 'accepted' does not overwrite them
            if prev is None or prev["status"] == "accepted":
                self._acks[cmd] = {"status": status, "reason": str(ack.get("reason", ""))}
            self._arrived.notify_all()

    # -- push ----------------------------------------------------------------------------------
    def record(self, plan: Plan, *, status: str = "recorded") -> None:
        """Keep a plan in the store (idempotent: a plan id is its content)."""
        self.store.execute(
            "INSERT INTO plans (id, kind, city, body, created_us, status) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (plan.id, plan.kind, plan.city, plan.to_json(), to_us(_now()), status),
        )

    def commands(self, plan: Plan, push: str, now: dt.datetime) -> list[tuple[str, str, bytes]]:
        """``(command id, topic, payload)`` of each batch of a plan for one push."""
        expires = min(plan.valid_to, now + self.ttl)
        common: dict[str, Any] = {
            "ts": _iso(now),
            "plan": plan.id,
            "push": push,
            "apply_at": _iso(max(plan.valid_from, now)),
            "expires": _iso(expires),
        }
        if plan.meta.get("override"):
            common["override"] = True  # the device reverts to what ran before at expiry
        out = []
        if plan.lighting is not None:
            lc = plan.lighting
            times = [_iso(from_us(int(t) * 1_000_000)) for t in lc.times.astype("int64")]
            rows = {a: i for i, a in enumerate(lc.light.tolist())}
            levels = np.round(lc.level, 4)
            for cab, lights in plan.groups().items():
                cid = f"{push}/{cab}"
                body = {
                    "id": cid,
                    "asset": cab,
                    **common,
                    "times": times,
                    "lights": {a: levels[rows[a]].tolist() for a in lights},
                }
                out.append(
                    (cid, topic(self.city, "cmd", "cabinet", cab), msgspec.json.encode(body))
                )
        else:
            for sc in plan.signals:
                cid = f"{push}/{sc.junction}"
                body = {
                    "id": cid,
                    "asset": sc.junction,
                    **common,
                    "program": sc.document["program"],
                }
                out.append(
                    (
                        cid,
                        topic(self.city, "cmd", "junction", sc.junction),
                        msgspec.json.encode(body),
                    )
                )
        return out

    def push(
        self,
        plan: Plan,
        *,
        models: Mapping[str, Any] | None = None,
        twin: Twin | None = None,
        action: str = "push",
        progress: Callable[[int, int], None] | None = None,
        now: dt.datetime | None = None,
    ) -> PushResult:
        """Gate, send, collect acknowledgements with retries; record and audit the outcome.

        Raises
        ------
        UnsafePlanError
            The gate refused the plan (audited as ``refused``; nothing is sent).
        """
        if plan.city != self.city:
            msg = f"plan: {plan.id} is for {plan.city}, this controller drives {self.city}"
            raise InputValidationError(msg)
        try:
            notes = gate(plan, models=models, twin=twin)
        except UnsafePlanError as exc:
            self._audit(action, plan.id, "refused", str(exc))
            raise
        for note in notes:
            self._audit(action, plan.id, "gate", note)
        self.record(plan)
        t0 = time.perf_counter()
        now = now or _now()
        push = f"{plan.id}#{uuid.uuid4().hex[:8]}"
        cmds = self.commands(plan, push, now)
        targets = {cid: t.rsplit("/", 1)[1] for cid, t, _ in cmds}
        sent_us = to_us(now)
        acks, attempts, rounds = self.exchange(cmds, progress=progress)
        failed_cmds = {
            c: (a["reason"] or "rejected") if a else "no acknowledgement"
            for c, a in acks.items()
            if a is None or a["status"] == "rejected"
        }
        groups = plan.groups()
        failed = {
            asset: reason for c, reason in failed_cmds.items() for asset in groups[targets[c]]
        }
        ok = len(cmds) - len(failed_cmds)
        status: PushStatus = "applied" if not failed_cmds else ("partial" if ok else "failed")
        result = PushResult(
            plan.id, push, status, len(cmds), ok, failed, rounds, time.perf_counter() - t0, notes
        )
        rows = [
            (
                c,
                plan.id,
                targets[c],
                len(groups[targets[c]]),
                sent_us,
                to_us(min(plan.valid_to, now + self.ttl)),
                attempts[c],
                (acks[c] or {}).get("status", "unanswered"),
                failed_cmds.get(c, ""),
                to_us(_now()) if acks[c] else None,
            )
            for c in targets
        ]
        self.store.write(
            [
                (
                    "INSERT INTO commands (id, plan_id, target, assets, sent_us, expires_us, "
                    "attempts, status, reason, acked_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                ),
                ("UPDATE plans SET status = ?, detail = ? WHERE id = ?", [(status, push, plan.id)]),
            ]
        )
        self._audit(action, plan.id, status, result.summary())
        return result

    def exchange(
        self,
        cmds: list[tuple[str, str, bytes]],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[dict[str, dict[str, Any] | None], dict[str, int], int]:
        """Publish commands, wait for their acknowledgements, resend the unanswered.

        Returns the acknowledgement of each command id (``None`` when none came), the number
        of times each was sent, and the number of rounds.
        """
        with self._turns_lock:
            turn = self._turns.setdefault(self.client_id, threading.Lock())
        with turn:  # one push at a time per session id in this process
            return self._exchange(cmds, progress)

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any = None) -> None:
        # at every (re)connection: the persistent session keeps the subscription; subscribing
        # again is harmless, and covers a broker that lost the session
        if not getattr(rc, "is_failure", False):
            self.sessions.append(bool(getattr(flags, "session_present", False)))
            c.subscribe(f"twin/{self.city}/ack/#", qos=1)

    def _exchange(
        self,
        cmds: list[tuple[str, str, bytes]],
        progress: Callable[[int, int], None] | None,
    ) -> tuple[dict[str, dict[str, Any] | None], dict[str, int], int]:
        self.sessions = []
        self.published = 0
        client = _ack_client(self.url, self.client_id, self._on_ack, self._on_connect)
        # the broker's PUBACKs by packet id (paho's MQTTMessageInfo of a message published
        # while disconnected reports the failure for good, though paho sends it once back)
        taken: collections.Counter[int] = collections.Counter()
        client.on_publish = lambda c, u, mid, *a: taken.update((mid,))
        pending = {cid: (t, p) for cid, t, p in cmds}
        attempts: dict[str, int] = dict.fromkeys(pending, 0)
        mids: collections.Counter[int] = collections.Counter()
        rounds = 0
        try:
            wait = self.timeout_s
            for rounds in range(1, self.attempts + 1):  # noqa: B007 - reported below
                for cid, (t, p) in pending.items():
                    attempts[cid] += 1
                    mids[client.publish(t, p, qos=1).mid] += 1
                    self.published += 1
                deadline = time.monotonic() + wait
                with self._arrived:
                    while True:
                        answered = [c for c in pending if c in self._acks]
                        if progress is not None:
                            progress(len(cmds) - len(pending) + len(answered), len(cmds))
                        if len(answered) == len(pending) or time.monotonic() >= deadline:
                            break
                        self._arrived.wait(min(0.05, max(deadline - time.monotonic(), 0)))
                    for c in answered:
                        del pending[c]
                if not pending:
                    break
                wait *= 2  # backoff
        finally:
            # every command published reaches the broker before the session goes: the last
            # retries may still be in flight (or held while the broker restarts)
            end = time.monotonic() + max(self.timeout_s, 5.0)
            while any(taken[m] < n for m, n in mids.items()) and time.monotonic() < end:
                time.sleep(0.02)
            gone = threading.Event()
            client.on_unsubscribe = lambda *a, **k: gone.set()
            client.unsubscribe(f"twin/{self.city}/ack/#")
            gone.wait(max(end - time.monotonic(), 0.5))
            client.disconnect()
            client.loop_stop()
        with self._lock:
            acks = {c: self._acks.get(c) for c, _, _ in cmds}
        return acks, attempts, rounds

    # -- status, rollback, audit ------------------------------------------------------------------
    def status(self, plan_id: str) -> dict[str, Any]:
        """A plan's last status, its commands by status, and its audit entries."""
        rows = self.store.execute(
            "SELECT kind, city, status, detail, created_us FROM plans WHERE id = ?", (plan_id,)
        )
        if not rows:
            msg = f"plan: no plan {plan_id!r} in the store"
            raise PlanNotFoundError(msg)
        kind, city, status, push, created = rows[0]
        cmds = self.store.execute(
            "SELECT target, status, reason, attempts FROM commands WHERE id LIKE ? ORDER BY target",
            (f"{push}/%",),
        )
        audit = self.store.execute(
            "SELECT ts_us, who, action, result, detail FROM audit WHERE plan_id = ? ORDER BY n",
            (plan_id,),
        )
        by: dict[str, int] = {}
        for _, s, _, _ in cmds:
            by[s] = by.get(s, 0) + 1
        return {
            "plan": plan_id,
            "kind": kind,
            "city": city,
            "status": status,
            "push": push,
            "recorded": _iso(from_us(created)),
            "commands": by,
            "failed": {t: r for t, s, r, _ in cmds if r},
            "audit": [
                {"ts": _iso(from_us(t)), "who": w, "action": a, "result": r, "detail": d}
                for t, w, a, r, d in audit
            ],
        }

    def load(self, plan_id: str) -> Plan:
        """A recorded plan."""
        rows = self.store.execute("SELECT body FROM plans WHERE id = ?", (plan_id,))
        if not rows:
            msg = f"plan: no plan {plan_id!r} in the store"
            raise PlanNotFoundError(msg)
        return from_json(bytes(rows[0][0]))

    def previous(self, plan_id: str) -> Plan:
        """The plan of the same kind pushed with success (applied or partial) before this one."""
        ids = [
            r[0]
            for r in self.store.execute(
                "SELECT plan_id FROM audit WHERE action IN ('push', 'rollback') "
                "AND result IN ('applied', 'partial') ORDER BY n"
            )
        ]
        this = self.load(plan_id)
        if plan_id not in ids:
            msg = f"plan: {plan_id} was never applied; nothing to roll back"
            raise PlanNotFoundError(msg)
        before = ids[: len(ids) - ids[::-1].index(plan_id) - 1]
        for pid in reversed(before):
            if pid != plan_id:
                p = self.load(pid)
                # a rule's temporary override expires by itself: never the plan to go back to
                if p.kind == this.kind and p.city == this.city and not p.meta.get("override"):
                    return p
        msg = f"plan: no {this.kind} plan of {this.city} was applied before {plan_id}"
        raise PlanNotFoundError(msg)

    def rollback(self, plan_id: str, **kwargs: Any) -> PushResult:
        """Push again the plan that was in force before ``plan_id`` (audited as a rollback)."""
        prev = self.previous(plan_id)
        result = self.push(prev, action="rollback", **kwargs)
        self._audit("rolled back", plan_id, result.status, f"replaced by {prev.id}")
        return result

    def _audit(self, action: str, plan_id: str, result: str, detail: str) -> None:
        self.store.execute(
            "INSERT INTO audit (ts_us, who, action, plan_id, result, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (to_us(_now()), self.who, action, plan_id, result, detail[:2000]),
        )


_RANK = {"unanswered": 0, "accepted": 1, "applied": 2, "rejected": 2}


def settle(commands: Mapping[str, str]) -> PushStatus:
    """A push's status from its commands' statuses (``accepted`` and ``applied`` count as done).

    >>> settle({"a": "applied", "b": "accepted"}), settle({"a": "applied", "b": "unanswered"})
    ('applied', 'partial')
    >>> settle({"a": "rejected"})
    'failed'
    """
    ok = sum(s in ("accepted", "applied") for s in commands.values())
    return "applied" if ok == len(commands) else ("partial" if ok else "failed")


class AckFollower:
    """Keeps listening for acknowledgements, so that a plan's record tells the truth.

    A push waits ``timeout_s`` (doubled at each of its ``attempts``) and then records what it
    heard: a device that answers later (a slow gateway, a link back up) would otherwise leave
    its command ``unanswered`` and the plan ``partial`` for ever. The follower, run by the
    service (:func:`live.serve.serve`), subscribes to ``twin/<city>/ack/#`` and, every
    ``period_s``, writes the acknowledgements of recorded commands: a command only moves
    forward (``unanswered`` -> ``accepted`` -> ``applied`` or ``rejected``), and when that
    changes the status of the plan's latest push (``partial`` -> ``applied`` when the late
    acknowledgements complete it), the plan is updated and the change audited as ``late ack``.

    An acknowledgement of a command not (yet) in the store, e.g. one that arrives while its
    push is still writing, is held and tried again for ``hold_s``.

    Its MQTT session is persistent: a stable client id (``client_id``, by default
    ``twin-acks-<city>``: one follower per city and broker), ``clean_start=False`` with a
    session expiry (:func:`live.mqtt.connect`), and a QoS 1 subscription. When the broker
    restarts (Mosquitto with persistence keeps the session on disk) or the follower is away
    for a while, the broker keeps the subscription and queues the acknowledgements that come
    meanwhile, and delivers them once the follower is back (paho reconnects by itself). The
    follower subscribes again at every connection, in case the broker lost the session:
    :attr:`sessions` records, for each connection, whether the broker still had it.
    :attr:`heard` counts the acknowledgements received, by status (duplicates of QoS 1
    included).
    """

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        city: str,
        who: str = "ack follower",
        period_s: float = 0.2,
        hold_s: float = 600.0,
        client_id: str | None = None,
    ) -> None:
        self.store = store
        self.url = url
        self.city = city
        self.who = who
        self.client_id = client_id or f"twin-acks-{city}"
        #: ``session_present`` of each connection: ``False`` after the first means the broker
        #: lost the session (and the acknowledgements it had queued)
        self.sessions: list[bool] = []
        self.heard: collections.Counter[str] = collections.Counter()
        self.period_s = period_s
        self.hold_s = hold_s
        self.late = 0  # command rows moved forward
        self._queue: list[tuple[str, str, str, float]] = []
        self._held: dict[str, tuple[str, str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._decoder = msgspec.json.Decoder()
        self.client: Any = None

    def _on_ack(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            ack = self._decoder.decode(msg.payload)
            cmd, status = str(ack["command"]), str(ack["status"])
        except (msgspec.DecodeError, KeyError, TypeError):
            return
        if status in _RANK:
            with self._lock:
                self.heard[status] += 1
                self._queue.append((cmd, status, str(ack.get("reason", "")), time.monotonic()))

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any = None) -> None:
        # at every (re)connection: a persistent session keeps the subscription; subscribing
        # again is harmless, and covers a broker that lost the session
        if not getattr(rc, "is_failure", False):
            self.sessions.append(bool(getattr(flags, "session_present", False)))
            c.subscribe(f"twin/{self.city}/ack/#", qos=1)

    def start(self) -> AckFollower:
        """Subscribe (persistent session) and start writing acknowledgements every ``period_s``."""
        self.client = _ack_client(self.url, self.client_id, self._on_ack, self._on_connect)
        self._thread = threading.Thread(target=self._run, name="twin-acks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Write what has arrived, then disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None
        self.sweep()

    def __enter__(self) -> AckFollower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.sweep()

    def sweep(self) -> int:
        """Write the acknowledgements that arrived; returns the command rows moved forward."""
        with self._lock:
            queue, self._queue = self._queue, []
        for cmd, status, reason, t in queue:
            prev = self._held.get(cmd)
            if prev is None or _RANK[status] > _RANK[prev[0]]:
                self._held[cmd] = (status, reason, t)
        if not self._held:
            return 0
        ids = list(self._held)
        rows: dict[str, tuple[str, str]] = {}
        for k in range(0, len(ids), 500):
            chunk = ids[k : k + 500]
            marks = ", ".join("?" * len(chunk))
            for cid, plan_id, status in self.store.execute(
                f"SELECT id, plan_id, status FROM commands WHERE id IN ({marks})",
                chunk,
            ):
                rows[str(cid)] = (str(plan_id), str(status))
        now_us, clock = to_us(_now()), time.monotonic()
        updates = []
        pushes: dict[str, str] = {}  # push -> plan
        for cid in ids:
            status, reason, t = self._held[cid]
            if cid not in rows:
                if clock - t > self.hold_s:
                    del self._held[cid]  # never recorded here: not a command of this store
                continue
            del self._held[cid]
            plan_id, current = rows[cid]
            if _RANK[status] <= _RANK.get(current, 0):
                continue
            updates.append((status, reason if status == "rejected" else "", now_us, cid))
            pushes[cid.rsplit("/", 1)[0]] = plan_id
        if not updates:
            return 0
        self.store.write(
            [("UPDATE commands SET status = ?, reason = ?, acked_us = ? WHERE id = ?", updates)]
        )
        self.late += len(updates)
        for push, plan_id in pushes.items():
            self._settle(plan_id, push, sum(u[3].startswith(push + "/") for u in updates))
        return len(updates)

    def _settle(self, plan_id: str, push: str, late: int) -> None:
        rows = self.store.execute("SELECT status, detail FROM plans WHERE id = ?", (plan_id,))
        if not rows or rows[0][1] != push:
            return  # not a plan, or a later push of it has superseded this one
        before = str(rows[0][0])
        cmds = {
            str(c): str(s)
            for c, s in self.store.execute(
                "SELECT id, status FROM commands WHERE plan_id = ?", (plan_id,)
            )
            if str(c).startswith(push + "/")
        }
        after = settle(cmds)
        if after == before:
            return
        done = sum(s in ("accepted", "applied") for s in cmds.values())
        # one transaction: nobody reads the new status without its audit entry
        self.store.write(
            [
                (
                    "UPDATE plans SET status = ? WHERE id = ? AND detail = ?",
                    [(after, plan_id, push)],
                ),
                (
                    "INSERT INTO audit (ts_us, who, action, plan_id, result, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            to_us(_now()),
                            self.who,
                            "late ack",
                            plan_id,
                            after,
                            f"{before} -> {after}: {late} late acknowledgement(s) of push "
                            f"{push}; {done}/{len(cmds)} commands acknowledged",
                        )
                    ],
                ),
            ]
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ack_client(
    url: str, client_id: str, on_ack: Callable[..., None], on_connect: Callable[..., None]
) -> paho.Client:
    """A client with a persistent session, subscribed (by ``on_connect``) to the acks.

    It returns once the broker has confirmed the subscription (or after 10 s), and reconnects
    within a second of a restarted broker's return.
    """
    subscribed = threading.Event()
    client = connect(
        url,
        client_id,
        persistent=True,
        on_message=on_ack,
        on_connect=on_connect,
        on_subscribe=lambda *a, **k: subscribed.set(),
    )
    subscribed.wait(10)
    # paho types the delays as int; it sleeps on floats (a restarted broker is back quickly)
    client.reconnect_delay_set(min_delay=0.05, max_delay=1)  # type: ignore[arg-type]
    return client


def _client_id(name: str) -> str:
    """An MQTT client id from a name: ASCII letters, digits, ``-``, ``_``, ``.``, ``:``.

    >>> _client_id("twin-control-bondy-rule:foot fall surge")
    'twin-control-bondy-rule:foot_fall_surge'
    """
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", name)[:128]


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
