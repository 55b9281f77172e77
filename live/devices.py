"""The equipment simulator: a city's devices on a broker, the stand-in for real ones in tests.

:class:`Devices` plays, from a twin's registry:

* cabinet gateways, each with the light controllers behind it (as lighting networks address
  their lights through the cabinet): it takes a cabinet's command, acknowledges it, applies
  each light's schedule at its times, and reports each light (level, power, fault) and the
  cabinet's meter (power, energy index);
* signal controllers (mode, running plan, stage, detector counts), counters and road-weather
  stations, and fleet vehicles (GPS).

Telemetry is driven by the twin:

* a light reports the level it was commanded (its schedule at the current time) and the power
  that level draws: the registry's ``power_w`` on the dimming power curve
  (:data:`optimize.dimming.DRIVER_FLOOR`); a cabinet's meter integrates its lights' power;
* footfall counters replay the footfall simulation of :mod:`twin.scenarios.footfall`
  (:func:`~twin.scenarios.footfall.run_footfall`, with the ``events`` given, for each local day
  the clock reaches): each slot's simulated count is spread over the slot as uniform arrival
  times (given its count, a Poisson process of constant rate places its arrivals uniformly:
  the same process), and a counter reports the arrivals of the last :data:`COUNT_WINDOW_S`.
  Where the simulation cannot run (no walk network), the demand profile's hourly share does;
* signal controllers report their detector counts from the traffic DES
  (:mod:`twin.scenarios.traffic`, on :func:`~twin.scenarios.network.scenario_from_twin`): for
  each local hour the clock reaches, the city's traffic is simulated once (from a quarter of an
  hour before, so that the network is not empty when the hour starts;
  :func:`detector_counts`), and kept. Each approach's count per DES slot (the vehicles that
  enter the approach, as an advance loop detector counts them) is spread over the slot as
  uniform arrival times, like the footfall, and a controller reports, per approach, the
  arrivals since its previous report: the reports of an hour add up to the DES's counts.
  :meth:`Devices.prepare` runs the DES of the current hour ahead, and in the last quarter of
  an hour the next one runs in a background thread (Bondy: about a second; Montpellier: about
  a minute on two busy cores). Where the DES cannot run for the city, the counts fall back to the
  demand profile's car share, and :attr:`Devices.detector_note` and the log say so;
* loop counters (sensors) report counts from the demand profile's car share at the local hour;
* road-weather stations report :func:`road_weather`, a diurnal model driven by the date and
  hour, with a fixed offset per station and noise; :meth:`Devices.weather` injects a cold
  night and precipitation (``weather(offset_c=-8, precip_mm_h=1)`` brings a winter night's road
  below 0 degC with snow, which the example snow rule catches).

Session: the simulator holds a persistent MQTT session, as a gateway that must not miss a
command does: a stable client id (``twin-devices-<city>`` by default), ``clean_start=False``
with a session expiry (:func:`live.mqtt.connect`), and a QoS 1 subscription to
``twin/<city>/cmd/#``, made again at every connection in case the broker lost the session. While
the simulator is away (stopped, or its link or the broker down; paho reconnects by itself), the
broker keeps the subscription and queues the commands published meanwhile (Mosquitto with
persistence keeps them across its own restart), and delivers them when it comes back: they are
answered and applied then, each once. :attr:`Devices.sessions` records, for each connection,
whether the broker still had the session; :attr:`Devices.received` counts the deliveries of
each command id (a command sent again, or redelivered by the broker, counts each time).

Commands: a command is acknowledged ``accepted`` (scheduled for ``apply_at``), then
``applied`` when its time comes; ``rejected`` with a reason when it has expired, names an asset
the device does not drive, or is malformed. A command id already seen is acknowledged again
with its first answer and never applied twice (:attr:`Devices.applied` counts applications per
command id). Cabinet gateways take lights' schedules; a schedule marked ``override`` (a rule's
temporary raise, :mod:`live.actions`) lies over the one in force until its ``expires``, then the
lights go back to it. Signal controllers take programmes, and variable-message signs (the
city's, :mod:`live.signs`) take a ``text`` of 1 to 120 characters (:attr:`Devices.vms`).

Faults on request (:meth:`Devices.fault`): ``lamp_failure`` (a light reports the fault and
draws nothing), ``power_anomaly`` (a cabinet's metered power off by a factor), ``offline`` (an
asset neither reports nor answers), ``flashing_amber`` (a signal controller's fault mode),
``slow`` (a device handles, and so acknowledges, each command ``delay_s`` late: the late
acknowledgements :class:`live.control.AckFollower` records).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import threading
import uuid
import zoneinfo
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import numpy as np

from live.mqtt import connect
from live.telemetry import topic

if TYPE_CHECKING:
    import xarray as xr

    from twin.model import Twin
    from twin.scenarios.events import Event

__all__ = [
    "COUNT_WINDOW_S",
    "DETECTOR_SLOT_S",
    "DETECTOR_WARMUP_S",
    "Devices",
    "Fault",
    "detector_counts",
    "road_weather",
]

log = logging.getLogger(__name__)

COUNT_WINDOW_S = 300.0
"""A footfall counter's report: pedestrians counted over this many seconds before ``ts``."""

