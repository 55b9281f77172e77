"""Persistent sessions of the simulator and of the pushes, across broker restarts (real Mosquitto).

Each test accounts for every command publication: sent (by the controller, first sendings and
retries), delivered to the devices (:attr:`Devices.received`: redeliveries counted), accepted
(distinct commands the devices took and applied), rejected, and lost (sent but never
delivered); and checks that no command applied twice. Run with -s to see the counts.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from live_fixtures import wait_for

from live.control import AckFollower, Controller
from live.devices import Devices
from live.store import open_store
from optimize import dimming
from optimize.plans import from_dimming

NIGHT = "2024-01-15"


@pytest.fixture(scope="module")
def plan(bondy):
    from optimize.nightly import adaptive_plan

    prepared = dimming.problem_for(bondy, NIGHT)
    return from_dimming(adaptive_plan(bondy, NIGHT, prepared=prepared)[0])


def _clock_at(plan):
    """The devices' clock: inside the plan's night (its commands are neither stale nor due)."""
    t = plan.valid_from + dt.timedelta(hours=1)
    start = time.monotonic()
    return lambda: t + dt.timedelta(seconds=time.monotonic() - start)


def _account(name: str, ctl: Controller, devices: Devices, cids: list[str]) -> dict[str, int]:
    """Counts of command publications; asserts that each is accounted for."""

    def settled(c: str) -> bool:
        return devices.applied[c] >= 1 or devices.answers.get(c, {}).get("status") == "rejected"

    # a device acknowledges 'accepted' before it applies (in the same handler, a moment later):
    # the push may see every command accepted while a device thread is still between the two
    wait_for(lambda: all(settled(c) for c in cids), 10)
    sent = ctl.published
    delivered = sum(devices.received[c] for c in cids)
    accepted = sum(devices.applied[c] == 1 for c in cids)
    rejected = sum(devices.answers.get(c, {}).get("status") == "rejected" for c in cids)
    lost = max(sent - delivered, 0)
    counts = {
        "sent": sent,
        "delivered": delivered,
        "accepted": accepted,
        "rejected": rejected,
        "lost": lost,
        "commands": len(cids),
    }
    print(f"\n{name}: {counts}; acks sent {dict(devices.acks)}")
    # every publication reached the devices (redeliveries may add to them), every command was
    # taken or refused, none applied twice
    assert delivered >= sent and lost == 0
    assert accepted + rejected == len(cids)
    assert all(devices.applied[c] <= 1 for c in cids)
    return counts


def test_commands_sent_while_the_simulator_is_away_across_a_broker_restart_are_applied_on_return(
    bondy, plan, mosquitto, tmp_path
):
    """The simulator goes away, the broker restarts, a plan is pushed: the broker keeps the
    simulator's session and its commands (on disk over the restart), and delivers them when it
    comes back; each is applied once, and the late acknowledgements complete the plan."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    devices = Devices(bondy, mosquitto.url, clock=_clock_at(plan))
    follower = AckFollower(store, mosquitto.url, city="bondy", period_s=0.1)
    try:
        follower.start()
        devices.start().stop()  # the simulator ran once, and is away
        mosquitto.restart()  # its state saved: the simulator's session and subscription
        ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=0.5, attempts=2)
        r = ctl.push(plan, now=devices.clock())
        cids = [c for c, _, _ in ctl.commands(plan, r.push, devices.clock())]
        assert r.status == "failed" and r.attempts == 2  # nobody answered
        assert set(r.failed.values()) == {"no acknowledgement"}
        assert sum(devices.received.values()) == 0
        devices.start()  # back: the two sendings of each command are waiting
        assert wait_for(lambda: sum(devices.received.values()) >= ctl.published, 30)
        assert wait_for(lambda: ctl.status(plan.id)["commands"] == {"applied": len(cids)}, 30)
        assert wait_for(lambda: ctl.status(plan.id)["status"] == "applied", 30)
        st = ctl.status(plan.id)
        assert st["status"] == "applied" and st["failed"] == {}
        assert [a["result"] for a in st["audit"] if a["action"] == "late ack"][-1] == "applied"
        counts = _account("simulator away, broker restarted", ctl, devices, cids)
        assert counts["sent"] == 2 * len(cids) and counts["accepted"] == len(cids)
        assert devices.sessions == [False, True], "the broker lost the simulator's session"
        # each command: accepted and applied once; the second sending answered as a replay
        assert all(devices.received[c] == 2 and devices.applied[c] == 1 for c in cids)
        assert wait_for(lambda: sum(follower.heard.values()) >= sum(devices.acks.values()))
        assert sum(follower.heard.values()) == sum(devices.acks.values())  # no ack lost
    finally:
        devices.stop()
        follower.stop()
        store.close()


