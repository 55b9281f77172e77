"""SUMO interoperability: read SUMO networks, routes and programs; write plain SUMO files.

The twin's drive graph (a :class:`networkx.MultiDiGraph`, see :mod:`twin.scenarios.traffic`)
maps to SUMO as follows: graph nodes are SUMO junctions, graph edges are SUMO edges (internal
``:`` edges are skipped), ``length`` (m), ``speed_kph`` (SUMO speed x 3.6) and ``lanes``; each
edge keeps its SUMO id in the ``sumo_id`` attribute. SUMO traffic-light programs become
:class:`~twin.scenarios.signals.SignalPlan` s whose approaches are the edges with a link in the
program; consecutive non-green SUMO phases form the intergreen (``y`` phases the amber, all-red
phases the all-red). Writing goes through ``netconvert`` on plain ``.nod.xml``/``.edg.xml``
files; plans become ``<tlLogic programID="twin">`` programmes with their offsets (also kept as
an additional file, ``.tls.add.xml``), built into the net by a second ``netconvert`` pass so that
each junction's right of way follows our phases.

Eclipse SUMO (https://eclipse.dev/sumo) is installed from PyPI (``eclipse-sumo``); the
binaries are found under ``sumo.SUMO_HOME``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import networkx as nx
import sumolib

from ._errors import CorruptInputError, DataMissingError, InputValidationError
from .scenarios.signals import EdgeKey, Phase, SignalPlan
from .scenarios.traffic import SignalProgram, Trip

__all__ = [
    "LOCAL_CRS",
    "POCKET_UPSTREAM",
    "export_sumo",
    "import_sumo",
    "read_signal_programs",
    "read_sumo_net",
    "read_sumo_routes",
    "sumo_binary",
    "write_sumo",
]

log = logging.getLogger(__name__)

#: CRS recorded for a SUMO net without a projection (plain metric coordinates).
LOCAL_CRS = "local metric"

_ID_OK = re.compile(r"^[A-Za-z0-9_.\-#]+$")


def sumo_binary(name: str) -> str:
    """Path of a SUMO binary (``sumo``, ``netconvert``, ``duarouter``, ``netgenerate``).

    Looked for in ``sumo.SUMO_HOME/bin`` (the PyPI package), then on ``PATH``.
    """
    try:
        import sumo  # the eclipse-sumo wheel

        cand = Path(sumo.SUMO_HOME) / "bin" / name
        if cand.exists():
            return str(cand)
    except ImportError:  # pragma: no cover - eclipse-sumo is a dependency
        pass
    found = shutil.which(name)
    if found is None:
        msg = f"SUMO binary {name!r} not found: pip install eclipse-sumo"
        raise DataMissingError(msg)
    return found


def _crs_of(net: Any) -> str:
    proj = (getattr(net, "_location", {}) or {}).get("projParameter", "!")
    if not proj or proj == "!":
        return LOCAL_CRS
    try:
        from pyproj import CRS

        epsg = CRS.from_user_input(proj).to_epsg(min_confidence=25)
    except Exception:  # noqa: BLE001 - any unparsable proj string is kept as given
        return str(proj)
    return f"EPSG:{epsg}" if epsg else str(proj)


def read_sumo_net(path: str | Path) -> tuple[nx.MultiDiGraph, dict[str, SignalPlan]]:
    """Read a SUMO ``.net.xml`` as a drive graph and its traffic-light programs.

    Parameters
    ----------
    path : str or Path
        SUMO network file.

    Returns
    -------
    graph : networkx.MultiDiGraph
        Nodes are SUMO junction ids with ``x``, ``y`` in the net's projected coordinates (the
        ``netOffset`` undone); edges keyed ``(from, to, k)`` with ``length``, ``speed_kph``,
        ``lanes``, ``highway`` (SUMO type, ``highway.`` prefix dropped), ``name``, ``sumo_id``.
        ``graph.graph["crs"]`` is ``EPSG:n`` from the net's ``projParameter``, else
        :data:`LOCAL_CRS`; ``graph.graph["junctions"]`` maps each traffic light to its nodes.
        Only edges that allow passenger cars are kept.
    signals : dict of str to SignalPlan
        The active (last loaded) program of each traffic light, keyed by its id. Programs that
        do not fit a fixed-time plan (cycle outside 40-120 s, a green under 5 s) are logged
        and left out.
    """
    path = Path(path)
    if not path.exists():
        msg = f"SUMO net {path} does not exist"
        raise DataMissingError(msg)
    try:
        net = sumolib.net.readNet(str(path), withPrograms=True)
    except Exception as exc:  # sumolib raises plain SAX errors
        msg = f"SUMO net {path}: cannot be parsed ({exc})"
        raise CorruptInputError(msg) from exc
    ox_, oy_ = net.getLocationOffset()
    graph = nx.MultiDiGraph(crs=_crs_of(net), source=str(path.name))
    for node in net.getNodes():
        x, y = node.getCoord()[:2]
        graph.add_node(node.getID(), x=float(x) - ox_, y=float(y) - oy_, sumo_type=node.getType())
    by_id: dict[str, EdgeKey] = {}
    for edge in net.getEdges():
        if edge.getFunction() == "internal" or not edge.allows("passenger"):
            continue
        u, v = edge.getFromNode().getID(), edge.getToNode().getID()
        etype = edge.getType() or ""
        k = graph.add_edge(
            u,
            v,
            length=float(edge.getLength()),
            speed_kph=float(edge.getSpeed()) * 3.6,
            lanes=int(edge.getLaneNumber()),
            highway=etype.removeprefix("highway.") or "unclassified",
            name=edge.getName() or "",
            sumo_id=edge.getID(),
        )
        by_id[edge.getID()] = (u, v, k)
    graph.graph["sumo_edge_ids"] = by_id
    signals: dict[str, SignalPlan] = {}
    junctions: dict[str, list[Hashable]] = {}
    for tls in net.getTrafficLights():
        links: dict[int, set[EdgeKey]] = {}
        nodes: set[Hashable] = set()
        for in_lane, _out_lane, index in tls.getConnections():
            eid = in_lane.getEdge().getID()
            if eid in by_id:
                links.setdefault(int(index), set()).add(by_id[eid])
                nodes.add(by_id[eid][1])
        junctions[tls.getID()] = sorted(nodes, key=str)
        programs = tls.getPrograms()
        if not programs:
            continue
        pid = list(programs)[-1]  # SUMO runs the program loaded last
        try:
            signals[tls.getID()] = _plan_from_program(tls.getID(), programs[pid], links)
        except InputValidationError as exc:
            log.warning("SUMO traffic light %s program %s left out: %s", tls.getID(), pid, exc)
    graph.graph["junctions"] = junctions
    return graph, signals


def _plan_from_program(tls_id: str, program: Any, links: Mapping[int, set[EdgeKey]]) -> SignalPlan:
    phases = [(str(p.state), float(p.duration)) for p in program.getPhases()]
    is_green = [any(c in "Gg" for c in s) for s, _ in phases]
    if not any(is_green):
        msg = "no green phase"
        raise InputValidationError(msg)
    # rotate so that the program starts with a green phase
    first = is_green.index(True)
    shift = sum(d for _, d in phases[:first])
    phases = phases[first:] + phases[:first]
    greens: list[tuple[tuple[EdgeKey, ...], float, float, float]] = []  # approaches, g, amber, red
    for state, dur in phases:
        if any(c in "Gg" for c in state) and (
            not greens or dur >= 5.0 or greens[-1][2] + greens[-1][3] > 0
        ):
            app = sorted(
                {e for i, c in enumerate(state) if c in "Gg" for e in links.get(i, ())},
                key=repr,
            )
            greens.append((tuple(app), dur, 0.0, 0.0))
        elif "y" in state or any(c in "Gg" for c in state):
            a, g, am, rd = greens[-1]
            greens[-1] = (a, g, am + dur, rd)
        else:
            a, g, am, rd = greens[-1]
            greens[-1] = (a, g, am, rd + dur)
    amber = min(max(min(am for _, _, am, _ in greens), 3.0), 6.0)
    all_red = min(max(min(rd for _, _, _, rd in greens), 0.0), 5.0)
    cycle = sum(g + am + rd for _, g, am, rd in greens)
    plan_phases = tuple(Phase(a, g + (am + rd) - (amber + all_red)) for a, g, am, rd in greens if a)
    offset = (float(getattr(program, "_offset", 0) or 0) + shift) % cycle if cycle else 0.0
    return SignalPlan(tls_id, cycle, offset, plan_phases, amber_s=amber, all_red_s=all_red)


def read_signal_programs(path: str | Path, graph: nx.MultiDiGraph) -> dict[str, SignalProgram]:
    """Read the traffic-light programs of a SUMO net per movement, as they run.

    Unlike the plans of :func:`read_sumo_net` (right of way per approach, cycles of 40-120 s),
    each movement (approach edge to next edge) keeps the green windows of its own links (``G``
    or ``g``; amber and red are not green), and every program is kept whatever its cycle.

    Parameters
    ----------
    path : str or Path
        SUMO network file.
    graph : networkx.MultiDiGraph
        The net as :func:`read_sumo_net` read it (its ``sumo_edge_ids``).

    Returns
    -------
    dict of str to SignalProgram
        The active (last loaded) program of each traffic light.
    """
    path = Path(path)
    try:
        net = sumolib.net.readNet(str(path), withPrograms=True)
    except Exception as exc:  # sumolib raises plain SAX errors
        msg = f"SUMO net {path}: cannot be parsed ({exc})"
        raise CorruptInputError(msg) from exc
    by_id: Mapping[str, EdgeKey] = graph.graph.get("sumo_edge_ids", {})
    out: dict[str, SignalProgram] = {}
    for tls in net.getTrafficLights():
        programs = tls.getPrograms()
        if not programs:
            continue
        program = programs[list(programs)[-1]]  # SUMO runs the program loaded last
        phases = [(str(ph.state), float(ph.duration)) for ph in program.getPhases()]
        cycle = sum(d for _, d in phases)
        if cycle <= 0:
            log.warning("SUMO traffic light %s: program of zero length left out", tls.getID())
            continue
        moves: dict[tuple[EdgeKey, EdgeKey], list[tuple[float, float]]] = {}
        for in_lane, out_lane, index in tls.getConnections():
            a = by_id.get(in_lane.getEdge().getID())
            b = by_id.get(out_lane.getEdge().getID())
            if a is None or b is None:
                continue
            windows = moves.setdefault((a, b), [])
            t = 0.0
            for state, dur in phases:
                if int(index) < len(state) and state[int(index)] in "Gg":
                    windows.append((t, t + dur))
                t += dur
        movements = []
        for (a, b), windows in moves.items():
            merged: list[tuple[float, float]] = []
            for x, y in sorted(set(windows)):
                if merged and x <= merged[-1][1] + 1e-9:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], y))
                else:
                    merged.append((x, y))
            movements.append((a, b, tuple(merged)))
        offset = float(getattr(program, "_offset", 0) or 0) % cycle
        out[tls.getID()] = SignalProgram(tls.getID(), cycle, offset, tuple(movements))
    return out


def read_sumo_routes(path: str | Path, graph: nx.MultiDiGraph) -> list[Trip]:
    """Read vehicles (with routes) and trips from a SUMO route file.

    ``<vehicle>`` elements with a ``<route edges=...>`` child (or a ``route`` reference to a
    top-level ``<route id=...>``) become trips with that route; ``<trip from= to=>`` elements
    become trips from the ``from`` edge's start node to the ``to`` edge's end node, without a
    route. Edge ids are looked up in ``graph.graph["sumo_edge_ids"]`` or the edges' ``sumo_id``.
    """
    path = Path(path)
    if not path.exists():
        msg = f"SUMO routes {path} does not exist"
        raise DataMissingError(msg)
    by_id: dict[str, EdgeKey] = dict(graph.graph.get("sumo_edge_ids") or {})
    if not by_id:
        by_id = {
            str(d["sumo_id"]): (u, v, k)
            for u, v, k, d in graph.edges(keys=True, data=True)
            if "sumo_id" in d
        }

    def edge(eid: str, what: str) -> EdgeKey:
        if eid not in by_id and eid.endswith(POCKET_UPSTREAM):  # before a pocket (write_sumo)
            eid = eid.removesuffix(POCKET_UPSTREAM)
        if eid not in by_id:
            msg = f"SUMO routes {path.name}: {what} edge {eid!r} is not in the network"
            raise InputValidationError(msg)
        return by_id[eid]

    def depart(el: ET.Element) -> float:
        raw = el.get("depart", "0")
        try:
            return float(raw)
        except ValueError:
            msg = f"SUMO routes {path.name}: {el.tag} {el.get('id')!r} depart={raw!r} is not a time"
            raise InputValidationError(msg) from None

    named_routes: dict[str, tuple[EdgeKey, ...]] = {}
    trips: list[Trip] = []
    try:
        for _, el in ET.iterparse(path, events=("end",)):
            if el.tag == "route" and el.get("id") and el.get("edges"):
                named_routes[el.get("id", "")] = _merge_pockets(
                    tuple(edge(e, "route") for e in el.get("edges", "").split())
                )
            elif el.tag == "vehicle":
                vid = el.get("id", "")
                child = el.find("route")
                dist = el.find("routeDistribution")
                if child is None and dist is not None and len(dist.findall("route")):
                    # a vehicle re-routed on its way (vehroute output): the driven route is last
                    child = dist.findall("route")[-1]
                if child is not None:
                    route = _merge_pockets(
                        tuple(edge(e, f"vehicle {vid!r}") for e in child.get("edges", "").split())
                    )
                elif el.get("route") in named_routes:
                    route = named_routes[el.get("route", "")]
                else:
                    msg = f"SUMO routes {path.name}: vehicle {vid!r} has no route"
                    raise InputValidationError(msg)
                trips.append(Trip(vid, route[0][0], route[-1][1], depart(el), route))
                el.clear()
            elif el.tag == "trip":
                vid = el.get("id", "")
                a = edge(el.get("from", ""), f"trip {vid!r} from")
                b = edge(el.get("to", ""), f"trip {vid!r} to")
                trips.append(Trip(vid, a[0], b[1], depart(el)))
                el.clear()
    except ET.ParseError as exc:
        msg = f"SUMO routes {path}: cannot be parsed ({exc})"
        raise CorruptInputError(msg) from exc
    return trips


#: Suffix of the first part of an edge that :func:`write_sumo` splits before a left-turn pocket
#: (the part at the junction keeps the edge's id).
POCKET_UPSTREAM = ".up"


def _pocket_split(d: Mapping[str, Any], lanes: int) -> tuple[float, int] | None:
    """Where to split an edge before its left-turn pocket (m from its end) and the lanes after.

    Only a pocket that adds lanes at the stop line (``lanes_line`` above ``lanes``) and is
    shorter than the edge: ``netconvert`` adds the new lanes on the left (the centre side), and
    its default lane use gives the left turn to them alone. Right-turn pockets are not written
    (``netconvert`` would give the new left lane to the through movement as well).
    """
    n_left = int(d.get("pocket_left") or 0)
    if not n_left:
        return None
    length = float(d.get("length", 0.0))
    pocket_m = float(d.get("pocket_left_m") or 0.0)
    line = int(d.get("lanes_line") or lanes + n_left + int(d.get("pocket_right") or 0))
    if line <= lanes or not 1.0 <= pocket_m <= length - 1.0:
        return None
    return pocket_m, lanes + n_left


def _merge_pockets(route: tuple[EdgeKey, ...]) -> tuple[EdgeKey, ...]:
    """A route read back with an edge's part before its pocket and the part at the junction."""
    return tuple(e for i, e in enumerate(route) if i == 0 or e != route[i - 1])


