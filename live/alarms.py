"""Alarms: raised from the live state, acknowledged by an operator, cleared when the cause goes.

Each alarm is one row of the store's ``alarms`` table with its three time stamps (``raised``,
``acked`` with who, ``cleared``); at most one open alarm per asset and kind. :func:`evaluate`
compares the state with the twin and raises or clears:

``lamp_failure``
    a light reports ``fault = lamp_failure``;
``power_anomaly``
    a cabinet's metered power departs from the power the twin expects from its lights'
    reported levels (``power_w * (floor + (1 - floor) * level)``, the dimming power curve of
    :mod:`optimize.dimming`) by more than ``threshold`` (default 20%, beyond the meters'
    class-1 accuracy and the drivers' spread);
``flashing_amber``
    a signal controller reports that fault mode;
``offline``
    a signal controller has not reported for ``silent_after``;
``silent_sensor``
    a counter or road-weather station has not reported for ``silent_after``.

``junction_fault`` is raised by a rule (``then.alarm``, :mod:`live.actions`) and cleared when
the rule stops holding.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd

from live.ingest import State
from live.store import Store, to_us

__all__ = ["ALARM_KINDS", "AlarmKind", "Alarms", "evaluate"]

AlarmKind = Literal[
    "lamp_failure", "power_anomaly", "flashing_amber", "offline", "silent_sensor", "junction_fault"
]
ALARM_KINDS: tuple[AlarmKind, ...] = (
    "lamp_failure",
    "power_anomaly",
    "flashing_amber",
    "offline",
    "silent_sensor",
    "junction_fault",
)


class Alarms:
    """The alarm log of a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self) -> pd.DataFrame:
        """Alarms not cleared: ``n, asset, kind, raised, acked, acked_by, detail`` (UTC)."""
        rows = self.store.execute(
            "SELECT n, asset, kind, raised_us, acked_us, acked_by, detail FROM alarms "
            "WHERE cleared_us IS NULL ORDER BY n"
        )
        df = pd.DataFrame(
            rows, columns=["n", "asset", "kind", "raised_us", "acked_us", "acked_by", "detail"]
        )
        for col in ("raised", "acked"):
            df[col] = pd.to_datetime(df.pop(f"{col}_us"), unit="us", utc=True)
        return df

    def all(self) -> pd.DataFrame:
        """Every alarm with its three time stamps (UTC)."""
        rows = self.store.execute(
            "SELECT n, asset, kind, raised_us, acked_us, acked_by, cleared_us, detail "
            "FROM alarms ORDER BY n"
        )
        cols = ["n", "asset", "kind", "raised_us", "acked_us", "acked_by", "cleared_us", "detail"]
        df = pd.DataFrame(rows, columns=cols)
        for col in ("raised", "acked", "cleared"):
            df[col] = pd.to_datetime(df.pop(f"{col}_us"), unit="us", utc=True)
        return df

    def raise_(self, asset: str, kind: AlarmKind, detail: str, at: dt.datetime) -> bool:
        """Raise unless one is open for this asset and kind; ``True`` if raised."""
        if self.store.execute(
            "SELECT n FROM alarms WHERE asset = ? AND kind = ? AND cleared_us IS NULL",
            (asset, kind),
        ):
            return False
        self.store.execute(
            "INSERT INTO alarms (asset, kind, raised_us, detail) VALUES (?, ?, ?, ?)",
            (asset, kind, to_us(at), detail),
        )
        return True

    def ack(self, n: int, who: str, at: dt.datetime) -> None:
        """An operator acknowledges alarm ``n`` (it stays open until its cause clears)."""
        self.store.execute(
            "UPDATE alarms SET acked_us = ?, acked_by = ? WHERE n = ? AND acked_us IS NULL",
            (to_us(at), who, n),
        )

    def clear(self, asset: str, kind: AlarmKind, at: dt.datetime) -> bool:
        """Clear the open alarm of this asset and kind; ``True`` if there was one."""
        open_ = self.store.execute(
            "SELECT n FROM alarms WHERE asset = ? AND kind = ? AND cleared_us IS NULL",
            (asset, kind),
        )
        if not open_:
            return False
        self.store.execute("UPDATE alarms SET cleared_us = ? WHERE n = ?", (to_us(at), open_[0][0]))
        return True


