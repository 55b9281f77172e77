"""User-equilibrium assignment against AequilibraE on the same network and matrix.

The twin's drive network of a city (Bondy by default: its OSM extract), the demand model's
weekday 08:00 matrix scaled by ``--scale`` (6 by default, so that streets congest), BPR link
costs per road class (``twin.scenarios.assignment.BPR``). Our bi-conjugate Frank-Wolfe and
AequilibraE's (``TrafficAssignment``, algorithm ``bfw``, the same BPR parameters and capacities)
both run to the same relative gap. Printed: iterations, wall time, the gap reached, and the
largest relative difference of link flows over the loaded links (flow above 1% of the demand).

Then the speed case (``--speed-city``, Montpellier by default, ``none`` to skip): its weekday
08:00 and 17:00 matrices assigned at a relative gap of 1e-4, wall and CPU time of each (the
wall time is the target: under 60 s; the CPU time is what it takes on an idle core).

Usage: ``python benchmarks/assignment_vs_aequilibrae.py [--city C] [--gap G] [--scale S]
[--speed-city C]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _report import emit, target

import twin
from twin.scenarios.assignment import AssignmentNetwork, assign
from twin.scenarios.network import drive_graph
from twin.scenarios.zones import build_demand


def aequilibrae_flows(
    net: AssignmentNetwork, od: np.ndarray, zones: list[object], gap: float
) -> tuple[np.ndarray, float, int, float]:
    """AequilibraE's link flows, gap, iterations and wall time on our links and matrix."""
    from aequilibrae.matrix import AequilibraeMatrix
    from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass

    ids = {n: i + 1 for i, n in enumerate(net.nodes)}
    centroids = sorted({ids[z] for z in zones})
    links = pd.DataFrame(
        {
            "link_id": np.arange(1, len(net.u) + 1),
            "a_node": net.u + 1,
            "b_node": net.v + 1,
            "direction": 1,
            "free_flow_time": net.t0_s,
            "capacity": net.capacity_veh_h,
            "alpha": net.alpha,
            "beta": net.beta,
        }
    )
    graph = Graph()
    graph.network = links
    graph.mode = "c"
    graph.prepare_graph(np.array(centroids, dtype=np.int64), remove_dead_ends=False)
    graph.set_graph("free_flow_time")
    graph.set_blocked_centroid_flows(False)
    pos = {c: i for i, c in enumerate(centroids)}
    m = np.zeros((len(centroids), len(centroids)))
    for i, zi in enumerate(zones):
        for j, zj in enumerate(zones):
            if zi != zj:
                m[pos[ids[zi]], pos[ids[zj]]] += od[i, j]
    mat = AequilibraeMatrix()
    mat.create_empty(zones=len(centroids), matrix_names=["car"], memory_only=True)
    mat.index[:] = np.array(centroids)
    mat.matrix["car"][:, :] = m
    mat.computational_view(["car"])
    ta = TrafficAssignment()
    ta.set_classes([TrafficClass("car", graph, mat)])
    ta.set_vdf("BPR")
    ta.set_vdf_parameters({"alpha": "alpha", "beta": "beta"})
    ta.set_capacity_field("capacity")
    ta.set_time_field("free_flow_time")
    ta.set_algorithm("bfw")
    ta.max_iter = 20000
    ta.rgap_target = gap
    t = time.perf_counter()
    ta.execute()
    wall = time.perf_counter() - t
    flows = ta.results()["car_ab"].reindex(links["link_id"]).fillna(0.0).to_numpy()
    return flows, float(ta.assignment.rgap), int(ta.assignment.iter), wall


