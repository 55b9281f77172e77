"""Benchmark of the dimming LP: the fast path against the full LP and the pulp model.

Runs as ``python benchmarks/dimming.py`` (full; ``--cases night`` or ``--cases year`` for one part)
or ``--quick`` (a tenth of the lights; the
pulp model then runs on that smaller instance). Instances are built here, seeded:

* ``dijon48`` / ``dijon64``: 34,000 lights (Dijon's count) on ~8,000 street segments that share
  a demand profile, in cabinets of 20-60 lights; a 12 h night of 48 slots of 15 min, and the
  full December night from dusk to dawn (astral, ~64 slots, shorter slots at dusk and dawn);
* ``montpellier``: the 29,969 light points of Montpellier's open data (``TWIN_DATA``), grouped
  into cabinets of 30-60 by recursive median bisection of their coordinates and into segments by
  a 50 m grid; skipped with a printed reason when the data are not there.

Requirements follow EN 13201 class steps lowered with traffic (CEN/TR 13201-1 adaptive
lighting), traffic falls after 22:00 and rises at 05:30 (Europe/Paris); weights are the
segment's footfall per light. Caps bind in a share of cabinets (measured and printed) and the
budget binds (its dual is printed).

The year (``--cases year``): 365 nights of a 34,000-light Dijon-sized stock with ramps, CLO and
cabinet caps sized by the plans' kVA rule (:class:`YearCity`), planned light by light with the
exact LP of the binding cabinets (``exact``), beside the water-filling heuristic (``fill``) and a
night-by-night run through the LP fast path (``nightly``); on the sampled nights (caps bind on
each) both are compared with straightforward full models (``lp``, :func:`full_capped_lp`).

Each method runs in its own subprocess so that its peak resident memory (``ru_maxrss``) is its
own. The last line printed is one JSON object (see DESIGN.md section 5).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _report import emit, target

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from optimize.dimming_lp import (  # noqa: E402
    DimmingProblem,
    cabinet_power_w,
    constraint_violations,
    energy_wh,
    ramp_envelope,
    solve,
)

SLOT = np.timedelta64(15, "m")
PARIS_UTC_OFFSET_H = 1  # December: CET
DIJON_LAT, DIJON_LON = 47.322, 5.041
N_DIJON = 34_000
N_SEGMENTS = 8_000

# road classes: share of segments, EN 13201 level ratios of the design class and one and two
# classes lower (M3 -> M4 -> M5: 1.0/0.75/0.5 cd/m2; M4 -> M5 -> M6: 0.75/0.5/0.3; M5 -> M6:
# 0.5/0.3; P2 -> P3 -> P4: 10/7.5/5 lx), LED power range (W) and peak footfall per light
ROAD_CLASSES = {
    "main": (0.15, (1.0, 0.75, 0.5), (60.0, 110.0), 400.0),
    "collector": (0.25, (1.0, 0.5 / 0.75, 0.3 / 0.75), (40.0, 80.0), 150.0),
    "residential": (0.45, (1.0, 0.6, 0.6), (25.0, 50.0), 40.0),
    "pedestrian": (0.15, (1.0, 0.75, 0.5), (20.0, 40.0), 120.0),
}


# --------------------------------------------------------------------------------------------
# instances


def night_slots(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (time, slot_h) of a night: '48' (17:00-05:00 UTC) or 'december' (dusk to dawn)."""
    if kind == "48":
        start = np.datetime64("2024-12-20T17:00", "ns")
        time_ = start + np.arange(48) * SLOT
        slot_h = np.full(48, 0.25)
        return time_, slot_h
    from astral import LocationInfo
    from astral.sun import sun

    loc = LocationInfo("Dijon", "France", "Europe/Paris", DIJON_LAT, DIJON_LON)
    day = dt.date(2024, 12, 20)
    dusk = sun(loc.observer, date=day, tzinfo=dt.UTC)["sunset"]
    dawn = sun(loc.observer, date=day + dt.timedelta(days=1), tzinfo=dt.UTC)["sunrise"]
    d0 = np.datetime64(dusk.replace(tzinfo=None), "ns")
    d1 = np.datetime64(dawn.replace(tzinfo=None), "ns")
    first = d0.astype("datetime64[h]").astype("datetime64[ns]")
    grid = first + np.arange(0, 200) * SLOT
    inner = grid[(grid > d0) & (grid < d1)]
    edges = np.concatenate([[d0], inner, [d1]])
    slot_h = np.diff(edges) / np.timedelta64(1, "h")
    return edges[:-1], slot_h.astype(np.float64)


def _local_hour(time_: np.ndarray) -> np.ndarray:
    h = (time_ - time_.astype("datetime64[D]")) / np.timedelta64(1, "h")
    return (h + PARIS_UTC_OFFSET_H) % 24


def traffic_index(time_: np.ndarray) -> np.ndarray:
    """Relative traffic (1 = evening peak): falls after 22:00, low at night, rises at 05:30."""
    hour = _local_hour(time_)
    evening = np.clip(1.0 - (hour - 22.0) / 3.0, 0.08, 1.0) * (hour >= 12)
    evening = np.where(hour < 22, np.clip(1.0 - (hour - 19.0) * 0.05, 0.8, 1.0), evening)
    evening = np.where(hour < 12, 0.0, evening)
    morning = np.where(hour < 12, np.clip(0.08 + (hour - 5.5) * 0.45, 0.08, 1.0), 0.0)
    return np.maximum(evening, morning)