def evaluate(
    alarms: Alarms,
    state: State,
    lights: pd.DataFrame,
    *,
    now: dt.datetime,
    sensor_types: dict[str, str] | None = None,
    threshold: float = 0.2,
    silent_after: dt.timedelta = dt.timedelta(minutes=15),
    since: dt.datetime | None = None,
) -> dict[str, int]:
    """Raise and clear alarms from the state (see the module docstring); returns the counts.

    ``lights`` is the twin's light table (``id``, ``cabinet``, ``power_w``). ``since`` is when
    the service started listening: an asset never heard from is silent once ``silent_after``
    has passed since then (without ``since``, such an asset is not judged).
    """
    from optimize.dimming import DRIVER_FLOOR

    raised = cleared = 0

    def flag(asset: str, kind: AlarmKind, on: bool, detail: str) -> None:
        nonlocal raised, cleared
        if on:
            raised += alarms.raise_(asset, kind, detail, now)
        else:
            cleared += alarms.clear(asset, kind, now)

    now_us = to_us(now)
    silent_us = int(silent_after.total_seconds() * 1e6)
    # an asset never heard from is judged from ``since`` (when the service started listening);
    # without it, it is not judged at all
    never = np.iinfo(np.int64).min
    start_us = to_us(since) if since is not None else None

    def silent(heard: int) -> bool:
        if heard == never:
            return start_us is not None and now_us - start_us > silent_us
        return now_us - heard > silent_us

    if "light" in state.ids:
        fault = state.text["light"]["fault"]
        seen = state.ts_us["light"] > np.iinfo(np.int64).min
        for i in np.flatnonzero(seen):
            flag(str(state.ids["light"][i]), "lamp_failure", fault[i] == "lamp_failure", "")
        if "cabinet" in state.ids:
            idx = state.index["light"]
            rows = lights["id"].map(idx)
            known = rows.notna().to_numpy()
            r = rows[known].astype(int).to_numpy()
            level = state.values["light"]["level"][r]
            failed = fault[r] == "lamp_failure"
            p = lights["power_w"].to_numpy(float)[known]
            draw = np.where(
                (level > 0) & ~failed, p * (DRIVER_FLOOR + (1 - DRIVER_FLOOR) * level), 0.0
            )
            expected = pd.Series(draw).groupby(lights["cabinet"].to_numpy()[known]).sum(min_count=1)
            metered = state.values["cabinet"]["power_w"]
            for c, e in expected.items():
                k = state.index["cabinet"].get(str(c))
                if k is None or np.isnan(metered[k]) or np.isnan(e) or e <= 0:
                    continue
                off = abs(metered[k] - e) / e
                flag(
                    str(c),
                    "power_anomaly",
                    bool(off > threshold),
                    f"metered {metered[k]:.0f} W, expected {e:.0f} W ({100 * off:+.0f}%)",
                )
    if "junction" in state.ids:
        mode = state.text["junction"]["mode"]
        for jx, j in enumerate(state.ids["junction"]):
            heard = int(state.ts_us["junction"][jx])
            flag(str(j), "flashing_amber", mode[jx] == "flashing_amber", "controller fault mode")
            flag(str(j), "offline", silent(heard), "no report")
    if "sensor" in state.ids:
        for sx, s in enumerate(state.ids["sensor"]):
            if sensor_types is not None and sensor_types.get(str(s)) == "loop":
                continue  # loop detectors report through their controller
            heard = int(state.ts_us["sensor"][sx])
            flag(str(s), "silent_sensor", silent(heard), "no report")
    return {"raised": raised, "cleared": cleared}
