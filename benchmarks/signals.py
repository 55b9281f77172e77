"""Signal plans benchmark: every signalised junction of Montpellier planned and validated, and
MAXBAND on a 10-signal arterial, beside the Webster-only baseline.

    python benchmarks/signals.py [--quick]

Figures: time to build the junction models and the validated Webster plans of all of
Montpellier's signalised junctions (target <= 10 s), time of MAXBAND to optimality on a
10-signal corridor of the data (target <= 5 s); the uniform delay (Webster 1958) of the LP
splits beside that of Webster's splits at the same cycles; the bands of the coordinated
corridor beside the uncoordinated baseline (offsets 0); the signal delay an emergency vehicle
meets along the corridor with and without preemption. ``--quick`` plans Bondy and Paris.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import emit, target  # noqa: E402


def _uniform_delay(plan, model, flows, lanes) -> float:  # type: ignore[no-untyped-def]
    """Flow-weighted Webster uniform delay of a plan (s/veh)."""
    from twin.signals.plans import stage_ratios

    ys = stage_ratios(model, flows, lanes=lanes)
    tot = q_sum = 0.0
    for k, ph in enumerate(plan.phases):
        lam = ph.green_s / plan.cycle_s
        y = min(ys[k], 0.99)
        d = plan.cycle_s * (1 - lam) ** 2 / (2 * (1 - min(y / lam, 0.99) * lam))
        q = sum(flows.get(model.group_of_edge(a), 0.0) for a in ph.approaches)
        tot += q * d
        q_sum += q
    return tot / q_sum if q_sum else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import twin
    from optimize.maxband import corridors, maxband
    from optimize.signals import optimise_splits, preemption, signal_delay
    from twin.scenarios.network import signal_plans
    from twin.signals.safety import check_plan, program_of

    city = "paris-trocadero" if args.quick else "montpellier"
    tw = twin.load(city)
    n_junctions = len(tw.registry["junction"])
    t0 = time.perf_counter()
    plans = signal_plans(tw)
    bad = sum(bool(check_plan(p, plans.models[j])) for j, p in plans.items())
    plan_s = time.perf_counter() - t0
    # LP splits against Webster's at the same cycle
    d_web, d_lp = [], []
    for jid, plan in plans.items():
        model = plans.models[jid]
        fr = plans.flows[plans.flows["junction"] == jid]
        flows = {
            model.group_of_edge((r.u, r.v, r.key)): float(r.flow_pcu_h) for r in fr.itertuples()
        }
        lanes = {model.group_of_edge((r.u, r.v, r.key)): int(r.lanes) for r in fr.itertuples()}
        lp, _ = optimise_splits(model, flows, cycle_s=plan.cycle_s, lanes=lanes)
        d_web.append(_uniform_delay(plan, model, flows, lanes))
        d_lp.append(_uniform_delay(lp, model, flows, lanes))
    # MAXBAND on the longest corridor, cut to 10 signals
    arts = corridors(tw, plans)
    band = None
    maxband_s = None
    base_band = None
    emergency = {}
    if arts:
        from optimize.maxband import Arterial

        a = arts[0]
        k = min(10, len(a.junctions))
        art = Arterial(
            a.name,
            a.junctions[:k],
            a.distances_m[: k - 1],
            a.red_s[:k],
            a.cycle_s,
            a.green_start_s[:k],
        )
        t1 = time.perf_counter()
        band = maxband(art)
        maxband_s = time.perf_counter() - t1
        # the baseline: every offset 0 -- the band its reds leave (replayed at the limit speed)
        base_band = _band_of_offsets(art, np.zeros(k))
        # emergency run along the corridor: signal delay without / with preemption, per call time
        waits_no, waits_pre = [], []
        refused = 0
        for j in art.junctions:
            plan, model = plans[j], plans.models[j]
            grp = (
                next(
                    g
                    for g in model.vehicle_groups
                    if model.group(g).name and a.name.startswith(model.group(g).name)
                )
                if any(
                    model.group(g).name and a.name.startswith(model.group(g).name)
                    for g in model.vehicle_groups
                )
                else model.vehicle_groups[0]
            )
            calls = np.arange(0, plan.cycle_s, 5.0)
            waits_no.append(float(signal_delay(program_of(plan, model), grp, calls).mean()))
            pre = []
            for c in calls:
                try:
                    prog = preemption(plan, model, grp, call_s=float(c))
                except ValueError:  # no safe sequence for this call: no preemption
                    refused += 1
                    pre.append(
                        float(signal_delay(program_of(plan, model), grp, [float(c) + 15.0])[0])
                    )
                    continue
                # the vehicle is called 15 s ahead of the stop line
                pre.append(float(signal_delay(prog, grp, [float(c) + 15.0])[0]))
            waits_pre.append(float(np.mean(pre)))
        emergency = {
            "signal_wait_without_s": float(np.sum(waits_no)),
            "signal_wait_with_preemption_s": float(np.sum(waits_pre)),
            "preemptions_refused": refused,
        }
    rows = [
        ("city", city),
        ("signalised junctions (after clustering)", n_junctions),
        ("plans, validated", f"{len(plans)} ({bad} unsafe)"),
        ("skipped (no plan needed or infeasible)", len(plans.skipped)),
        ("plans built and validated (s)", f"{plan_s:.2f}"),
        ("uniform delay, Webster splits (s/veh)", f"{np.mean(d_web):.1f}"),
        ("uniform delay, LP splits (s/veh)", f"{np.mean(d_lp):.1f}"),
    ]
    if band is not None:
        rows += [
            ("corridor", band.attrs["arterial"]),
            ("MAXBAND 10 signals to optimality (s)", f"{maxband_s:.2f}"),
            ("bandwidth out/in, offsets 0 (s)", f"{base_band[0]:.0f} / {base_band[1]:.0f}"),
            (
                "bandwidth out/in, MAXBAND (s)",
                f"{band.attrs['band_out_s']:.0f} / {band.attrs['band_in_s']:.0f}",
            ),
            (
                "emergency signal wait without / with preemption (s)",
                f"{emergency['signal_wait_without_s']:.0f} / "
                f"{emergency['signal_wait_with_preemption_s']:.0f}",
            ),
        ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    figures = {
        "junctions": n_junctions,
        "plans": len(plans),
        "unsafe_plans": bad,
        "plan_s": plan_s,
        "delay_lp_s": float(np.mean(d_lp)),
        "maxband_s": maxband_s,
        "band_out_s": None if band is None else band.attrs["band_out_s"],
        "band_in_s": None if band is None else band.attrs["band_in_s"],
        **emergency,
    }
    reference = {
        "delay_webster_s": float(np.mean(d_web)),
        "band_out_offsets0_s": None if base_band is None else base_band[0],
        "band_in_offsets0_s": None if base_band is None else base_band[1],
    }
    ratios = {"delay": float(np.mean(d_lp) / max(np.mean(d_web), 1e-9))}
    emit(
        "signals",
        figures,
        reference=reference,
        ratios=ratios,
        targets={
            "plan_s": target(plan_s, 10.0, "<="),
            "maxband_s": target(maxband_s, 5.0, "<="),
            "unsafe_plans": target(float(bad), 0.0, "<="),
        },
    )


def _band_of_offsets(art, offsets) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Widest bands (s) through given offsets at the limit speed, by replay every 0.5 s."""
    c = art.cycle_s
    pos = np.concatenate([[0.0], np.cumsum(art.distances_m)])
    v = np.array(art.speed_limit_kph) / 3.6
    tt = np.concatenate([[0.0], np.cumsum(np.array(art.distances_m) / v)])

    def green(i: int, t: float) -> bool:
        start = (offsets[i] + art.green_start_s[i]) % c
        return (t - start) % c < c - art.red_s[i]

    def widest(times_at) -> float:  # type: ignore[no-untyped-def]
        ok = [
            all(green(i, t0 + times_at[i]) for i in range(len(pos))) for t0 in np.arange(0, c, 0.5)
        ]
        best = run = 0
        for x in ok + ok:
            run = run + 1 if x else 0
            best = max(best, run)
        return min(best, len(ok)) * 0.5

    back = tt[-1] - tt
    return widest(tt), widest(back)


if __name__ == "__main__":
    main()