def _ids(graph: nx.MultiDiGraph) -> tuple[dict[Hashable, str], dict[EdgeKey, str]]:
    node_ids: dict[Hashable, str] = {}
    used: set[str] = set()
    for i, n in enumerate(graph.nodes):
        s = str(n)
        if not _ID_OK.match(s) or s in used:
            s = f"n{i}"
        node_ids[n] = s
        used.add(s)
    edge_ids: dict[EdgeKey, str] = {}
    used = set()
    for i, (u, v, k, d) in enumerate(graph.edges(keys=True, data=True)):
        s = str(d.get("sumo_id") or f"{node_ids[u]}_{node_ids[v]}_{k}")
        if not _ID_OK.match(s) or s in used:
            s = f"e{i}"
        edge_ids[(u, v, k)] = s
        used.add(s)
    return node_ids, edge_ids


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list | tuple) else value


def write_sumo(
    graph: nx.MultiDiGraph,
    *,
    out_dir: str | Path,
    trips: Sequence[Trip] = (),
    plans: Iterable[SignalPlan] = (),
    junctions: Mapping[str, Sequence[Hashable]] | None = None,
    name: str = "twin",
) -> dict[str, Path]:
    """Write a graph, trips and plans as SUMO files, building the net with ``netconvert``.

    Parameters
    ----------
    graph : networkx.MultiDiGraph
        Drive graph (``x``, ``y``; ``length``, ``speed_kph``, ``lanes``). An edge with a
        left-turn pocket (``pocket_left`` lanes of ``pocket_left_m``, :mod:`twin.derive.pockets`)
        is split ``pocket_left_m`` before its end (a ``<split>`` of the edge file): the part at
        the junction keeps the edge's id and has the pocket lanes added on its left, the part
        before it is ``<id>.up`` (:data:`POCKET_UPSTREAM`; routes name both, and
        :func:`read_sumo_routes` reads them back as the one edge). Right-turn pockets are not
        written.
    out_dir : str or Path
        Folder to write into (created).
    trips : sequence of Trip
        Written as ``<vehicle>`` with its ``<route>`` when the trip has one, else as ``<trip>``
        from the first outgoing edge of the origin to the first incoming edge of the destination.
    plans : iterable of SignalPlan
        Fixed-time plans; their junction's nodes become one ``traffic_light`` junction set.
    junctions : mapping of junction id to nodes, optional
        Nodes of each signalised junction; default: the end nodes of the plan's approaches.
    name : str
        File stem.

    Returns
    -------
    dict of str to Path
        ``nodes``, ``edges``, ``net``, ``routes``, ``tls`` (when plans: the programmes, which
        the net already holds), ``config``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plans = list(plans)
    node_ids, edge_ids = _ids(graph)
    tl_of: dict[Hashable, str] = {}
    for plan in plans:
        members = (junctions or {}).get(plan.junction) or sorted(
            {a[1] for a in plan.approaches}, key=str
        )
        for n in members:
            if n not in graph.nodes:
                msg = f"junctions[{plan.junction!r}]: node {n!r} is not in the graph"
                raise InputValidationError(msg)
            tl_of[n] = plan.junction
        for a in plan.approaches:
            if not graph.has_edge(a[0], a[1], a[2]):
                msg = f"SignalPlan({plan.junction}).approaches: edge {a!r} is not in the graph"
                raise InputValidationError(msg)
    crs = str(graph.graph.get("crs", ""))
    xs = [float(d["x"]) for _, d in graph.nodes(data=True)]
    ys = [float(d["y"]) for _, d in graph.nodes(data=True)]
    nodes_el = ET.Element("nodes")
    loc = {
        "netOffset": "0.00,0.00",
        "convBoundary": f"{min(xs):.2f},{min(ys):.2f},{max(xs):.2f},{max(ys):.2f}",
        "origBoundary": "0,0,0,0",
        "projParameter": crs if crs.upper().startswith("EPSG:") else "!",
    }
    ET.SubElement(nodes_el, "location", loc)
    for n, d in graph.nodes(data=True):
        attrs = {"id": node_ids[n], "x": f"{float(d['x']):.3f}", "y": f"{float(d['y']):.3f}"}
        if n in tl_of:
            attrs.update(type="traffic_light", tl=tl_of[n], tlType="static")
        ET.SubElement(nodes_el, "node", attrs)
    edges_el = ET.Element("edges")
    upstream: dict[EdgeKey, str] = {}  # edges split before a left-turn pocket: their first part
    for u, v, k, d in graph.edges(keys=True, data=True):
        lanes = max(int(float(_first(d.get("lanes", 1)) or 1)), 1)
        attrs = {
            "id": edge_ids[(u, v, k)],
            "from": node_ids[u],
            "to": node_ids[v],
            "numLanes": str(lanes),
            "speed": f"{float(_first(d.get('speed_kph', 50.0))) / 3.6:.4f}",
            "length": f"{float(d['length']):.3f}",
        }
        if d.get("name"):
            attrs["name"] = str(_first(d["name"]))
        el = ET.SubElement(edges_el, "edge", attrs)
        split = _pocket_split(d, lanes)
        if split is not None:
            eid = edge_ids[(u, v, k)]
            upstream[(u, v, k)] = f"{eid}{POCKET_UPSTREAM}"
            ET.SubElement(
                el,
                "split",
                {
                    "pos": f"{-split[0]:.2f}",
                    "lanes": " ".join(str(i) for i in range(split[1])),
                    "id": f"{eid}.pocket",
                    "idBefore": upstream[(u, v, k)],
                    "idAfter": eid,
                },
            )
    paths = {
        "nodes": out / f"{name}.nod.xml",
        "edges": out / f"{name}.edg.xml",
        "net": out / f"{name}.net.xml",
        "routes": out / f"{name}.rou.xml",
        "config": out / f"{name}.sumocfg",
    }
    _write_xml(nodes_el, paths["nodes"])
    _write_xml(edges_el, paths["edges"])
    cmd = [
        sumo_binary("netconvert"),
        "--node-files",
        str(paths["nodes"]),
        "--edge-files",
        str(paths["edges"]),
        "--offset.disable-normalization",
        "true",
        "--output-file",
        str(paths["net"]),
        "--no-warnings",
        "true",
    ]
    _run(cmd, what="netconvert")
    # routes
    routes_el = ET.Element("routes")
    out_edges: dict[Hashable, str] = {}
    in_edges: dict[Hashable, str] = {}
    for u, v, k in graph.edges(keys=True):
        out_edges.setdefault(u, upstream.get((u, v, k), edge_ids[(u, v, k)]))
        in_edges.setdefault(v, edge_ids[(u, v, k)])

    def sumo_edges(e: EdgeKey) -> str:
        return f"{upstream[e]} {edge_ids[e]}" if e in upstream else edge_ids[e]

    for t in sorted(trips, key=lambda t: (t.depart_s, t.id)):
        if t.route:
            el = ET.SubElement(routes_el, "vehicle", {"id": t.id, "depart": f"{t.depart_s:.2f}"})
            # tuple(): a caller may give an edge key as a list (Trip does not convert it)
            edges = " ".join(sumo_edges(cast(EdgeKey, tuple(e))) for e in t.route)
            ET.SubElement(el, "route", {"edges": edges})
        else:
            if t.origin_node not in out_edges or t.dest_node not in in_edges:
                msg = f"trip {t.id!r}: its origin has no outgoing edge or its end no incoming edge"
                raise InputValidationError(msg)
            ET.SubElement(
                routes_el,
                "trip",
                {
                    "id": t.id,
                    "depart": f"{t.depart_s:.2f}",
                    "from": out_edges[t.origin_node],
                    "to": in_edges[t.dest_node],
                },
            )
    _write_xml(routes_el, paths["routes"])
    if plans:
        # the link indices of the first build number our states; the second build carries
        # the programmes, so that netconvert sets each junction's right of way for *their*
        # phases (SUMO finds an added programme "incompatible with logic" otherwise)
        paths["tls"] = out / f"{name}.tls.add.xml"
        links = _tl_links(paths["net"], [p.junction for p in plans])
        hold: dict[str, dict[int, set[int]]] = {}
        for _ in range(_MAX_HOLD_ROUNDS):
            _write_tls(links, plans, edge_ids, paths["tls"], hold=hold)
            _run([*cmd, "--tllogic-files", str(paths["tls"])], what="netconvert")
            mutual = _mutual_minor_greens(paths["net"])
            if not mutual or not _hold_one_of_each(mutual, links, plans, edge_ids, hold):
                break
        if mutual:
            log.warning(
                "SUMO export: %d pair(s) of links that yield to each other keep a common "
                "yielding green (traffic lights %s): SUMO will find those programmes "
                "incompatible with the junctions' logic",
                len(mutual),
                ", ".join(sorted({m[0] for m in mutual})[:10]),
            )
        held = sum(len(v) for by_stage in hold.values() for v in by_stage.values())
        if held:
            log.info(
                "SUMO export: %d link(s) held red for one stage at %d traffic light(s), "
                "where two links would yield to each other",
                held,
                len(hold),
            )
    cfg = ET.Element("configuration")
    inp = ET.SubElement(cfg, "input")
    ET.SubElement(inp, "net-file", {"value": paths["net"].name})
    ET.SubElement(inp, "route-files", {"value": paths["routes"].name})
    _write_xml(cfg, paths["config"])
    return paths


@dataclasses.dataclass(frozen=True)
class _Link:
    """One link (signal index) of a SUMO traffic light: from an edge to a lane."""

    edge: str
    to_lane: str
    direction: str


#: SUMO link directions that give way on a green: left turns (``l``, ``L``) and U-turns (``t``).
_YIELDING = frozenset({"l", "L", "t"})
#: Order in which green links of a phase take the one major (``G``) green into a lane.
_RANK = {"s": 0, "r": 1, "R": 1}


#: Rounds of building the net, finding links that yield to each other on a common yielding
#: green, and holding one of them red for that stage (one pair per round and light, mostly).
_MAX_HOLD_ROUNDS = 6

#: SUMO's minor link states (``g`` yielding green, ``o`` blinking, ``s`` stop then go).
_MINOR = frozenset("gos")


def _tl_links(net_path: Path, tl_ids: Iterable[str]) -> dict[str, dict[int, _Link]]:
    """The links of each traffic light, by signal index, as the first build numbered them."""
    net = sumolib.net.readNet(str(net_path), withPrograms=True)
    out: dict[str, dict[int, _Link]] = {}
    for tl_id in tl_ids:
        links: dict[int, _Link] = {}
        for in_lane, out_lane, index in net.getTLS(tl_id).getConnections():
            con = [c for c in in_lane.getOutgoing() if c.getToLane() is out_lane]
            links[int(index)] = _Link(
                in_lane.getEdge().getID(),
                out_lane.getID(),
                con[0].getDirection() if con else "s",
            )
        out[tl_id] = links
    return out


def _mutual_minor_greens(net_path: Path) -> list[tuple[str, int, int, int]]:
    """Pairs of links that must yield to each other and share a yielding green.

    netconvert may give two links of a junction a *mutual* response (each must yield to the
    other: two turns merging into one lane, a turn crossing a left turn that waits inside the
    junction); where a programme shows both a yielding green at once, neither goes, and SUMO
    reports the programme "incompatible with logic at junction" (``MSTrafficLightLogic``, the
    check it runs on loading). Returns ``(traffic light, phase, link, link)``, signal indices.
    """
    response: dict[str, list[str]] = {}
    tl_index: dict[tuple[str, int], tuple[str, int]] = {}  # (junction, link) -> (tl, index)
    states: dict[str, list[str]] = {}
    for _, el in ET.iterparse(net_path, events=("end",)):
        if el.tag == "junction":
            if el.get("type") != "internal":
                reqs = sorted(el.iter("request"), key=lambda r: int(r.get("index", "0")))
                if reqs:
                    response[el.get("id", "")] = [r.get("response", "") for r in reqs]
            el.clear()
        elif el.tag == "connection":
            via, tl = el.get("via"), el.get("tl")
            if via and tl and el.get("linkIndex") is not None:
                # the first internal lane of a link, ':<junction>_<i>_<lane>', is its link i + lane
                junction, edge_no, lane_no = via[1:].rsplit("_", 2)
                tl_index[(junction, int(edge_no) + int(lane_no))] = (
                    tl,
                    int(el.get("linkIndex", 0)),
                )
        elif el.tag == "tlLogic":
            states[el.get("id", "")] = [ph.get("state", "") for ph in el.iter("phase")]
    found: list[tuple[str, int, int, int]] = []
    for junction, resp in response.items():
        n = len(resp)
        for u in range(n):
            for v in range(u + 1, n):
                if not (resp[u][n - 1 - v] == "1" and resp[v][n - 1 - u] == "1"):
                    continue
                a, b = tl_index.get((junction, u)), tl_index.get((junction, v))
                if a is None or b is None or a[0] != b[0] or a[0] not in states:
                    continue
                for k, st in enumerate(states[a[0]]):
                    if st[a[1]] in _MINOR and st[b[1]] in _MINOR:
                        found.append((a[0], k, a[1], b[1]))
    return found


def _stage_of(plan: SignalPlan, phase: int) -> int:
    """The stage of a plan that a SUMO phase of :func:`_write_tls` belongs to."""
    return phase // (3 if plan.all_red_s > 0 else 2)


def _hold_one_of_each(
    mutual: Sequence[tuple[str, int, int, int]],
    links: Mapping[str, Mapping[int, _Link]],
    plans: Sequence[SignalPlan],
    edge_ids: Mapping[EdgeKey, str],
    hold: dict[str, dict[int, set[int]]],
) -> bool:
    """Hold one link of each mutual pair red for the stage; False if nothing new is held.

    The link held is, in order: one our plan does not signal (an edge inside a junction of
    several graph nodes, green throughout otherwise), a turn that yields on its green (left
    turn, U-turn), the later signal index. The other keeps its green.
    """
    by_id = {p.junction: p for p in plans}
    added = False
    for tl, phase, a, b in mutual:
        plan = by_id[tl]
        signalled = {edge_ids[e] for p in plan.phases for e in p.approaches}

        def keep_first(i: int, tl: str = tl, signalled: set[str] = signalled) -> tuple[int, ...]:
            lk = links[tl][i]
            return (lk.edge in signalled, lk.direction not in _YIELDING, -i)

        held = min((a, b), key=keep_first)
        stage = hold.setdefault(tl, {}).setdefault(_stage_of(plan, phase), set())
        if held not in stage:
            stage.add(held)
            added = True
    return added


def _write_tls(
    links_by_tl: Mapping[str, Mapping[int, _Link]],
    plans: Sequence[SignalPlan],
    edge_ids: Mapping[EdgeKey, str],
    out: Path,
    *,
    hold: Mapping[str, Mapping[int, set[int]]] | None = None,
) -> None:
    """Our plans as SUMO ``tlLogic`` programmes (``programID="twin"``), with their offsets.

    The links of the edges a plan's phases name show the plan's greens, ambers and all-reds;
    the other links of the traffic light (edges *inside* a junction of several graph nodes,
    approaches left to another junction's plan) are not signalled by the plan and show a
    yielding green (``g``) throughout, as the DES leaves them uncontrolled. In each state at
    most one green link enters a lane as major (``G``): through movements first, then right
    turns; the others merging into that lane, and left turns and U-turns, yield (``g``). SUMO
    warns "unsafe green phase" otherwise: two major streams merging with neither giving way.

    ``hold`` names, per traffic light and stage (a phase of the plan), links shown red for that
    whole stage: where netconvert makes two links yield to each other (see
    :func:`_mutual_minor_greens`), one of them waits. A held link that was green shows amber
    at the end of the stage before.
    """
    root = ET.Element("additional")
    for plan in plans:
        links = links_by_tl[plan.junction]
        n_links = max(links) + 1
        held = (hold or {}).get(plan.junction, {})
        sets = [{edge_ids[a] for a in p.approaches} for p in plan.phases]
        signalled = set().union(*sets)
        free = {lk.edge for lk in links.values()} - signalled

        el = ET.SubElement(
            root,
            "tlLogic",
            {
                "id": plan.junction,
                "type": "static",
                "programID": "twin",
                "offset": f"{plan.offset_s:.2f}",
            },
        )
        for i, p in enumerate(plan.phases):
            nxt = sets[(i + 1) % len(sets)]
            keep = sets[i] & nxt
            now, then = held.get(i, set()), held.get((i + 1) % len(sets), set())
            # (duration, green edges, amber edges, links red, links from green to amber)
            states: list[tuple[float, set[str], set[str], set[int], set[int]]] = [
                (p.green_s, sets[i], set(), now, set())
            ]
            states.append((plan.amber_s, keep, sets[i] - keep, now, then - now))
            if plan.all_red_s > 0:
                states.append((plan.all_red_s, keep, set(), now | then, set()))
            for duration, green, amber, red, to_amber in states:
                chars = list(_state(n_links, links, green, amber, free=free))
                for j in red:
                    chars[j] = "r"
                for j in to_amber:
                    if chars[j] in "Gg":
                        chars[j] = "y"
                ET.SubElement(el, "phase", {"duration": f"{duration:.2f}", "state": "".join(chars)})
    _write_xml(root, out)


def _state(
    n_links: int,
    links: Mapping[int, _Link],
    green: set[str] | frozenset[str],
    amber: set[str] | frozenset[str] = frozenset(),
    *,
    free: set[str] | frozenset[str] = frozenset(),
) -> str:
    """SUMO state string: ``G`` (one per target lane), ``g`` (yielding), ``y``, ``r``.

    ``green`` edges are signalled green, ``free`` ones are green but unsignalled: they take a
    lane's major green only after the signalled ones.

    >>> links = {0: _Link("a", "x_0", "s"), 1: _Link("b", "x_0", "r"), 2: _Link("b", "y_0", "l")}
    >>> _state(3, links, {"a", "b"}), _state(3, links, {"b"}), _state(3, links, set(), {"a"})
    ('Ggg', 'rGg', 'yrr')
    >>> _state(3, links, {"b"}, free={"a"})
    'gGg'
    """
    chars = ["r"] * n_links
    lit = sorted(
        (i for i, lk in links.items() if lk.edge in green or lk.edge in free),
        key=lambda i: (links[i].edge in free, _RANK.get(links[i].direction, 2), i),
    )
    major: set[str] = set()
    for i in lit:
        lk = links[i]
        if lk.direction in _YIELDING or lk.to_lane in major:
            chars[i] = "g"
        else:
            chars[i] = "G"
            major.add(lk.to_lane)
    for i, lk in links.items():
        if chars[i] == "r" and lk.edge in amber:
            chars[i] = "y"
    return "".join(chars)


def _write_xml(root: ET.Element, path: Path) -> None:
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _run(cmd: list[str], *, what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        msg = f"{what} failed (exit {res.returncode}): {res.stderr.strip()[-2000:]}"
        raise CorruptInputError(msg)


def import_sumo(
    net_path: str | Path, routes_path: str | Path | None = None
) -> tuple[nx.MultiDiGraph, dict[str, SignalPlan], list[Trip]]:
    """Back end of ``twin import sumo NET.xml [--routes R.xml]``.

    Returns the graph and signal plans of :func:`read_sumo_net`, and the trips of
    :func:`read_sumo_routes` (empty without ``routes_path``).
    """
    graph, signals = read_sumo_net(net_path)
    trips = read_sumo_routes(routes_path, graph) if routes_path is not None else []
    return graph, signals, trips


def export_sumo(
    graph: nx.MultiDiGraph,
    *,
    out_dir: str | Path,
    trips: Sequence[Trip] = (),
    plans: Iterable[SignalPlan] = (),
    junctions: Mapping[str, Sequence[Hashable]] | None = None,
    check: bool = True,
) -> dict[str, Path]:
    """Back end of ``twin export sumo --out DIR``: :func:`write_sumo`, then a SUMO check run.

    With ``check``, SUMO loads the written configuration and simulates it to the end
    (``sumo -c ... --no-step-log``); a failure raises :class:`CorruptInputError` with SUMO's
    message.
    """
    paths = write_sumo(graph, out_dir=out_dir, trips=trips, plans=plans, junctions=junctions)
    if check:
        end = max((t.depart_s for t in trips), default=0.0) + 3600.0
        _run(
            [
                sumo_binary("sumo"),
                "-c",
                str(paths["config"]),
                "--no-step-log",
                "true",
                "--no-warnings",
                "true",
                "--end",
                f"{math.ceil(end)}",
            ],
            what="sumo",
        )
    return paths