DETECTOR_SLOT_S = 300.0
"""The traffic DES's output slot for the detector counts, s."""

DETECTOR_WARMUP_S = 900.0
"""Simulated before the hour, so that it does not start on an empty network, s."""


def detector_counts(
    tw: Twin, *, day: dt.date, hour: int, rng: np.random.Generator | int | None = None
) -> xr.Dataset:
    """Vehicles entering each signalised approach per slot of one local hour, from the DES.

    The traffic DES (:func:`twin.scenarios.traffic.run`) runs the twin's car trips of the day
    (:func:`~twin.scenarios.network.scenario_from_twin`, with its default signal plans) from
    :data:`DETECTOR_WARMUP_S` before local hour ``hour`` of ``day`` to the hour's end, in slots
    of :data:`DETECTOR_SLOT_S`; the warm-up slots are dropped. An approach's count in a slot is
    the DES's ``flow`` on the approach's drive edge (the registry's ``approach`` row: ``u``,
    ``v``, ``key``) times the slot's length: the vehicles that entered it.

    Returns
    -------
    xarray.Dataset
        ``count`` (``approach``, ``time``; veh), with coords ``junction`` (per approach) and
        ``time`` (slot starts, naive UTC); attrs ``slot_s``, ``day``, ``hour``, and
        ``missing`` (approaches not on the DES's network, comma-separated).

    Raises
    ------
    InputValidationError
        No car trip in the window, or a twin with no drive network or approaches.
    """
    import pandas as pd
    import xarray as xr

    from twin._errors import InputValidationError
    from twin.scenarios.network import scenario_from_twin
    from twin.scenarios.traffic import edge_index, run

    if "approach" not in tw.registry.kinds or not len(tw.registry["approach"]):
        msg = f"detector_counts: {tw.name} has no signalised approach"
        raise InputValidationError(msg)
    start = max(hour - DETECTOR_WARMUP_S / 3600.0, 0.0)
    window = (start, float(hour + 1))
    sc = scenario_from_twin(
        tw,
        day=day,
        hours=window,
        rng=rng,
        slot_s=DETECTOR_SLOT_S,
        duration_s=(window[1] - window[0]) * 3600.0,
        progress=False,
    )
    ds = run(sc, rng=rng)
    index = {(str(u), str(v), int(k)): i for (u, v, k), i in edge_index(sc.graph).items()}
    app = tw.registry["approach"]
    rows, ids, junctions, missing = [], [], [], []
    for a, j, u, v, k in zip(
        app["id"].astype(str), app["junction"].astype(str), app["u"], app["v"], app["key"],
        strict=True,
    ):  # fmt: skip
        i = index.get((str(u), str(v), int(k)))
        if i is None:
            missing.append(a)
            continue
        rows.append(i)
        ids.append(a)
        junctions.append(j)
    keep = (hour - start) * 3600.0 // DETECTOR_SLOT_S  # the warm-up slots
    flow = ds["flow"].values[rows][:, int(keep) :]
    counts = np.rint(flow * DETECTOR_SLOT_S / 3600.0).astype(np.int64)
    times = pd.DatetimeIndex(ds["time"].values[int(keep) :])
    return xr.Dataset(
        {"count": (("approach", "time"), counts, {"units": "veh", "long_name": "vehicles in"})},
        coords={
            "approach": ("approach", np.array(ids, dtype=str)),
            "junction": ("approach", np.array(junctions, dtype=str)),
            "time": ("time", times.values, {"timezone": "UTC", "long_name": "slot start"}),
        },
        attrs={
            "slot_s": DETECTOR_SLOT_S,
            "day": day.isoformat(),
            "hour": int(hour),
            "missing": ",".join(missing),
            "source": "traffic DES (twin.scenarios.traffic)",
        },
    )


