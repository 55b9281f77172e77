"""Traffic DES against SUMO (meso and micro) on the same network and trips, built in this run.

Reference (issue T3): ``netgenerate`` 30 x 30 grid (200 m, 2 lanes, 13.89 m/s; 3,480 edges), 200
interior junctions made signalised with ``netconvert --tls.set`` (static programs, picked with a
fixed seed), 30,000 trips over one hour from SUMO's ``randomTrips.py`` (fixed seed), routes from
``duarouter``; SUMO meso (``--mesosim --meso-tls-penalty 1 --meso-tls-flow-penalty 1``) and SUMO
micro. Our DES runs on the imported network with duarouter's routes (like with like), or with
``--mode trips`` routes the trips itself, duarouter's time then being added to SUMO's.

Second section: a full simulated day on the Montpellier centrelines (real-time factor).

Usage: ``python benchmarks/traffic_vs_sumo.py [--quick] [--skip-micro] [--no-day]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from twin.scenarios import traffic as tr
from twin.scenarios.signals import approach_bearings, group_by_axis, webster_plan
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
def montpellier_graph():
    """Drive graph of the Montpellier centrelines: twin.load if it works, else built here."""
    import networkx as nx

    try:
        import twin

        g = twin.load("montpellier", progress=False).drive  # type: ignore[attr-defined]
        if g.number_of_edges() > 1000:
            return g, "twin.load('montpellier').drive"
    except Exception as exc:  # noqa: BLE001 - the loader is optional here
        print(f"twin.load('montpellier') not usable ({type(exc).__name__}); building here")
    import geopandas as gpd

    data = Path(
        os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    )
    roads = gpd.read_file(f"zip://{data / 'montpellier' / 'VilleMTP_MTP_FilaireVoies.zip'}")
    roads = roads[~roads["SENS_CIRCU"].isin(["INTERDIT", "FICTIF"])]
    cls = {
        "BD": (2, 50.0, "primary"),
        "AV": (2, 50.0, "secondary"),
        "RTE": (2, 50.0, "primary"),
        "AUTO": (2, 90.0, "trunk"),
        "QUAI": (1, 50.0, "tertiary"),
        "PONT": (2, 50.0, "secondary"),
    }
    g = nx.MultiDiGraph(crs="EPSG:2154")
    for typ, one_way, geom, name in zip(
        roads["TYPVOI"], roads["SENS_CIRCU"], roads.geometry, roads["LIB_OFF"], strict=True
    ):
        xy = np.asarray(geom.coords)[:, :2]
        a = tuple(np.round(xy[0] * 2) / 2)
        b = tuple(np.round(xy[-1] * 2) / 2)
        if a == b:
            continue
        lanes, kph, hw = cls.get(
            typ, (1, 30.0 if typ in ("IMP", "ALL", "PL") else 50.0, "residential")
        )
        for n in (a, b):
            g.add_node(n, x=n[0], y=n[1])
        attrs = {
            "length": float(geom.length),
            "speed_kph": kph,
            "lanes": lanes,
            "highway": hw,
            "name": str(name),
        }
        g.add_edge(a, b, **attrs)
        if one_way != "SENS UNIQUE":
            g.add_edge(b, a, **attrs)
    big = max(nx.strongly_connected_components(g), key=len)
    g = nx.MultiDiGraph(g.subgraph(big))
    g = nx.convert_node_labels_to_integers(g)
    return g, "built from VilleMTP_MTP_FilaireVoies.zip (endpoints rounded to 0.5 m)"


def montpellier_signals(g, data: Path) -> tuple[list, int]:
    import geopandas as gpd
    from scipy.spatial import cKDTree

    pts = gpd.read_file(data / "montpellier" / "VilleMTP_MTP_Signalisation.geojson")
    nodes = list(g.nodes)
    xy = np.array([[g.nodes[n]["x"], g.nodes[n]["y"]] for n in nodes])
    _, idx = cKDTree(xy).query(np.c_[pts.geometry.x, pts.geometry.y], distance_upper_bound=30.0)
    plans, seen = [], set()
    for i in idx:
        if i >= len(nodes) or nodes[i] in seen:
            continue
        node = nodes[i]
        seen.add(node)
        app = [(u, v, k) for u, v, k in g.in_edges(node, keys=True)]
        groups = group_by_axis(approach_bearings(g, app))
        if len(groups) < 2:
            continue
        flows = {a: 400.0 * g.edges[a]["lanes"] for a in app}
        lanes = {a: int(g.edges[a]["lanes"]) for a in app}
        plans.append(webster_plan(f"junction:{len(plans)}", flows, lanes=lanes, groups=groups))
    return plans, len(pts)


def day_section(*, quick: bool) -> dict[str, float | str]:
    data = Path(
        os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    )
    t = time.perf_counter()
    g, source = montpellier_graph()
    plans, n_sig = montpellier_signals(g, data)
    t_build = time.perf_counter() - t
    rng = np.random.default_rng(SEED)
    n_zones = 60 if quick else 200
    zones = tuple(rng.choice(np.array(list(g.nodes), dtype=object), n_zones, replace=False))
    # daily profile (share of daily trips per hour, French urban survey shape: AM and PM peaks)
    prof = np.array(
        [
            0.4,
            0.2,
            0.1,
            0.1,
            0.3,
            1.0,
            3.5,
            7.5,
            8.5,
            5.5,
            5.0,
            5.5,
            6.0,
            5.5,
            5.5,
            6.0,
            7.5,
            9.0,
            8.0,
            5.5,
            3.5,
            2.5,
            1.8,
            1.0,
        ]
    )
    prof /= prof.sum()
    daily = 40_000 if quick else 200_000
    hours = 24
    per_cell = daily * prof / (n_zones * (n_zones - 1))  # veh/h per OD cell (1-h slots)
    rates = np.repeat(per_cell[:, None, None], n_zones, axis=1).repeat(n_zones, axis=2)
    rates[:, np.arange(n_zones), np.arange(n_zones)] = 0.0
    demand = tr.ODDemand(tuple(str(z) for z in zones), zones, rates, slot_s=3600.0)
    sc = tr.TrafficScenario(
        g,
        demand=demand,
        plans=tuple(plans),
        duration_s=hours * 3600.0,
        dt_s=2.0,
        reroute_s=900.0,
        progress=False,
    )
    t = time.perf_counter()
    ds = tr.run(sc, rng=SEED)
    wall = time.perf_counter() - t
    tt = ds["travel_time"].values
    return {
        "graph_source": source,
        "edges": int(g.number_of_edges()),
        "nodes": int(g.number_of_nodes()),
        "signalised": len(plans),
        "signal_points": n_sig,
        "trips": int(ds.sizes["trip"]),
        "dropped": int(ds.attrs["n_dropped"]),
        "unfinished": int(ds.attrs["n_unfinished"]),
        "mean_tt_s": float(np.nanmean(tt)),
        "build_s": t_build,
        "wall_s": wall,
        "rtf": hours * 3600.0 / wall,
    }


def print_day(day: dict) -> None:
    print(
        f"Montpellier day: {day['edges']} edges, {day['signalised']} signalised junctions "
        f"(of {day['signal_points']} points), {day['trips']} trips "
        f"({day['dropped']} dropped, {day['unfinished']} unfinished), mean travel time "
        f"{day['mean_tt_s']:.0f} s; graph {day['build_s']:.1f} s, DES {day['wall_s']:.1f} s"
        f" -> real-time factor {day['rtf']:.0f} (simulated s per wall s); "
        f"graph: {day['graph_source']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="12 x 12 grid, 3,000 trips, no micro")
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
        print(
            json.dumps(
                {
                    "benchmark": "traffic_vs_sumo",
                    "figures": {f"day_{k}": v for k, v in day.items()},
                    "reference": {},
                    "ratios": {},
                    "targets": {},
                }
            )
        )
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
        "des_vs_meso_wall": {"value": des_s / sumo_time, "limit": 1.0, "op": "<="},
        f"tt_mean_rel_diff_vs_{acc}": {"value": rel, "limit": 0.15, "op": "<="},
        f"flow_corr_vs_{acc}": {"value": figures[f"flow_corr_vs_{acc}"], "limit": 0.9, "op": ">="},
    }
    if not args.no_day:
        print("\nMontpellier, one simulated day ...", flush=True)
        day = day_section(quick=args.quick)
        print_day(day)
        for k, v in day.items():
            figures[f"day_{k}"] = v
    for t in targets.values():
        t["met"] = bool(t["value"] <= t["limit"] if t["op"] == "<=" else t["value"] >= t["limit"])
    if tmp is not None:
        tmp.cleanup()
    print(
        json.dumps(
            {
                "benchmark": "traffic_vs_sumo",
                "figures": figures,
                "reference": reference,
                "ratios": ratios,
                "targets": targets,
            }
        )
    )


if __name__ == "__main__":
    main()
