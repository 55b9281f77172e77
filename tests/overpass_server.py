"""A small local Overpass API server for offline tests.

It serves a real OSM XML extract (for instance ``TWIN_DATA/osm/bondy.osm``) over HTTP on
127.0.0.1, and answers ``/api/interpreter`` queries (POST or GET, parameter ``data``) the way the
Overpass API does for the query shapes osmnx sends:

- ``way[...](poly:'...');>;`` (street network) and
- ``(node['k'='v'](poly:'...');(._;>;););`` ... (features),

with ``{"version": 0.6, "elements": [...]}``: nodes with lat/lon/tags, ways with node ids/tags,
relations with members (type/ref/role). Tag filters ``["k"]``, ``["k"="v"]``, ``["k"!="v"]``,
``["k"~"re"]`` and ``["k"!~"re"]`` are honoured, as is the ``poly:`` filter (a node inside the
polygon; a way or relation with a member node inside it) and the ``>`` recursion (a way's nodes, a
relation's member ways and nodes, and those ways' nodes). Members absent from the extract are
absent from the answer, as at the edge of a clipped extract. ``/api/status`` answers like
Overpass's status page. Every query received is recorded in :attr:`OverpassServer.queries`.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import shapely

__all__ = ["OverpassServer", "load_osm_xml"]

Key = tuple[str, int]

_STATEMENT = re.compile(
    r"(node|way|relation)((?:\[[^\]]*\])*)\(poly:(['\"])([-0-9. ]+)\3\)"  # kind, filters, poly
    r"(\s*;\s*\(\s*\._\s*;\s*>\s*;\s*\)|\s*;\s*>)?"  # recursion: `;(._;>;)` or `;>`
)
_FILTER = re.compile(r"\[\s*(['\"])(.*?)\1\s*(?:(!=|!~|=|~)\s*(['\"])(.*?)\4)?\s*\]")


def load_osm_xml(path: Path) -> dict[Key, dict[str, Any]]:
    """Read an OSM XML file into Overpass-JSON elements keyed by ``(type, id)``."""
    elements: dict[Key, dict[str, Any]] = {}
    for _, elem in ET.iterparse(path, events=("end",)):
        kind = elem.tag
        if kind not in {"node", "way", "relation"}:
            continue
        tags = {t.get("k"): t.get("v") for t in elem.iter("tag")}
        osm_id = int(elem.get("id", "0"))
        out: dict[str, Any] = {"type": kind, "id": osm_id}
        if kind == "node":
            out["lat"] = float(elem.get("lat", "nan"))
            out["lon"] = float(elem.get("lon", "nan"))
        elif kind == "way":
            out["nodes"] = [int(nd.get("ref", "0")) for nd in elem.iter("nd")]
        else:
            out["members"] = [
                {"type": m.get("type"), "ref": int(m.get("ref", "0")), "role": m.get("role", "")}
                for m in elem.iter("member")
            ]
        if tags:
            out["tags"] = tags
        elements[(kind, osm_id)] = out
        elem.clear()
    return elements


def _tag_filter(filters: str) -> list[tuple[str, str | None, str | None]]:
    return [(m.group(2), m.group(3), m.group(5)) for m in _FILTER.finditer(filters)]


def _matches(tags: dict[str, str], filters: list[tuple[str, str | None, str | None]]) -> bool:
    for key, op, value in filters:
        have = tags.get(key)
        if op is None:
            ok = have is not None
        elif op == "=":
            ok = have == value
        elif op == "!=":
            ok = have != value
        elif op == "~":
            ok = have is not None and re.search(value or "", have) is not None
        else:  # "!~": true when the tag is absent or does not match
            ok = have is None or re.search(value or "", have) is None
        if not ok:
            return False
    return True


class OverpassServer:
    """Serve an OSM extract through an Overpass-like HTTP API on 127.0.0.1.

    Use as a context manager; :attr:`url` is the base endpoint (to put in ``overpass_url``).
    """

    def __init__(self, osm_file: Path) -> None:
        self.elements = load_osm_xml(osm_file)
        self.queries: list[dict[str, str]] = []
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        nodes = [e for (k, _), e in self.elements.items() if k == "node"]
        self._node_ids = np.array([n["id"] for n in nodes], dtype=np.int64)
        self._node_xy = np.array([(n["lon"], n["lat"]) for n in nodes], dtype=float)

    # --- editing the extract (for synthetic fixtures) -------------------------------------
    def close_relation(
        self, relation_id: int, ring: Iterable[tuple[float, float]], *, first_id: int
    ) -> list[int]:
        """Replace a relation's members by one synthetic closed outer way along ``ring``.

        The relation keeps its real tags. New nodes get ids ``first_id``, ``first_id + 1``...
        and the way id ``first_id`` too (ids are per type). Returns the new node ids.
        """
        relation = self.elements[("relation", relation_id)]
        coords = list(ring)
        node_ids = []
        for i, (lon, lat) in enumerate(coords):
            nid = first_id + i
            self.elements[("node", nid)] = {"type": "node", "id": nid, "lat": lat, "lon": lon}
            node_ids.append(nid)
        self.elements[("way", first_id)] = {
            "type": "way",
            "id": first_id,
            "nodes": [*node_ids, node_ids[0]],
        }
        relation["members"] = [{"type": "way", "ref": first_id, "role": "outer"}]
        self._node_ids = np.concatenate([self._node_ids, np.array(node_ids, dtype=np.int64)])
        self._node_xy = np.vstack([self._node_xy, np.array(coords, dtype=float)])
        return node_ids

    def add_node(self, node_id: int, lon: float, lat: float, tags: dict[str, str]) -> None:
        """Add a synthetic tagged node to the extract."""
        self.elements[("node", node_id)] = {
            "type": "node",
            "id": node_id,
            "lat": lat,
            "lon": lon,
            "tags": dict(tags),
        }
        self._node_ids = np.append(self._node_ids, np.int64(node_id))
        self._node_xy = np.vstack([self._node_xy, [[lon, lat]]])

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """Bounds ``(left, bottom, right, top)`` of every node of the extract."""
        x, y = self._node_xy[:, 0], self._node_xy[:, 1]
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())

    # --- query evaluation -----------------------------------------------------------------
    def _nodes_inside(self, polygon: shapely.Polygon) -> set[int]:
        inside = shapely.intersects_xy(polygon, self._node_xy[:, 0], self._node_xy[:, 1])
        return set(self._node_ids[inside].tolist())

    def _members_inside(
        self, element: dict[str, Any], polygon: shapely.Polygon, inside: set[int]
    ) -> bool:
        """Node in the polygon; way with a node in it or crossing it; relation with such members."""
        if element["type"] == "node":
            return element["id"] in inside
        if element["type"] == "way":
            if any(n in inside for n in element["nodes"]):
                return True
            xy = [
                (self.elements[("node", n)]["lon"], self.elements[("node", n)]["lat"])
                for n in element["nodes"]
                if ("node", n) in self.elements
            ]
            return len(xy) >= 2 and shapely.LineString(xy).intersects(polygon)
        for m in element["members"]:
            child = self.elements.get((m["type"], m["ref"]))
            if (
                child is not None
                and child["type"] != "relation"
                and self._members_inside(child, polygon, inside)
            ):
                return True
        return False

    def _recurse(self, key: Key) -> Iterator[Key]:
        element = self.elements[key]
        if element["type"] == "way":
            for n in element["nodes"]:
                if ("node", n) in self.elements:
                    yield ("node", n)
        elif element["type"] == "relation":
            for m in element["members"]:
                child = (m["type"], m["ref"])
                if child not in self.elements or m["type"] == "relation":
                    continue
                yield child
                yield from self._recurse(child)

    def evaluate(self, query: str) -> dict[str, Any]:
        """Answer an Overpass QL query (the subset osmnx sends) with Overpass JSON."""
        result: set[Key] = set()
        statements = list(_STATEMENT.finditer(query))
        if not statements:
            msg = f"unsupported query: {query[:200]!r}"
            raise ValueError(msg)
        cache: dict[str, tuple[shapely.Polygon, set[int]]] = {}
        for st in statements:
            kind, filters = st.group(1), _tag_filter(st.group(2))
            poly, recurse = st.group(4), st.group(5)
            if poly not in cache:
                values = [float(v) for v in poly.split()]
                polygon = shapely.Polygon(list(zip(values[1::2], values[0::2], strict=True)))
                cache[poly] = (polygon, self._nodes_inside(polygon))
            polygon, inside = cache[poly]
            for key, element in self.elements.items():
                if key[0] != kind or not _matches(element.get("tags", {}), filters):
                    continue
                if not self._members_inside(element, polygon, inside):
                    continue
                result.add(key)
                if recurse:
                    result.update(self._recurse(key))
        order = {"node": 0, "way": 1, "relation": 2}
        keys = sorted(result, key=lambda k: (order[k[0]], k[1]))
        return {
            "version": 0.6,
            "generator": "tests/overpass_server.py",
            "osm3s": {
                "copyright": "The data included in this document is from www.openstreetmap.org."
            },
            "elements": [self.elements[k] for k in keys],
        }

    # --- HTTP -----------------------------------------------------------------------------
    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def _answer(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self, method: str, params: dict[str, list[str]]) -> None:
                path = urllib.parse.urlsplit(self.path).path
                with owner._lock:
                    owner.requests.append(f"{method} {path}")
                if path.endswith("/status"):
                    text = (
                        "Connected as: 2130706433\nCurrent time: 2024-01-01T00:00:00Z\n"
                        "Announced endpoint: none\nRate limit: 2\n2 slots available now.\n"
                        "Currently running queries (pid, space limit, time limit, start time):\n"
                    )
                    self._answer(200, text.encode(), "text/plain")
                    return
                if not path.endswith("/interpreter") or "data" not in params:
                    self._answer(404, b"not found", "text/plain")
                    return
                query = params["data"][0]
                with owner._lock:
                    owner.queries.append({"method": method, "path": path, "data": query})
                try:
                    answer = owner.evaluate(query)
                except ValueError as e:
                    self._answer(400, str(e).encode(), "text/plain")
                    return
                self._answer(200, json.dumps(answer).encode(), "application/json")

            def do_GET(self) -> None:
                query = urllib.parse.urlsplit(self.path).query
                self._route("GET", urllib.parse.parse_qs(query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                self._route("POST", urllib.parse.parse_qs(body))

        return Handler

    @property
    def url(self) -> str:
        """Base endpoint, e.g. ``http://127.0.0.1:54321/api``."""
        if self._server is None:
            msg = "server not started"
            raise RuntimeError(msg)
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api"

    def __enter__(self) -> OverpassServer:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
