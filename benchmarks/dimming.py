"""Benchmark of the dimming LP: the fast path against the full LP and the pulp model.

Runs as ``python benchmarks/dimming.py`` (full) or ``--quick`` (a tenth of the lights; the
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
# one method in one process


def worker(name: str, method: str, quick: bool) -> dict[str, Any]:
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
    ]
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

    main_fast = results["dijon48", "fast"]
    figures: dict[str, Any] = {}
    for (name, method), r in results.items():
        if "total_s" in r:
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
    emit("dimming", figures, reference=reference, ratios=ratios, targets=targets)


if __name__ == "__main__":
    main()
