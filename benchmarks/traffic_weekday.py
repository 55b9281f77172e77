"""A Montpellier weekday in the traffic DES: trips finished, trip times by hour, real-time factor.

The twin (``twin.load('montpellier')``): its drive network with lanes per direction, its demand
model's car trips for one weekday, Webster plans at its signalised junctions, the equilibrium
assignment of each period of the day (``twin.scenarios.weekday.simulate_weekday``, which
``twin traffic weekday`` runs too). Printed: trips finished by the end of the day, mean and p90
trip time per departure hour (local clock), the heads let into a full edge after
``max_blocked_s`` (SUMO's teleports), the real-time factor (simulated s per wall s of the DES),
the volume/capacity of the segments at 08:00 and 17:00, and the link times of the DES against
the assignment's; the maps and tables go to ``--out``.

Targets (issue T10): 99% of trips finished by midnight, a real-time factor of 50.

Usage: ``python benchmarks/traffic_weekday.py [--quick] [--routing dynamic|equilibrium] [--hours
START END] [--snapshots H ...] [--calibration DIR] [--no-pockets] [--out DIR]`` (``--quick``:
one trip in ten; ``--hours 5 10``: only the trips departing from 05:00 to 10:00 local, a cheap
look at the morning peak; ``--snapshots 8 8.5 9``: the network's state at those local hours;
``--calibration DIR``: the demand a ``twin calibrate --out DIR`` run calibrated;
``--no-pockets``: the same run with no turn pockets at the signalised approaches).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from _report import emit, target

import twin
from twin.scenarios.calibration import load_calibrated_model
from twin.scenarios.weekday import simulate_weekday, write_weekday_report

SEED = 20240604
QUICK_SHARE = 0.1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one trip in ten")
    ap.add_argument("--routing", choices=("dynamic", "equilibrium"), default="dynamic")
    ap.add_argument("--out", type=Path, default=None, help="write the v/c maps and tables here")
    ap.add_argument("--dt", type=float, default=2.0)
    ap.add_argument(
        "--hours",
        type=float,
        nargs=2,
        default=(0.0, 24.0),
        metavar=("START", "END"),
        help="simulate the departures of this local-clock window only",
    )
    ap.add_argument("--extra", type=float, default=4.0, help="hours run after the window")
    ap.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="the folder of a `twin calibrate --out` run: simulate the demand it calibrated",
    )
    ap.add_argument(
        "--no-pockets",
        action="store_true",
        help="run the signalised approaches without their turn pockets (same trips and seed)",
    )
    ap.add_argument(
        "--snapshots",
        type=float,
        nargs="*",
        default=(8.0, 8.5, 9.0, 17.0, 18.0),
        help="local hours at which to record the network's state",
    )
    args = ap.parse_args()
    t = time.perf_counter()
    tw = twin.load("montpellier", progress=False)
    model = None if args.calibration is None else load_calibrated_model(tw, args.calibration)
    res = simulate_weekday(
        tw,
        model=model,
        share=QUICK_SHARE if args.quick else 1.0,
        routing=args.routing,
        dt_s=args.dt,
        hours=(args.hours[0], args.hours[1]),
        extra_h=args.extra,
        snapshots_h=tuple(
            h for h in args.snapshots if args.hours[0] <= h <= args.hours[1] + args.extra
        ),
        pockets=not args.no_pockets,
        rng=SEED,
        progress=True,
    )
    total_s = time.perf_counter() - t
    print(res.by_hour.round(1).to_string())
    print(res.assignment.to_string(index=False))
    print(res.agreement.round(3).to_string(index=False))
    if f_snap := res.figures["snapshots"]:
        print(pd.DataFrame(f_snap).to_string(index=False))
    print(res.summary())
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_weekday_report(res, tw, args.out)
    f = res.figures
    figures = {k: v for k, v in f.items() if isinstance(v, int | float)}
    figures["total_s"] = total_s
    for snap in f["snapshots"]:
        for k, v in snap.items():
            if k != "hour":
                figures[f"{k}_at_{snap['hour']:g}h"] = v
    for r in res.agreement.itertuples():
        figures[f"link_time_ratio_median_{r.start_h:02d}_{r.end_h:02d}h"] = r.median_ratio
        figures[f"link_time_share_within_{r.start_h:02d}_{r.end_h:02d}h"] = r.share_within
    emit(
        "traffic_weekday",
        figures,
        targets={
            "finished_by_midnight": target(f["finished_by_midnight"], 0.99, ">="),
            "rtf": target(f["rtf"], 50.0, ">="),
        },
    )


if __name__ == "__main__":
    main()