def test_broker_restarted_mid_push_every_command_ends_applied_once(
    bondy, plan, mosquitto, tmp_path
):
    """The broker stops in the middle of a push and comes back 2.5 s later.

    A quarter of the cabinets answer at once, a quarter 1 s late (while the broker is down:
    their gateway holds the answers), a quarter 4 s late and a quarter 6 s late (after it is
    back). The push's second round, 1.5 s in, is published while the broker is down: the
    controller's client holds it and sends it once back. Both sessions are persistent, so every
    command and acknowledgement gets through: the push ends ``applied`` by itself, and no
    command applies twice.
    """
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    devices = Devices(bondy, mosquitto.url, clock=_clock_at(plan))
    cabs = sorted(plan.groups())
    for group, delay in ((cabs[1::4], 1.0), (cabs[2::4], 4.0), (cabs[3::4], 6.0)):
        for cab in group:
            devices.fault("slow", cab, delay_s=delay)
    ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=1.5, attempts=4)
    outage: list[float] = []

    def restart_once_the_first_answers_are_out() -> None:
        # the fast quarter answers each command twice: accepted, then applied (due at once)
        if wait_for(lambda: devices.acks["applied"] >= len(cabs[0::4]), 30):
            t = time.monotonic()
            mosquitto.stop()
            time.sleep(2.5)
            mosquitto.start()
            outage.append(time.monotonic() - t)

    restarter = threading.Thread(target=restart_once_the_first_answers_are_out)
    try:
        devices.start()
        restarter.start()
        r = ctl.push(plan, now=devices.clock())
        restarter.join(60)
        cids = [c for c, _, _ in ctl.commands(plan, r.push, devices.clock())]
        assert outage, "the broker was not restarted"
        assert r.status == "applied", r.summary()
        assert r.acked == r.commands == len(cids)
        assert ctl.sessions == [False, True], "the broker lost the controller's session"
        assert devices.sessions == [False, True], "the broker lost the simulator's session"
        assert r.attempts >= 2  # the slow cabinets were sent again
        assert wait_for(lambda: all(devices.applied[c] == 1 for c in cids), 30)
        # the retries are answered as replays, after the device's first answer
        assert wait_for(lambda: sum(devices.received[c] for c in cids) >= ctl.published, 30)
        counts = _account("broker restarted mid-push", ctl, devices, cids)
        assert counts["accepted"] == len(cids) and counts["rejected"] == 0
        rows = store.execute("SELECT status FROM commands")
        assert {s for (s,) in rows} <= {"accepted", "applied"} and len(rows) == len(cids)
        print(f"broker down for {outage[0]:.2f} s; push {r.summary()}")
    finally:
        restarter.join(60)
        devices.stop()
        store.close()


