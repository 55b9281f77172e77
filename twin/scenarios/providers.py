"""Demand providers: footfall and traffic per segment and time, as the dimming optimiser reads them.

:class:`ProfileDemand` gives them from road classes and points of interest before any
simulation; :class:`SimulatedDemand` reads them from the footfall (and traffic) simulations.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import shapely
import xarray as xr

from twin._errors import InputValidationError, UnknownAssetError
from twin.scenarios.profiles import DAY_FACTOR, DAY_TYPES, HOURLY_PROFILES, _local_parts

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "CLASS_AADT",
    "CLASS_FOOTFALL",
    "POI_FOOTFALL",
    "Demand",
    "ProfileDemand",
    "SimulatedDemand",
]

log = logging.getLogger(__name__)


@runtime_checkable
class Demand(Protocol):
    """Footfall and traffic per segment and time, as the dimming optimiser consumes them.

    ``times`` are naive-UTC ``datetime64``; results have shape ``(len(segments), len(times))``.
    """

    def footfall(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour on each segment at each time."""
        ...

    def traffic(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Vehicles per hour (both directions) on each segment at each time."""
        ...


CLASS_AADT: Mapping[str, float] = {
    "motorway": 60_000, "motorway_link": 15_000, "trunk": 30_000, "trunk_link": 8_000,
    "primary": 16_000, "primary_link": 5_000, "secondary": 9_000, "secondary_link": 3_000,
    "tertiary": 4_500, "tertiary_link": 1_500, "unclassified": 1_200, "residential": 600,
    "living_street": 150, "service": 150, "road": 600, "busway": 300,
}  # fmt: skip
"""Typical two-way daily traffic (veh/day) of a French urban road per class.

Ranges from French urban counts: main arterials 10,000-25,000, district distributors
3,000-10,000, residential streets a few hundred to ~1,000 (Montpellier's counts: median TJM
per direction 1,800 over mostly main streets). Non-motor classes carry none."""

CLASS_FOOTFALL: Mapping[str, float] = {
    "pedestrian": 6_000, "living_street": 1_500, "footway": 600, "steps": 300, "path": 150,
    "residential": 500, "unclassified": 300, "tertiary": 1_200, "secondary": 2_000,
    "primary": 1_500, "trunk": 30, "service": 150, "cycleway": 80, "track": 30,
    "bridleway": 20, "tertiary_link": 200, "secondary_link": 200, "primary_link": 150,
}  # fmt: skip
"""Typical pedestrians per day passing a point of a street per class (both pavements),
before points of interest: pedestrian shopping streets in French city centres count
several thousand a day, residential streets a few hundred."""

POI_FOOTFALL = 400.0
"""Extra pedestrians per day per point of interest within 100 m of a segment."""


class ProfileDemand:
    """Demand by road class, points of interest and hour: the model before any simulation.

    ``footfall = CLASS_FOOTFALL[class] + POI_FOOTFALL * n_poi`` pedestrians per day and
    ``traffic = CLASS_AADT[class]`` vehicles per day (on a counted street, its count in each
    direction), times the hourly fraction of :data:`HOURLY_PROFILES` (walk and car) and the
    :data:`DAY_FACTOR` of the local day.

    Parameters
    ----------
    daily_footfall, daily_traffic : pandas.Series
        Per segment id: pedestrians per day and vehicles per day on a weekday.
    timezone : str
        Local clock of the profiles.
    """

    def __init__(
        self, daily_footfall: pd.Series, daily_traffic: pd.Series, *, timezone: str
    ) -> None:
        for name, s in (("daily_footfall", daily_footfall), ("daily_traffic", daily_traffic)):
            arr = s.to_numpy(float)
            bad = np.flatnonzero(~(arr >= 0))
            if bad.size:
                msg = f"{name}: segment {s.index[bad[0]]!r} has {arr[bad[0]]!r} (must be >= 0)"
                raise InputValidationError(msg)
        self.daily_footfall = daily_footfall.astype(float)
        self.daily_traffic = daily_traffic.reindex(daily_footfall.index).fillna(0.0).astype(float)
        self.timezone = timezone

    @classmethod
    def from_twin(cls, tw: Twin, *, poi_radius_m: float = 100.0) -> ProfileDemand:
        """Profiles of every segment of a twin from its road class and nearby points of interest."""
        seg = tw.registry["segment"]
        hw = seg["highway"].astype(str)
        foot = hw.map(lambda h: CLASS_FOOTFALL.get(h, 100.0)).to_numpy(float)
        foot = np.where(seg["walk"].to_numpy(bool), foot, 0.0)
        poi = tw.registry["poi"]
        if len(poi):
            mids = shapely.line_interpolate_point(
                np.asarray(seg.geometry.values), 0.5, normalized=True
            )
            _, hit = shapely.STRtree(mids).query(
                np.asarray(poi.geometry.values), predicate="dwithin", distance=poi_radius_m
            )
            foot = foot + POI_FOOTFALL * np.bincount(hit, minlength=len(seg)) * seg[
                "walk"
            ].to_numpy(bool)
        traffic = hw.map(lambda h: CLASS_AADT.get(h, 0.0)).to_numpy(float)
        # a counted street (municipal counts, its busiest direction's daily mean) carries its
        # count in each direction it is driven, rather than its class's typical figure: the
        # same counts size its lanes (twin.derive.segments.edge_lanes)
        counted: dict[str, float] = {}
        for *_, d in tw.drive.edges(data=True):
            aadt, sid = d.get("aadt"), d.get("segment")
            if sid is not None and isinstance(aadt, int | float) and np.isfinite(aadt) and aadt > 0:
                counted[str(sid)] = counted.get(str(sid), 0.0) + float(aadt)
        if counted:
            by_count = seg.index.to_series().map(counted).to_numpy(float)
            traffic = np.where(np.isfinite(by_count), by_count, traffic)
        traffic = np.where(seg["drive"].to_numpy(bool), traffic, 0.0)
        return cls(
            pd.Series(foot, index=seg.index),
            pd.Series(traffic, index=seg.index),
            timezone=tw.city.timezone,
        )

    def _rates(
        self, daily: pd.Series, mode: str, segments: Sequence[str], times: np.ndarray
    ) -> np.ndarray:
        idx = daily.index.get_indexer(pd.Index(list(segments)))
        if (idx < 0).any():
            missing = [s for s, i in zip(segments, idx, strict=True) if i < 0]
            msg = f"segments: unknown segment id {missing[0]!r} ({len(missing)} unknown)"
            raise UnknownAssetError(msg)
        hours, kind = _local_parts(times, self.timezone)
        table = np.stack([HOURLY_PROFILES[mode][d] * DAY_FACTOR[mode][d] for d in DAY_TYPES])
        frac = table[kind, hours]
        return np.asarray(daily.to_numpy(float)[idx][:, None] * frac[None, :])

    def footfall(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour, shape ``(len(segments), len(times))``."""
        return self._rates(self.daily_footfall, "walk", segments, times)

    def traffic(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Vehicles per hour (both directions), shape ``(len(segments), len(times))``."""
        return self._rates(self.daily_traffic, "car", segments, times)


class SimulatedDemand:
    """Demand read from simulation results: the footfall DES (and the traffic DES).

    Times inside the simulated span take the slot that contains them; with ``wrap=True``
    (default) other times take the slot at the same local clock time (a simulated day stands for
    any day of its type), otherwise they raise.

    Parameters
    ----------
    footfall : xarray.DataArray, optional
        ``footfall(segment, time)`` in persons/h.
    flow : xarray.DataArray, optional
        ``flow(segment, time)`` in veh/h.
    timezone : str
        The city's time zone: the local clock that ``wrap`` matches.
    wrap : bool
    """

    def __init__(
        self,
        footfall: xr.DataArray | None = None,
        flow: xr.DataArray | None = None,
        *,
        timezone: str,
        wrap: bool = True,
    ) -> None:
        self._foot = footfall
        self._flow = flow
        self.wrap = wrap
        self.timezone = timezone

    @classmethod
    def from_dataset(
        cls,
        ds: xr.Dataset,
        *,
        traffic: xr.Dataset | None = None,
        wrap: bool = True,
        timezone: str | None = None,
    ) -> SimulatedDemand:
        """Wrap the footfall DES output (and optionally the traffic DES output).

        ``flow`` may be given per ``segment`` or per ``edge`` whose labels are segment ids
        (the two directions of a street are summed). The local clock is ``timezone``, else the
        ``local_timezone`` that :func:`~twin.scenarios.footfall.run_footfall` records in the
        dataset's attrs.
        """
        foot = ds.get("footfall")
        src = traffic if traffic is not None else ds
        flow = src.get("flow")
        if flow is not None and "segment" not in flow.dims and "edge" in flow.dims:
            flow = flow.groupby("edge").sum().rename(edge="segment")
        if foot is None and flow is None:
            msg = "ds: neither a 'footfall' nor a 'flow' variable; pass run_footfall() output"
            raise InputValidationError(msg)
        tz = timezone or ds.attrs.get("local_timezone")
        if not tz:
            msg = (
                "timezone: the dataset records no 'local_timezone' attribute; pass the city's "
                "timezone (tw.city.timezone)"
            )
            raise InputValidationError(msg)
        return cls(foot, flow, timezone=str(tz), wrap=wrap)

    def _lookup(
        self, da: xr.DataArray | None, what: str, segments: Sequence[str], times: np.ndarray
    ) -> np.ndarray:
        if da is None:
            msg = f"{what}: the dataset has no {what} variable (run the matching simulation)"
            raise InputValidationError(msg)
        seg_index = pd.Index(da["segment"].values.astype(str))
        idx = seg_index.get_indexer(pd.Index([str(s) for s in segments]))
        if (idx < 0).any():
            missing = [s for s, i in zip(segments, idx, strict=True) if i < 0]
            msg = (
                f"segments: segment {missing[0]!r} is not in the simulated {what} "
                f"({len(missing)} missing)"
            )
            raise UnknownAssetError(msg)
        t_sim = np.asarray(da["time"].values, dtype="datetime64[ns]")
        t_q = np.asarray(times, dtype="datetime64[ns]")
        if len(t_sim) == 0:
            msg = f"{what}: the simulation has no time slots"
            raise InputValidationError(msg)
        step = t_sim[1] - t_sim[0] if len(t_sim) > 1 else np.timedelta64(3600, "s")
        pos = np.searchsorted(t_sim, t_q, side="right") - 1
        inside = (pos >= 0) & (t_q < t_sim[-1] + step)
        if not inside.all():
            if not self.wrap:
                bad = t_q[~inside][0]
                msg = f"times: {bad} is outside the simulated span {t_sim[0]} .. {t_sim[-1] + step}"
                raise InputValidationError(msg)
            # same local clock time of the simulated day
            sim_local = pd.DatetimeIndex(t_sim).tz_localize("UTC").tz_convert(self.timezone)
            q_local = pd.DatetimeIndex(t_q[~inside]).tz_localize("UTC").tz_convert(self.timezone)
            sim_min = np.asarray(sim_local.hour * 60 + sim_local.minute)
            q_min = np.asarray(q_local.hour * 60 + q_local.minute)
            order = np.argsort(sim_min, kind="stable")
            j = np.searchsorted(sim_min[order], q_min, side="right") - 1
            pos = pos.copy()
            pos[~inside] = order[np.clip(j, 0, len(order) - 1)]
        values = np.asarray(da.transpose("segment", "time").values, dtype=float)
        return np.asarray(values[idx][:, pos])

    def footfall(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour, shape ``(len(segments), len(times))``."""
        return self._lookup(self._foot, "footfall", segments, times)

    def traffic(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Vehicles per hour, shape ``(len(segments), len(times))``."""
        return self._lookup(self._flow, "flow", segments, times)
