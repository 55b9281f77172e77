"""Zones of a twin: cells over the street network and gateways (:func:`build_demand`).

Zones are square cells (:data:`CELL_M`, 500 m by default) over the street network, plus
*gateways* where main roads leave the network (external traffic). Each cell's population is
the city's population spread by the length of residential streets in it (weights
:data:`RESIDENTIAL_WEIGHT`); its activity (jobs, shops, schools: what attracts trips) is the
weighted count of points of interest (:data:`POI_WEIGHT`) or, where the twin has none
(municipal data, graphml extracts), the length of main roads (:data:`MAIN_ROAD_WEIGHT`), a proxy
for where shops and offices line the streets.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from twin._errors import InputValidationError, UnknownAssetError
from twin.crs import to_xy
from twin.scenarios.capacity import BPR
from twin.scenarios.events import Event
from twin.scenarios.gravity import DemandModel, DemandParams

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "ATTACH_M",
    "CELL_M",
    "GATEWAY_CLASSES",
    "GATEWAY_HULL_M",
    "GATEWAY_HULL_RATIO",
    "MAIN_ROAD_WEIGHT",
    "PEDESTRIAN_WEIGHT",
    "PERSONS_PER_WEIGHTED_M",
    "POI_WEIGHT",
    "RESIDENTIAL_WEIGHT",
    "build_demand",
]

log = logging.getLogger(__name__)


CELL_M = 500.0
"""Side of a zone cell (m)."""


RESIDENTIAL_WEIGHT: Mapping[str, float] = {
    "residential": 1.0, "living_street": 1.0, "unclassified": 0.7, "tertiary": 0.5,
    "secondary": 0.35, "primary": 0.2, "pedestrian": 0.3, "service": 0.1,
}  # fmt: skip
"""Weight of a metre of street per road class when spreading population over cells."""

MAIN_ROAD_WEIGHT: Mapping[str, float] = {
    "trunk": 0.5, "primary": 1.0, "secondary": 1.0, "tertiary": 0.7, "pedestrian": 1.0,
    "living_street": 0.3, "unclassified": 0.1, "residential": 0.1,
}  # fmt: skip
"""Activity weight of a metre of street when the twin has no points of interest (shops and
offices line main roads and pedestrian streets)."""

POI_WEIGHT: Mapping[str, float] = {
    "shop": 1.0, "food_drink": 1.0, "school": 4.0, "transit": 1.5, "amenity": 1.0,
}  # fmt: skip
"""Activity weight of one point of interest per category (a school draws several shops' worth)."""

PEDESTRIAN_WEIGHT: Mapping[str, float] = {
    "pedestrian": 4.0, "living_street": 2.5, "footway": 1.0, "steps": 0.5, "path": 0.4,
    "residential": 1.0, "unclassified": 0.8, "tertiary": 1.5, "secondary": 1.6,
    "primary": 1.3, "trunk": 0.1, "service": 0.4, "cycleway": 0.2, "track": 0.1,
    "bridleway": 0.1,
}  # fmt: skip
"""Relative footfall of a metre of walkable street per road class, before points of interest."""

PERSONS_PER_WEIGHTED_M = 0.85
"""Inhabitants per residential-weighted metre of street (see :data:`RESIDENTIAL_WEIGHT`).

Measured on Montpellier (302,500 inhabitants, INSEE 2021, over its municipal centreline network)
and used to estimate the population of an extract that covers only part of a commune (the
definition's ``boundary.kind = "extract"``): population = min(commune population, this density
x the extract's weighted street length)."""


GATEWAY_CLASSES: tuple[str, ...] = ("motorway", "trunk", "primary", "secondary", "tertiary")
"""Road classes whose dead ends at the network's outline are gateways (where the data stop,
main roads go on to the rest of the region; a municipal centreline network classes many entry
roads, Montpellier's Route de Lodeve and Route de Laverune among them, as tertiary)."""

GATEWAY_HULL_M = 300.0
"""Largest distance of a gateway from the network's outline (m)."""

GATEWAY_HULL_RATIO = 0.1
"""``ratio`` of :func:`shapely.concave_hull` for the network's outline.

A commune is rarely convex, and the convex hull of its nodes leaves the roads that stop at a
concave stretch of its boundary hundreds of metres inside it: on Montpellier (municipal
centrelines) it finds 4 gateways. At 0.1 the concave hull of Montpellier's drive nodes covers
55 km2, near the commune's 56.9 km2 (INSEE), and finds 17 gateways, the A9, the Avenue de
Palavas, the Route de Ganges, the Route de Lodeve and the Route de Laverune among them; at 0.05
(48 km2) it cuts into the town and takes side streets too; at 1.0 it is the convex hull."""

ATTACH_M = 1000.0
"""A cell with no node on the main strongly connected drive network is served from the nearest
node of it within this distance of the cell's centre (m); beyond, its trips are dropped and
reported (:meth:`~twin.scenarios.gravity.DemandModel.unreachable_zones`)."""


def _gateways(
    drive: nx.MultiDiGraph, nodes: list[Hashable], nxy: np.ndarray, in_main: np.ndarray
) -> tuple[dict[int, float], str]:
    """Gateway nodes (index into ``nodes``) and their weights, and where the weights come from.

    A gateway is a node of the main network with a single neighbour, on a road of
    :data:`GATEWAY_CLASSES`, within :data:`GATEWAY_HULL_M` of the concave hull of the nodes.
    Its weight is the capacity of its entry road (lanes in its direction times the capacity per
    lane of its class, :data:`twin.scenarios.capacity.BPR`), so that external traffic is
    shared as the roads can carry it when no count says otherwise
    (:func:`twin.scenarios.calibration.size_gateways` sizes them from their counts).
    """
    if len(nodes) < 3:
        return {}, "no gateway"
    und = drive.to_undirected(as_view=True)
    hull = shapely.concave_hull(shapely.multipoints(nxy), ratio=GATEWAY_HULL_RATIO)
    outline = hull.exterior if isinstance(hull, shapely.Polygon) else hull.boundary
    gate_w: dict[int, float] = {}
    for i, n in enumerate(nodes):
        if not in_main[i] or und.degree(n) > 2 or len(set(und.neighbors(n)) - {n}) != 1:
            continue
        ends = [d for _, _, d in drive.in_edges(n, data=True)] + [
            d for _, _, d in drive.out_edges(n, data=True)
        ]
        hw = [str(_first(d.get("highway", ""))) for d in ends]
        if not any(h in GATEWAY_CLASSES for h in hw):
            continue
        if outline.distance(shapely.Point(nxy[i])) > GATEWAY_HULL_M:
            continue
        cap = 0.0
        for h, d in zip(hw, ends, strict=True):
            lanes = _first(d.get("lanes_dir", d.get("lanes", 1)))
            try:
                n_lanes = max(float(str(lanes or 1)), 1.0)
            except (TypeError, ValueError):
                n_lanes = 1.0
            cap = max(cap, n_lanes * BPR.get(h, BPR["other"])[2])
        gate_w[i] = cap
    return gate_w, "lanes in its direction x capacity per lane of its class (capacity.BPR)"


def _first(value: object) -> object:
    return value[0] if isinstance(value, list | tuple) and value else value


def _class_weight(highway: pd.Series, table: Mapping[str, float]) -> np.ndarray:
    return np.asarray(highway.map(lambda h: table.get(str(h), 0.0)).to_numpy(), dtype=float)


def _drive_arrays(graph: nx.MultiDiGraph) -> tuple[list[Hashable], sparse.csr_matrix]:
    nodes = list(graph.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    rows, cols, cost = [], [], []
    for u, v, d in graph.edges(data=True):
        speed = float(d.get("speed_kph") or 30.0)
        rows.append(index[u])
        cols.append(index[v])
        cost.append(max(float(d.get("length", 1.0)), 0.1) / max(speed, 1.0) * 0.06)  # min
    n = len(nodes)
    # keep the fastest parallel edge: sort descending so the last (smallest) write wins
    order = np.argsort(-np.asarray(cost), kind="stable")
    r, c, w = np.asarray(rows)[order], np.asarray(cols)[order], np.asarray(cost)[order]
    dense: dict[tuple[int, int], float] = {}
    for a, b, x in zip(r.tolist(), c.tolist(), w.tolist(), strict=True):
        dense[(a, b)] = x
    keys = np.array(list(dense.keys()), dtype=np.int64).reshape(-1, 2)
    vals = np.array(list(dense.values()), dtype=float)
    mat = sparse.csr_matrix((vals, (keys[:, 0], keys[:, 1])), shape=(n, n))
    return nodes, mat


def _resolve_event(tw: Twin, ev: Event) -> np.ndarray:
    loc = ev.location
    if isinstance(loc, str):
        kind = loc.split(":", 1)[0]
        if kind not in ("segment", "junction"):
            msg = f"Event.location: {loc!r} is neither a segment nor a junction id"
            raise InputValidationError(msg)
        table = tw.registry[kind]
        if loc not in table.index:
            msg = f"Event.location: unknown {kind} id {loc!r} in {tw.city.name}"
            raise UnknownAssetError(msg)
        geom = table.geometry.loc[loc]
        p = (
            shapely.line_interpolate_point(geom, 0.5, normalized=True)
            if kind == "segment"
            else (shapely.centroid(geom))
        )
        return np.asarray(shapely.get_coordinates(p)[0], dtype=float)
    x, y = to_xy(np.array([loc[0]]), np.array([loc[1]]), crs=tw.crs)
    return np.array([float(x[0]), float(y[0])])


def _population(tw: Twin, weighted_length_m: float) -> float:
    boundary = tw.city.boundary or {}
    pop = float(tw.city.population or 0)
    if boundary.get("kind") == "extract" or pop <= 0:
        estimate = PERSONS_PER_WEIGHTED_M * weighted_length_m
        return min(pop, estimate) if pop > 0 else estimate
    return pop


def build_demand(
    tw: Twin,
    *,
    events: Iterable[Event] = (),
    params: DemandParams | None = None,
    cell_m: float = CELL_M,
) -> DemandModel:
    """Build the demand model of a twin.

    Parameters
    ----------
    tw : twin.model.Twin
    events : iterable of Event
        Concerts and markets; their places must be in the twin.
    params : DemandParams, optional
    cell_m : float
        Side of the zone cells (m).

    Raises
    ------
    UnknownAssetError
        If an event names a segment or junction the twin does not hold.
    """
    if not (np.isfinite(cell_m) and cell_m > 0):
        msg = f"cell_m: {cell_m!r} must be positive"
        raise InputValidationError(msg)
    params = params or DemandParams()
    events = tuple(events)
    seg = tw.registry["segment"]
    mids = shapely.line_interpolate_point(np.asarray(seg.geometry.values), 0.5, normalized=True)
    xy = shapely.get_coordinates(mids)
    length = seg["length_m"].to_numpy(float)
    x0, y0 = np.floor(xy.min(axis=0) / cell_m) * cell_m
    col = ((xy[:, 0] - x0) // cell_m).astype(int)
    row = ((xy[:, 1] - y0) // cell_m).astype(int)
    cell_key = col * 100_000 + row
    keys, seg_cell = np.unique(cell_key, return_inverse=True)
    n_cell = len(keys)
    cell_ids = [f"cell:{k // 100_000:03d}_{k % 100_000:03d}" for k in keys]
    cell_xy = np.stack(
        [x0 + (keys // 100_000 + 0.5) * cell_m, y0 + (keys % 100_000 + 0.5) * cell_m], axis=1
    )

    provenance = {
        "zones": f"square cells of {cell_m:g} m over the street network ({n_cell} cells)",
    }
    # population by residential street length
    res_w = _class_weight(seg["highway"], RESIDENTIAL_WEIGHT) * length
    total_pop = _population(tw, float(res_w.sum()))
    boundary = tw.city.boundary or {}
    pop_from = (
        f"the city definition's population ({float(tw.city.population or 0):,.0f})"
        if boundary.get("kind") != "extract" and (tw.city.population or 0) > 0
        else f"{PERSONS_PER_WEIGHTED_M} inhabitants per weighted metre of street"
    )
    provenance["population"] = (
        f"{total_pop:,.0f} inhabitants: {pop_from}, spread over the cells by the length of "
        "their streets weighted by class (RESIDENTIAL_WEIGHT)"
    )
    pop = np.bincount(seg_cell, weights=res_w, minlength=n_cell)
    pop = pop / max(pop.sum(), 1e-300) * total_pop

    # activity by points of interest, else by main-road length
    poi = tw.registry["poi"]
    poi_count = np.zeros(len(seg))
    act: np.ndarray  # float either way (numpy's stubs type a weighted bincount as int)
    if len(poi):
        pxy = shapely.get_coordinates(np.asarray(poi.geometry.values))
        pw = poi["category"].map(lambda c: POI_WEIGHT.get(str(c), 0.5)).to_numpy(float)
        pc = ((pxy[:, 0] - x0) // cell_m).astype(int) * 100_000 + (
            (pxy[:, 1] - y0) // cell_m
        ).astype(int)
        pos = np.searchsorted(keys, pc)
        inside = (pos < n_cell) & (keys[np.minimum(pos, n_cell - 1)] == pc)
        act = np.bincount(pos[inside], weights=pw[inside], minlength=n_cell)
        tree = shapely.STRtree(mids)
        _, hit = tree.query(
            np.asarray(poi.geometry.values), predicate="dwithin", distance=params.poi_radius_m
        )
        poi_count = np.bincount(hit, minlength=len(seg)).astype(float)
    else:
        act = np.zeros(n_cell)
    if act.sum() > 0:
        provenance["activity"] = (
            f"{len(poi):,} points of interest of the twin, weighted by category (POI_WEIGHT)"
        )
    else:
        main_w = _class_weight(seg["highway"], MAIN_ROAD_WEIGHT) * length
        act = np.bincount(seg_cell, weights=main_w, minlength=n_cell)
        poi_count = np.zeros(len(seg))
        provenance["activity"] = (
            "no points of interest in the data: the length of main roads and pedestrian "
            "streets per cell (MAIN_ROAD_WEIGHT), where shops and offices line the streets"
        )

    # drive network: main strongly connected component, zone nodes, gateways
    drive = tw.drive
    nodes, mat = _drive_arrays(drive)
    n_nodes = len(nodes)
    _, label = csgraph.connected_components(mat, directed=True, connection="strong")
    main = np.bincount(label).argmax() if n_nodes else -1
    in_main = label == main
    nxy = np.array([[drive.nodes[n]["x"], drive.nodes[n]["y"]] for n in nodes], dtype=float)
    ncol = ((nxy[:, 0] - x0) // cell_m).astype(int)
    nrow = ((nxy[:, 1] - y0) // cell_m).astype(int)
    nkey = ncol * 100_000 + nrow
    npos = np.searchsorted(keys, nkey)
    ninside = (npos < n_cell) & (keys[np.minimum(npos, n_cell - 1)] == nkey) & in_main
    degree = np.asarray((mat > 0).sum(axis=1)).ravel() + np.asarray((mat > 0).sum(axis=0)).ravel()

    # gateways: main-road dead ends on the network's concave outline
    gate_w, gate_from = _gateways(drive, nodes, nxy, in_main)
    gate_idx = np.array(sorted(gate_w), dtype=int)
    provenance["external"] = (
        f"{len(gate_idx)} gateways (dead ends of {'/'.join(GATEWAY_CLASSES)} roads within "
        f"{GATEWAY_HULL_M:g} m of the network's concave hull, shapely.concave_hull ratio "
        f"{GATEWAY_HULL_RATIO:g}), weighted by what their entry road carries: {gate_from}"
    )

    zone_ids = cell_ids + [f"gateway:{nodes[i]}" for i in gate_idx]
    nz = len(zone_ids)
    zone_xy = np.vstack([cell_xy, nxy[gate_idx]]) if len(gate_idx) else cell_xy
    population = np.concatenate([pop, np.zeros(len(gate_idx))])
    activity = np.concatenate([act, np.zeros(len(gate_idx))])
    external = np.concatenate([np.zeros(n_cell), [gate_w[i] for i in gate_idx]])

    # zone nodes (weight: degree) and the node nearest to each cell's weighted centre
    node_zone = npos[ninside]
    node_index = np.flatnonzero(ninside)
    node_weight = degree[ninside].astype(float)
    if len(gate_idx):
        node_zone = np.concatenate([node_zone, n_cell + np.arange(len(gate_idx))])
        node_index = np.concatenate([node_index, gate_idx])
        node_weight = np.concatenate([node_weight, np.ones(len(gate_idx))])
    rep = np.full(nz, -1, dtype=int)
    for z in range(nz):
        cand = node_index[node_zone == z]
        if len(cand):
            d = np.hypot(*(nxy[cand] - zone_xy[z]).T) - 10.0 * degree[cand]
            rep[z] = int(cand[np.argmin(d)])
    # cells whose nodes are all off the main network (one-way loops, private roads the data cut
    # off) are served from the nearest main-network node within ATTACH_M of their centre
    main_idx = np.flatnonzero(in_main)
    attached = []
    if main_idx.size:
        served = np.zeros(nz, dtype=bool)
        served[np.unique(node_zone)] = True
        has_pop = (population > 0) | (activity > 0)
        for zi in np.flatnonzero(~served[:n_cell] & has_pop[:n_cell]).tolist():
            z = int(zi)
            d = np.hypot(*(nxy[main_idx] - zone_xy[z]).T)
            k = int(np.argmin(d))
            if d[k] <= ATTACH_M:
                rep[z] = int(main_idx[k])
                node_zone = np.append(node_zone, z)
                node_index = np.append(node_index, main_idx[k])
                node_weight = np.append(node_weight, 1.0)
                attached.append(f"{zone_ids[z]} ({d[k]:.0f} m)")
    if attached:
        provenance["zones"] += (
            f"; {len(attached)} cell(s) without a node on the main drive network attached to the "
            f"nearest node of it within {ATTACH_M:g} m of their centre: {', '.join(attached)}"
        )
    has = rep >= 0
    cost = np.full((nz, nz), np.inf)
    if has.any():
        dist = csgraph.dijkstra(mat, directed=True, indices=rep[has])
        cost[np.ix_(has, has)] = dist[:, rep[has]]
    # intra-zonal cost: half the time to the nearest other zone
    off = cost.copy()
    np.fill_diagonal(off, np.inf)
    near = off.min(axis=1)
    diag = np.where(np.isfinite(near), near / 2.0, np.inf)
    cost[np.arange(nz), np.arange(nz)] = np.where(has, diag, np.inf)

    # pedestrians
    walk = seg["walk"].to_numpy(bool)
    pw_cls = _class_weight(seg["highway"], PEDESTRIAN_WEIGHT)
    seg_weight = pw_cls * (1.0 + 0.5 * poi_count)
    ev_xy = np.array([_resolve_event(tw, ev) for ev in events]).reshape(-1, 2)
    ev_zone = (
        np.argmin(np.hypot(*(cell_xy[None, :, :] - ev_xy[:, None, :]).transpose(2, 0, 1)), axis=1)
        if len(events)
        else np.zeros(0, dtype=int)
    )
    node_ids = np.empty(len(node_index), dtype=object)
    node_ids[:] = [nodes[i] for i in node_index]
    return DemandModel(
        city=tw.city.name,
        zone_ids=tuple(zone_ids),
        zone_xy=zone_xy,
        population=population,
        activity=activity,
        external=external,
        cost_min=cost,
        zone_node=tuple(nodes[r] if r >= 0 else None for r in rep),
        node_ids=node_ids,
        node_zone=node_zone.astype(int),
        node_weight=node_weight,
        node_xy=nxy[node_index],
        segments=tuple(seg.index[walk]),
        seg_zone=seg_cell[walk].astype(int),
        seg_xy=xy[walk],
        seg_length_m=np.maximum(length[walk], 1.0),
        seg_weight=seg_weight[walk],
        params=params,
        events=events,
        event_xy=ev_xy,
        event_zone=ev_zone.astype(int),
        timezone=tw.city.timezone,
        provenance=provenance,
    )