def test_acknowledgements_sent_while_the_broker_restarts_reach_the_push_in_one_round(
    bondy, plan, mosquitto, tmp_path
):
    """One round, no retry: an acknowledgement lost in the restart would leave the plan partial.

    The slow half of the cabinets answer while the broker is down (their gateway holds the
    answers) or just after it is back, perhaps before the controller has reconnected: its
    persistent session queues them for it.
    """
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    devices = Devices(bondy, mosquitto.url, clock=_clock_at(plan))
    cabs = sorted(plan.groups())
    for i, cab in enumerate(cabs[1::2]):
        devices.fault("slow", cab, delay_s=0.6 + 0.2 * i)
    ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=30.0, attempts=1)
    down = threading.Event()

    def restart(k: int, n: int) -> None:
        if k >= len(cabs[0::2]) and not down.is_set():
            down.set()
            mosquitto.stop()
            time.sleep(1.0)
            mosquitto.start()

    try:
        devices.start()
        r = ctl.push(plan, progress=restart, now=devices.clock())
        cids = [c for c, _, _ in ctl.commands(plan, r.push, devices.clock())]
        assert down.is_set()
        assert r.status == "applied" and r.attempts == 1, r.summary()
        assert ctl.sessions == [False, True]
        counts = _account("acks across a restart, one round", ctl, devices, cids)
        assert counts["sent"] == len(cids)
    finally:
        devices.stop()
        store.close()


def test_commands_scheduled_for_later_apply_at_their_time_across_a_stop_and_start(
    bondy, plan, mosquitto, tmp_path
):
    """A gateway keeps the schedules it accepted while its link is down, and applies them."""
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    t = plan.valid_from - dt.timedelta(seconds=2)  # the plan starts in two seconds
    start = time.monotonic()
    devices = Devices(
        bondy, mosquitto.url, clock=lambda: t + dt.timedelta(seconds=time.monotonic() - start)
    )
    try:
        devices.start()
        ctl = Controller(store, mosquitto.url, city="bondy", timeout_s=5.0, attempts=1)
        r = ctl.push(plan, now=devices.clock())
        cids = [c for c, _, _ in ctl.commands(plan, r.push, devices.clock())]
        assert r.status == "applied" and r.acked == len(cids)  # accepted, for later
        devices.stop()
        assert set(devices.scheduled) == set(cids) and sum(devices.applied.values()) == 0
        assert wait_for(lambda: devices.clock() > plan.valid_from + dt.timedelta(seconds=0.5))
        devices.start()  # the time came while it was stopped: applied at once
        assert wait_for(lambda: all(devices.applied[c] == 1 for c in cids), 20)
        assert devices.scheduled == {} and devices.sessions == [False, True]
        assert wait_for(lambda: devices.acks["applied"] == len(cids))
        counts = _account("scheduled commands across a stop and start", ctl, devices, cids)
        assert counts["sent"] == len(cids) == counts["accepted"]
    finally:
        devices.stop()
        store.close()


def test_telemetry_published_while_the_broker_restarts_is_sent_once_it_is_back(
    bondy, mosquitto, tmp_path
):
    """A round of the simulator's telemetry during a broker restart: no error, nothing lost."""
    from live.ingest import Ingestor, assets_of
    from live.mqtt import IngestService

    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    ing = Ingestor(store, city="bondy", assets=assets_of(bondy), timezone=bondy.city.timezone)
    t = [dt.datetime(2024, 1, 15, 21, tzinfo=dt.UTC)]
    devices = Devices(bondy, mosquitto.url, clock=lambda: t[0], rng=1)
    svc = IngestService(ing, mosquitto.url, qos=1)
    try:
        svc.start()
        devices.start()
        sent = devices.publish_telemetry()
        mosquitto.stop()
        t[0] += dt.timedelta(minutes=1)
        sent += devices.publish_telemetry()  # held by the client: the broker is down
        mosquitto.start()
        # duplicates (the broker resends what the service had not acknowledged when it went
        # down) count as received: wait for every distinct message instead
        c = ing.counters
        assert wait_for(lambda: c["accepted"] + ing.rejected() >= sent, 60), (
            f"{c['accepted']} of {sent} accepted"
        )
        print(
            f"\ntelemetry across a broker restart: sent {sent}, accepted {c['accepted']}, "
            f"rejected {ing.rejected()}, duplicates {c['duplicate']}, "
            f"lost {sent - c['accepted'] - ing.rejected()}"
        )
        assert ing.accounted() and c["accepted"] == sent and ing.rejected() == 0
        assert store.count("telemetry") == sent
    finally:
        devices.stop()
        svc.stop()
        store.close()
