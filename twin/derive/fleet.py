"""Depots and the vehicle fleet.

``defaults.depots`` depots at drive-graph nodes found by seeded k-means over the network; the
city's published fleet size (or ~:data:`VEHICLES_PER_1000` vehicles per 1,000 inhabitants) split
by type (:data:`FLEET_SHARE`), spread over the depots in turn.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy.cluster.vq import kmeans2

from twin.cities import City
from twin.registry import make_ids

__all__ = ["FLEET_SHARE", "VEHICLES_PER_1000", "fleet"]

FLEET_SHARE = {
    "plough": 0.20,
    "salter": 0.15,
    "patrol": 0.30,
    "emergency": 0.10,
    "maintenance": 0.25,
}
VEHICLES_PER_1000 = 0.8


def fleet(
    graph: nx.MultiDiGraph, seg: gpd.GeoDataFrame, city: City, *, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Depots and vehicles (each vehicle at its depot)."""
    drive_nodes = sorted({n for s in seg[seg["drive"]].itertuples() for n in (s.u, s.v)})
    if not drive_nodes:
        return pd.DataFrame(columns=["id", "geometry"]), pd.DataFrame(columns=["id", "geometry"])
    xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in drive_nodes])
    k = int(max(1, min(len(drive_nodes), city.defaults.get("depots", 1))))
    centres = kmeans2(xy, k, seed=rng, minit="++")[0] if k > 1 else xy.mean(axis=0, keepdims=True)
    gates = [int(np.argmin(np.hypot(*(xy - c).T))) for c in centres]
    n_veh = int(city.expected.get("vehicle") or round(city.population * VEHICLES_PER_1000 / 1000))
    types = []
    for t, share in FLEET_SHARE.items():
        types += [t] * int(round(share * n_veh))
    types = (types + ["patrol"] * n_veh)[:n_veh]
    dep_ids = make_ids("depot", k)
    veh_depot = [dep_ids[i % k] for i in range(n_veh)]
    depots = pd.DataFrame(
        {
            "id": dep_ids,
            "source": "derived",
            "node": [int(drive_nodes[g]) for g in gates],
            "n_vehicles": [veh_depot.count(d) for d in dep_ids],
            "geometry": [shapely.Point(xy[g]) for g in gates],
        }
    )
    pos = dict(zip(dep_ids, depots["geometry"], strict=True))
    vehicles = pd.DataFrame(
        {
            "id": make_ids("vehicle", n_veh),
            "vehicle_type": types,
            "depot": veh_depot,
            "geometry": [pos[d] for d in veh_depot],
        }
    )
    return depots, vehicles