def road_weather(local: dt.datetime) -> tuple[float, float]:
    """Plausible ``(road, air)`` temperatures, degC, at a local time (no noise, no offset).

    A simple, documented model for the simulator, not a forecast, after the Dijon-Longvic
    normals 1991-2020 (Meteo-France): daily mean about 2.5 degC in January and 21 degC in July,
    daily range about 6.5 degC in January and 13 degC in July. With ``s`` the season
    (0 in mid-January, 1 in mid-July, a cosine of the day of the year):

    * air: ``11.8 - 9.3 cos(2 pi (doy - 15) / 365.25)``, plus a daily swing of
      ``+-(3.2 + 3.2 s)`` peaking at 15:00;
    * road surface: the air, plus the sun's gain ``(1 + 3 s)`` times the daylight bell
      ``max(0, cos(2 pi (h - 13) / 24))``, less 0.5 degC lost to the sky at night (a road
      freezes before the air does under a clear sky).

    >>> import datetime as dt
    >>> road, air = road_weather(dt.datetime(2024, 1, 15, 5, 0))
    >>> round(road, 1), round(air, 1)
    (-0.8, -0.3)
    >>> road, air = road_weather(dt.datetime(2024, 7, 15, 14, 0))
    >>> round(road, 1), round(air, 1)
    (31.1, 27.3)
    """
    doy = local.timetuple().tm_yday
    hour = local.hour + local.minute / 60.0
    phase = np.cos(2 * np.pi * (doy - 15) / 365.25)
    season = (1.0 - phase) / 2.0
    air = 11.8 - 9.3 * phase + (3.2 + 3.2 * season) * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
    sun = max(0.0, float(np.cos(2 * np.pi * (hour - 13.0) / 24.0)))
    road = air + (1.0 + 3.0 * season) * sun - 0.5 * (1.0 - sun)
    return float(road), float(air)


Fault = Literal["lamp_failure", "power_anomaly", "offline", "flashing_amber", "slow"]


@dataclasses.dataclass
class _Schedule:
    """A light's commanded levels; an override (``expires`` finite) lies over what ran before."""

    times: np.ndarray  # slot starts, POSIX s
    levels: np.ndarray
    expires: float = np.inf
    under: _Schedule | None = None
    level_before: float = 1.0


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse(t: str) -> dt.datetime:
    return dt.datetime.fromisoformat(t.replace("Z", "+00:00"))


