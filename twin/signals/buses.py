r"""Bus routes on the twin's drive graph, and the signal groups that buses arrive on.

Bus priority (green extension and early green, :func:`optimize.signals.bus_priority`) is given
on the approaches that buses use. They come from:

* the ``type=route`` + ``route=bus`` relations of the city's OSM extract (``.osm`` or
  ``.osm.pbf``, read with pyosmium): each member way (roles ``""``, ``forward``,
  ``backward``; stops and platforms are skipped) is oriented by its neighbours in the
  relation's order (a PTv2 route lists its ways in the bus's order; ``backward`` reverses a
  way), then matched to the graph's drive edges by OSM way id and node order. A way that no
  neighbour orients (a route cut by the extract's edge) keeps both directions unless it is
  one-way. Members outside the extract are counted (:attr:`BusRoute.missing_ways`);
* or a *line list* (``--bus-lines FILE``) where the data has no relations (municipal data,
  GraphML): a CSV with a ``line`` column and either ``way`` (OSM way ids, in order) or
  ``street`` (street names: every drive edge of that name, both directions), one row per way
  or street.

>>> import io
>>> rows = read_line_list(io.StringIO("line,street\n12,Rue A\n12,Rue B\n"))
>>> rows
{'12': [('street', 'Rue A'), ('street', 'Rue B')]}
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from twin._errors import CorruptInputError, DataMissingError

__all__ = [
    "BusRoute",
    "bus_groups",
    "bus_routes",
    "read_line_list",
    "routes_from_line_list",
    "routes_from_osm",
]

EdgeKey = tuple[Hashable, Hashable, int]

_MEMBER_ROLES = frozenset({"", "forward", "backward"})


@dataclasses.dataclass(frozen=True)
class BusRoute:
    """One bus route (a direction of a line) on the twin's drive graph."""

    id: str
    """``relation:N`` (OSM) or ``line:REF`` (line list)."""
    ref: str
    """Line number."""
    name: str
    edges: tuple[EdgeKey, ...]
    """Drive edges ``(u, v, key)`` the bus runs along, in the route's order where known."""
    source: Literal["osm", "line list"]
    missing_ways: int = 0
    """Member ways (or streets) not found in the twin (outside a clipped extract)."""


# ------------------------------------------------------------------------------------------------
# OSM relations
# ------------------------------------------------------------------------------------------------
def _read_relations(path: Path) -> tuple[list[dict[str, Any]], dict[int, list[int]]]:
    import osmium

    rels: list[dict[str, Any]] = []
    try:
        for r in osmium.FileProcessor(str(path), osmium.osm.RELATION):
            if not isinstance(r, osmium.osm.Relation):
                continue
            tags = dict(r.tags)
            if tags.get("type", "route") != "route" or tags.get("route") != "bus":
                continue
            members = [
                (int(m.ref), m.role) for m in r.members if m.type == "w" and m.role in _MEMBER_ROLES
            ]
            rels.append({"id": int(r.id), "tags": tags, "members": members})
        wanted = {w for r in rels for w, _ in r["members"]}
        ways: dict[int, list[int]] = {}
        if wanted:
            for w in osmium.FileProcessor(str(path), osmium.osm.WAY):
                if isinstance(w, osmium.osm.Way) and int(w.id) in wanted:
                    ways[int(w.id)] = [int(n.ref) for n in w.nodes]
    except RuntimeError as exc:  # pyosmium's reader errors
        msg = f"{path}: cannot read its bus routes ({exc})"
        raise CorruptInputError(msg) from exc
    return rels, ways


def _orient(
    members: Sequence[tuple[int, str]], ways: Mapping[int, list[int]]
) -> list[tuple[int, int]]:
    """Each present member way with its direction: +1 along its nodes, -1 against, 0 unknown."""
    present = [(w, role) for w, role in members if w in ways]
    out = []
    for i, (w, role) in enumerate(present):
        nodes = ways[w]
        first, last = nodes[0], nodes[-1]
        d = 0
        if i + 1 < len(present):
            nxt = ways[present[i + 1][0]]
            ends = {nxt[0], nxt[-1]}
            d = 1 if last in ends else -1 if first in ends else 0
        if d == 0 and i > 0:
            prev = ways[present[i - 1][0]]
            ends = {prev[0], prev[-1]}
            d = 1 if first in ends else -1 if last in ends else 0
        if role == "forward":
            d = 1
        elif role == "backward":
            d = -1
        out.append((w, d))
    return out


def _osmids(value: Any) -> list[int]:
    vals = value if isinstance(value, list | tuple) else [value]
    out = []
    for v in vals:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return out


def routes_from_osm(graph: nx.MultiDiGraph, path: str | Path) -> list[BusRoute]:
    """The ``route=bus`` relations of an OSM extract, on a drive graph built from it.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        Drive graph whose nodes are OSM node ids and whose edges carry ``osmid``.
    path : str or Path
        The ``.osm`` / ``.osm.pbf`` extract.

    Returns
    -------
    list of BusRoute
        One per relation with at least one edge in the graph.
    """
    rels, ways = _read_relations(Path(path))
    by_way: dict[int, list[EdgeKey]] = {}
    for u, v, k, osmid in graph.edges(keys=True, data="osmid"):
        for w in _osmids(osmid):
            by_way.setdefault(w, []).append((u, v, k))
    out = []
    for rel in rels:
        edges: list[EdgeKey] = []
        missing = sum(w not in ways for w, _ in rel["members"])
        for w, d in _orient(rel["members"], ways):
            pos = {n: i for i, n in enumerate(ways[w])}
            along = []
            for e in by_way.get(w, ()):
                if e[0] not in pos or e[1] not in pos:
                    continue
                step = pos[e[1]] - pos[e[0]]
                if d == 0 or step * d > 0:
                    along.append((pos[e[0]] * (d or 1), e))
            edges += [e for _, e in sorted(along, key=lambda x: x[0])]
            if w not in by_way:
                missing += 1
        if not edges:
            continue
        tags = rel["tags"]
        out.append(
            BusRoute(
                f"relation:{rel['id']}",
                str(tags.get("ref", "")),
                str(tags.get("name", "")),
                tuple(dict.fromkeys(edges)),
                "osm",
                missing,
            )
        )
    return out