def synthetic_layout(n: int, n_segments: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Return (segment of each light, cabinet of each light) for a synthetic city."""
    sizes = rng.poisson(n / n_segments - 1.0, size=2 * n_segments) + 1
    seg = np.repeat(np.arange(sizes.size), sizes)[:n]
    cab_sizes = rng.integers(20, 61, size=n)
    cab = np.repeat(np.arange(cab_sizes.size), cab_sizes)[:n]
    return seg, cab


def make_problem(
    segment: np.ndarray,
    cabinet: np.ndarray,
    night: str,
    rng: np.random.Generator,
    *,
    cap_share: float = 0.25,
    budget_frac: float = 0.45,
) -> DimmingProblem:
    """Build a plausible night for lights with given segment and cabinet ids."""
    n = segment.size
    time_, slot_h = night_slots(night)
    t_n = time_.size
    _, seg = np.unique(segment, return_inverse=True)
    _, cab = np.unique(cabinet, return_inverse=True)
    n_seg, m = seg.max() + 1, cab.max() + 1
    names = list(ROAD_CLASSES)
    share = np.array([ROAD_CLASSES[k][0] for k in names])
    seg_class = rng.choice(len(names), size=n_seg, p=share / share.sum())
    traffic = traffic_index(time_)
    seg_scale = rng.lognormal(0.0, 0.35, size=n_seg)
    seg_traffic = np.clip(traffic[None, :] * seg_scale[:, None], 0.0, 1.5)
    ratios = np.array([ROAD_CLASSES[k][1] for k in names])
    step = np.where(seg_traffic > 0.6, 0, np.where(seg_traffic > 0.3, 1, 2))
    seg_req = ratios[seg_class[:, None], step]
    led = rng.random(n_seg) < 0.7
    lo = np.array([ROAD_CLASSES[k][2][0] for k in names])[seg_class]
    hi = np.array([ROAD_CLASSES[k][2][1] for k in names])[seg_class]
    seg_power = np.round(rng.uniform(lo, hi) / 5.0) * 5.0
    seg_power = np.where(led, seg_power, np.round(seg_power * 2.2 / 10.0) * 10.0)  # HPS + ballast
    power = seg_power[seg]
    swapped = rng.random(n) < 0.05  # individually replaced luminaires
    power = np.where(swapped, power * rng.choice([0.8, 1.25], size=n), power)
    min_level = np.where(led[seg], 0.1, 0.5)
    peak = np.array([ROAD_CLASSES[k][3] for k in names])[seg_class]
    footfall = peak[:, None] * seg_traffic * rng.lognormal(0.0, 0.5, size=n_seg)[:, None]
    weight = footfall[seg] / 100.0
    required = seg_req[seg]
    # commune switch-off 01:00-05:00 local in 12% of cabinets
    hour = _local_hour(time_)
    window = (hour >= 1.0) & (hour < 5.0)
    off_cab = rng.random(m) < 0.12
    forced_off = off_cab[cab][:, None] & window[None, :]
    problem = DimmingProblem(
        light=np.array([f"light:{i:06d}" for i in range(n)]),
        time=time_,
        slot_h=slot_h,
        power_w=power,
        required=required,
        cabinet_index=cab,
        cabinet=np.array([f"cabinet:{j:05d}" for j in range(m)]),
        driver_floor=0.1,
        min_level=min_level,
        forced_off=forced_off,
        weight=weight,
        ramp=0.2,
    )
    env = ramp_envelope(problem)
    full = np.where(problem.on, 1.0, 0.0)
    p_min = cabinet_power_w(problem, env)
    p_full = cabinet_power_w(problem, full)
    tight = rng.random(m) < cap_share
    base = p_min.max(axis=1) + 0.35 * (p_full.max(axis=1) - p_min.max(axis=1))
    cap = np.where(tight, base, 1.05 * p_full.max(axis=1))
    caps = np.repeat(cap[:, None], t_n, axis=1)
    e_min = float(energy_wh(problem, env).sum())
    e_full = float(energy_wh(problem, full).sum())
    budget = e_min + budget_frac * (e_full - e_min)
    return replace(problem, cabinet_cap_w=caps, energy_budget_wh=budget)


def montpellier_layout(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | str:
    """Return (segment, cabinet) of Montpellier's light points, or the reason for skipping."""
    root = Path(os.environ.get("TWIN_DATA", "../shared/data"))
    if not root.is_absolute():
        root = (REPO / root).resolve()
    path = root / "montpellier" / "VilleMTP_MTP_EclairagePublic.zip"
    if not path.exists():
        return f"{path} not found (set TWIN_DATA to the shared data folder)"
    import geopandas as gpd

    gdf = gpd.read_file(f"zip://{path}").to_crs("EPSG:2154")
    xy = np.column_stack([gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()])
    cabinet = median_bisection(xy, min_size=30, max_size=60)
    cell = np.floor(xy / 50.0).astype(np.int64)
    _, segment = np.unique(cell, axis=0, return_inverse=True)
    return segment.reshape(-1), cabinet


def median_bisection(xy: np.ndarray, *, min_size: int, max_size: int) -> np.ndarray:
    """Group points by recursive median bisection along the wider axis (groups of min..max)."""
    out = np.empty(len(xy), dtype=np.int64)
    stack = [np.arange(len(xy))]
    label = 0
    while stack:
        idx = stack.pop()
        if idx.size <= max_size:
            out[idx] = label
            label += 1
            continue
        pts = xy[idx]
        axis = int(np.ptp(pts[:, 0]) < np.ptp(pts[:, 1]))
        order = idx[np.argsort(pts[:, axis], kind="stable")]
        half = order.size // 2
        if half < min_size:  # cannot split into two valid groups
            half = order.size - min_size
        stack += [order[:half], order[half:]]
    return out


def instance(name: str, *, quick: bool, seed: int = 20241220) -> DimmingProblem | str:
    rng = np.random.default_rng(seed)
    if name.startswith("dijon"):
        n, n_seg = (N_DIJON, N_SEGMENTS) if not quick else (3_400, 800)
        seg, cab = synthetic_layout(n, n_seg, rng)
        return make_problem(seg, cab, "48" if name == "dijon48" else "december", rng)
    if name == "montpellier":
        layout = montpellier_layout(rng)
        if isinstance(layout, str):
            return layout
        seg, cab = layout
        if quick:
            keep = cab < np.quantile(cab, 0.1)
            seg, cab = seg[keep], cab[keep]
        return make_problem(seg, cab, "48", rng)
    msg = f"unknown instance {name!r}"
    raise ValueError(msg)


# --------------------------------------------------------------------------------------------
# a year of nights: 365 x 34,000 lights, minimum energy under ramps and caps

#: Design maintenance factor of the year's stock: its CLO drivers start at MF x 100 %.
YEAR_MF = 0.85


class YearCity:
    """A Dijon-sized stock whose nights are built one by one (seeded, static per segment).

    The cabinets' caps follow the rule the plans use where no inventory gives a contract
    (:func:`twin.assets.cabinet.contracted_caps`, ``sizing="clo_start"``): the tariff step
    (3, 6, 9 ... 36 kVA, then whole kVA) covering the cabinet's LED stock at its CLO start
    level, at power factor 0.9. The drivers rise above that level as their lumens depreciate,
    so a cabinet whose start load sat just under a step outgrows it at dusk: caps bind there.
    """

    def __init__(self, *, quick: bool, seed: int = 2026) -> None:
        from twin.assets.cabinet import contracted_caps
        from twin.energy.power import DRIVER_FLOOR

        rng = np.random.default_rng(seed)
        n, n_seg = (N_DIJON, N_SEGMENTS) if not quick else (3_400, 800)
        seg, cab = synthetic_layout(n, n_seg, rng)
        _, self.seg = np.unique(seg, return_inverse=True)
        _, self.cab = np.unique(cab, return_inverse=True)
        n_seg = int(self.seg.max()) + 1
        names = list(ROAD_CLASSES)
        share = np.array([ROAD_CLASSES[k][0] for k in names])
        self.seg_class = rng.choice(len(names), size=n_seg, p=share / share.sum())
        self.seg_scale = rng.lognormal(0.0, 0.35, size=n_seg)
        self.ratios = np.array([ROAD_CLASSES[k][1] for k in names])
        lo = np.array([ROAD_CLASSES[k][2][0] for k in names])[self.seg_class]
        hi = np.array([ROAD_CLASSES[k][2][1] for k in names])[self.seg_class]
        self.power = (np.round(rng.uniform(lo, hi) / 5.0) * 5.0)[self.seg]
        self.min_level = np.full(n, 0.1)
        self.driver_floor = DRIVER_FLOOR
        # MF 0.85 with lights installed 2018-2025: CLO factor MF / LLMF (L80 at 100,000 h)
        age_h = (2026 - rng.integers(2018, 2026, size=n)) * 4100.0
        self.clo = np.minimum(1.0, YEAR_MF / 0.8 ** (age_h / 100_000.0))
        self.off_cab = rng.random(int(self.cab.max()) + 1) < 0.12
        self.n = n
        self.m = int(self.cab.max()) + 1
        f = DRIVER_FLOOR
        full = np.bincount(self.cab, weights=self.power, minlength=self.m)
        start = np.bincount(
            self.cab, weights=(f + (1 - f) * YEAR_MF) * self.power, minlength=self.m
        )
        caps = contracted_caps(full, start)
        self.kva = caps["contracted_kva"]
        self.cap_w = caps["cap_w"]

    def night(self, day: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(time, slot_h, required (n, T), forced_off (n, T)) of the night starting on ``day``."""
        from twin.timeutil import night_slots as twin_night_slots

        night = twin_night_slots(day, lat=DIJON_LAT, lon=DIJON_LON, tz="Europe/Paris")
        t = night.start
        local = np.asarray(night.hour_local, dtype=float)  # the local clock: DST-safe
        weekend = day.weekday() >= 4  # Friday and Saturday nights: later traffic
        evening = np.where(
            local >= 12, np.clip(1.0 - (local - (23.0 if weekend else 22.0)) / 3.0, 0.08, 1.0), 0.0
        )
        morning = np.where(local < 12, np.clip(0.08 + (local - 5.5) * 0.45, 0.08, 1.0), 0.0)
        traffic = np.maximum(evening, morning)
        seg_traffic = np.clip(traffic[None, :] * self.seg_scale[:, None], 0.0, 1.5)
        step = np.where(seg_traffic > 0.6, 0, np.where(seg_traffic > 0.3, 1, 2))
        required = self.ratios[self.seg_class[:, None], step][self.seg]
        window = (local >= 1.0) & (local < 5.0)
        off = self.off_cab[self.cab][:, None] & window[None, :]
        return t, night.duration_s / 3600.0, required, off

    def floor(self, day: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(time, slot_h, floor (n, T): the CLO requirement and driver minimum, 0 when off, on)."""
        t, slot_h, required, off = self.night(day)
        fl = np.maximum(np.minimum(1.0, required * self.clo[:, None]), self.min_level[:, None])
        return t, slot_h, np.where(off, 0.0, fl), ~off

    def capped(self, day: dt.date, method: str = "lp", starts: dict[Any, Any] | None = None) -> Any:
        """The minimum-energy plan under the caps (:func:`capped_levels`), and its arrays."""
        from optimize.dimming_caps import capped_levels

        t, slot_h, fl, on = self.floor(day)
        c = capped_levels(
            self.power,
            fl,
            on,
            ramp=0.2,
            cabinet_index=self.cab,
            cap_w=self.cap_w,
            slot_h=slot_h,
            driver_floor=self.driver_floor,
            min_level=self.min_level,
            time=t,
            method=method,
            starts=starts,
        )
        return c, slot_h, fl, on

    def problem(
        self, day: dt.date, required: np.ndarray | None = None, keep: np.ndarray | None = None
    ) -> DimmingProblem:
        """The night as a :class:`DimmingProblem` (``required``: a floor to use instead;
        ``keep``: the lights to keep, whole cabinets)."""
        t, slot_h, req, off = self.night(day)
        req = np.minimum(1.0, req * self.clo[:, None]) if required is None else required
        sel = np.ones(self.n, dtype=bool) if keep is None else keep
        cabinets, cab = np.unique(self.cab[sel], return_inverse=True)
        return DimmingProblem(
            light=np.flatnonzero(sel),
            time=t,
            slot_h=slot_h,
            power_w=self.power[sel],
            required=req[sel],
            cabinet_index=cab,
            cabinet=cabinets,
            driver_floor=self.driver_floor,
            min_level=self.min_level[sel],
            forced_off=off[sel],
            cabinet_cap_w=np.repeat(self.cap_w[cabinets][:, None], t.size, axis=1),
            ramp=0.2,
            price_eur_per_kwh=np.ones(t.size),
        )

    def objective_wh(
        self, level: np.ndarray, fl: np.ndarray, on: np.ndarray, slot_h: np.ndarray
    ) -> np.ndarray:
        """Per cabinet, the capped plan's objective (Wh, :mod:`optimize.dimming_caps`).

        ``sum slot_h P ((1 - f) x + M s) + sum slot_h P_c max_g s``: the part of the energy that
        varies with the level, the lumen deficit below the floor weighted by ``M``, its spread.
        """
        from optimize.dimming_caps import SHORTFALL_WEIGHT

        f = self.driver_floor
        short = np.where(on, np.maximum(fl - level, 0.0), 0.0)
        per_light = (
            slot_h[None, :]
            * self.power[:, None]
            * ((1 - f) * np.where(on, level, 0.0) + SHORTFALL_WEIGHT * short)
        ).sum(axis=1)
        z = np.zeros((self.m, slot_h.size))
        np.maximum.at(z, self.cab, short)
        p_cab = np.bincount(self.cab, weights=self.power, minlength=self.m)
        spread = (slot_h[None, :] * p_cab[:, None] * z).sum(axis=1)
        return np.asarray(
            np.bincount(self.cab, weights=per_light, minlength=self.m) + spread, dtype=np.float64
        )


def full_capped_lp(city: YearCity, day: dt.date, cabinets: np.ndarray) -> tuple[float, float]:
    """The straightforward model of the capped night over ``cabinets``: (objective Wh, solve s).

    Every light of those cabinets and every slot of the night: no window, no aggregation, no
    change of variables, one row per constraint (a floor row ``x + s >= F``, ``z >= s``, the
    ramps, the cap), built here with scipy and solved by HiGHS: the independent reference of
    :mod:`optimize.dimming_caps`. Its objective leaves out the driver floor's constant energy,
    as :meth:`YearCity.objective_wh` does.
    """
    import highspy
    import scipy.sparse as sp

    from optimize._highs import new_highs
    from optimize.dimming_caps import SHORTFALL_WEIGHT

    _, slot_h, fl, on = city.floor(day)
    keep = np.flatnonzero(np.isin(city.cab, cabinets))
    _, cab = np.unique(city.cab[keep], return_inverse=True)
    p, fl, on, lo = city.power[keep], fl[keep], on[keep], city.min_level[keep]
    f, ramp = city.driver_floor, 0.2
    n, t_n = fl.shape
    m = int(cab.max()) + 1
    p_cab = np.bincount(cab, weights=p, minlength=m)
    li, ti = np.nonzero(on)
    k = li.size
    col = np.full((n, t_n), -1)
    col[li, ti] = np.arange(k)  # x, then s at + k, then z[c, t] at 2 k + c T + t
    z_col = 2 * k + cab[li] * t_n + ti
    h = slot_h
    cost = np.concatenate(
        [
            h[ti] * p[li] * (1 - f),
            SHORTFALL_WEIGHT * h[ti] * p[li],
            (h[None, :] * p_cab[:, None]).ravel(),
        ]
    )
    col_lo = np.concatenate([lo[li], np.zeros(k), np.zeros(m * t_n)])
    col_hi = np.concatenate([np.ones(k), np.ones(k), np.full(m * t_n, np.inf)])
    bi, bt = np.nonzero(on[:, 1:] & on[:, :-1])
    nb = bi.size
    r_floor, r_link, r_ramp = np.arange(k), k + np.arange(k), 2 * k + np.arange(nb)
    r_cap = 2 * k + nb + cab[li] * t_n + ti
    rows = np.concatenate([r_floor, r_floor, r_link, r_link, r_ramp, r_ramp, r_cap])
    cols = np.concatenate(
        [
            np.arange(k),
            k + np.arange(k),
            z_col,
            k + np.arange(k),
            col[bi, bt + 1],
            col[bi, bt],
            np.arange(k),
        ]
    )
    vals = np.concatenate(
        [
            np.ones(k),
            np.ones(k),
            np.ones(k),
            -np.ones(k),
            np.ones(nb),
            -np.ones(nb),
            p[li] * (1 - f),
        ]
    )
    n_rows = 2 * k + nb + m * t_n
    lit_p = np.zeros((m, t_n))
    np.add.at(lit_p, cab, np.where(on, p[:, None], 0.0))
    row_lo = np.concatenate(
        [fl[li, ti], np.zeros(k), np.full(nb, -ramp), np.full(m * t_n, -np.inf)]
    )
    row_hi = np.concatenate(
        [
            np.full(2 * k, np.inf),
            np.full(nb, ramp),
            (city.cap_w[cabinets][:, None] - f * lit_p).ravel(),
        ]
    )
    a = sp.csc_matrix((vals, (rows, cols)), shape=(n_rows, cost.size))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = cost.size, n_rows
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, col_lo, col_hi
    lp.row_lower_, lp.row_upper_ = row_lo, row_hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data
    solver = new_highs()
    solver.passModel(lp)
    t0 = time.perf_counter()
    solver.run()
    status = solver.modelStatusToString(solver.getModelStatus())
    if status != "Optimal":
        msg = f"{day}: the full capped LP ended {status}"
        raise RuntimeError(msg)
    return float(solver.getInfo().objective_function_value), time.perf_counter() - t0


PF_LEVEL_BANDS = ((0.0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 1.0 + 1e-9))


def power_factor_margins(city: YearCity, days: list[dt.date]) -> dict[str, Any]:
    """The PF below which a slot's apparent power would exceed its cabinet's contracted kVA.

    By the power-weighted mean level of the cabinet's lit lights in the slot (minimum-energy
    levels, no cap): the highest such break-even PF per band, and how many cabinets would bind
    in slots below 0.85 if the PF there were 0.85, 0.80 or 0.75 (the figures of
    :data:`twin.assets.cabinet.DEFAULT_POWER_FACTOR`).
    """
    import scipy.sparse as sp

    from optimize.dimming_problem import envelope_levels

    f = city.driver_floor
    weights = sp.csr_matrix((city.power, (city.cab, np.arange(city.n))), shape=(city.m, city.n))
    bands: dict[str, dict[str, float]] = {
        f"{a:g}-{min(b, 1.0):g}": {"slots": 0, "break_even_pf": 0.0} for a, b in PF_LEVEL_BANDS
    }
    at_09: set[int] = set()
    lower = {0.85: set[int](), 0.8: set[int](), 0.75: set[int]()}
    for day in days:
        _, _, fl, on = city.floor(day)
        x = envelope_levels(fl, on, 0.2)
        draw = weights @ np.where(on, f + (1 - f) * x, 0.0)
        lit = weights @ on.astype(np.float64)
        mean = np.where(lit > 0, (weights @ x) / np.maximum(lit, 1e-12), 0.0)
        even = draw / (city.kva[:, None] * 1000.0)
        for (a, b), cell in zip(PF_LEVEL_BANDS, bands.values(), strict=True):
            sel = (mean >= a) & (mean < b) & (lit > 0)
            cell["slots"] += int(sel.sum())
            if sel.any():
                cell["break_even_pf"] = max(cell["break_even_pf"], float(even[sel].max()))
        at_09 |= set(np.flatnonzero((even > 0.9 * (1 + 1e-9)).any(axis=1)).tolist())
        for pf, hit in lower.items():
            hit |= set(np.flatnonzero(((even >= pf) & (mean < 0.85)).any(axis=1)).tolist())
    return {
        "bands": bands,
        "nights": len(days),
        "binding_at_0.9": len(at_09),
        "more_if_pf_below_0.85": {f"{pf:g}": len(hit - at_09) for pf, hit in lower.items()},
    }


def year_days(quick: bool) -> list[dt.date]:
    first = dt.date(2026, 1, 1)
    return [first + dt.timedelta(days=k) for k in range(365)]


SAMPLE_NIGHTS = (dt.date(2026, 3, 28), dt.date(2026, 6, 21), dt.date(2026, 12, 21))
"""LP checks: the spring DST night, the shortest and the longest nights (caps bind on each)."""


def year_worker(method: str, quick: bool) -> dict[str, Any]:
    """A year of nights (or the sampled nights), by one method.

    ``exact``: light by light, and the exact LP of each binding cabinet
    (:func:`optimize.dimming_caps.capped_levels`, the default path); ``fill``: the same with the
    water-filling heuristic on binding cabinets; ``nightly``: night by night through a
    :class:`DimmingProblem` and the LP fast path, its floor lowered where the caps bind (as the
    night plan does); ``lp``: the independent full models of the sampled nights.
    """
    city = YearCity(quick=quick)
    days = year_days(quick)
    t0 = time.perf_counter()
    total_wh = 0.0
    per_night: dict[str, dict[str, float]] = {}
    binding_nights = 0
    bound = np.zeros(city.m, dtype=bool)
    binding_per_night: list[int] = []
    if method in ("exact", "fill", "nightly"):
        from twin.energy.power import drawn_fraction

        starts: dict[Any, Any] = {}  # the exact LP's bases, night to night
        for day in days:
            c, slot_h, fl, on = city.capped(day, "fill" if method == "fill" else "lp", starts)
            level = c.level
            if method == "nightly":
                problem = city.problem(day, np.where(on, np.minimum(fl, c.level), 0.0))
                level = solve(problem, objective="cost", method="fast").level
            draw = city.power[:, None] * drawn_fraction(level, driver_floor=0.1, on=on)
            total_wh += float((draw * slot_h[None, :]).sum())
            binding_per_night.append(int(c.binding.size))
            bound[c.binding] = True
            binding_nights += bool(c.binding.size)
            if day in SAMPLE_NIGHTS:
                obj = city.objective_wh(level, fl, on, slot_h)
                per_night[day.isoformat()] = {
                    "objective_wh": float(obj.sum()),
                    "binding_objective_wh": float(obj[c.binding].sum()),
                    "energy_wh": float((draw * slot_h[None, :]).sum()),
                    "binding_cabinets": int(c.binding.size),
                }
    elif method == "lp":
        for day in SAMPLE_NIGHTS:
            c, slot_h, fl, on = city.capped(day)
            rest = np.setdiff1d(np.arange(city.m), c.binding)
            bind_obj, bind_s = (
                full_capped_lp(city, day, c.binding) if c.binding.size else (0.0, 0.0)
            )
            # the other cabinets: the full LP of the night with the EN 13201 floor as a bound
            # (highspy, no reduction); the night's model is block diagonal by cabinet
            sub = city.problem(day, keep=np.isin(city.cab, rest))
            sol = solve(sub, objective="cost", method="highs")
            f = city.driver_floor
            rest_obj = float(
                (slot_h[None, :] * sub.power_w[:, None] * (1 - f) * sol.level * sub.on).sum()
            )
            per_night[day.isoformat()] = {
                "objective_wh": bind_obj + rest_obj,
                "binding_objective_wh": bind_obj,
                "binding_cabinets": int(c.binding.size),
                "binding_lp_solve_s": bind_s,
                "rest_lp_total_s": sol.total_s,
            }
    elif method == "pf":
        per_night = power_factor_margins(city, days[::3])
    else:
        msg = f"unknown year method {method!r}"
        raise ValueError(msg)
    out: dict[str, Any] = {
        "instance": "year",
        "method": method,
        "n": city.n,
        "cabinets": city.m,
        "nights": {"lp": len(SAMPLE_NIGHTS), "pf": len(days[::3])}.get(method, len(days)),
        "total_s": time.perf_counter() - t0,
        "energy_wh": total_wh,
        "sample": per_night,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if binding_per_night:
        out["binding_cabinets_ever"] = int(bound.sum())
        out["binding_nights"] = binding_nights
        out["binding_per_night_mean"] = float(np.mean(binding_per_night))
        out["binding_per_night_max"] = int(np.max(binding_per_night))
        out["kva_steps"] = {
            f"{k:g}": int(v) for k, v in zip(*np.unique(city.kva, return_counts=True), strict=True)
        }
    return out


# --------------------------------------------------------------------------------------------
# one method in one process


def worker(name: str, method: str, quick: bool) -> dict[str, Any]:
    if name == "year":
        return year_worker(method, quick)
    problem = instance(name, quick=quick)
    if isinstance(problem, str):
        return {"skipped": problem}
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sol = solve(problem, method=method)
    viol = constraint_violations(problem, sol.level)
    level = sol.level
    cab_p = cabinet_power_w(problem, level)
    caps = problem.cabinet_cap_w
    binding = (cab_p >= caps - 1e-6 * np.maximum(caps, 1.0)).any(axis=1)
    return {
        "instance": name,
        "method": method,
        "n": problem.n,
        "slots": problem.n_slots,
        "cabinets": int(problem.cabinet.size),
        "status": sol.status,
        "build_s": sol.build_s,
        "solve_s": sol.solve_s,
        "total_s": sol.total_s,
        "objective": sol.objective,
        "budget_dual": sol.budget_dual,
        "binding_cabinet_share": float(binding.mean()),
        "energy_wh": float(energy_wh(problem, level).sum()),
        "budget_wh": problem.energy_budget_wh,
        "max_violation": max(viol.values()),
        "columns": sol.n_columns,
        "rows": sol.n_rows,
        "rss_before_solve_mib": rss0 / 1024.0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def run_worker(name: str, method: str, quick: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", name, method] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------------------------
# main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="instances of a tenth of the size")
    ap.add_argument("--worker", nargs=2, metavar=("INSTANCE", "METHOD"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--cases",
        choices=("all", "night", "year"),
        default="all",
        help="the night cases, the year cases, or both (default)",
    )
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.quick)))
        return

    from tqdm import tqdm

    plan = [
        ("dijon48", "fast"),
        ("dijon48", "highs"),
        ("dijon64", "fast"),
        ("dijon64", "highs"),
        ("montpellier", "fast"),
        ("montpellier", "highs"),
        ("dijon48", "pulp"),
        ("year", "exact"),
        ("year", "fill"),
        ("year", "lp"),
        ("year", "nightly"),
        ("year", "pf"),
    ]
    if args.cases != "all":
        plan = [(n, m) for n, m in plan if (n == "year") == (args.cases == "year")]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    with tqdm(plan, desc="dimming benchmark", unit="run", file=sys.stderr) as bar:
        for name, method in bar:
            bar.set_postfix_str(f"{name}/{method}")
            t0 = time.perf_counter()
            res = run_worker(name, method, args.quick)
            res["wall_s"] = time.perf_counter() - t0
            results[name, method] = res

    print(
        f"{'instance':<12} {'method':<6} {'lights':>7} {'slots':>5} {'cols':>9} {'rows':>9} "
        f"{'build s':>8} {'solve s':>8} {'total s':>8} {'peak MiB':>9} {'objective':>16} "
        f"{'viol':>8} {'caps bind':>9} {'budget dual':>11}"
    )
    for (name, method), r in results.items():
        if "skipped" in r or "error" in r:
            print(f"{name:<12} {method:<6} skipped: {r.get('skipped') or r.get('error')}")
            continue
        if name == "year":
            continue
        print(
            f"{name:<12} {method:<6} {r['n']:>7} {r['slots']:>5} {r['columns']:>9} "
            f"{r['rows']:>9} {r['build_s']:>8.2f} {r['solve_s']:>8.2f} {r['total_s']:>8.2f} "
            f"{r['peak_rss_mib']:>9.0f} {r['objective']:>16.6f} {r['max_violation']:>8.1e} "
            f"{r['binding_cabinet_share']:>9.1%} {r['budget_dual'] or 0.0:>11.3e}"
        )

    def rel(name: str) -> float | None:
        a, b = results.get((name, "fast"), {}), results.get((name, "highs"), {})
        if "objective" not in a or "objective" not in b:
            return None
        return abs(a["objective"] - b["objective"]) / max(abs(b["objective"]), 1e-300)

    for name in ("dijon48", "dijon64", "montpellier"):
        d = rel(name)
        if d is not None:
            print(f"{name}: objective fast vs full LP (highspy), relative difference {d:.2e}")

    main_fast = results.get(("dijon48", "fast"), {})
    figures: dict[str, Any] = {}
    for (name, method), r in results.items():
        if "total_s" in r and name != "year":
            for key in ("build_s", "solve_s", "total_s", "peak_rss_mib", "objective"):
                figures[f"{name}_{method}_{key}"] = r[key]
    for name in ("dijon48", "dijon64", "montpellier"):
        d = rel(name)
        if d is not None:
            figures[f"{name}_objective_rel_diff"] = d
        r = results.get((name, "fast"), {})
        if "binding_cabinet_share" in r:
            figures[f"{name}_binding_cabinet_share"] = r["binding_cabinet_share"]
            figures[f"{name}_budget_dual"] = r["budget_dual"]
    reference: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    pulp_r = results.get(("dijon48", "pulp"), {})
    if "total_s" in pulp_r:
        for key in ("build_s", "solve_s", "total_s", "peak_rss_mib"):
            reference[f"dijon48_pulp_{key}"] = pulp_r[key]
            ratios[f"dijon48_fast_over_pulp_{key}"] = main_fast[key] / pulp_r[key]
    highs_r = results.get(("dijon48", "highs"), {})
    if "total_s" in highs_r:
        for key in ("total_s", "peak_rss_mib"):
            reference[f"dijon48_highs_{key}"] = highs_r[key]
            ratios[f"dijon48_fast_over_highs_{key}"] = main_fast[key] / highs_r[key]

    worst_rel = max(
        (d for d in (rel(k) for k in ("dijon48", "dijon64", "montpellier")) if d is not None),
        default=None,
    )
    speedup = pulp_r["total_s"] / main_fast["total_s"] if "total_s" in pulp_r else None
    size = "34000x48" if not args.quick else "3400x48"
    targets = {
        f"build_plus_solve_s_{size}": target(main_fast.get("total_s"), 3.0, "<="),
        "peak_memory_gib": target(main_fast.get("peak_rss_mib", 0) / 1024.0, 2.0, "<="),
        "objective_rel_diff": target(worst_rel, 1e-7, "<="),
        "speedup_vs_pulp": target(speedup, 40.0, ">="),
    }
    if speedup is not None:
        figures["speedup_vs_pulp"] = speedup

    env_r = results.get(("year", "exact"), {})
    fill_r = results.get(("year", "fill"), {})
    lp_r = results.get(("year", "lp"), {})
    night_r = results.get(("year", "nightly"), {})

    def gaps(r: dict[str, Any], key: str) -> dict[str, float] | None:
        if "sample" not in r or "sample" not in lp_r:
            return None
        return {
            k: (r["sample"][k][key] - v[key]) / max(abs(v[key]), 1e-300)
            for k, v in lp_r["sample"].items()
        }

    year_gap = gaps(env_r, "objective_wh")
    bind_gap = gaps(env_r, "binding_objective_wh")
    fill_gap = gaps(fill_r, "binding_objective_wh")
    print()
    print(
        f"{'year (365 nights)':<26} {'lights':>7} {'nights':>6} {'total s':>9} "
        f"{'peak MiB':>9} {'energy MWh':>12}"
    )
    for key, r in (
        ("light by light + exact LP", env_r),
        ("light by light + filling", fill_r),
        ("night by night, fast", night_r),
        ("full LP, sampled nights", lp_r),
    ):
        if "total_s" in r:
            energy = f"{r['energy_wh'] / 1e6:>12.3f}" if r["method"] != "lp" else f"{'-':>12}"
            print(
                f"{key:<26} {r['n']:>7} {r['nights']:>6} {r['total_s']:>9.2f} "
                f"{r['peak_rss_mib']:>9.0f} {energy}"
            )
        else:
            print(f"{key:<26} skipped: {r.get('error') or r.get('skipped')}")
    if "binding_nights" in env_r:
        print(
            f"year: caps by the kVA rule (steps {env_r['kva_steps']} kVA x cabinets): "
            f"{env_r['binding_cabinets_ever']} of {env_r['cabinets']} cabinets bind, on "
            f"{env_r['binding_nights']} nights, {env_r['binding_per_night_mean']:.1f} per night "
            f"(max {env_r['binding_per_night_max']})"
        )
        figures["year_cabinets"] = env_r["cabinets"]
        figures["year_binding_cabinets"] = env_r["binding_cabinets_ever"]
        figures["year_binding_nights"] = env_r["binding_nights"]
        figures["year_binding_per_night_mean"] = env_r["binding_per_night_mean"]
    for label, g in (
        ("night objective, exact", year_gap),
        ("binding cabinets' objective, exact", bind_gap),
        ("binding cabinets' objective, filling", fill_gap),
    ):
        if g is not None:
            cells = ", ".join(
                f"{k} ({lp_r['sample'][k]['binding_cabinets']} binding) {v:.1e}"
                for k, v in g.items()
            )
            print(f"year: {label} vs the full LP, relative gap: {cells}")
    if "sample" in lp_r:
        for k, v in lp_r["sample"].items():
            print(
                f"year: full LP of {k}: binding cabinets {v['binding_lp_solve_s']:.2f} s "
                f"(solve), the other cabinets {v['rest_lp_total_s']:.2f} s"
            )
    pf_r = results.get(("year", "pf"), {})
    if "sample" in pf_r:
        margins = pf_r["sample"]
        cells = ", ".join(
            f"{k}: {v['break_even_pf']:.3f} ({v['slots']} slots)"
            for k, v in margins["bands"].items()
        )
        print(
            f"year: power factor below which a slot exceeds its contract, by mean level "
            f"({margins['nights']} nights): {cells}; {margins['binding_at_0.9']} cabinets bind "
            f"at 0.9, more if the PF below 0.85 output were "
            + ", ".join(f"{k}: {v}" for k, v in margins["more_if_pf_below_0.85"].items())
        )
        figures["year_pf_margins"] = margins
    if "total_s" in env_r:
        figures["year_total_s"] = env_r["total_s"]
        figures["year_peak_rss_mib"] = env_r["peak_rss_mib"]
        figures["year_energy_mwh"] = env_r["energy_wh"] / 1e6
        figures["year_lights"] = env_r["n"]
    worst = None
    if year_gap is not None and bind_gap is not None:
        worst = max(abs(v) for v in (*year_gap.values(), *bind_gap.values()))
        figures["year_lp_rel_gap"] = worst
        figures["year_lp_rel_gap_binding"] = max(abs(v) for v in bind_gap.values())
    if fill_gap is not None:
        figures["year_fill_rel_gap_binding"] = max(abs(v) for v in fill_gap.values())
    if "total_s" in fill_r:
        reference["year_fill_total_s"] = fill_r["total_s"]
        reference["year_fill_peak_rss_mib"] = fill_r["peak_rss_mib"]
        if "total_s" in env_r:
            ratios["year_exact_over_fill_total_s"] = env_r["total_s"] / fill_r["total_s"]
    if "total_s" in night_r and "total_s" in env_r:
        reference["year_nightly_fast_total_s"] = night_r["total_s"]
        reference["year_nightly_fast_peak_rss_mib"] = night_r["peak_rss_mib"]
        ratios["year_over_nightly_fast_total_s"] = env_r["total_s"] / night_r["total_s"]
        figures["year_vs_nightly_energy_rel_diff"] = (
            abs(env_r["energy_wh"] - night_r["energy_wh"]) / night_r["energy_wh"]
        )
    if args.cases == "year":  # only the targets of the cases that ran
        targets = {}
    if args.cases != "night":
        targets["year_total_s"] = target(env_r.get("total_s"), 60.0, "<=")
        peak = env_r.get("peak_rss_mib")
        targets["year_peak_memory_gib"] = target(None if peak is None else peak / 1024.0, 4.0, "<=")
        targets["year_lp_rel_gap"] = target(worst, 1e-6, "<=")
    emit("dimming", figures, reference=reference, ratios=ratios, targets=targets)


if __name__ == "__main__":
    main()
