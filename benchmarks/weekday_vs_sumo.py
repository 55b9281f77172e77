"""Montpellier's morning in the traffic DES and in SUMO meso, on the same trips and plans.

Does the real city lock because of the DES, or because of its network and demand? The same
window of the weekday's car trips (``twin.scenarios.network.scenario_from_twin``: the demand
model's trips departing in ``--hours``, Webster plans at the signalised junctions) runs

* in the DES, routed at departure on current times every 120 s (as ``twin traffic weekday``);
* in SUMO meso (``twin.scenarios.network.export_twin``, then ``sumo --mesosim``), each trip
  routed at insertion on SUMO's smoothed current times (``--device.rerouting.probability 1
  --device.rerouting.period 0``), teleporting after 300 s (SUMO's default; the DES's
  ``max_blocked_s``), twice: with ``--meso-junction-control`` (right of way at every junction,
  signals as programmed, as the DES does) and without it (SUMO meso's default: unsignalised
  junctions impose no right of way, signals a time penalty).

Printed every half hour: vehicles on the road and trips finished in each model (and SUMO's
teleports); the JSON line gives the state at the window's end.

Usage: ``python benchmarks/weekday_vs_sumo.py [--hours 5 8.5] [--out DIR]``. The SUMO runs take
most of the time (about an hour for 90,000 trips on a busy machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
from _report import emit

import twin
from twin.scenarios import traffic as tr
from twin.scenarios.network import REFERENCE_WEEKDAY, export_twin, scenario_from_twin
from twin.sumo import sumo_binary

SEED = 7
EXTRA_H = 0.5


def sumo_states(config: Path, out: Path, *, junction_control: bool, end_s: float) -> pd.DataFrame:
    """Run SUMO meso on ``config``; its summary every half hour (running, arrived, teleports)."""
    summary = out / f"summary_{'jc' if junction_control else 'plain'}.xml"
    cmd = [
        sumo_binary("sumo"),
        "-c",
        str(config),
        "--mesosim",
        "--no-step-log",
        "--no-warnings",
        "--summary-output",
        str(summary),
        "--end",
        f"{end_s:.0f}",
        "--device.rerouting.probability",
        "1",
        "--device.rerouting.period",
        "0",
        "--device.rerouting.adaptation-interval",
        "10",
        "--meso-junction-control",
        "true" if junction_control else "false",
        "--meso-tls-penalty",
        "0" if junction_control else "1",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        msg = f"sumo failed (exit {res.returncode}): {res.stderr[-2000:]}"
        raise RuntimeError(msg)
    steps = pd.DataFrame(
        [
            {
                "t_s": float(s.get("time", "nan")),
                "on_road": int(s.get("running", 0)),
                "finished": int(s.get("ended", 0)),
                "teleports": int(s.get("teleports", 0)),
            }
            for s in ET.parse(summary).getroot().iter("step")
        ]
    )
    # the last step at or before each mark; SUMO stops early once every vehicle has arrived,
    # and the road is empty from then on
    marks = np.arange(1800.0, end_s + 1.0, 1800.0)
    at = steps.iloc[np.searchsorted(steps["t_s"].to_numpy(), marks, side="right") - 1].copy()
    at.loc[at["t_s"].to_numpy() < marks - 1.0, "on_road"] = 0
    at.index = pd.Index(marks, name="t_s")
    return at[["on_road", "finished", "teleports"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, nargs=2, default=(5.0, 8.5), metavar=("START", "END"))
    ap.add_argument("--out", type=Path, default=None, help="keep the SUMO files here")
    args = ap.parse_args()
    h0, h1 = args.hours
    end_s = (h1 - h0 + EXTRA_H) * 3600.0
    tw = twin.load("montpellier", progress=False)
    sc = scenario_from_twin(tw, day=REFERENCE_WEEKDAY, hours=(h0, h1), rng=SEED, progress=False)
    sc = dataclasses.replace(sc, reroute_s=120.0, dt_s=2.0, duration_s=end_s, progress=True)
    marks = np.arange(1800.0, end_s + 1.0, 1800.0)
    rows = []
    t = time.perf_counter()
    sim = tr.TrafficSimulation(sc, rng=SEED)
    for m in marks:
        sim.run_until(m)
        st = sim._st
        rows.append(
            {"t_s": m, "on_road": st.n_active, "finished": st.n_done, "forced": st.n_forced}
        )
    des_wall = time.perf_counter() - t
    des = pd.DataFrame(rows).set_index("t_s")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        export_twin(tw, out, day=REFERENCE_WEEKDAY, hours=(h0, h1), rng=SEED, check=False)
        t = time.perf_counter()
        plain = sumo_states(out / "twin.sumocfg", out, junction_control=False, end_s=end_s)
        jc = sumo_states(out / "twin.sumocfg", out, junction_control=True, end_s=end_s)
        sumo_wall = time.perf_counter() - t
    table = pd.concat(
        {"DES": des, "SUMO meso, junction control": jc, "SUMO meso, default": plain}, axis=1
    )
    table.index = [f"{h0 + s / 3600:05.2f} h" for s in table.index]
    print(f"{len(sc.trips):,} trips departing {h0:g}-{h1:g} h local, {len(sc.plans)} signal plans")
    print(table.to_string())
    last = table.index[-1]
    figures = {
        "trips": len(sc.trips),
        "hours": [h0, h1],
        "at": last,
        "des_on_road": int(table.loc[last, ("DES", "on_road")]),
        "des_forced": int(table.loc[last, ("DES", "forced")]),
        "sumo_jc_on_road": int(table.loc[last, ("SUMO meso, junction control", "on_road")]),
        "sumo_jc_teleports": int(table.loc[last, ("SUMO meso, junction control", "teleports")]),
        "sumo_on_road": int(table.loc[last, ("SUMO meso, default", "on_road")]),
        "des_wall_s": round(des_wall, 1),
        "sumo_wall_s": round(sumo_wall, 1),
    }
    emit(
        "weekday_vs_sumo",
        figures,
        ratios={
            "des_over_sumo_jc_on_road": figures["des_on_road"] / max(figures["sumo_jc_on_road"], 1),
            "des_over_sumo_on_road": figures["des_on_road"] / max(figures["sumo_on_road"], 1),
        },
    )


if __name__ == "__main__":
    main()
