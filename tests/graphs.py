"""Small synthetic road graphs the traffic and signal tests share (Lambert-93 coordinates)."""

from __future__ import annotations

import networkx as nx
import numpy as np

X0, Y0 = 840_000.0, 6_250_000.0  # somewhere in Lambert-93


def cross(arm: float = 300.0, *, lanes: int = 1, speed_kph: float = 36.0) -> nx.MultiDiGraph:
    """A cross-roads: centre node 'c', arm ends 'n', 'e', 's', 'w', two-way edges."""
    g = nx.MultiDiGraph(crs="EPSG:2154")
    pos = {"c": (0, 0), "n": (0, arm), "e": (arm, 0), "s": (0, -arm), "w": (-arm, 0)}
    for n, (x, y) in pos.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)
    for n in "nesw":
        for u, v in ((n, "c"), ("c", n)):
            g.add_edge(u, v, length=arm, speed_kph=speed_kph, lanes=lanes, highway="primary")
    return g


def line(n_edges: int = 2, length: float = 200.0, lanes: int = 1) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph(crs="EPSG:2154")
    for i in range(n_edges + 1):
        g.add_node(i, x=X0 + i * length, y=Y0)
    for i in range(n_edges):
        g.add_edge(i, i + 1, length=length, speed_kph=36.0, lanes=lanes, highway="primary")
    return g


def cluster(
    xs: tuple[float, ...] = (0.0, 40.0), *, arm: float = 100.0, diagonal: bool = True
) -> nx.MultiDiGraph:
    """Signalised nodes ``a``, ``b``, ... at ``xs`` (m) on one east-west street: one cluster.

    Each node has a north and a south arm (``an``, ``as``, ...), the street ends in arms ``w``
    and ``e``, and with ``diagonal`` the first node has a fifth arm to the north-west (``ax``).
    All ways two-way, one lane each way; edges carry ``length``, ``speed_kph``, ``lanes`` (whole
    way), ``lanes_dir``, ``segment`` and ``name``, as the junction model reads them.
    """
    g = nx.MultiDiGraph(crs="EPSG:2154")
    names = [chr(ord("a") + i) for i in range(len(xs))]
    pos: dict[str, tuple[float, float]] = {}
    ways: list[tuple[str, str]] = []
    for i, (n, x) in enumerate(zip(names, xs, strict=True)):
        pos[n], pos[n + "n"], pos[n + "s"] = (x, 0.0), (x, arm), (x, -arm)
        ways += [(n + "n", n), (n + "s", n)]
        if i:
            ways.append((names[i - 1], n))
    pos["w"], pos["e"] = (xs[0] - arm, 0.0), (xs[-1] + arm, 0.0)
    ways += [("w", names[0]), ("e", names[-1])]
    if diagonal:
        pos["ax"] = (xs[0] - 0.7 * arm, 0.7 * arm)
        ways.append(("ax", "a"))
    for n, (x, y) in pos.items():
        g.add_node(n, x=X0 + x, y=Y0 + y)
    for u, v in ways:
        length = float(np.hypot(pos[u][0] - pos[v][0], pos[u][1] - pos[v][1]))
        for s, t in ((u, v), (v, u)):
            g.add_edge(
                s,
                t,
                length=length,
                speed_kph=50.0,
                lanes=2,
                lanes_dir=1,
                segment=f"segment:{u}-{v}",
                name=f"way {u}-{v}",
                highway="secondary",
            )
    return g