class Devices:
    """One city's simulated devices (see the module docstring).

    Parameters
    ----------
    tw : Twin
    url : str
        The broker.
    rng : Generator or int, optional
    clock : callable, optional
        The current time (tz-aware UTC); default the wall clock.
    events : iterable of twin.scenarios.events.Event
        Concerts and markets the footfall simulation includes (a crowd leaving a concert
        passes the counters nearby).
    client_id : str, optional
        Id of the persistent MQTT session (default ``twin-devices-<city>``): one simulator per
        city and broker. A second one with the same id takes the session over, the first
        reconnects and takes it back, and so on: each misses what arrives while the other
        holds it (Mosquitto 2.0 closes the connection without MQTT 5's "session taken over"
        reason, so a client cannot tell this from a broker restart). Give each its own id.
    """

    def __init__(
        self,
        tw: Twin,
        url: str,
        *,
        rng: Any = None,
        clock: Any = None,
        events: Iterable[Event] = (),
        client_id: str | None = None,
    ) -> None:
        from optimize.dimming import DRIVER_FLOOR

        self.tw = tw
        self.events = tuple(events)
        self.city = tw.name
        self.url = url
        self.client_id = client_id or f"twin-devices-{self.city}"
        #: ``session_present`` of each connection: ``False`` after the first means the broker
        #: lost the session (and the commands it had queued)
        self.sessions: list[bool] = []
        self.received: collections.Counter[str] = collections.Counter()
        #: acknowledgements published, by status (the answers to replays included)
        self.acks: collections.Counter[str] = collections.Counter()
        self.rng = np.random.default_rng(rng)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.tz = zoneinfo.ZoneInfo(tw.city.timezone)
        self.floor = DRIVER_FLOOR
        reg = tw.registry
        lights = reg["light"]
        self.light_ids = lights["id"].astype(str).to_numpy()
        self.light_index = {a: i for i, a in enumerate(self.light_ids)}
        self.light_cabinet = lights["cabinet"].astype(str).to_numpy()
        self.power_w = lights["power_w"].to_numpy(dtype=float)
        self.level = np.ones(len(self.light_ids))
        self.failed = np.zeros(len(self.light_ids), bool)
        cabs = reg["cabinet"]["id"].astype(str).tolist()
        self.cabinet_lights = {c: np.flatnonzero(self.light_cabinet == c) for c in cabs}
        self.meter_wh = dict.fromkeys(cabs, 0.0)
        self.power_factor = dict.fromkeys(cabs, 1.0)
        self.junctions = (
            reg["junction"]["id"].astype(str).tolist() if "junction" in reg.kinds else []
        )
        self.junction_mode = dict.fromkeys(self.junctions, "normal")
        self.junction_plan: dict[str, str | None] = dict.fromkeys(self.junctions)
        self.junction_approaches: dict[str, list[str]] = {j: [] for j in self.junctions}
        if "approach" in reg.kinds:
            app = reg["approach"]
            for a, j in zip(app["id"].astype(str), app["junction"].astype(str), strict=True):
                self.junction_approaches.setdefault(j, []).append(a)
        #: the DES's detector counts of each local ``(day, hour)`` simulated
        #: (:func:`detector_counts`); ``None`` where the DES could not run
        self.detectors: dict[tuple[dt.date, int], xr.Dataset | None] = {}
        self._detector_arrivals: dict[tuple[dt.date, int], dict[str, np.ndarray] | None] = {}
        #: why detector counts come from the demand profile, if they do
        self.detector_note = ""
        self._des_lock = threading.Lock()
        self._ahead: threading.Thread | None = None
        sensors = reg["sensor"] if "sensor" in reg.kinds else None
        self.sensors = (
            dict(zip(sensors["id"].astype(str), sensors["sensor_type"].astype(str), strict=True))
            if sensors is not None
            else {}
        )
        vehicles = reg["vehicle"] if "vehicle" in reg.kinds else None
        if vehicles is not None and len(vehicles):
            ll = vehicles.to_crs("EPSG:4326").geometry
            self.vehicles = {
                str(v): [float(p.x), float(p.y)] for v, p in zip(vehicles["id"], ll, strict=True)
            }
        else:
            self.vehicles = {}
        from live.signs import variable_message_signs

        self.vms = dict.fromkeys(variable_message_signs(tw)["id"].astype(str), "")
        self.seed = int(self.rng.integers(2**31))
        self.station_offset_c = {
            s: float(self.rng.normal(0.0, 0.5)) for s, k in self.sensors.items() if k == "weather"
        }
        self.weather_offset_c = 0.0
        self.precip_mm_h = 0.0
        self._arrivals: dict[dt.date, dict[str, np.ndarray] | None] = {}
        self.footfall_note = ""
        self.offline: set[str] = set()
        self.slow: dict[str, float] = {}
        self.schedules: dict[str, _Schedule] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.applied: collections.Counter[str] = collections.Counter()
        self.commands_seen = 0
        self._timers: list[threading.Timer] = []
        #: commands accepted and waiting for their time: kept across stop() and start(), as a
        #: gateway keeps the schedules it took when its link goes down
        self.scheduled: dict[str, tuple[str, str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self._last_round: dt.datetime | None = None
        self._decoder = msgspec.json.Decoder()
        self.client: Any = None

    # -- connection ----------------------------------------------------------------------------
    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any = None) -> None:
        # at every (re)connection: the persistent session keeps the subscription; subscribing
        # again is harmless, and covers a broker that lost the session
        if not getattr(rc, "is_failure", False):
            with self._lock:
                # before any queued command is handled: their answers go out on this client
                self.client = c
            self.sessions.append(bool(getattr(flags, "session_present", False)))
            c.subscribe(f"twin/{self.city}/cmd/#", qos=1)

    def start(self) -> Devices:
        """Connect (persistent session, see the module docstring) and listen for commands.

        The commands the broker kept for the session while the simulator was away arrive
        first, and are answered and applied as any other.
        """
        done = threading.Event()
        client = connect(
            self.url,
            self.client_id,
            persistent=True,
            on_message=self._on_command,
            on_connect=self._on_connect,
            on_subscribe=lambda *a, **k: done.set(),
        )
        done.wait(10)
        # paho types the delays as int; it sleeps on floats (a restarted broker is back quickly)
        client.reconnect_delay_set(min_delay=0.05, max_delay=1)  # type: ignore[arg-type]
        with self._lock:
            now = self.clock()
            for cid, (_, _, cmd) in list(self.scheduled.items()):
                self._arm(cid, max((_parse(cmd["apply_at"]) - now).total_seconds(), 0.0))
        return self

    def stop(self) -> None:
        """Stop the timers and disconnect; the broker keeps the session.

        Commands accepted for a later time stay in :attr:`scheduled`: :meth:`start` sets their
        timers again (one whose time came meanwhile applies at once, unless it has expired).
        """
        with self._lock:
            timers, self._timers = self._timers, []
        for t in timers:
            t.cancel()
        with self._lock:
            client, self.client = self.client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def __enter__(self) -> Devices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------------
    def fault(
        self,
        kind: Fault,
        asset: str,
        *,
        factor: float = 1.5,
        delay_s: float = 5.0,
        on: bool = True,
    ) -> None:
        """Inject (``on``) or clear a fault on one asset.

        ``slow`` makes a device handle (and so acknowledge) each command ``delay_s`` late, as a
        gateway on a congested or intermittent link does.
        """
        with self._lock:
            if kind == "lamp_failure":
                self.failed[self.light_index[asset]] = on
            elif kind == "power_anomaly":
                self.power_factor[asset] = factor if on else 1.0
            elif kind == "offline":
                (self.offline.add if on else self.offline.discard)(asset)
            elif kind == "flashing_amber":
                self.junction_mode[asset] = "flashing_amber" if on else "normal"
            elif kind == "slow":
                if on:
                    self.slow[asset] = delay_s
                else:
                    self.slow.pop(asset, None)
            else:
                msg = f"fault: {kind!r} is not one of lamp_failure, power_anomaly, offline, "
                msg += "flashing_amber, slow"
                raise ValueError(msg)

    def weather(self, *, offset_c: float = 0.0, precip_mm_h: float = 0.0) -> None:
        """Shift every station's temperatures by ``offset_c`` and set the precipitation."""
        if not (np.isfinite(offset_c) and -40 <= offset_c <= 40):
            msg = f"offset_c: {offset_c!r} is not a number of degC in [-40, 40]"
            raise ValueError(msg)
        if not (np.isfinite(precip_mm_h) and 0 <= precip_mm_h <= 200):
            msg = f"precip_mm_h: {precip_mm_h!r} is not a rate in [0, 200] mm/h"
            raise ValueError(msg)
        with self._lock:
            self.weather_offset_c, self.precip_mm_h = float(offset_c), float(precip_mm_h)

    # -- footfall replay -------------------------------------------------------------------------
    def _day_arrivals(self, day: dt.date) -> dict[str, np.ndarray] | None:
        """Each footfall counter's arrival times (POSIX s) on a local day, from the simulation."""
        if day in self._arrivals:
            return self._arrivals[day]
        from twin._errors import TwinError
        from twin.scenarios.footfall import run_footfall

        try:
            ds = run_footfall(
                self.tw,
                day=day,
                events=self.events,
                rng=self.seed + day.toordinal(),
                progress=False,
            )
        except (TwinError, KeyError, ValueError) as exc:
            self.footfall_note = f"footfall simulation unavailable ({exc}); demand profile used"
            self._arrivals[day] = None
            return None
        starts = ds["time"].values.astype("datetime64[s]").astype("int64").astype(float)
        slot_s = 60.0 * float(ds.attrs["slot_minutes"])
        rng = np.random.default_rng(self.seed + day.toordinal())
        out = {}
        for j, sensor in enumerate(ds["sensor"].values.astype(str)):
            counts = ds["count"].values[j]
            t = np.repeat(starts, counts) + rng.uniform(0.0, slot_s, int(counts.sum()))
            out[sensor] = np.sort(t)
        if len(self._arrivals) > 3:
            self._arrivals.pop(min(self._arrivals))
        self._arrivals[day] = out
        return out

    def _footfall(self, sensor: str, now: dt.datetime) -> int | None:
        """Pedestrians the simulation passes by ``sensor`` in the window before ``now``."""
        start = now - dt.timedelta(seconds=COUNT_WINDOW_S)
        days = sorted({start.astimezone(self.tz).date(), now.astimezone(self.tz).date()})
        total = 0
        for day in days:
            arrivals = self._day_arrivals(day)
            if arrivals is None:
                return None
            t = arrivals.get(sensor)
            if t is not None:
                lo, hi = np.searchsorted(t, [start.timestamp(), now.timestamp()], side="right")
                total += int(hi - lo)
        return total

    # -- detector counts from the traffic DES ---------------------------------------------------
    def _hour_arrivals(self, day: dt.date, hour: int) -> dict[str, np.ndarray] | None:
        """Each approach's vehicle arrival times (POSIX s) in a local hour, from the DES."""
        with self._des_lock:  # one simulation at a time, each hour once
            return self._simulate_hour(day, hour)

    def _simulate_hour(self, day: dt.date, hour: int) -> dict[str, np.ndarray] | None:
        key = (day, hour)
        if key in self._detector_arrivals:
            return self._detector_arrivals[key]
        from twin._errors import TwinError

        seed = self.seed + day.toordinal() * 24 + hour
        try:
            ds = detector_counts(self.tw, day=day, hour=hour, rng=seed)
        except (TwinError, KeyError, ValueError) as exc:
            self.detector_note = (
                f"traffic DES unavailable for {self.city} ({exc}); detector counts from the "
                "demand profile"
            )
            log.warning("devices: %s", self.detector_note)
            self.detectors[key] = None
            self._detector_arrivals[key] = None
            return None
        if ds.attrs["missing"]:
            log.warning(
                "devices: approaches not on the drive network report no count: %s",
                ds.attrs["missing"],
            )
        starts = ds["time"].values.astype("datetime64[s]").astype("int64").astype(float)
        slot_s = float(ds.attrs["slot_s"])
        rng = np.random.default_rng(seed)
        out = {}
        for a, counts in zip(ds["approach"].values.astype(str), ds["count"].values, strict=True):
            t = np.repeat(starts, counts) + rng.uniform(0.0, slot_s, int(counts.sum()))
            out[a] = np.sort(t)
        if len(self._detector_arrivals) > 6:  # the last few hours are enough
            oldest = min(self._detector_arrivals)
            self._detector_arrivals.pop(oldest)
            self.detectors.pop(oldest, None)
        self.detectors[key] = ds
        self._detector_arrivals[key] = out
        return out

    def _hours(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.date, int]]:
        """The local ``(day, hour)`` of every hour that ``[start, end]`` touches."""
        out: list[tuple[dt.date, int]] = []
        t = start
        while True:
            local = t.astimezone(self.tz)
            if (local.date(), local.hour) not in out:
                out.append((local.date(), local.hour))
            if t >= end:
                return out
            t = min(t + dt.timedelta(minutes=30), end)

    def _detector_window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The detectors' counting interval ending now: since the last round (an hour at most)."""
        since = self._last_round or now - dt.timedelta(seconds=COUNT_WINDOW_S)
        return max(since, now - dt.timedelta(hours=1)), now

    def _detector_counts(self, since: dt.datetime, now: dt.datetime) -> dict[str, int] | None:
        """Vehicles per approach in ``(since, now]`` from the DES; ``None`` without it."""
        total: collections.Counter[str] = collections.Counter()
        lo_t, hi_t = since.timestamp(), now.timestamp()
        for day, hour in self._hours(since, now):
            arrivals = self._hour_arrivals(day, hour)
            if arrivals is None:
                return None
            for a, t in arrivals.items():
                lo, hi = np.searchsorted(t, [lo_t, hi_t], side="right")
                total[a] += int(hi - lo)
        return dict(total)

    def _run_ahead(self, now: dt.datetime) -> None:
        """In the last quarter of an hour, simulate the next one in a background thread."""
        if not self.junctions or now.astimezone(self.tz).minute < 45:
            return
        nxt = (now + dt.timedelta(hours=1)).astimezone(self.tz)
        key = (nxt.date(), nxt.hour)
        if key in self._detector_arrivals or (self._ahead is not None and self._ahead.is_alive()):
            return
        self._ahead = threading.Thread(
            target=self._hour_arrivals, args=key, name="twin-devices-des", daemon=True
        )
        self._ahead.start()

    def prepare(self) -> Devices:
        """Run ahead what the first report needs: the DES of the current hour, the footfall day.

        Otherwise the first :meth:`telemetry` does it (outside the lock, so that commands are
        not held up meanwhile); either way each hour runs once.
        """
        now = self.clock()
        since, _ = self._detector_window(now)
        for day, hour in self._hours(since, now):
            self._hour_arrivals(day, hour)
        if any(k == "footfall" for k in self.sensors.values()):
            for moment in (now - dt.timedelta(seconds=COUNT_WINDOW_S), now):
                self._day_arrivals(moment.astimezone(self.tz).date())
        return self

    # -- commands --------------------------------------------------------------------------------
    def _ack(self, kind: str, asset: str, command: str, status: str, reason: str = "") -> None:
        self._seq += 1
        body = {
            "id": f"ack{self._seq}",
            "ts": _iso(self.clock()),
            "asset": asset,
            "command": command,
            "status": status,
        }
        if reason:
            body["reason"] = reason
        if status != "accepted" or command not in self.answers:
            self.answers[command] = body
        self.acks[status] += 1
        self.client.publish(topic(self.city, "ack", kind, asset), msgspec.json.encode(body), qos=1)

    def _on_command(self, client: Any, userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 5 or parts[2] != "cmd":
            return
        kind, asset = parts[3], parts[4]
        with self._lock:
            self.commands_seen += 1
            if asset in self.offline:
                return  # an offline device hears nothing
            delay = self.slow.get(asset)
        if delay is not None:
            t = threading.Timer(delay, self._handle, (kind, asset, msg.payload))
            t.daemon = True
            self._timers.append(t)
            t.start()
        else:
            self._handle(kind, asset, msg.payload)

    def _handle(self, kind: str, asset: str, payload: bytes) -> None:
        with self._lock:
            if self.client is None:
                return  # stopped meanwhile
            try:
                cmd = self._decoder.decode(payload)
                cid = str(cmd["id"])
            except (msgspec.DecodeError, KeyError, TypeError):
                self._ack(kind, asset, "?", "rejected", "malformed command")
                return
            self.received[cid] += 1
            if cid in self.answers:  # a replay: answer again, never apply twice
                prev = self.answers[cid]
                self._ack(kind, asset, cid, prev["status"], prev.get("reason", ""))
                return
            now = self.clock()
            try:
                expires, apply_at = _parse(cmd["expires"]), _parse(cmd["apply_at"])
            except (KeyError, TypeError, ValueError):
                self._ack(kind, asset, cid, "rejected", "malformed command: expires, apply_at")
                return
            if expires <= now:
                self._ack(kind, asset, cid, "rejected", "expired")
                return
            if kind == "cabinet":
                if asset not in self.cabinet_lights:
                    self._ack(kind, asset, cid, "rejected", f"unknown cabinet {asset}")
                    return
                lights = cmd.get("lights", {})
                theirs = set(self.light_ids[self.cabinet_lights[asset]].tolist())
                stray = [a for a in lights if a not in theirs]
                if stray:
                    self._ack(kind, asset, cid, "rejected", f"not behind {asset}: {stray[0]}")
                    return
            elif kind == "junction":
                if asset not in self.junction_mode:
                    self._ack(kind, asset, cid, "rejected", f"unknown junction {asset}")
                    return
            elif kind == "vms":
                if asset not in self.vms:
                    self._ack(kind, asset, cid, "rejected", f"unknown sign {asset}")
                    return
                text = cmd.get("text")
                if not isinstance(text, str) or not 0 < len(text) <= 120:
                    self._ack(kind, asset, cid, "rejected", "text: 1 to 120 characters")
                    return
            else:
                self._ack(kind, asset, cid, "rejected", f"{kind} takes no commands")
                return
            self._ack(kind, asset, cid, "accepted")
            delay = max((apply_at - now).total_seconds(), 0.0)
            if delay == 0:
                self._apply(kind, asset, cid, cmd)
            else:
                self.scheduled[cid] = (kind, asset, cmd)
                self._arm(cid, delay)

    def _arm(self, cid: str, delay: float) -> None:
        """Apply a scheduled command in ``delay`` s (the lock held)."""
        t = threading.Timer(delay, self._apply_locked, (*self.scheduled[cid][:2], cid))
        t.daemon = True
        self._timers.append(t)
        t.start()

    def _apply_locked(self, kind: str, asset: str, cid: str) -> None:
        with self._lock:
            if cid in self.scheduled and self.client is not None:
                self._apply(kind, asset, cid, self.scheduled[cid][2])

    def _apply(self, kind: str, asset: str, cid: str, cmd: dict[str, Any]) -> None:
        self.scheduled.pop(cid, None)
        if self.applied[cid]:
            return
        if self.clock() >= _parse(cmd["expires"]):
            self._ack(kind, asset, cid, "rejected", "expired before its time came")
            return
        self.applied[cid] += 1
        if kind == "cabinet":
            times = np.array([_parse(t).timestamp() for t in cmd["times"]])
            k = max(int(np.searchsorted(times, self.clock().timestamp(), side="right")) - 1, 0)
            expires = _parse(cmd["expires"]).timestamp() if cmd.get("override") else np.inf
            for light, levels in cmd["lights"].items():
                i = self.light_index[light]
                under = self.schedules.get(light) if cmd.get("override") else None
                self.schedules[light] = _Schedule(
                    times, np.asarray(levels, float), expires, under, float(self.level[i])
                )
                self.level[i] = levels[k]  # this cabinet's lights only
        elif kind == "vms":
            self.vms[asset] = str(cmd["text"])
        else:
            self.junction_plan[asset] = str(cmd.get("plan"))
        if self.client is not None:
            self._ack(kind, asset, cid, "applied")

    def _follow_schedules(self) -> None:
        now = self.clock().timestamp()
        for light in list(self.schedules):
            i = self.light_index[light]
            sch: _Schedule | None = self.schedules[light]
            while sch is not None and now >= sch.expires:  # an override ran out: back under it
                self.level[i] = sch.level_before
                sch = sch.under
            if sch is None:
                del self.schedules[light]
                continue
            self.schedules[light] = sch
            k = int(np.searchsorted(sch.times, now, side="right")) - 1
            self.level[i] = sch.levels[max(k, 0)]

    # -- telemetry -------------------------------------------------------------------------------
    def telemetry(self) -> list[tuple[str, bytes]]:
        """One round of every online asset's telemetry, ``(topic, payload)``."""
        from twin.scenarios.demand import day_type_of, profile

        # simulate the day's footfall and the hour's traffic (seconds, or a minute on a large
        # city) before taking the lock, so that commands are not held up meanwhile; and the
        # next hour's traffic in the background, so that rounds are not held up either
        self.prepare()
        self._run_ahead(self.clock())
        with self._lock:
            now = self.clock()
            since = self._last_round or now
            det_since, _ = self._detector_window(now)
            self._last_round = now
            self._follow_schedules()
            ts = _iso(now)
            local = now.astimezone(self.tz)
            hour = local.hour
            walk = float(profile(day_type_of(local.date()), mode="walk")[hour])
            car = float(profile(day_type_of(local.date()), mode="car")[hour])
            on = self.level > 0
            draw = np.where(
                on & ~self.failed, self.power_w * (self.floor + (1 - self.floor) * self.level), 0.0
            )
            out: list[tuple[str, bytes]] = []
            enc = msgspec.json.encode
            run = uuid.uuid4().hex[:8]

            def add(kind: str, asset: str, body: dict[str, Any]) -> None:
                if asset in self.offline:
                    return
                self._seq += 1
                body = {"id": f"{run}-{self._seq}", "ts": ts, "asset": asset, **body}
                out.append((topic(self.city, "telemetry", kind, asset), enc(body)))

            for i, light in enumerate(self.light_ids):
                add(
                    "light",
                    light,
                    {
                        "level": round(float(self.level[i]), 4),
                        "power_w": round(float(draw[i]), 3),
                        "fault": "lamp_failure" if self.failed[i] else "none",
                    },
                )
            hours = (now - since).total_seconds() / 3600.0
            for cab, idx in self.cabinet_lights.items():
                p = float(draw[idx].sum()) * self.power_factor[cab]
                self.meter_wh[cab] += p * hours
                add(
                    "cabinet",
                    cab,
                    {"power_w": round(p, 3), "energy_wh": round(self.meter_wh[cab], 3)},
                )
            detected = self._detector_counts(det_since, now) if self.junctions else {}
            window_h = (now - det_since).total_seconds() / 3600.0
            for j in self.junctions:
                approaches = self.junction_approaches.get(j, [])
                if detected is not None:
                    counts = {a: detected[a] for a in approaches if a in detected}
                else:  # no DES for this city: the car profile's share of a busy approach
                    lam = 3000.0 * car * window_h
                    counts = {a: int(self.rng.poisson(lam)) for a in approaches}
                add(
                    "junction",
                    j,
                    {
                        "mode": self.junction_mode[j],
                        "plan": self.junction_plan[j],
                        "counts": counts,
                    },
                )
            road, air = road_weather(local)
            for s, stype in self.sensors.items():
                if stype == "weather":
                    shift = self.station_offset_c[s] + self.weather_offset_c
                    noise = self.rng.normal(0.0, 0.2, 2)
                    body = {
                        "road_temp_c": round(road + shift + float(noise[0]), 2),
                        "air_temp_c": round(air + shift + float(noise[1]), 2),
                        "precip_mm_h": round(self.precip_mm_h, 2),
                    }
                    add("sensor", s, body)
                    continue
                n = self._footfall(s, now) if stype == "footfall" else None
                if n is None:
                    share = walk if stype == "footfall" else car
                    n = int(self.rng.poisson(3000.0 * share * COUNT_WINDOW_S / 3600.0))
                add("sensor", s, {"count": n, "interval_s": COUNT_WINDOW_S})
            for v, (lon, lat) in self.vehicles.items():
                add("vehicle", v, {"lon": lon, "lat": lat, "speed_m_s": 0.0})
            return out

    def publish_telemetry(self) -> int:
        """Publish one round (QoS 1); returns the number of messages."""
        from live.mqtt import publish_many

        return publish_many(self.client, self.telemetry(), qos=1)
