"""Small synthetic road graphs the traffic and signal tests share (Lambert-93 coordinates)."""

from __future__ import annotations

import networkx as nx

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
