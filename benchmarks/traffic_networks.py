"""Traffic DES against SUMO on networks made by ``netgenerate --rand`` and ``--spider``.

Each case: a network made by SUMO's own generator with traffic lights guessed by ``netgenerate``
(``--tls.guess``, static programs as ``netconvert`` writes them, their cycles whatever SUMO
picked), trips from ``randomTrips.py`` over one hour (fixed seed), routes from ``duarouter``.
SUMO micro and meso run them; our DES runs the imported network with duarouter's routes (the same
vehicles on the same paths through the same signal programs). Printed: mean, p50 and p90 trip
time, their ratios to SUMO, the correlation of vehicles per edge, and wall times.

Reference figures (issue T10, section 7): before the per-link green, the long imported cycles
and the per-movement queues, trips were 19% (rand) and 34% (spider) shorter than SUMO micro.

Usage: ``python benchmarks/traffic_networks.py [--quick] [--trips N]``.
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
from twin.sumo import import_sumo, read_signal_programs, sumo_binary

SEED = 20240611

#: netgenerate options of each case (after ``--tls.guess`` and the seed).
CASES: dict[str, list[str]] = {
    "rand": [
        "--rand",
        "--rand.iterations=120",
        "--rand.min-distance=120",
        "--rand.max-distance=300",
        "--default.lanenumber=2",
        "--default.speed=13.89",
    ],
    "spider": [
        "--spider",
        "--spider.arm-number=8",
        "--spider.circle-number=5",
        "--spider.space-radius=150",
        "--default.lanenumber=2",
        "--default.speed=13.89",
    ],
}


def sh(cmd: list[str], *, cwd: Path | None = None) -> float:
    """Run a command, return its wall time; fail loudly."""
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return wall


def build(work: Path, case: str, n_trips: int) -> tuple[Path, Path]:
    """The case's network and duarouter routes in ``work``."""
    import sumo

    net = work / f"{case}.net.xml"
    sh(
        [
            sumo_binary("netgenerate"),
            *CASES[case],
            "--tls.guess",
            "--tls.default-type=static",
            f"--seed={SEED}",
            "-o",
            str(net),
        ]
    )
    period = 3600.0 / n_trips
    trips = work / f"{case}.trips.xml"
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
            "--fringe-factor",
            "5",
            "--min-distance",
            "300",
            "--seed",
            str(SEED),
            "-o",
            str(trips),
            "-r",
            str(work / f"{case}.random.rou.xml"),
        ]
    )
    routes = work / f"{case}.rou.xml"
    sh(
        [
            sumo_binary("duarouter"),
            "-n",
            str(net),
            "-r",
            str(trips),
            "-o",
            str(routes),
            "--ignore-errors",
            "--no-step-log",
            "--seed",
            str(SEED),
        ]
    )
    return net, routes


def run_sumo(work: Path, case: str, kind: str) -> tuple[float, np.ndarray, dict[str, float]]:
    """SUMO ``kind`` (micro or meso) on the case: wall time, trip times, vehicles per edge."""
    add = work / f"{case}_{kind}.add.xml"
    edata = work / f"{case}_{kind}.edata.xml"
    info = work / f"{case}_{kind}.tripinfo.xml"
    add.write_text(f'<additional><edgeData id="ed" file="{edata.name}"/></additional>')
    cmd = [
        sumo_binary("sumo"),
        "-n",
        str(work / f"{case}.net.xml"),
        "-r",
        str(work / f"{case}.rou.xml"),
        "--no-step-log",
        "true",
        "--no-warnings",
        "true",
        "--tripinfo-output",
        str(info),
        "-a",
        str(add),
        "--seed",
        str(SEED),
    ]
    if kind == "meso":
        cmd += ["--mesosim", "--meso-tls-penalty", "1", "--meso-tls-flow-penalty", "1"]
    wall = sh(cmd, cwd=work)
    tt = np.array([float(e.get("duration")) for e in ET.parse(info).getroot().iter("tripinfo")])
    counts: dict[str, float] = {}
    for e in ET.parse(edata).getroot().iter("edge"):
        n = float(e.get("entered", 0)) + float(e.get("departed", 0))
        counts[e.get("id", "")] = counts.get(e.get("id", ""), 0.0) + n
    return wall, tt, counts