# ------------------------------------------------------------------------------------------------
# line lists
# ------------------------------------------------------------------------------------------------
def read_line_list(source: str | Path | io.TextIOBase) -> dict[str, list[tuple[str, str]]]:
    """Read a line list: ``{line: [("way" | "street", value), ...]}`` in the file's order.

    Raises
    ------
    CorruptInputError
        Naming the file, the row and the field, when a column is missing or a value is empty
        or a way id is not a number.
    """
    name = getattr(source, "name", None) or str(source)
    if isinstance(source, str | Path):
        try:
            text = Path(source).read_text(encoding="utf-8-sig")
        except FileNotFoundError as exc:
            msg = f"bus line list {source}: no such file"
            raise DataMissingError(msg) from exc
        except UnicodeDecodeError as exc:
            msg = f"bus line list {source}: not UTF-8 text ({exc.reason})"
            raise CorruptInputError(msg) from exc
        fh: Any = io.StringIO(text)
    else:
        fh = source
    sample = fh.read()
    try:
        dialect: Any = csv.Sniffer().sniff(sample.splitlines()[0] if sample else ",", ",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(sample), dialect=dialect)
    cols = [c.strip().lower() for c in reader.fieldnames or []]
    kind = "way" if "way" in cols else "street" if "street" in cols else None
    if "line" not in cols or kind is None:
        msg = (
            f"bus line list {name}: columns {cols} must include 'line' and 'way' (OSM way ids) "
            "or 'street' (street names)"
        )
        raise CorruptInputError(msg)
    out: dict[str, list[tuple[str, str]]] = {}
    for i, row in enumerate(reader, start=2):
        r = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        line, value = r.get("line", ""), r.get(kind, "")
        if not line or not value:
            field = "line" if not line else kind
            msg = f"bus line list {name}, row {i}: '{field}' is empty"
            raise CorruptInputError(msg)
        if kind == "way" and not value.isdigit():
            msg = f"bus line list {name}, row {i}: 'way' {value!r} is not an OSM way id"
            raise CorruptInputError(msg)
        out.setdefault(line, []).append((kind, value))
    return out


def routes_from_line_list(
    graph: nx.MultiDiGraph, lines: Mapping[str, Sequence[tuple[str, str]]]
) -> list[BusRoute]:
    """Bus routes from a line list (:func:`read_line_list`) on a drive graph."""
    by_way: dict[int, list[EdgeKey]] = {}
    by_street: dict[str, list[EdgeKey]] = {}
    for u, v, k, d in graph.edges(keys=True, data=True):
        for w in _osmids(d.get("osmid")):
            by_way.setdefault(w, []).append((u, v, k))
        names = d.get("name")
        for n in names if isinstance(names, list | tuple) else [names]:
            if isinstance(n, str) and n:
                by_street.setdefault(n.casefold(), []).append((u, v, k))
    out = []
    for line, items in lines.items():
        edges: list[EdgeKey] = []
        missing = 0
        for kind, value in items:
            hit = by_way.get(int(value)) if kind == "way" else by_street.get(value.casefold())
            if not hit:
                missing += 1
                continue
            edges += hit
        out.append(
            BusRoute(f"line:{line}", line, line, tuple(dict.fromkeys(edges)), "line list", missing)
        )
    return out


def bus_routes(tw: Any, *, line_list: str | Path | None = None) -> list[BusRoute]:
    """A twin's bus routes: from ``line_list`` when given, else from its OSM extract.

    Raises
    ------
    DataMissingError
        When no line list is given and the twin's source holds no relations (GraphML,
        municipal data); the message says how to give one.
    """
    graph = tw.drive
    if line_list is not None:
        return routes_from_line_list(graph, read_line_list(line_list))
    files = [str(f.get("path", "")) for f in (tw.meta.get("files") or {}).values()]
    src = next((f for f in files if f.lower().endswith((".osm", ".osm.pbf", ".pbf"))), None)
    if src is None:
        what = ", ".join(Path(f).name for f in files if f) or f"{tw.city.name}'s data"
        msg = (
            f"{tw.city.name}: {what} holds no route=bus relations; give a bus line list "
            "(CSV with columns line and way, or line and street)"
        )
        raise DataMissingError(msg)
    return routes_from_osm(graph, src)


def bus_groups(
    routes: Iterable[BusRoute], models: Mapping[str, Any]
) -> dict[str, dict[str, list[str]]]:
    """The signal groups buses arrive on: ``{junction: {group: [line refs]}}``.

    A vehicle group is a bus approach when its approach edge is on a route.
    """
    on: dict[EdgeKey, list[str]] = {}
    for r in routes:
        for e in r.edges:
            on.setdefault(e, []).append(r.ref or r.id)
    out: dict[str, dict[str, list[str]]] = {}
    for jid, model in models.items():
        for g in model.vehicle_groups:
            edge = model.group(g).edge
            if edge is not None and tuple(edge) in on:
                out.setdefault(jid, {})[g] = sorted(set(on[tuple(edge)]))
    return out