def speed_case(city: str) -> dict[str, float]:
    """Wall and CPU time of the 08:00 and 17:00 assignments of ``city`` at a gap of 1e-4."""
    tw = twin.load(city)
    model = build_demand(tw)
    ok = np.flatnonzero(model.reachable)
    zones = [model.zone_node[i] for i in ok]
    net = AssignmentNetwork.from_graph(drive_graph(tw))
    assign(net, np.zeros((len(zones), len(zones))), zones, max_iter=1)  # compile once
    out: dict[str, float] = {"links": len(net.u), "zones": len(zones)}
    print(f"{city}: {len(net.u):,} links, {len(zones)} zones, relative gap 1e-4")
    print(f"{'hour':6}{'veh/h':>10}{'iterations':>12}{'gap':>12}{'wall s':>10}{'cpu s':>10}")
    for hour in (8, 17):
        od = model.od(hour * 4, day_type="weekday")[np.ix_(ok, ok)]
        wall, cpu = time.perf_counter(), time.process_time()
        res = assign(net, od, zones, rgap_target=1e-4, max_iter=2000)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"{hour:<6d}{od.sum():10,.0f}{res.iterations:12d}{res.rgap:12.2e}{wall:10.1f}{cpu:10.1f}"
        )
        out |= {
            f"h{hour}_iterations": res.iterations,
            f"h{hour}_rgap": res.rgap,
            f"h{hour}_converged": res.converged,
            f"h{hour}_wall_s": wall,
            f"h{hour}_cpu_s": cpu,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--city", default="bondy")
    ap.add_argument("--gap", type=float, default=1e-6)
    ap.add_argument("--scale", type=float, default=6.0)
    ap.add_argument("--quick", action="store_true", help="gap 1e-4, no speed case")
    ap.add_argument("--speed-city", default="montpellier")
    args = ap.parse_args()
    gap = 1e-4 if args.quick else args.gap
    tw = twin.load(args.city)
    model = build_demand(tw)
    ok = np.flatnonzero(model.reachable)
    od = args.scale * model.od(32, day_type="weekday")[np.ix_(ok, ok)]
    zones = [model.zone_node[i] for i in ok]
    net = AssignmentNetwork.from_graph(drive_graph(tw))
    t = time.perf_counter()
    ours = assign(net, od, zones, rgap_target=gap, max_iter=20000)
    ours_s = time.perf_counter() - t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, their_gap, their_iter, their_s = aequilibrae_flows(net, od, zones, gap)
    loaded = np.maximum(theirs, ours.flow_veh_h) > 0.01 * od.sum()
    rel = np.abs(ours.flow_veh_h - theirs)[loaded] / np.maximum(theirs[loaded], 1e-9)
    vc = ours.flow_veh_h / net.capacity_veh_h
    print(
        f"{args.city}: {len(net.u):,} links, {len(zones)} zones, {od.sum():,.0f} veh/h "
        f"(08:00 x {args.scale:g}); target gap {gap:.0e}"
    )
    print(f"{'':14}{'iterations':>12}{'gap':>12}{'wall s':>10}")
    print(f"{'ours (BFW)':14}{ours.iterations:12d}{ours.rgap:12.2e}{ours_s:10.2f}")
    print(f"{'AequilibraE':14}{their_iter:12d}{their_gap:12.2e}{their_s:10.2f}")
    print(
        f"link flows: {int(loaded.sum())} loaded links, largest relative difference "
        f"{rel.max():.3%}, mean {rel.mean():.3%}; v/c max {vc.max():.2f}"
    )
    speed = {} if args.quick or args.speed_city == "none" else speed_case(args.speed_city)
    speed_targets = (
        {
            f"{args.speed_city}_h{h}_wall_s": target(float(speed[f"h{h}_wall_s"]), 60.0, "<=")
            for h in (8, 17)
        }
        if speed
        else {}
    )
    emit(
        "assignment_vs_aequilibrae",
        {
            "links": len(net.u),
            "zones": len(zones),
            "demand_veh_h": float(od.sum()),
            "ours_iterations": ours.iterations,
            "ours_rgap": ours.rgap,
            "ours_wall_s": ours_s,
            "loaded_links": int(loaded.sum()),
            "flow_max_rel_diff": float(rel.max()),
            "flow_mean_rel_diff": float(rel.mean()),
            "vc_max": float(vc.max()),
            **{f"{args.speed_city}_{k}": v for k, v in speed.items()},
        },
        reference={
            "aequilibrae_iterations": their_iter,
            "aequilibrae_rgap": their_gap,
            "aequilibrae_wall_s": their_s,
        },
        ratios={"wall_vs_aequilibrae": ours_s / their_s},
        targets={
            "rgap": target(ours.rgap, gap, "<="),
            "flow_max_rel_diff": target(float(rel.max()), 0.01, "<="),
            **speed_targets,
        },
    )


if __name__ == "__main__":
    main()
