"""A Montpellier weekday in the traffic DES: trips finished, trip times by hour, real-time factor.

The twin (``twin.load('montpellier')``): its drive network with lanes per direction, its demand
model's car trips for one weekday, Webster plans at its signalised junctions. Printed: trips
finished by the end of the day, mean and p90 trip time per departure hour (local clock), the
real-time factor (simulated s per wall s), and the volume/capacity of each edge at 08:00 and
17:00 (vehicles entering per hour over the assignment's capacity: lanes x 900 veh/h on main
streets, see ``twin.scenarios.assignment.BPR``), drawn as maps in ``--out``.

Targets (issue T10): 99% of trips finished, a real-time factor of 50.

Usage: ``python benchmarks/traffic_weekday.py [--quick] [--out DIR]`` (``--quick``: one trip in
ten).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _report import emit, target

import twin
from twin.scenarios import traffic as tr
from twin.scenarios.assignment import AssignmentNetwork
from twin.scenarios.network import REFERENCE_WEEKDAY, drive_graph, signal_plans
from twin.scenarios.zones import build_demand

SEED = 20240604
QUICK_SHARE = 0.1


def vc_map(tw: twin.Twin, vc: pd.Series, hour: int, out: Path) -> None:
    """Map of the v/c of each segment (the higher of its directions) at ``hour``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.plot import line_collection

    seg = tw.registry["segment"]
    seg = seg[seg["drive"]]
    v = vc.reindex(seg.index).fillna(0.0).to_numpy()
    order = np.argsort(v)
    fig, ax = plt.subplots(figsize=(9, 8), layout="constrained")
    lc = line_collection(
        seg.geometry.values[order],
        cmap="RdYlGn_r",
        linewidths=0.4 + 2.0 * np.minimum(v[order], 1.5),
    )
    lc.set_array(np.minimum(v[order], 1.5))
    lc.set_clim(0.0, 1.5)
    ax.add_collection(lc)
    ax.autoscale()
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.colorbar(lc, ax=ax, shrink=0.6, label="volume / capacity")
    ax.set_title(f"{tw.city.title}: volume/capacity at {hour:02d}:00, simulated weekday")
    fig.text(0.99, 0.01, tw.city.attribution, ha="right", fontsize=7, color="0.3")
    fig.savefig(out / f"vc_{hour:02d}h.png", dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one trip in ten")
    ap.add_argument("--out", type=Path, default=None, help="write the v/c maps and tables here")
    ap.add_argument("--dt", type=float, default=2.0)
    args = ap.parse_args()
    t = time.perf_counter()
    tw = twin.load("montpellier", progress=False)
    graph = drive_graph(tw)
    model = build_demand(tw)
    frame = model.trips(day_type="weekday", rng=SEED)
    plans = signal_plans(tw)
    n_drawn = len(frame)
    if args.quick:
        frame = frame[np.random.default_rng(SEED).random(n_drawn) < QUICK_SHARE]
    trips = tuple(
        tr.Trip(f"t{i}", o, d, float(s))
        for i, (o, d, s) in enumerate(
            zip(frame["origin"], frame["destination"], frame["depart_s"], strict=True)
        )
    )
    day = REFERENCE_WEEKDAY
    from zoneinfo import ZoneInfo

    t0 = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tw.city.timezone))
    sc = tr.TrafficScenario(
        graph,
        trips=trips,
        plans=tuple(plans.values()),
        t0=t0,
        duration_s=86400.0 + 4 * 3600.0,
        dt_s=args.dt,
        slot_s=3600.0,
        progress=True,
    )
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    ds = tr.run(sc, rng=SEED)
    wall = time.perf_counter() - t
    tt = ds["travel_time"].values
    dep_h = (ds["depart"].values // 3600).astype(int)
    arrive = ds["arrive"].values
    finished_by_midnight = np.isfinite(arrive) & (arrive <= 86400.0)
    by_hour = (
        pd.DataFrame({"hour": dep_h, "tt": tt, "done": np.isfinite(tt)})
        .groupby("hour")
        .agg(
            trips=("tt", "size"),
            finished=("done", "mean"),
            mean_s=("tt", "mean"),
            p90_s=("tt", lambda x: float(np.nanpercentile(x, 90)) if x.notna().any() else np.nan),
        )
    )
    simulated = float(ds.attrs["simulated_s"])
    cap = AssignmentNetwork.from_graph(graph).capacity_veh_h
    scale = 1.0 / QUICK_SHARE if args.quick else 1.0
    figures: dict[str, float] = {}
    vc_by_hour = {}
    for h in (8, 17):
        flow = ds["flow"].isel(time=h).values * scale  # slots are local-clock hours from t0
        vc = pd.Series(flow / cap, index=ds["edge"].values).groupby(level=0).max()
        vc_by_hour[h] = vc
        figures[f"vc_share_above_1_at_{h}h"] = float((vc > 1.0).mean())
        figures[f"vc_p95_at_{h}h"] = float(vc.quantile(0.95))
    print(
        f"Montpellier weekday: {len(trips):,} trips"
        + (f" (a {QUICK_SHARE:.0%} sample of {n_drawn:,})" if args.quick else "")
        + f", {graph.number_of_edges():,} edges, {len(plans)} signal plans"
    )
    print(by_hour.round(1).to_string())
    share_done = float(finished_by_midnight.mean())
    print(
        f"finished by midnight {share_done:.1%}; unfinished at the end {ds.attrs['n_unfinished']:,}"
        f"; heads forced into a full edge after {sc.max_blocked_s:.0f} s: {ds.attrs['n_forced']:,}"
        f"; simulated {simulated:,.0f} s in {wall:,.0f} s wall: real-time factor "
        f"{simulated / wall:,.0f}; v/c > 1 at 08:00 {figures['vc_share_above_1_at_8h']:.1%} and "
        f"17:00 {figures['vc_share_above_1_at_17h']:.1%} of edges"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        by_hour.to_csv(args.out / "trips_by_hour.csv")
        for h, vc in vc_by_hour.items():
            vc.rename("vc").to_csv(args.out / f"vc_{h:02d}h.csv")
            vc_map(tw, vc, h, args.out)
    figures.update(
        {
            "trips": len(trips),
            "share_of_trips": QUICK_SHARE if args.quick else 1.0,
            "finished_by_midnight": share_done,
            "unfinished": int(ds.attrs["n_unfinished"]),
            "forced_past_full_edges": int(ds.attrs["n_forced"]),
            "mean_tt_s": float(np.nanmean(tt)),
            "p90_tt_s": float(np.nanpercentile(tt, 90)),
            "mean_tt_8h_s": float(by_hour["mean_s"].get(8, np.nan)),
            "mean_tt_17h_s": float(by_hour["mean_s"].get(17, np.nan)),
            "build_s": build_s,
            "wall_s": wall,
            "rtf": simulated / wall,
        }
    )
    emit(
        "traffic_weekday",
        figures,
        targets={
            "finished_by_midnight": target(share_done, 0.99, ">="),
            "rtf": target(simulated / wall, 50.0, ">="),
        },
    )


if __name__ == "__main__":
    main()
