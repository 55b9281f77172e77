"""The simulator's signal-controller detector counts come from the traffic DES."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import msgspec
import numpy as np
import pytest

from live.devices import DETECTOR_SLOT_S, DETECTOR_WARMUP_S, Devices, detector_counts
from live.telemetry import JunctionTelemetry

DAY = dt.date(2024, 6, 4)  # a Tuesday outside school holidays


def _des_counts(tw, day: dt.date, hour: int, seed: int) -> dict[str, int]:
    """The DES's own per-approach count of an hour: its flow on each approach edge, run here."""
    from twin.scenarios.network import scenario_from_twin
    from twin.scenarios.traffic import edge_index, run

    start = hour - DETECTOR_WARMUP_S / 3600.0
    sc = scenario_from_twin(
        tw,
        day=day,
        hours=(start, hour + 1),
        rng=seed,
        slot_s=DETECTOR_SLOT_S,
        duration_s=(hour + 1 - start) * 3600.0,
        progress=False,
    )
    ds = run(sc, rng=seed)
    idx = edge_index(sc.graph)
    warm = int(DETECTOR_WARMUP_S // DETECTOR_SLOT_S)
    slot_h = DETECTOR_SLOT_S / 3600.0
    app = tw.registry["approach"]
    return {
        str(a): int(round(float(ds["flow"].values[idx[(u, v, int(k))], warm:].sum() * slot_h)))
        for a, u, v, k in zip(app["id"], app["u"], app["v"], app["key"], strict=True)
    }


def test_detector_counts_reported_over_an_hour_add_up_to_the_des(bondy):
    tz = zoneinfo.ZoneInfo(bondy.city.timezone)
    hour = 8
    t0 = dt.datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=tz).astimezone(dt.UTC)
    clock = [t0]
    devices = Devices(bondy, "mqtt://unused:1", clock=lambda: clock[0], rng=7)  # not connected
    dec = msgspec.json.Decoder(JunctionTelemetry)
    reported: dict[str, int] = {}
    for k in range(61):  # a report every minute; the first covers the 5 minutes before 08:00
        clock[0] = t0 + dt.timedelta(minutes=k)
        for topic, payload in devices.telemetry():
            if "/telemetry/junction/" in topic:
                msg = dec.decode(payload)  # valid telemetry of its schema
                if k > 0:
                    for a, n in msg.counts.items():
                        reported[a] = reported.get(a, 0) + n
    assert devices.detector_note == ""
    seed = devices.seed + DAY.toordinal() * 24 + hour
    des = _des_counts(bondy, DAY, hour, seed)
    kept = devices.detectors[(DAY, hour)]
    assert kept is not None and kept.attrs["missing"] == ""
    print(f"\ndetector counts of {DAY} {hour:02d}:00-{hour + 1:02d}:00 (DES): {des}")
    # every approach of the registry reports, and an hour of reports is the DES's hour
    assert set(reported) == set(des) == set(bondy.registry["approach"]["id"].astype(str))
    assert reported == des
    hourly = kept["count"].sum("time").values.tolist()
    assert dict(zip(kept["approach"].values.tolist(), hourly, strict=True)) == des
    assert sum(des.values()) > 100  # the morning peak crosses Bondy's signals
    # the reports follow the DES's slots, not a flat rate: each slot's count is its own
    per_slot = kept["count"].sum("approach").values
    assert per_slot.size == 3600 / DETECTOR_SLOT_S and len(set(per_slot.tolist())) > 1


def test_the_des_runs_once_per_hour_prepared_ahead(bondy):
    tz = zoneinfo.ZoneInfo(bondy.city.timezone)
    t = dt.datetime(DAY.year, DAY.month, DAY.day, 17, 30, tzinfo=tz).astimezone(dt.UTC)
    clock = [t]
    devices = Devices(bondy, "mqtt://unused:1", clock=lambda: clock[0], rng=3)
    devices.prepare()
    assert list(devices.detectors) == [(DAY, 17)]
    first = devices.detectors[(DAY, 17)]
    devices.telemetry()
    clock[0] = t + dt.timedelta(minutes=10)
    devices.telemetry()
    assert devices.detectors[(DAY, 17)] is first  # kept, not simulated again
    assert devices._ahead is None and list(devices.detectors) == [(DAY, 17)]
    clock[0] = t + dt.timedelta(minutes=20)  # 17:50: the next hour runs in the background
    devices.telemetry()
    assert devices._ahead is not None
    devices._ahead.join(60)
    assert list(devices.detectors) == [(DAY, 17), (DAY, 18)]
    ahead = devices.detectors[(DAY, 18)]
    clock[0] = t + dt.timedelta(minutes=35)  # 18:05: the hour is ready, not simulated again
    devices.telemetry()
    assert devices.detectors[(DAY, 18)] is ahead and devices.detectors[(DAY, 17)] is first


def test_detector_counts_name_what_they_need(bondy):
    from twin._errors import InputValidationError

    ds = detector_counts(bondy, day=DAY, hour=0, rng=1)  # no warm-up before midnight
    assert ds.sizes["time"] == 3600 / DETECTOR_SLOT_S
    assert ds["count"].attrs["units"] == "veh" and ds["time"].attrs["timezone"] == "UTC"
    assert (ds["count"].values >= 0).all()
    with pytest.raises(InputValidationError, match="hours"):
        detector_counts(bondy, day=DAY, hour=24, rng=1)
    assert np.issubdtype(ds["count"].dtype, np.integer)