def stats(tt: np.ndarray) -> dict[str, float]:
    tt = tt[np.isfinite(tt)]
    p50, p90 = np.percentile(tt, [50, 90])
    return {"mean": float(tt.mean()), "p50": float(p50), "p90": float(p90), "n": int(tt.size)}


def compare(
    work: Path, case: str, n_trips: int, *, dt_s: float, multi_queue: bool = True
) -> dict[str, float]:
    """Figures of one case: ours, SUMO micro and meso."""
    net, routes = build(work, case, n_trips)
    graph, _, trips = import_sumo(net, routes)
    programs = read_signal_programs(net, graph)
    sc = tr.TrafficScenario(
        graph,
        trips=tuple(trips),
        programs=tuple(programs.values()),
        dt_s=dt_s,
        multi_queue=multi_queue,
        progress=False,
    )
    t = time.perf_counter()
    ds = tr.run(sc, rng=SEED)
    des_s = time.perf_counter() - t
    ours = stats(ds["travel_time"].values)
    per_edge = (ds["flow"] * ds.attrs["slot_s"] / 3600.0).sum("time").values
    out: dict[str, float] = {
        "edges": graph.number_of_edges(),
        "signals": len(programs),
        "trips": len(trips),
        "des_wall_s": des_s,
        "ours_tt_mean": ours["mean"],
        "ours_tt_p50": ours["p50"],
        "ours_tt_p90": ours["p90"],
        "ours_unfinished": int(ds.attrs["n_unfinished"]),
    }
    for kind in ("micro", "meso"):
        wall, tt, counts = run_sumo(work, case, kind)
        s = stats(tt)
        theirs = np.array([counts.get(str(i), 0.0) for i in ds["edge"].values])
        out[f"{kind}_wall_s"] = wall
        out[f"{kind}_tt_mean"] = s["mean"]
        out[f"{kind}_tt_p90"] = s["p90"]
        out[f"{kind}_trips"] = s["n"]
        out[f"tt_mean_vs_{kind}"] = ours["mean"] / s["mean"]
        out[f"flow_corr_vs_{kind}"] = float(np.corrcoef(per_edge, theirs)[0, 1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,500 trips per case (3,000 otherwise)")
    ap.add_argument("--trips", type=int, default=None)
    ap.add_argument("--dt", type=float, default=1.0, help="DES step (s)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    n_trips = args.trips or (1500 if args.quick else 3000)
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="traffic_networks_")
        work = Path(tmp.name)
    else:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}
    ratios: dict[str, float] = {}
    targets = {}
    print(
        f"{'case':8}{'edges':>7}{'tls':>5}{'trips':>7}{'ours s':>9}{'micro s':>9}{'meso s':>9}"
        f"{'vs micro':>10}{'vs meso':>9}{'r micro':>9}{'DES wall':>10}{'micro wall':>11}"
    )
    for case in CASES:
        f = compare(work, case, n_trips, dt_s=args.dt)
        print(
            f"{case:8}{f['edges']:7.0f}{f['signals']:5.0f}{f['trips']:7.0f}"
            f"{f['ours_tt_mean']:9.1f}{f['micro_tt_mean']:9.1f}{f['meso_tt_mean']:9.1f}"
            f"{f['tt_mean_vs_micro'] - 1:+10.1%}{f['tt_mean_vs_meso'] - 1:+9.1%}"
            f"{f['flow_corr_vs_micro']:9.3f}{f['des_wall_s']:10.2f}{f['micro_wall_s']:11.2f}",
            flush=True,
        )
        for k, v in f.items():
            (ratios if k.startswith("tt_mean_vs") else figures)[f"{case}_{k}"] = v
        rel = abs(f["tt_mean_vs_micro"] - 1)
        targets[f"{case}_tt_mean_rel_diff_vs_micro"] = target(rel, 0.10, "<=")
        targets[f"{case}_flow_corr_vs_micro"] = target(f["flow_corr_vs_micro"], 0.9, ">=")
    reference = {k: v for k, v in figures.items() if "micro" in k or "meso" in k}
    if tmp is not None:
        tmp.cleanup()
    emit("traffic_networks", figures, reference=reference, ratios=ratios, targets=targets)


if __name__ == "__main__":
    main()
