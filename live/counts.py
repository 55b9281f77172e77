"""Footfall counters' counts from the history store, as the footfall calibration reads them.

A footfall counter reports ``count`` pedestrians over the ``interval_s`` seconds before its
``ts`` (:class:`live.telemetry.SensorTelemetry`; the simulator reports every
:data:`live.devices.COUNT_WINDOW_S`). :func:`footfall_observations` turns each stored report of
the twin's footfall counters into one observation row of
:func:`twin.scenarios.footfall_calibration.check_counts`: ``source`` (the message id),
``counter``, ``segment`` (empty: the registry's), ``start``, ``end`` (ISO 8601, UTC) and
``count``. A report without a count or an interval becomes a row the check refuses with the
counter's id (an empty count, an empty start), so every stored report is accounted for.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd

from live.store import Store

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["footfall_observations"]

COLUMNS = ("source", "counter", "segment", "start", "end", "count")


def footfall_observations(
    store: Store,
    tw: Twin,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> pd.DataFrame:
    """Every stored report of the twin's footfall counters with ``start <= ts < end``.

    Parameters
    ----------
    store : Store
    tw : twin.model.Twin
        Its registry names the footfall counters (``sensor`` assets of type ``footfall``).
    start, end : datetime.datetime, optional
        Tz-aware bounds of the reports' time stamps.

    Returns
    -------
    pandas.DataFrame
        One row per report, sorted by time and counter (columns :data:`COLUMNS`).
    """
    sensors = tw.registry["sensor"]
    ids = [str(s) for s in sensors.index[sensors["sensor_type"] == "footfall"]]
    if not ids:
        return pd.DataFrame(columns=list(COLUMNS))
    rows = store.history(
        ids, kind="sensor", start=start, end=end, fields=("id", "interval_s", "count")
    )
    ts = pd.Series(rows.index, dtype="datetime64[ns, UTC]")
    interval = pd.to_timedelta(pd.to_numeric(rows["interval_s"].astype(object)), unit="s")
    begin = ts - interval.to_numpy()
    count = rows["count"].tolist()

    def iso(t: pd.Series) -> list[str]:
        return [x.isoformat().replace("+00:00", "Z") if pd.notna(x) else "" for x in t]

    return pd.DataFrame(
        {
            "source": [f"message {m}" for m in rows["id"]],
            "counter": rows["asset"].astype(str).tolist(),
            "segment": "",
            "start": iso(begin),
            "end": iso(ts),
            "count": ["" if c is None else str(c) for c in count],
        },
        columns=list(COLUMNS),
    )
