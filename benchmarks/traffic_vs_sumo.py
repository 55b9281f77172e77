"""Traffic DES against SUMO (meso and micro) on the same network and trips, built in this run.

Reference (issue T3): ``netgenerate`` 30 x 30 grid (200 m, 2 lanes, 13.89 m/s; 3,480 edges), 200
interior junctions made signalised with ``netconvert --tls.set`` (static programs, picked with a
fixed seed), 30,000 trips over one hour from SUMO's ``randomTrips.py`` (fixed seed), routes from
``duarouter``; SUMO meso (``--mesosim --meso-tls-penalty 1 --meso-tls-flow-penalty 1``) and SUMO
micro. Our DES runs on the imported network with duarouter's routes (like with like), or with
``--mode trips`` routes the trips itself, duarouter's time then being added to SUMO's.

Second section: a full simulated weekday of the Montpellier twin (``twin.load('montpellier')``):
its drive network, its demand model's car trips and Webster plans for its signalised junctions;
reports the real-time factor (simulated s per wall s), trips and dropped trips. ``--quick``
simulates one trip in ten of the same day.

Usage: ``python benchmarks/traffic_vs_sumo.py [--quick] [--skip-micro] [--no-day]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from _report import emit, target

from twin.scenarios import traffic as tr
from twin.sumo import import_sumo, sumo_binary

SEED = 20240501


def sh(cmd: list[str], *, log: Path | None = None) -> float:
    """Run a command, return its wall time; fail loudly."""
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if log is not None:
        log.write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        sys.exit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return wall


def build_reference(work: Path, *, grid: int, n_tls: int, n_trips: int) -> dict[str, float]:
    import sumo
    import sumolib

    raw, net = work / "grid0.net.xml", work / "grid.net.xml"
    sh(
        [
            sumo_binary("netgenerate"),
            "--grid",
            f"--grid.number={grid}",
            "--grid.length=200",
            "--default.lanenumber=2",
            "--default.speed=13.89",
            "-o",
            str(raw),
        ]
    )
    interior = sorted(
        n.getID() for n in sumolib.net.readNet(str(raw)).getNodes() if len(n.getIncoming()) == 4
    )
    rng = np.random.default_rng(SEED)
    pick = sorted(interior[i] for i in rng.choice(len(interior), n_tls, replace=False))
    sh(
        [
            sumo_binary("netconvert"),
            "-s",
            str(raw),
            "--tls.set",
            ",".join(pick),
            "--tls.default-type",
            "static",
            "-o",
            str(net),
        ]
    )
    period = 3600.0 / n_trips
    sh(
        [
            sys.executable,
            str(Path(sumo.SUMO_HOME) / "tools" / "randomTrips.py"),
            "-n",
            str(net),
            "-b",
            "0",
            "-e",
            f"{3600.0 - period / 2:.4f}",
            "-p",
            f"{period:.6f}",
            "--seed",
            str(SEED),
            "-o",
            str(work / "trips.xml"),
            "-r",  # randomTrips validates its trips through duarouter; keep that file in work
            str(work / "random.rou.xml"),
        ]
    )
    t_dua = sh(
        [
            sumo_binary("duarouter"),
            "-n",
            str(net),
            "-r",
            str(work / "trips.xml"),
            "-o",
            str(work / "routes.rou.xml"),
            "--ignore-errors",
            "--no-step-log",
            "--seed",
            str(SEED),
        ]
    )
    return {"duarouter_s": t_dua}


def run_sumo(work: Path, kind: str) -> float:
    add = work / f"ed_{kind}.add.xml"
    add.write_text(
        f'<additional><edgeData id="ed" file="edata_{kind}.xml" begin="0" end="3600"/></additional>'
    )
    cmd = [
        sumo_binary("sumo"),
        "-n",
        str(work / "grid.net.xml"),
        "-r",
        str(work / "routes.rou.xml"),
        "--no-step-log",
        "true",
        "--no-warnings",
        "true",
        "--tripinfo-output",
        str(work / f"ti_{kind}.xml"),
        "-a",
        str(add),
    ]
    if kind == "meso":
        cmd += ["--mesosim", "--meso-tls-penalty", "1", "--meso-tls-flow-penalty", "1"]
    return sh(cmd, log=work / f"{kind}.log")


def sumo_results(work: Path, kind: str, edge_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tt = np.array(
        [
            float(e.get("duration"))
            for e in ET.parse(work / f"ti_{kind}.xml").getroot().iter("tripinfo")
        ]
    )
    counts: dict[str, float] = {}
    for e in ET.parse(work / f"edata_{kind}.xml").getroot().iter("edge"):
        n = float(e.get("entered", 0)) + float(e.get("departed", 0))
        counts[e.get("id", "")] = counts.get(e.get("id", ""), 0.0) + n
    return tt, np.array([counts.get(str(i), 0.0) for i in edge_ids])


def stats(tt: np.ndarray) -> dict[str, float]:
    tt = tt[np.isfinite(tt)]
    p50, p90, p95 = np.percentile(tt, [50, 90, 95])
    return {
        "mean": float(tt.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "n": int(tt.size),
    }


# ------------------------------------------------------------------ Montpellier day ------------
#: Share of the day's trips simulated with ``--quick`` (the full day otherwise).
QUICK_SHARE = 0.1


def day_section(*, quick: bool) -> dict[str, float | str]:
    """One simulated weekday of the Montpellier twin: its drive network, its demand model's
    car trips and the Webster plans of its signalised junctions (``--quick``: one trip in ten).
    """
    import datetime as dt
    from zoneinfo import ZoneInfo

    import twin
    from twin.scenarios.demand import build_demand
    from twin.scenarios.network import REFERENCE_WEEKDAY, drive_graph, signal_plans

    t = time.perf_counter()
    tw = twin.load("montpellier", progress=False)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    graph = drive_graph(tw)
    model = build_demand(tw)
    frame = model.trips(day_type="weekday", rng=SEED)
    plans = signal_plans(tw)
    build_s = time.perf_counter() - t
    n_drawn = len(frame)
    if quick:
        keep = np.random.default_rng(SEED).random(n_drawn) < QUICK_SHARE
        frame = frame[keep]
    trips = tuple(
        tr.Trip(f"t{i}", o, d, float(s))
        for i, (o, d, s) in enumerate(
            zip(frame["origin"], frame["destination"], frame["depart_s"], strict=True)
        )
    )
    day = REFERENCE_WEEKDAY
    t0 = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("Europe/Paris"))
    sc = tr.TrafficScenario(
        graph,
        trips=trips,
        plans=tuple(plans.values()),
        t0=t0,
        dt_s=2.0,
        reroute_s=600.0,
        progress=False,
    )
    t = time.perf_counter()
    ds = tr.run(sc, rng=SEED)
    wall = time.perf_counter() - t
    tt = ds["travel_time"].values
    dep = ds["depart"].values
    peak = (dep >= 7 * 3600) & (dep < 9 * 3600)
    simulated = float(ds.attrs["simulated_s"])
    delay = ds["delay"].values
    return {
        "graph_source": "twin.load('montpellier'): drive_graph, build_demand, signal_plans",
        "share_of_trips": QUICK_SHARE if quick else 1.0,
        "edges": int(graph.number_of_edges()),
        "nodes": int(graph.number_of_nodes()),
        "signalised": len(plans),
        "junctions": len(tw.registry["junction"]),
        "junctions_skipped": len(plans.skipped),
        "plan_hour_local": plans.local_hour,
        "trips_drawn": n_drawn,
        "trips": int(ds.sizes["trip"]),
        "dropped": int(ds.attrs["n_dropped"]),
        "dropped_off_network_per_day": float(frame.attrs.get("dropped_trips", 0.0)),
        "same_node_trips": int(frame.attrs.get("same_node_trips", 0)),
        "unfinished": int(ds.attrs["n_unfinished"]),
        "mean_tt_s": float(np.nanmean(tt)),
        "mean_tt_am_peak_s": float(np.nanmean(tt[peak])),
        "mean_tt_night_s": float(np.nanmean(tt[dep < 5 * 3600])),
        "mean_approach_delay_s": float(np.nanmean(delay)) if np.isfinite(delay).any() else 0.0,
        "load_s": load_s,
        "build_s": build_s,
        "simulated_s": simulated,
        "wall_s": wall,
        "rtf": simulated / wall,
    }


def print_day(day: dict) -> None:
    share = "" if day["share_of_trips"] == 1.0 else f" ({day['share_of_trips']:.0%} sample)"
    rows = [
        ("network", f"{day['edges']:,} drive edges, {day['nodes']:,} nodes"),
        (
            "signals",
            f"{day['signalised']} Webster plans of {day['junctions']} junctions "
            f"({day['junctions_skipped']} skipped), sized at {day['plan_hour_local']:02d}:00 local",
        ),
        (
            "trips",
            f"{day['trips']:,} simulated{share} of {day['trips_drawn']:,} drawn; "
            f"{day['dropped']} dropped (no route), {day['unfinished']:,} unfinished; "
            f"{day['dropped_off_network_per_day']:.0f}/day off the drive network and "
            f"{day['same_node_trips']} same-node trips not drawn",
        ),
        (
            "travel time",
            f"mean {day['mean_tt_s']:.0f} s (07-09 {day['mean_tt_am_peak_s']:.0f} s, "
            f"00-05 {day['mean_tt_night_s']:.0f} s); mean approach delay "
            f"{day['mean_approach_delay_s']:.0f} s",
        ),
        (
            "speed",
            f"{day['simulated_s']:,.0f} simulated s in {day['wall_s']:.1f} wall s -> real-time "
            f"factor {day['rtf']:.0f} (load {day['load_s']:.1f} s, demand and plans "
            f"{day['build_s']:.1f} s)",
        ),
    ]
    print("Montpellier, one simulated weekday (" + day["graph_source"] + ")")
    for k, v in rows:
        print(f"  {k:<12}{v}")
    stuck = day["unfinished"] / max(day["trips"], 1)
    if stuck > 0.01:
        print(
            f"  note: {stuck:.0%} of the trips had not arrived when the run stopped: at this "
            "demand the modelled network grid-locks (one lane per direction where the municipal "
            "data gives no lanes; demand not yet calibrated to flows)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="12 x 12 grid, 3,000 trips, no micro; Montpellier day with 10%% of the trips",
    )
    ap.add_argument("--skip-micro", action="store_true")
    ap.add_argument("--micro", action="store_true", help="run micro even with --quick")
    ap.add_argument("--no-day", action="store_true", help="skip the Montpellier day")
    ap.add_argument("--mode", choices=["routes", "trips"], default="routes")
    ap.add_argument("--dt", type=float, default=2.0, help="DES step (s)")
    ap.add_argument("--day-only", action="store_true", help="only the Montpellier day")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    if args.day_only:
        day = day_section(quick=args.quick)
        print_day(day)
        emit("traffic_vs_sumo", {f"day_{k}": v for k, v in day.items()})
        return
    grid, n_tls, n_trips = (12, 30, 3000) if args.quick else (30, 200, 30000)
    do_micro = (not args.quick or args.micro) and not args.skip_micro
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="traffic_vs_sumo_")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    print(
        f"building the reference: grid {grid}x{grid}, {n_tls} signals, {n_trips} trips ...",
        flush=True,
    )
    ref = build_reference(work, grid=grid, n_tls=n_tls, n_trips=n_trips)
    print("SUMO meso ...", flush=True)
    ref["meso_s"] = run_sumo(work, "meso")
    print("our DES ...", flush=True)
    t = time.perf_counter()
    graph, signals, trips = import_sumo(work / "grid.net.xml", work / "routes.rou.xml")
    import_s = time.perf_counter() - t
    if args.mode == "trips":
        trips = [tr.Trip(t.id, t.origin_node, t.dest_node, t.depart_s) for t in trips]
    sc = tr.TrafficScenario(
        graph, trips=tuple(trips), plans=tuple(signals.values()), dt_s=args.dt, progress=False
    )
    t = time.perf_counter()
    ds = tr.run(sc, rng=SEED)
    des_s = time.perf_counter() - t
    if do_micro:  # after our DES so that both fast runs have the machine to themselves
        print("SUMO micro (minutes) ...", flush=True)
        ref["micro_s"] = run_sumo(work, "micro")
    edge_ids = ds["edge"].values
    in_hour = ds["time"].values < ds["time"].values[0] + np.timedelta64(3600, "s")
    ours_counts = (ds["flow"].isel(time=in_hour) * 900.0 / 3600.0).sum("time").values
    res = {"ours": stats(ds["travel_time"].values)}
    counts = {}
    for kind in ("meso", "micro") if do_micro else ("meso",):
        tt, c = sumo_results(work, kind, edge_ids)
        res[kind] = stats(tt)
        counts[kind] = c
    sumo_time = ref["meso_s"] + (ref["duarouter_s"] if args.mode == "trips" else 0.0)

    # ---- table
    print()
    print(
        f"network: {graph.number_of_edges()} edges, {len(signals)} signalised junctions; "
        f"trips: {len(trips)} (mode {args.mode}); DES dt {args.dt:g} s"
    )
    print(
        f"{'':8}{'mean s':>10}{'p50 s':>10}{'p90 s':>10}{'p95 s':>10}{'trips':>8}"
        f"{'vs ours':>10}{'flow r':>9}"
    )
    for kind, s in res.items():
        rel = "" if kind == "ours" else f"{res['ours']['mean'] / s['mean'] - 1:+.1%}"
        r = "" if kind == "ours" else f"{np.corrcoef(ours_counts, counts[kind])[0, 1]:.3f}"
        print(
            f"{kind:8}{s['mean']:10.1f}{s['p50']:10.1f}{s['p90']:10.1f}{s['p95']:10.1f}"
            f"{s['n']:8d}{rel:>10}{r:>9}"
        )
    print()
    print(
        f"wall: ours DES {des_s:.2f} s (+ import {import_s:.2f} s) | SUMO meso "
        f"{ref['meso_s']:.2f} s"
        + (f" | micro {ref['micro_s']:.1f} s" if do_micro else "")
        + f" | duarouter {ref['duarouter_s']:.2f} s"
    )

    figures = {
        "des_wall_s": des_s,
        "import_wall_s": import_s,
        "edges": graph.number_of_edges(),
        "trips": len(trips),
        "unfinished": int(ds.attrs["n_unfinished"]),
    }
    for kind, s in res.items():
        for k, v in s.items():
            figures[f"{kind}_tt_{k}"] = v
    for kind, c in counts.items():
        figures[f"flow_corr_vs_{kind}"] = float(np.corrcoef(ours_counts, c)[0, 1])
    reference = {"sumo_meso_wall_s": ref["meso_s"], "duarouter_wall_s": ref["duarouter_s"]}
    if do_micro:
        reference["sumo_micro_wall_s"] = ref["micro_s"]
    for kind in counts:
        reference[f"{kind}_tt_mean"] = res[kind]["mean"]
    acc = "micro" if do_micro else "meso"
    rel = abs(res["ours"]["mean"] / res[acc]["mean"] - 1)
    ratios = {"des_vs_meso_wall": des_s / sumo_time}
    for kind in counts:
        ratios[f"tt_mean_vs_{kind}"] = res["ours"]["mean"] / res[kind]["mean"]
    targets = {
        "des_vs_meso_wall": target(des_s / sumo_time, 1.0, "<="),
        f"tt_mean_rel_diff_vs_{acc}": target(rel, 0.15, "<="),
        f"flow_corr_vs_{acc}": target(figures[f"flow_corr_vs_{acc}"], 0.9, ">="),
    }
    if not args.no_day:
        print("\nMontpellier, one simulated day ...", flush=True)
        day = day_section(quick=args.quick)
        print_day(day)
        for k, v in day.items():
            figures[f"day_{k}"] = v
    if tmp is not None:
        tmp.cleanup()
    emit("traffic_vs_sumo", figures, reference=reference, ratios=ratios, targets=targets)


if __name__ == "__main__":
    main()
