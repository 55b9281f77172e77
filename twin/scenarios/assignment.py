"""Static user-equilibrium traffic assignment: bi-conjugate Frank-Wolfe with BPR link costs.

Wardrop's first principle (Wardrop 1952): at user equilibrium no driver can shorten a trip by
changing route, so every used path between two zones costs the same and no unused path costs
less. With separable, increasing link costs it is the minimum of Beckmann's convex objective
``Z(x) = sum_a int_0^x_a t_a(s) ds`` (Beckmann, McGuire and Winsten 1956), found here by the
bi-conjugate Frank-Wolfe method (Mitradjieva and Lindberg 2013, *Transportation Science* 47(2)):
each iteration assigns the demand all-or-nothing on the current costs, then moves along a
direction made conjugate (with respect to the Hessian ``diag(t'(x))``) to the last two, with an
exact line search; plain Frank-Wolfe (LeBlanc, Morlok and Pierskalla 1975) and conjugate
Frank-Wolfe are there too.

All-or-nothing loading grows one shortest-path tree per origin (Dijkstra with a binary heap,
compiled with numba on first use and cached) and loads it leaves first in the same pass, so an
iteration on Montpellier's 13,809 links and 246 zones takes about 0.15 s of CPU.

Convergence is the *relative gap* ``(sum_a t_a x_a - sum_a t_a y_a) / sum_a t_a x_a`` with
``y`` the all-or-nothing flows on the current costs (the share of travel time that shortest
paths would save): 0 at equilibrium. A run that does not reach its target within
``max_iter`` is marked ``converged=False`` with its gap and logged, never passed off as an
equilibrium.

Link costs (:data:`BPR`): ``t = t0 (1 + alpha (x / c)^beta)`` (Bureau of Public Roads 1964) per
road class. ``alpha = S0 / Sc - 1`` with ``S0 / Sc`` the ratio of free speed to speed at
capacity (FHWA, *Delay-Volume Relations for Travel Forecasting*, ch. 4): 0.15 on motorways and
trunk roads (BPR 1964), 1.0 on urban streets, where the junctions halve the speed at capacity
(Spiess 1990's second standard); ``beta = 4`` (BPR 1964). Capacity ``c`` is per lane in the
direction of travel: 1,800 veh/h on motorways and trunk roads (the saturation flow, DESIGN
section 4), :data:`~twin.derive.segments.LANE_CAPACITY_VEH_H` (900 veh/h, the saturation flow
at a green ratio of 0.5) on main urban streets, 600 veh/h on minor streets that give way.

Examples
--------
Two parallel roads, 1,000 veh/h: at equilibrium both cost the same.

>>> import networkx as nx
>>> g = nx.MultiDiGraph()
>>> g.add_nodes_from([(0, {"x": 0.0, "y": 0.0}), (1, {"x": 1000.0, "y": 0.0})])
>>> _ = g.add_edge(0, 1, length=1000.0, speed_kph=50.0, lanes_dir=1, highway="primary")
>>> _ = g.add_edge(0, 1, length=1200.0, speed_kph=50.0, lanes_dir=1, highway="primary")
>>> net = AssignmentNetwork.from_graph(g)
>>> res = assign(net, np.array([[0.0, 1000.0], [0.0, 0.0]]), (0, 1), rgap_target=1e-8)
>>> res.converged, bool(abs(res.time_s[0] - res.time_s[1]) < 1e-3)
(True, True)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx
import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from twin._errors import InputValidationError
from twin.scenarios.capacity import BPR
from twin.scenarios.gravity import ZoneLoading

if TYPE_CHECKING:
    from twin.model import Twin
    from twin.scenarios.gravity import DemandModel

__all__ = [
    "BPR",
    "WEEKDAY_PERIODS",
    "Algorithm",
    "AssignmentNetwork",
    "AssignmentResult",
    "assign",
    "assign_hours",
    "bpr_time",
    "equilibrium_times",
    "path_incidence",
]

log = logging.getLogger(__name__)

Algorithm = Literal["fw", "cfw", "bfw"]


def bpr_time(
    t0: np.ndarray, flow: np.ndarray, capacity: np.ndarray, alpha: np.ndarray, beta: np.ndarray
) -> np.ndarray:
    """BPR link time ``t0 (1 + alpha (flow / capacity)^beta)``.

    >>> float(bpr_time(np.array([60.0]), np.array([900.0]), np.array([900.0]),
    ...                np.array([1.0]), np.array([4.0]))[0])
    120.0
    """
    out: np.ndarray = t0 * (1.0 + alpha * (flow / capacity) ** beta)
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class AssignmentNetwork:
    """Links of a drive graph as the assignment reads them (arrays in the graph's edge order).

    Parameters
    ----------
    nodes : tuple
        Graph nodes.
    u, v : numpy.ndarray
        Node index at each end of each link.
    t0_s : numpy.ndarray
        Free-flow time (s).
    capacity_veh_h : numpy.ndarray
        Capacity (veh/h, all lanes of the direction).
    alpha, beta : numpy.ndarray
        BPR parameters.
    edges : tuple
        The graph's edge keys ``(u, v, key)``.
    """

    nodes: tuple[Hashable, ...]
    u: np.ndarray
    v: np.ndarray
    t0_s: np.ndarray
    capacity_veh_h: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    edges: tuple[tuple[Hashable, Hashable, int], ...]

    def __post_init__(self) -> None:
        n = len(self.u)
        for name in ("v", "t0_s", "capacity_veh_h", "alpha", "beta"):
            arr = np.asarray(getattr(self, name))
            if arr.shape != (n,):
                msg = f"AssignmentNetwork.{name}: shape {arr.shape} is not ({n},) (one per link)"
                raise InputValidationError(msg)
        for name in ("t0_s", "capacity_veh_h", "beta"):
            arr = np.asarray(getattr(self, name), dtype=float)
            bad = np.flatnonzero(~(arr > 0))
            if bad.size:
                i = int(bad[0])
                msg = (
                    f"AssignmentNetwork.{name}: link {self.edges[i]!r} has {arr[i]!r} (> 0 needed)"
                )
                raise InputValidationError(msg)

    @classmethod
    def from_graph(cls, graph: nx.MultiDiGraph) -> AssignmentNetwork:
        """Links of a drive graph, with BPR parameters per class (:data:`BPR`).

        Reads ``length``, ``speed_kph``, ``lanes_dir`` (else ``lanes``) and ``highway`` of
        each edge.
        """
        nodes = tuple(graph.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        edges, u, v, t0, cap, alpha, beta = [], [], [], [], [], [], []
        for a, b, k, d in graph.edges(keys=True, data=True):
            hw = d.get("highway", "")
            hw = str(hw[0] if isinstance(hw, list | tuple) and hw else hw)
            al, be, per_lane = BPR.get(hw, BPR["other"])
            lanes = d.get("lanes_dir", d.get("lanes", 1))
            lanes = lanes[0] if isinstance(lanes, list | tuple) else lanes
            try:
                length, speed, n_lanes = (
                    float(d.get("length", 0.0)),
                    float(d.get("speed_kph", 0.0)),
                    float(lanes or 1),
                )
            except (TypeError, ValueError):
                msg = f"graph edge {(a, b, k)!r}: length, speed_kph or lanes is not a number"
                raise InputValidationError(msg) from None
            if not (length > 0 and speed > 0 and n_lanes >= 1):
                msg = (
                    f"graph edge {(a, b, k)!r}: length {length!r} m, speed {speed!r} km/h and "
                    f"lanes {n_lanes!r} must be positive"
                )
                raise InputValidationError(msg)
            edges.append((a, b, int(k)))
            u.append(index[a])
            v.append(index[b])
            t0.append(length / (speed / 3.6))
            cap.append(n_lanes * per_lane)
            alpha.append(al)
            beta.append(be)
        return cls(
            nodes=nodes,
            u=np.asarray(u, dtype=np.int64),
            v=np.asarray(v, dtype=np.int64),
            t0_s=np.asarray(t0, dtype=float),
            capacity_veh_h=np.asarray(cap, dtype=float),
            alpha=np.asarray(alpha, dtype=float),
            beta=np.asarray(beta, dtype=float),
            edges=tuple(edges),
        )

    def time(self, flow: np.ndarray) -> np.ndarray:
        """Link times (s) at ``flow`` (veh/h)."""
        return bpr_time(self.t0_s, flow, self.capacity_veh_h, self.alpha, self.beta)

    def derivative(self, flow: np.ndarray) -> np.ndarray:
        """``d t / d flow`` of each link (s per veh/h)."""
        b = self.beta
        out: np.ndarray = (
            self.t0_s * self.alpha * b * np.power(flow, b - 1) / self.capacity_veh_h**b
        )
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class AssignmentResult:
    """An assignment's link flows and times, and how far it is from equilibrium.

    Attributes
    ----------
    flow_veh_h, time_s : numpy.ndarray
        Link flow and time, in the network's link order.
    rgap : float
        Relative gap at the end.
    iterations : int
    converged : bool
        Whether ``rgap <= rgap_target`` was reached within ``max_iter``.
    gaps : numpy.ndarray
        Relative gap after each iteration.
    algorithm : str
    unassigned_veh_h : float
        Demand between zones with no path (left out, reported).
    """

    flow_veh_h: np.ndarray
    time_s: np.ndarray
    rgap: float
    iterations: int
    converged: bool
    gaps: np.ndarray
    algorithm: str
    unassigned_veh_h: float


def _tree(
    indptr: np.ndarray,
    head: np.ndarray,
    cost: np.ndarray,
    s: int,
    want: np.ndarray,
    dist: np.ndarray,
    pred: np.ndarray,
    done: np.ndarray,
    order: np.ndarray,
    hkey: np.ndarray,
    hval: np.ndarray,
) -> int:  # pragma: no cover - compiled by numba, run through _Loader and path_incidence
    """Shortest-path tree from node ``s``: Dijkstra with a binary heap (lazy deletion).

    Fills ``dist``, ``pred`` (the arc into each node, -1 for none), ``done`` and ``order``
    (nodes in the order settled) and returns how many nodes were settled. The search stops
    once every node with ``want > 0`` is settled.
    """
    n = indptr.size - 1
    dist[:] = np.inf
    pred[:] = -1
    done[:] = False
    left = 0  # wanted nodes not yet settled: the search stops when none is left
    for v in range(n):
        if want[v] > 0:
            left += 1
    dist[s] = 0.0
    size = 1
    hkey[0] = 0.0
    hval[0] = s
    cnt = 0
    while size > 0:
        d = hkey[0]
        u = hval[0]
        size -= 1
        if size > 0:  # sift the last item down from the root
            k, kv = hkey[size], hval[size]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                if c + 1 < size and hkey[c + 1] < hkey[c]:
                    c += 1
                if hkey[c] >= k:
                    break
                hkey[i] = hkey[c]
                hval[i] = hval[c]
                i = c
            hkey[i] = k
            hval[i] = kv
        if done[u] or d > dist[u]:
            continue
        done[u] = True
        order[cnt] = u
        cnt += 1
        if want[u] > 0:
            left -= 1
            if left == 0:
                break
        for a in range(indptr[u], indptr[u + 1]):
            w = head[a]
            nd = d + cost[a]
            if nd < dist[w]:
                dist[w] = nd
                pred[w] = a
                i = size  # sift up
                size += 1
                while i > 0:
                    p = (i - 1) // 2
                    if hkey[p] <= nd:
                        break
                    hkey[i] = hkey[p]
                    hval[i] = hval[p]
                    i = p
                hkey[i] = nd
                hval[i] = w
    return cnt


def _aon_trees(
    indptr: np.ndarray,
    head: np.ndarray,
    tail: np.ndarray,
    link: np.ndarray,
    cost: np.ndarray,
    origins: np.ndarray,
    dests: np.ndarray,
    dzone: np.ndarray,
    dshare: np.ndarray,
    demand: np.ndarray,
    n_links: int,
) -> tuple[np.ndarray, float]:  # pragma: no cover - compiled by numba, run through _Loader
    """All-or-nothing link flows: one shortest-path tree per origin, loaded leaves first.

    ``demand[r, z]`` is what origin node ``origins[r]`` sends to zone ``z``; destination node
    ``dests[j]`` takes the share ``dshare[j]`` of what its zone ``dzone[j]`` receives. Dijkstra
    from each origin (:func:`_tree`); the demand of each destination node is then pushed to
    the root in the reverse of the order nodes were settled, so each tree arc carries the
    demand of every node below it.
    """
    n = indptr.size - 1
    m = head.size
    flow = np.zeros(n_links)
    lost = 0.0
    dist = np.empty(n)
    pred = np.empty(n, np.int64)
    done = np.empty(n, np.bool_)
    order = np.empty(n, np.int64)
    node_dem = np.empty(n)
    hkey = np.empty(m + 1)
    hval = np.empty(m + 1, np.int64)
    for r in range(origins.size):
        s = origins[r]
        node_dem[:] = 0.0
        for j in range(dests.size):
            node_dem[dests[j]] += demand[r, dzone[j]] * dshare[j]
        node_dem[s] = 0.0  # trips within one node stay put
        cnt = _tree(indptr, head, cost, s, node_dem, dist, pred, done, order, hkey, hval)
        for v in range(n):
            if not done[v] and node_dem[v] > 0:
                lost += node_dem[v]
        for k in range(cnt - 1, 0, -1):
            v = order[k]
            f = node_dem[v]
            if f > 0:
                a = pred[v]
                flow[link[a]] += f
                node_dem[tail[a]] += f
    return flow, lost


def _incidence_rows(
    indptr: np.ndarray,
    head: np.ndarray,
    tail: np.ndarray,
    arc_row: np.ndarray,
    cost: np.ndarray,
    srcs: np.ndarray,
    sshare: np.ndarray,
    dests: np.ndarray,
    dzone: np.ndarray,
    dshare: np.ndarray,
    n_zone: int,
    acc: np.ndarray,
    touched: np.ndarray,
    lost: np.ndarray,
) -> int:  # pragma: no cover - compiled by numba, run through path_incidence
    """Path-edge incidence of one origin zone whose loading nodes are ``srcs``.

    For each origin node and each destination node ``dests[j]`` (of zone ``dzone[j]``), the
    pair's share ``sshare * dshare[j]`` is added to ``acc[row * n_zone + dzone[j]]`` for each
    arc of its shortest path with a row (``arc_row >= 0``); the entries first touched are
    listed in ``touched`` (their number is returned), the shares no path reaches in ``lost``
    by destination zone.
    """
    n = indptr.size - 1
    m = head.size
    dist = np.empty(n)
    pred = np.empty(n, np.int64)
    done = np.empty(n, np.bool_)
    order = np.empty(n, np.int64)
    want = np.zeros(n)
    hkey = np.empty(m + 1)
    hval = np.empty(m + 1, np.int64)
    for j in range(dests.size):
        want[dests[j]] = 1.0
    nt = 0
    for r in range(srcs.size):
        s = srcs[r]
        keep = want[s]
        want[s] = 0.0  # trips within one node stay put
        _tree(indptr, head, cost, s, want, dist, pred, done, order, hkey, hval)
        want[s] = keep
        for j in range(dests.size):
            v = dests[j]
            if v == s:
                continue
            f = sshare[r] * dshare[j]
            col = dzone[j]
            if not done[v]:
                lost[col] += f
                continue
            while v != s:
                a = pred[v]
                row = arc_row[a]
                if row >= 0:
                    idx = row * n_zone + col
                    if acc[idx] == 0.0:
                        touched[nt] = idx
                        nt += 1
                    acc[idx] += f
                v = tail[a]
    return nt


_compiled: dict[str, Any] = {}


def _kernel(name: str) -> Any:
    """The numba-compiled kernel ``name`` (compiled on first use and cached on disk)."""
    if not _compiled:
        import numba

        # the kernels call the compiled tree: bind it in their globals before they compile
        globals()["_tree"] = numba.njit(cache=True, nogil=True)(_tree)
        for fn in (_aon_trees, _incidence_rows):
            _compiled[fn.__name__] = numba.njit(cache=True, nogil=True)(fn)
    return _compiled[name]


def _aon(*args: Any) -> tuple[np.ndarray, float]:
    """:func:`_aon_trees` compiled by numba."""
    flow, lost = _kernel("_aon_trees")(*args)
    return np.asarray(flow, dtype=float), float(lost)


def _forward_star(
    u: np.ndarray, v: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arcs sorted by tail: ``(order, indptr, head, tail)`` of links ``u -> v`` on ``n`` nodes."""
    arc = np.argsort(u, kind="stable")
    indptr = np.searchsorted(u[arc], np.arange(n + 1)).astype(np.int64)
    head = np.ascontiguousarray(v[arc], dtype=np.int64)
    tail = np.ascontiguousarray(u[arc], dtype=np.int64)
    return arc, indptr, head, tail


def path_incidence(
    u: np.ndarray,
    v: np.ndarray,
    cost: np.ndarray,
    n_node: int,
    zone: np.ndarray,
    node: np.ndarray,
    share: np.ndarray,
    n_zone: int,
    rows: np.ndarray,
) -> tuple[sparse.csr_matrix, int]:
    """Share of each zone pair's trips whose shortest path uses each of some links.

    Parameters
    ----------
    u, v, cost : numpy.ndarray
        Node index at each end of each link, and its cost (> 0).
    n_node : int
    zone, node, share : numpy.ndarray
        The zones' loading nodes (:class:`~twin.scenarios.gravity.ZoneLoading`): zone index,
        node index and share of each.
    n_zone : int
    rows : numpy.ndarray
        The links wanted, in the order of the rows.

    Returns
    -------
    (incidence, unreachable_pairs)
        ``(len(rows), n_zone * n_zone)``: entry ``(r, o * n_zone + d)`` is the share of the
        trips from zone ``o`` to zone ``d`` whose path uses link ``rows[r]`` (between each pair
        of loading nodes, all-or-nothing on ``cost``; a share whose two ends fall on one node
        uses none), and the zone pairs some share of which no path joins.
    """
    arc, indptr, head, tail = _forward_star(np.asarray(u), np.asarray(v), n_node)
    row_of = np.full(len(u), -1, dtype=np.int64)
    row_of[np.asarray(rows, dtype=np.int64)] = np.arange(len(rows))
    arc_row = np.ascontiguousarray(row_of[arc])
    arc_cost = np.ascontiguousarray(np.asarray(cost, dtype=float)[arc])
    zone = np.asarray(zone, dtype=np.int64)
    node = np.ascontiguousarray(node, dtype=np.int64)
    share = np.ascontiguousarray(share, dtype=float)
    n_row = len(rows)
    acc = np.zeros(n_row * n_zone)
    touched = np.empty(n_row * n_zone, dtype=np.int64)
    lost = np.zeros(n_zone)
    kernel = _kernel("_incidence_rows")
    r_parts, c_parts, w_parts = [], [], []
    unreachable = 0
    for o in np.unique(zone).tolist():
        mine = zone == o
        lost[:] = 0.0
        nt = kernel(indptr, head, tail, arc_row, arc_cost, node[mine], share[mine], node,
                    zone, share, n_zone, acc, touched, lost)  # fmt: skip
        unreachable += int((lost > 0).sum())
        idx = np.sort(touched[:nt])
        r_parts.append(idx // n_zone)
        c_parts.append(o * n_zone + idx % n_zone)
        w_parts.append(acc[idx])
        acc[idx] = 0.0
    empty = np.zeros(0, dtype=np.int64)
    r_all = np.concatenate(r_parts) if r_parts else empty
    c_all = np.concatenate(c_parts) if c_parts else empty
    w_all = np.concatenate(w_parts) if w_parts else np.zeros(0)
    inc = sparse.csr_matrix((w_all, (r_all, c_all)), shape=(n_row, n_zone * n_zone))
    return inc, unreachable


class _Loader:
    """All-or-nothing loading of a zone matrix on given link costs."""

    def __init__(self, net: AssignmentNetwork, demand: np.ndarray, loading: ZoneLoading) -> None:
        self.net = net
        self.n = len(net.nodes)
        index = {n: i for i, n in enumerate(net.nodes)}
        nodes = np.array([index[x] for x in loading.node], dtype=np.int64)
        # each loading node sends its share of its zone's row
        sends = demand[loading.zone] * loading.weight[:, None]
        rows = np.flatnonzero(sends.sum(axis=1) > 0)
        self.origins = np.ascontiguousarray(nodes[rows])
        self.demand = np.ascontiguousarray(sends[rows], dtype=float)  # (origin, zone) veh/h
        self.dests = nodes
        self.dzone = np.ascontiguousarray(loading.zone, dtype=np.int64)
        self.dshare = np.ascontiguousarray(loading.weight, dtype=float)
        self.arc, self.indptr, self.head, self.tail = _forward_star(net.u, net.v, self.n)
        self.link = np.ascontiguousarray(self.arc, dtype=np.int64)
        self.unassigned = 0.0

    def load(self, cost: np.ndarray) -> np.ndarray:
        """Link flows (veh/h) of the demand on its shortest paths at ``cost``."""
        flow, lost = _aon(
            self.indptr,
            self.head,
            self.tail,
            self.link,
            np.ascontiguousarray(np.asarray(cost, dtype=float)[self.arc]),
            self.origins,
            self.dests,
            self.dzone,
            self.dshare,
            self.demand,
            len(self.net.u),
        )
        self.unassigned = lost
        return flow


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product without BLAS (whose threads spin and stall on a busy machine)."""
    return float(np.multiply(a, b).sum())


def _line_search(net: AssignmentNetwork, x: np.ndarray, d: np.ndarray) -> float:
    """Step in [0, 1] minimising Beckmann's objective along ``d`` (bisection on its slope)."""

    def slope(lam: float) -> float:
        return _dot(net.time(np.maximum(x + lam * d, 0.0)), d)

    if slope(1.0) <= 0:
        return 1.0
    if slope(0.0) >= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if slope(mid) > 0:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


def assign(
    net: AssignmentNetwork,
    demand_veh_h: np.ndarray,
    zone_nodes: Sequence[Hashable] | ZoneLoading,
    *,
    rgap_target: float = 1e-4,
    max_iter: int = 500,
    algorithm: Algorithm = "bfw",
) -> AssignmentResult:
    """User-equilibrium link flows of a zone-to-zone demand.

    Parameters
    ----------
    net : AssignmentNetwork
    demand_veh_h : numpy.ndarray
        ``(zone, zone)`` demand (veh/h).
    zone_nodes : sequence or ZoneLoading
        The graph node where each zone's trips start and end, or the nodes among which they
        are spread (:meth:`DemandModel.loading <twin.scenarios.gravity.DemandModel.loading>`).
        Trips whose two ends fall on one node are not assigned: with one node per zone, the
        intra-zonal trips (the diagonal); with several, the share of them between a node and
        itself.
    rgap_target : float
        Relative gap at which to stop.
    max_iter : int
        Iterations before giving up (the result is then marked ``converged=False``).
    algorithm : {"bfw", "cfw", "fw"}
        Bi-conjugate, conjugate or plain Frank-Wolfe.

    Returns
    -------
    AssignmentResult
    """
    if algorithm not in ("fw", "cfw", "bfw"):
        msg = f"algorithm: {algorithm!r} is not one of 'fw', 'cfw', 'bfw'"
        raise InputValidationError(msg)
    if not (0 < rgap_target < 1):
        msg = f"rgap_target: {rgap_target!r} must be within (0, 1)"
        raise InputValidationError(msg)
    if not (isinstance(max_iter, int) and max_iter >= 1):
        msg = f"max_iter: {max_iter!r} must be a positive whole number"
        raise InputValidationError(msg)
    dem = np.asarray(demand_veh_h, dtype=float)
    loading = zone_nodes if isinstance(zone_nodes, ZoneLoading) else ZoneLoading.single(zone_nodes)
    nz = loading.n_zone
    if dem.shape != (nz, nz):
        msg = f"demand_veh_h: shape {dem.shape} is not ({nz}, {nz}) (one row per zone)"
        raise InputValidationError(msg)
    bad = np.argwhere(~(dem >= 0))
    if bad.size:
        o, d = (int(i) for i in bad[0])
        value = float(dem[o, d])
        msg = f"demand_veh_h: {value!r} veh/h from zone {o} to zone {d} is negative or NaN"
        raise InputValidationError(msg)
    index = {n: i for i, n in enumerate(net.nodes)}
    missing = [z for z in loading.node if z not in index]
    if missing:
        msg = f"zone_nodes: {missing[0]!r} is not a node of the network ({len(missing)} missing)"
        raise InputValidationError(msg)
    loader = _Loader(net, dem, loading)

    x = loader.load(net.t0_s)
    gaps: list[float] = []
    s_prev: np.ndarray | None = None  # previous conjugate point
    s_prev2: np.ndarray | None = None
    tau_prev = 0.0
    rgap = math.inf
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported after the loop
        t = net.time(x)
        y = loader.load(t)
        tstt = _dot(t, x)
        sptt = _dot(t, y)
        rgap = (tstt - sptt) / tstt if tstt > 0 else 0.0
        gaps.append(rgap)
        if rgap <= rgap_target:
            break
        s = y
        if algorithm != "fw" and s_prev is not None:
            h = net.derivative(x)
            dk = y - x
            d1 = s_prev - x
            if algorithm == "bfw" and s_prev2 is not None and 0 < tau_prev < 1:
                d2 = tau_prev * s_prev + (1 - tau_prev) * s_prev2 - x
                den_mu = _dot(d2 * h, s_prev2 - s_prev)
                mu = -_dot(d2 * h, dk) / den_mu if den_mu != 0 else 0.0
                mu = max(0.0, mu)
                den_nu = _dot(d1 * h, d1)
                nu = -_dot(d1 * h, dk) / den_nu if den_nu != 0 else 0.0
                nu = max(0.0, nu + mu * tau_prev / (1 - tau_prev))
                b0 = 1.0 / (1.0 + mu + nu)
                s = b0 * y + nu * b0 * s_prev + mu * b0 * s_prev2
            else:
                num = _dot(d1 * h, d1)
                den = num - _dot(d1 * h, dk)
                a = num / den if den != 0 else 1.0
                a = min(max(a, 0.0), 1.0) if np.isfinite(a) else 1.0
                s = a * y + (1 - a) * s_prev
            # a conjugate direction that does not descend falls back to Frank-Wolfe's
            if _dot(t, s - x) >= 0:
                s = y
        d = s - x
        tau = _line_search(net, x, d)
        x = np.maximum(x + tau * d, 0.0)
        s_prev2, s_prev, tau_prev = s_prev, s, tau
    converged = rgap <= rgap_target
    if not converged:
        log.warning(
            "assignment: relative gap %.2e after %d iterations, above the target %.0e: "
            "not converged",
            rgap,
            it,
            rgap_target,
        )
    return AssignmentResult(
        flow_veh_h=x,
        time_s=net.time(x),
        rgap=float(rgap),
        iterations=it,
        converged=bool(converged),
        gaps=np.asarray(gaps),
        algorithm=algorithm,
        unassigned_veh_h=loader.unassigned,
    )


def assign_hours(
    tw: Twin,
    *,
    hours: Sequence[int] = (8, 17),
    day_type: str = "weekday",
    model: DemandModel | None = None,
    rgap_target: float = 1e-4,
    max_iter: int = 500,
    algorithm: Algorithm = "bfw",
) -> xr.Dataset:
    """Equilibrium link flows of a twin's car demand in some local hours of a day type.

    Each zone's trips are loaded over its loading nodes
    (:meth:`DemandModel.loading <twin.scenarios.gravity.DemandModel.loading>`).

    Parameters
    ----------
    tw : twin.model.Twin
    hours : sequence of int
        Local clock hours (0-23), each assigned on its own (a peak hour, not a period).
    day_type : {"weekday", "saturday", "sunday"}
    model : DemandModel, optional
        Default :func:`~twin.scenarios.zones.build_demand` of ``tw``.
    rgap_target, max_iter, algorithm
        As :func:`assign`.

    Returns
    -------
    xarray.Dataset
        Dims ``hour`` and ``edge`` (drive edges, labelled ``segment`` ids, with ``edge_u`` and
        ``edge_v``): ``flow`` (veh/h), ``time`` (s), ``vc`` (flow / capacity); per hour
        ``rgap``, ``iterations`` and ``converged``.
    """
    from twin.scenarios.drive import drive_graph
    from twin.scenarios.zones import build_demand

    hs = [int(h) for h in hours]
    bad = [h for h in hs if not 0 <= h <= 23]
    if bad or not hs:
        msg = f"hours: {list(hours)!r} must be local clock hours 0-23 (at least one)"
        raise InputValidationError(msg)
    model = build_demand(tw) if model is None else model
    graph = drive_graph(tw)
    net = AssignmentNetwork.from_graph(graph)
    loading = model.loading()  # each zone's trips spread over its nodes, as in the DES
    flows, times, gaps, iters, conv = [], [], [], [], []
    for h in hs:
        od = model.od(h * 4, day_type=day_type)
        res = assign(
            net, od, loading, rgap_target=rgap_target, max_iter=max_iter, algorithm=algorithm
        )
        flows.append(res.flow_veh_h)
        times.append(res.time_s)
        gaps.append(res.rgap)
        iters.append(res.iterations)
        conv.append(res.converged)
    labels = [
        str(d.get("segment") or f"{u}->{v}#{k}") for u, v, k, d in graph.edges(keys=True, data=True)
    ]
    flow = np.array(flows)
    ds = xr.Dataset(
        coords={
            "hour": ("hour", np.array(hs), {"long_name": "local clock hour"}),
            "edge": ("edge", np.array(labels, dtype=str)),
            "edge_u": ("edge", np.array([str(e[0]) for e in net.edges], dtype=str)),
            "edge_v": ("edge", np.array([str(e[1]) for e in net.edges], dtype=str)),
            "capacity": ("edge", net.capacity_veh_h, {"units": "veh/h", "long_name": "capacity"}),
        }
    )
    ds["flow"] = (("hour", "edge"), flow, {"units": "veh/h", "long_name": "equilibrium flow"})
    ds["time"] = (("hour", "edge"), np.array(times), {"units": "s", "long_name": "link time"})
    ds["vc"] = (
        ("hour", "edge"),
        flow / net.capacity_veh_h[None, :],
        {"units": "1", "long_name": "volume / capacity"},
    )
    ds["rgap"] = ("hour", np.array(gaps), {"units": "1", "long_name": "relative gap"})
    ds["iterations"] = ("hour", np.array(iters), {"units": "1", "long_name": "iterations"})
    ds["converged"] = (
        "hour",
        np.array(conv, dtype=bool),
        {"units": "1", "long_name": "relative gap target reached"},
    )
    ds.attrs.update(
        {
            "city": tw.city.name,
            "day_type": day_type,
            "algorithm": algorithm,
            "rgap_target": rgap_target,
            "local_timezone": tw.city.timezone,
            "attribution": tw.city.attribution,
        }
    )
    return ds


WEEKDAY_PERIODS: tuple[tuple[int, int], ...] = ((0, 7), (7, 10), (10, 16), (16, 20), (20, 24))
"""Local-clock periods ``[start, end)`` of a weekday assigned one by one: night, morning peak,
day, evening peak, evening (the hourly car profile is nearly flat within each)."""


def equilibrium_times(
    graph: nx.MultiDiGraph,
    model: DemandModel,
    *,
    day_type: str = "weekday",
    periods: Sequence[tuple[int, int]] = WEEKDAY_PERIODS,
    rgap_target: float = 1e-3,
    max_iter: int = 200,
    demand_scale: float = 1.0,
    progress: bool | None = None,
) -> tuple[tuple[tuple[float, np.ndarray], ...], pd.DataFrame]:
    """User-equilibrium link times of each period of a day, for the DES to route on.

    Each period's demand is the mean hourly car OD of its hours
    (:meth:`~twin.scenarios.demand.DemandModel.od`), assigned by bi-conjugate Frank-Wolfe
    (:func:`twin.scenarios.assignment.assign`) between the zones' loading nodes
    (:meth:`DemandModel.loading <twin.scenarios.gravity.DemandModel.loading>`), spread over
    each zone as the DES draws its trips' nodes. At equilibrium every used path of an OD pair
    is a shortest path on these times (Wardrop's first principle), so a trip routed on the
    times of its departure period takes a path of the equilibrium's path set.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        The drive graph (:func:`~twin.scenarios.network.drive_graph`); the times are in its
        edge order.
    model : DemandModel
        The twin's demand model (:func:`~twin.scenarios.demand.build_demand`).
    day_type : {"weekday", "saturday", "sunday"}
    periods : sequence of (int, int)
        Local-clock hours ``[start, end)``, in order, covering the day without overlap.
    rgap_target, max_iter
        As :func:`~twin.scenarios.assignment.assign` (a gap of 1e-3 leaves the paths within
        0.1% of the shortest, below what the DES's own signal delays resolve).
    demand_scale : float
        Factor on the demand (the share of trips a sampled DES run simulates), positive.
    progress : bool, optional
        Show a progress bar; default from the settings.

    Returns
    -------
    (routing_times, report)
        ``routing_times``: ``((start_s, link times), ...)`` with ``start_s`` seconds since
        local midnight, as ``TrafficScenario.routing_times`` takes them;
        ``report``: one row per period (``start_h``, ``end_h``, ``demand_veh_h``, ``rgap``,
        ``iterations``, ``converged``).
    """
    from twin.progress import progress_bar
    from twin.settings import get_settings

    spans = [(int(a), int(b)) for a, b in periods]
    if not spans or spans[0][0] != 0 or spans[-1][1] != 24:
        msg = f"periods: {list(periods)!r} must cover the local day from hour 0 to 24"
        raise InputValidationError(msg)
    for (a, b), (c, _) in zip(spans, [*spans[1:], (24, 24)], strict=True):
        if not a < b == c:
            msg = f"periods: ({a}, {b}) is empty or not followed by the next period"
            raise InputValidationError(msg)
    if not (math.isfinite(demand_scale) and demand_scale > 0):
        msg = f"demand_scale: {demand_scale!r} must be positive"
        raise InputValidationError(msg)
    net = AssignmentNetwork.from_graph(graph)
    loading = model.loading()  # each zone's trips spread over its nodes, as in the DES
    show = get_settings().progress if progress is None else progress
    out, rows = [], []
    with progress_bar(total=len(spans), unit="period", desc="assignment", disable=not show) as bar:
        for a, b in spans:
            od = demand_scale * np.mean(
                [model.od(h * 4, day_type=day_type) for h in range(a, b)], axis=0
            )
            res = assign(net, od, loading, rgap_target=rgap_target, max_iter=max_iter)
            out.append((a * 3600.0, res.time_s))
            rows.append(
                {
                    "start_h": a,
                    "end_h": b,
                    "demand_veh_h": float(od.sum() - np.trace(od)),
                    "rgap": res.rgap,
                    "iterations": res.iterations,
                    "converged": res.converged,
                }
            )
            bar.update(1)
    return tuple(out), pd.DataFrame(rows)
