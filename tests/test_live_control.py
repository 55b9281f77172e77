"""Control over a real Mosquitto: the safety gate, pushes acknowledged by the simulator, retries,
partial results, replays, rollback and the audit log."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time

import numpy as np
import pytest
from live_fixtures import wait_for

from live.control import AckFollower, Controller, PlanNotFoundError, dry_run, gate
from live.devices import Devices
from live.store import open_store
from optimize import dimming
from optimize.plans import from_dimming, from_signal_documents
from twin._errors import UnsafePlanError
from twin.energy.power import drawn_power_w

NIGHT = "2024-01-15"


@pytest.fixture(scope="module")
def nights(bondy):
    from optimize.nightly import adaptive_plan

    prepared = dimming.problem_for(bondy, NIGHT)
    out = {
        p: from_dimming(dimming.plan(bondy, NIGHT, policy=p, prepared=prepared))
        for p in ("led_full", "part_night")
    }
    out["adaptive"] = from_dimming(adaptive_plan(bondy, NIGHT, prepared=prepared)[0])
    return out


@pytest.fixture(scope="module")
def signals(bondy):
    from twin.scenarios.network import signal_plans
    from twin.signals.safety import plan_document

    plans = signal_plans(bondy)
    docs = [plan_document(p, plans.models[j]) for j, p in plans.items()]
    now = dt.datetime.now(dt.UTC)
    return from_signal_documents(docs, city="bondy", now=now), dict(plans.models)


def _clock_at(plan):
    """The devices' clock: inside the plan's night (so its commands are neither stale nor due)."""
    t = plan.valid_from + dt.timedelta(hours=1)
    start = time.monotonic()
    return lambda: t + dt.timedelta(seconds=time.monotonic() - start)


def test_gate_refuses_dimming_below_the_requirement(nights):
    plan = nights["led_full"]
    gate(plan)  # full output meets every requirement
    lc = plan.lighting
    assert (lc.required > 0).any()
    i, j = np.argwhere(lc.required > 0.2)[0]
    bad_level = lc.level.copy()
    bad_level[i, j] = lc.required[i, j] - 0.1
    bad = copy.copy(plan)
    object.__setattr__(bad, "lighting", copy.copy(lc))
    object.__setattr__(bad.lighting, "level", bad_level)
    with pytest.raises(
        UnsafePlanError, match=rf"below the EN 13201 requirement, first {lc.light[i]}"
    ):
        gate(bad)


@pytest.fixture(scope="module")
def capped(bondy):
    """Bondy with its largest cabinet (2,250 W of lights) contracted at 1.8 kVA, PF 0.9 (an
    inventory's figures): a cap that binds while the lights are near full output; and the
    adaptive plan of that twin."""
    from optimize.nightly import adaptive_plan

    tw = copy.deepcopy(bondy)  # the session's twin stays as built
    cab = tw.registry["cabinet"].copy()
    big = tw.registry["light"].groupby("cabinet")["power_w"].sum().idxmax()
    cab.loc[big, ["contracted_kva", "power_factor", "contract_source"]] = [1.8, 0.9, "inventory"]
    cab.loc[big, "contracted_power_w"] = 1.8 * 1000.0 * 0.9
    tw.registry.replace("cabinet", cab)
    return tw, str(big), from_dimming(adaptive_plan(tw, NIGHT)[0])


def test_gate_lets_through_only_the_shortfall_a_binding_cap_forces(capped):
    tw, big, plan = capped
    lc = plan.lighting
    low = (lc.level < lc.required - 1e-9) & (lc.required > 0)
    assert low.any() and set(lc.cabinet[low.any(axis=1)]) == {big}  # the floor gave way there
    # without the twin, no shortfall passes
    with pytest.raises(UnsafePlanError, match="below the EN 13201 requirement"):
        gate(plan)
    notes = gate(plan, twin=tw)
    assert len(notes) == 1 and f"{int(low.sum())} light-slots" in notes[0] and big in notes[0]
    # a light of another cabinet lowered below its requirement: refused, even with the twin
    i, j = np.argwhere((lc.cabinet != big)[:, None] & (lc.required > 0.2))[0]
    level = lc.level.copy()
    level[i, j] = lc.required[i, j] - 0.1
    worse = copy.copy(plan)
    object.__setattr__(worse, "lighting", copy.copy(lc))
    object.__setattr__(worse.lighting, "level", level)
    with pytest.raises(UnsafePlanError, match=rf"1 light-slots below .* first {lc.light[i]}"):
        gate(worse, twin=tw)
    # a light of the capped cabinet lowered in a slot where its cabinet is under its cap: refused
    draw = drawn_power_w(
        tw.registry["light"]["power_w"].reindex(lc.light).to_numpy(), lc.level, on=lc.level > 0
    )
    mine = lc.cabinet == big
    free = np.flatnonzero(draw[mine].sum(axis=0) < 0.99 * 1620.0)
    k = next(k for k in free if (lc.required[mine, k] > 0.05).any())
    i = np.flatnonzero(mine)[np.argmax(lc.required[mine, k])]
    level = lc.level.copy()
    level[i, k] = lc.required[i, k] / 2  # draws less, so the cabinet stays under its cap
    object.__setattr__(worse.lighting, "level", level)
    with pytest.raises(UnsafePlanError, match=rf"first {lc.light[i]}"):
        gate(worse, twin=tw)


def test_gate_rechecks_signal_programmes_against_the_twin(signals):
    plan, models = signals
    gate(plan, models=models)
    with pytest.raises(UnsafePlanError, match="no junction model"):
        gate(plan, models={})
    doc = json.loads(json.dumps(plan.signals[0].document))
    groups = doc["program"]["groups"]
    for g in groups.values():  # every group green all cycle: conflicting greens together
        g["greens"] = [[0.0, doc["program"]["cycle_s"] - 10.0]]
    unsafe = from_signal_documents([doc], city="bondy", now=plan.valid_from)
    with pytest.raises(UnsafePlanError, match="conflict"):
        gate(unsafe, models=models)


def test_dry_run_energy_and_compliance(bondy, nights):
    full, part = dry_run(nights["led_full"], bondy), dry_run(nights["part_night"], bondy)
    assert full["compliance_pct"] == 100.0 and full["unknown_lights"] == 0
    assert 0 < part["energy_kwh"] < full["energy_kwh"]
    # fixed part-night dimming leaves streets under their requirement: the gate refuses it
    assert part["compliance_pct"] < 100.0
    with pytest.raises(UnsafePlanError, match="below the EN 13201 requirement"):
        gate(nights["part_night"])
    # the dataset's own figure for the same plan
    ds = dimming.plan(bondy, NIGHT, policy="part_night")
    assert part["energy_kwh"] == pytest.approx(ds.attrs["optimized_kwh"], rel=1e-3)


def test_push_applied_status_audit_replay_and_rollback(bondy, nights, mosquitto, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    first, second = nights["led_full"], nights["adaptive"]
    devices = Devices(bondy, mosquitto.url, clock=_clock_at(first)).start()
    ctl = Controller(store, mosquitto.url, city="bondy", who="tester", timeout_s=2.0)
    seen = []
    r1 = ctl.push(first, progress=lambda k, n: seen.append((k, n)), now=devices.clock())
    assert r1.status == "applied" and r1.acked == r1.commands == len(first.groups())
    assert seen[-1] == (r1.commands, r1.commands)
    # every light follows the plan's level for the devices' current slot
    lc = first.lighting
    k = int(np.searchsorted(lc.times.astype("int64"), devices.clock().timestamp(), "right")) - 1
    idx = [devices.light_index[a] for a in lc.light]
    np.testing.assert_allclose(devices.level[idx], np.round(lc.level[:, k], 4))
    r2 = ctl.push(second, now=devices.clock())
    assert r2.status == "applied"
    assert all(n == 1 for n in devices.applied.values())  # each command applied once
    # a replayed command (the same id again) is answered, never applied twice
    cid, t, p = ctl.commands(second, r2.push, devices.clock())[0]
    applied_before = sum(devices.applied.values())
    devices.client.publish(t, p, qos=1)  # loopback replay through the broker
    cmds = ctl.commands(second, r2.push, devices.clock())
    ctl.client = None
    from live.mqtt import connect

    replayer = connect(mosquitto.url, "replayer")
    for _, topic, payload in cmds:
        replayer.publish(topic, payload, qos=1).wait_for_publish(5)
    time.sleep(0.5)
    replayer.disconnect()
    replayer.loop_stop()
    assert sum(devices.applied.values()) == applied_before
    assert all(n == 1 for n in devices.applied.values())
    st = ctl.status(second.id)
    # each command acknowledged: accepted (scheduled) or already applied
    assert st["status"] == "applied" and sum(st["commands"].values()) == r2.commands
    assert set(st["commands"]) <= {"accepted", "applied"}
    assert st["audit"][0]["who"] == "tester" and st["audit"][0]["action"] == "push"
    # rollback: the plan before comes back, as a new push, audited on both plans
    rb = ctl.rollback(second.id, now=devices.clock())
    assert rb.status == "applied" and rb.plan == first.id
    np.testing.assert_allclose(devices.level[idx], np.round(lc.level[:, k], 4))
    assert [a["action"] for a in ctl.status(second.id)["audit"]] == ["push", "rolled back"]
    assert [a["action"] for a in ctl.status(first.id)["audit"]] == ["push", "rollback"]
    with pytest.raises(PlanNotFoundError, match="no plan"):
        ctl.rollback(nights["part_night"].id, now=devices.clock())  # refused, never recorded
    devices.stop()
    store.close()


def test_device_offline_during_a_push_is_retried_then_partial(bondy, nights, mosquitto, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    plan = nights["adaptive"]
    devices = Devices(bondy, mosquitto.url, clock=_clock_at(plan)).start()
    groups = plan.groups()
    dead = sorted(groups)[:2]
    for cab in dead:
        devices.fault("offline", cab)
    ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=0.3, attempts=3)
    r = ctl.push(plan, now=devices.clock())
    expected = {a for c in dead for a in groups[c]}
    print(
        f"\noffline push: commands sent {r.commands}, acknowledged {r.acked}, "
        f"failed {len(dead)} cabinets ({len(expected)} lights), rounds {r.attempts}"
    )
    assert r.status == "partial" and r.attempts == 3
    assert set(r.failed) == expected and set(r.failed.values()) == {"no acknowledgement"}
    assert r.acked == len(groups) - len(dead)
    rows = store.execute(
        "SELECT target, attempts, status FROM commands WHERE status = 'unanswered'"
    )
    assert sorted(t for t, _, _ in rows) == dead and {a for _, a, _ in rows} == {3}
    st = ctl.status(plan.id)
    assert st["status"] == "partial" and sorted(st["failed"]) == dead
    devices.stop()
    store.close()


def test_expired_and_misaddressed_commands_are_rejected(bondy, nights, mosquitto, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    plan = nights["adaptive"]
    late = plan.valid_to + dt.timedelta(hours=1)
    devices = Devices(bondy, mosquitto.url, clock=lambda: late).start()
    ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=0.5, attempts=1)
    r = ctl.push(plan, now=plan.valid_from)  # sent for the night, heard after it
    assert r.status == "failed" and set(r.failed.values()) == {"expired"}
    assert sum(devices.applied.values()) == 0
    devices.stop()
    store.close()


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_late_acknowledgements_complete_a_partial_plan(bondy, nights, mosquitto, store_url):
    store = open_store(store_url)
    plan = nights["adaptive"]
    devices = Devices(bondy, mosquitto.url, clock=_clock_at(plan)).start()
    slow = sorted(plan.groups())[0]
    devices.fault("slow", slow, delay_s=1.5)  # answers after the push gave up waiting
    follower = AckFollower(store, mosquitto.url, city="bondy", period_s=0.1).start()
    ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=0.3, attempts=1)
    r = ctl.push(plan, now=devices.clock())
    assert r.status == "partial" and set(r.failed) == set(plan.groups()[slow])
    assert ctl.status(plan.id)["failed"] == {slow: "no acknowledgement"}
    # the slow gateway answers: accepted, then applied (its time has come)
    assert wait_for(lambda: ctl.status(plan.id)["status"] == "applied")
    assert wait_for(lambda: ctl.status(plan.id)["commands"].get("unanswered", 0) == 0)
    st = ctl.status(plan.id)
    print(f"\nlate acks: push {r.status} ({r.acked}/{r.commands}), then {st['commands']}")
    assert st["failed"] == {} and sum(st["commands"].values()) == r.commands
    late = [a for a in st["audit"] if a["action"] == "late ack"]
    assert [a["result"] for a in late] == ["applied"] and "partial -> applied" in late[0]["detail"]
    row = store.execute("SELECT status, reason, acked_us FROM commands WHERE target = ?", (slow,))
    assert row[0][0] in ("accepted", "applied") and row[0][1] == "" and row[0][2] is not None
    # the late answers of a command already final, or of no command of ours, change nothing
    before = store.execute("SELECT id, status FROM commands ORDER BY id")
    from live.mqtt import connect

    c = connect(mosquitto.url, "stray")
    cid = store.execute("SELECT id FROM commands WHERE target = ?", (slow,))[0][0]
    for cmd, status in ((cid, "accepted"), ("nobody#x/cabinet:1", "applied")):
        body = {"id": "s", "ts": "2024-01-15T20:00:00Z", "asset": slow}
        body |= {"command": cmd, "status": status}
        c.publish(f"twin/bondy/ack/cabinet/{slow}", json.dumps(body), qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()
    time.sleep(0.5)
    assert store.execute("SELECT id, status FROM commands ORDER BY id") == before
    assert devices.applied[cid] == 1  # the slow device applied it once
    follower.stop()
    devices.stop()
    store.close()


def test_late_acknowledgements_published_while_the_broker_restarts_are_recorded(
    bondy, nights, mosquitto, tmp_path
):
    """The follower's persistent session (QoS 1, stable client id) outlives a broker restart.

    Half the cabinets answer after the push gave up waiting: one group while the broker is down
    (their gateways hold the acknowledgements and send them once back), one group after it is
    back. The broker keeps the follower's subscription and queue across its restart, so every
    acknowledgement reaches the store.
    """
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    plan = nights["adaptive"]
    devices = Devices(bondy, mosquitto.url, clock=_clock_at(plan)).start()
    cabs = sorted(plan.groups())
    during, after = cabs[0::4], cabs[1::4]
    for cab in during:
        devices.fault("slow", cab, delay_s=1.5)
    for cab in after:
        devices.fault("slow", cab, delay_s=6.0)
    follower = AckFollower(store, mosquitto.url, city="bondy", period_s=0.1).start()
    ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=0.5, attempts=1)
    r = ctl.push(plan, now=devices.clock())
    groups = plan.groups()
    assert r.status == "partial" and r.acked <= len(cabs) - len(during) - len(after)
    assert set(r.failed) >= {a for c in during + after for a in groups[c]}
    cids = {c.rsplit("/", 1)[1]: c for c, _, _ in ctl.commands(plan, r.push, devices.clock())}
    mosquitto.stop()  # its state saved: the follower's session, subscription and queue
    # the first slow group answers while there is no broker: their client holds the answers
    assert wait_for(
        lambda: all(devices.answers.get(cids[c], {}).get("status") == "applied" for c in during)
    )
    mosquitto.start()
    assert wait_for(lambda: ctl.status(plan.id)["status"] == "applied", 60)
    assert wait_for(lambda: ctl.status(plan.id)["commands"] == {"applied": len(cabs)}, 30)
    follower.stop()
    st = ctl.status(plan.id)
    # every command's record is the device's last answer; every answer was heard
    sent = 2 * len(cabs)  # each device answered 'accepted', then 'applied' (due at once)
    heard = follower.heard
    print(
        f"\nbroker restart, late acks: commands {len(cabs)}, acknowledged in the push {r.acked}, "
        f"late {len(during)} (answered while the broker was down) and {len(after)} (6 s late); "
        "acknowledgements "
        f"sent {sent}, heard {sum(heard.values())} ({dict(heard)}), "
        f"lost {max(sent - sum(heard.values()), 0)}; sessions {follower.sessions}"
    )
    assert follower.sessions == [False, True], "the broker lost the follower's session"
    assert heard["accepted"] >= len(cabs) and heard["applied"] >= len(cabs)
    assert st["failed"] == {} and st["commands"] == {"applied": len(cabs)}
    late = [a for a in st["audit"] if a["action"] == "late ack"]
    assert late and late[-1]["result"] == "applied"
    assert all(devices.applied[c] == 1 for c in cids.values())
    devices.stop()
    store.close()


def test_acknowledgements_that_come_while_the_follower_is_away_wait_for_it(
    bondy, nights, mosquitto, tmp_path
):
    """The stable client id: a service restarted finds its session, and what came meanwhile."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    plan = nights["adaptive"]
    devices = Devices(bondy, mosquitto.url, clock=_clock_at(plan)).start()
    slow = sorted(plan.groups())[::2]
    for cab in slow:
        devices.fault("slow", cab, delay_s=1.5)
    AckFollower(store, mosquitto.url, city="bondy").start().stop()  # the service ran before
    ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=0.5, attempts=1)
    r = ctl.push(plan, now=devices.clock())
    assert r.status == "partial"
    cids = {c.rsplit("/", 1)[1]: c for c, _, _ in ctl.commands(plan, r.push, devices.clock())}
    # the slow devices answer while no follower runs: the broker queues for its session
    assert wait_for(
        lambda: all(devices.answers.get(cids[c], {}).get("status") == "applied" for c in slow)
    )
    follower = AckFollower(store, mosquitto.url, city="bondy", period_s=0.1).start()
    assert wait_for(lambda: ctl.status(plan.id)["commands"] == {"applied": len(cids)})
    follower.stop()
    assert follower.sessions == [True] and follower.heard["applied"] >= len(slow)
    assert ctl.status(plan.id)["status"] == "applied"
    devices.stop()
    store.close()
