from __future__ import annotations

import itertools
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import osmnx as ox
import pyproj
import pytest
import shapely

import twin
from twin.osm import read_extract


def test_read_osm_xml_keeps_streets_and_features(data_root):
    ext = read_extract(data_root / "osm" / "bondy.osm")
    highways = [h for *_, h in ext.graph.edges(data="highway")]
    assert None not in highways
    assert {"primary", "residential"} <= {h if isinstance(h, str) else h[0] for h in highways}
    assert ext.graph.graph["crs"] == "EPSG:2154" == ext.crs  # chosen: Bondy is in France
    f = ext.features
    assert (f["highway"] == "traffic_signals").sum() == 14
    assert (f["man_made"] == "surveillance").sum() == 1
    # projected: Bondy is around x=661 km, y=6865 km in Lambert-93
    x, y = f.geometry.iloc[0].representative_point().coords[0]
    assert 650_000 < x < 670_000 and 6_855_000 < y < 6_875_000


def test_read_graphml_takes_signals_from_node_tags(data_root):
    ext = read_extract(data_root / "osm" / "paris-trocadero.graphml")
    assert ext.graph.number_of_nodes() == 1496
    assert ext.graph.number_of_edges() == 3495
    assert (ext.features["highway"] == "traffic_signals").sum() == 78


def test_pbf_goes_through_the_same_path(data_root, tmp_path):
    import osmium

    pbf = tmp_path / "bondy.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    for obj in osmium.FileProcessor(str(data_root / "osm" / "bondy.osm")):
        writer.add(obj)
    writer.close()
    a = read_extract(data_root / "osm" / "bondy.osm")
    b = read_extract(pbf)
    assert a.graph.number_of_edges() == b.graph.number_of_edges()
    assert len(a.features) == len(b.features)


@pytest.mark.parametrize("name", ["osm/bondy.osm", "osm/paris-trocadero.graphml"])
def test_truncated_file_names_file_and_line(data_root, tmp_path, name):
    src = data_root / name
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(twin.CorruptInputError) as err:
        read_extract(bad)
    msg = str(err.value)
    assert str(bad) in msg
    assert "line " in msg


def test_truncated_pbf_names_the_file(data_root, tmp_path):
    import osmium

    pbf = tmp_path / "full.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    for obj in osmium.FileProcessor(str(data_root / "osm" / "bondy.osm")):
        writer.add(obj)
    writer.close()
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(pbf.read_bytes()[: pbf.stat().st_size // 2])
    with twin.set_options(cache=tmp_path / "cache"), pytest.raises(twin.CorruptInputError) as err:
        read_extract(cut)
    assert "cut.osm.pbf" in str(err.value)


def test_missing_extract(tmp_path):
    with pytest.raises(twin.DataMissingError):
        read_extract(tmp_path / "nothing.osm")


def test_osm_cli_path_for_any_extract(data_root, tmp_path):
    copy = tmp_path / "somewhere.osm"
    shutil.copy(data_root / "osm" / "bondy.osm", copy)
    tw = twin.load(osm=copy)
    assert tw.name == "somewhere"
    assert tw.counts()["junction"] == 7


# --- clipped extracts ---------------------------------------------------------------------------
def clip_osm(src, dst, region):
    """Cut an OSM XML file as Overpass without recursion and `osmium extract -s simple` do.

    Nodes outside ``region`` (a shapely geometry in lon/lat) are dropped; ways with at least one
    node inside are kept whole, with every node reference (the outside ones now dangle); ways
    with no node inside are dropped; relations are kept.
    """
    tree = ET.parse(src)
    root = tree.getroot()
    inside = set()
    for node in root.findall("node"):
        pt = shapely.Point(float(node.get("lon")), float(node.get("lat")))
        if region.contains(pt):
            inside.add(node.get("id"))
        else:
            root.remove(node)
    for way in root.findall("way"):
        if not any(nd.get("ref") in inside for nd in way.findall("nd")):
            root.remove(way)
    tree.write(dst, encoding="utf-8", xml_declaration=True)
    return inside


def kept_length_m(path):
    """Great-circle length (as osmnx measures) of the consecutive present nodes of highways."""
    root = ET.parse(path).getroot()
    pos = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    total = 0.0
    for way in root.iter("way"):
        if not any(t.get("k") == "highway" for t in way.iter("tag")):
            continue
        refs = [nd.get("ref") for nd in way.iter("nd")]
        for a, b in itertools.pairwise(refs):
            if a in pos and b in pos and a != b:
                (lon1, lat1), (lon2, lat2) = pos[a], pos[b]
                total += float(ox.distance.great_circle(lat1, lon1, lat2, lon2))
    return total


BONDY_BOX = shapely.box(2.4800, 48.9080, 2.4880, 48.9120)
# a quadrilateral across the extract, edges oblique to the streets
BONDY_POLYGON = shapely.Polygon(
    [(2.4790, 48.9090), (2.4850, 48.9070), (2.4905, 48.9105), (2.4830, 48.9125)]
)


@pytest.mark.parametrize("region", [BONDY_BOX, BONDY_POLYGON], ids=["bbox", "polygon"])
def test_clipped_extract_loads_and_keeps_only_present_parts(data_root, tmp_path, region):
    src = data_root / "osm" / "bondy.osm"
    cut = tmp_path / "cut.osm"
    clip_osm(src, cut, region)
    # osmnx alone stops on such a file
    with pytest.raises(ValueError, match="missing nodes"):
        ox.graph_from_xml(cut, simplify=False, retain_all=True)
    ext = read_extract(cut)
    rep = ext.clipped
    assert rep.ways > 10 and rep.parts >= rep.ways - rep.dropped and rep.missing_nodes > 0
    assert rep.other_ways > 0  # buildings cut at the edge
    # every street vertex is a node of the file: inside the region
    seg_geoms = [d["geometry"] for *_, d in ext.graph.edges(data=True) if "geometry" in d]
    xy = np.vstack([np.asarray(g.coords) for g in seg_geoms])
    lon, lat = twin.crs.to_lonlat(xy[:, 0], xy[:, 1], crs=ext.crs)
    assert shapely.contains_xy(region.buffer(1e-6), lon, lat).all()
    # nothing joined across a missing node, nothing lost: the graph's length is exactly the
    # length of the consecutive pairs of present nodes
    seen = set()
    total = 0.0
    for u, v, d in ext.graph.edges(data=True):
        xy = shapely.get_coordinates(d["geometry"]) if "geometry" in d else np.empty((0, 2))
        key = (min(u, v), max(u, v), min(xy.tobytes(), xy[::-1].copy().tobytes()))
        if key not in seen:  # the two directions of a street once
            seen.add(key)
            total += d["length"]
    assert total == pytest.approx(kept_length_m(cut), rel=1e-9)
    # the twin reports what was clipped
    tw = twin.load(osm=cut, progress=False)
    assert tw.meta["clipped"] == rep.to_dict()
    assert tw.info()["clipped"]["ways"] == rep.ways
    assert tw.counts()["segment"] > 50


def test_clipped_pbf_made_with_pyosmium_loads_the_same(data_root, tmp_path):
    import osmium

    cut = tmp_path / "cut.osm"
    clip_osm(data_root / "osm" / "bondy.osm", cut, BONDY_POLYGON)
    pbf = tmp_path / "cut.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    for obj in osmium.FileProcessor(str(cut)):
        writer.add(obj)
    writer.close()
    with twin.set_options(cache=tmp_path / "cache"):
        a = read_extract(cut)
        b = read_extract(pbf)
    assert b.clipped == a.clipped and a.clipped.ways > 0
    assert b.graph.number_of_edges() == a.graph.number_of_edges()
    assert b.files == [pbf]


def _xml(body: str, meta: str = "") -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">{meta}\n{body}\n</osm>\n'


def _node(i: int, lon: float, lat: float, tags: dict[str, str] | None = None) -> str:
    inner = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in (tags or {}).items())
    ts = 'timestamp="2021-06-01T00:00:00Z"'
    return f'<node id="{i}" lat="{lat}" lon="{lon}" version="1" {ts}>{inner}</node>'


def _way(i: int, refs: list[int], tags: dict[str, str]) -> str:
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    inner = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f'<way id="{i}" version="1" timestamp="2021-06-01T00:00:00Z">{nds}{inner}</way>'


def _row(first: int, n: int, lat: float, lon0: float = 2.48, step: float = 0.001) -> list[str]:
    return [_node(first + j, lon0 + j * step, lat) for j in range(n)]


def test_hand_written_clipped_ways(tmp_path):
    # way 100: nodes 1..5 with 3 missing -> two pieces (1-2, 4-5), never joined
    # way 101: nodes 6, 7 both missing -> dropped
    # way 102: nodes 8..10 with 8 missing -> one piece (9-10)
    # way 103: complete; way 200: a building with a missing corner
    nodes = [
        _node(1, 2.480, 48.90),
        _node(2, 2.481, 48.90),
        _node(4, 2.483, 48.90),
        _node(5, 2.484, 48.90),
        _node(9, 2.481, 48.91),
        _node(10, 2.482, 48.91),
        *_row(20, 3, 48.92),
        *_row(30, 3, 48.93),
    ]
    ways = [
        _way(100, [1, 2, 3, 4, 5], {"highway": "residential"}),
        _way(101, [6, 7], {"highway": "residential"}),
        _way(102, [8, 9, 10], {"highway": "tertiary"}),
        _way(103, [20, 21, 22], {"highway": "residential"}),
        _way(200, [30, 31, 32, 99, 30], {"building": "yes"}),
    ]
    path = tmp_path / "hand.osm"
    path.write_text(_xml("\n".join(nodes + ways)), encoding="utf-8")
    ext = read_extract(path)
    assert ext.clipped.to_dict() == {
        "ways": 3,
        "dropped": 1,
        "parts": 3,
        "missing_nodes": 4,
        "other_ways": 1,
    }
    g = ext.graph
    assert not g.has_edge(2, 4) and not g.has_edge(4, 2)
    assert g.has_edge(1, 2) and g.has_edge(4, 5) and g.has_edge(9, 10)
    # both pieces of way 100 keep its id
    assert {d["osmid"] for u, v, d in g.edges(data=True) if {u, v} <= {1, 2, 4, 5}} == {100}
    assert {6, 7, 8, 3} & set(g.nodes) == set()


def test_no_highway_is_one_clear_error(tmp_path):
    path = tmp_path / "buildings.osm"
    nodes = _row(1, 4, 48.9)
    path.write_text(_xml("\n".join([*nodes, _way(5, [1, 2, 3, 4, 1], {"building": "yes"})])))
    with pytest.raises(twin.CorruptInputError, match="holds no highway") as err:
        read_extract(path)
    assert str(path) in str(err.value)
    # every highway clipped away
    lost = tmp_path / "lost.osm"
    lost.write_text(_xml("\n".join([*nodes, _way(6, [1, 7, 2], {"highway": "residential"})])))
    with pytest.raises(twin.CorruptInputError, match="not in the file"):
        read_extract(lost)


def test_not_osm_and_not_graphml_are_one_clear_error(data_root, tmp_path, capsys):
    from twin.cli import main

    graphml_as_osm = tmp_path / "wrong.osm"
    shutil.copy(data_root / "osm" / "paris-trocadero.graphml", graphml_as_osm)
    with pytest.raises(twin.CorruptInputError, match="not OSM XML") as err:
        read_extract(graphml_as_osm)
    assert "<graphml>" in str(err.value) and str(graphml_as_osm) in str(err.value)
    osm_as_graphml = tmp_path / "wrong.graphml"
    shutil.copy(data_root / "osm" / "bondy.osm", osm_as_graphml)
    with pytest.raises(twin.CorruptInputError, match="not GraphML"):
        read_extract(osm_as_graphml)
    # the command line: exit code 2 and one line naming the file, no traceback
    for bad in (graphml_as_osm, osm_as_graphml):
        assert main(["info", "--osm", str(bad)]) == 2
        err_text = capsys.readouterr().err.strip()
        assert len(err_text.splitlines()) == 1 and bad.name in err_text
        assert "Traceback" not in err_text


def test_a_graphml_node_outside_the_globe_names_the_file_and_node(data_root, tmp_path):
    """A damaged GraphML file whose node latitude reads 244,314,980 degrees (a digit run
    joined to the next value, as a cut file can give) is refused naming the file and the node,
    not left to fail later in the choice of a working CRS with no file named."""
    import re

    text = (data_root / "osm" / "paris-trocadero.graphml").read_text(encoding="utf-8")
    key = re.search(r'<key id="(d\d+)" for="node" attr.name="y"', text)
    assert key is not None
    y = re.compile(rf'<data key="{key.group(1)}">([-0-9.]+)</data>')
    first = y.search(text)
    assert first is not None and 48.0 < float(first.group(1)) < 49.0
    bad = tmp_path / "damaged.graphml"
    bad.write_text(text[: first.start(1)] + "244314980.4270267" + text[first.end(1) :])
    with pytest.raises(twin.CorruptInputError, match=r"damaged\.graphml: node .* y=244314980"):
        read_extract(bad)


# --- anywhere on Earth ----------------------------------------------------------------------------
BONDY_CENTRE = (2.4845, 48.9098)


def moved_osm(src, dst, lon, lat):
    """bondy.osm translated so that its centre lands on (lon, lat); node id -> (lon, lat)."""
    dlon, dlat = lon - BONDY_CENTRE[0], lat - BONDY_CENTRE[1]
    tree = ET.parse(src)
    pos = {}
    for node in tree.getroot().iter("node"):
        x, y = float(node.get("lon")) + dlon, float(node.get("lat")) + dlat
        node.set("lon", f"{x:.7f}")
        node.set("lat", f"{y:.7f}")
        pos[int(node.get("id"))] = (x, y)
    for b in tree.getroot().iter("bounds"):
        for k, d in (("minlon", dlon), ("maxlon", dlon), ("minlat", dlat), ("maxlat", dlat)):
            b.set(k, f"{float(b.get(k)) + d:.7f}")
    tree.write(dst, encoding="utf-8", xml_declaration=True)
    return pos


@pytest.mark.parametrize(
    ("place", "lon", "lat", "epsg", "zone"),
    [
        ("quebec", -71.2080, 46.8139, "EPSG:32619", "America/Toronto"),
        ("sydney", 151.2093, -33.8688, "EPSG:32756", "Australia/Sydney"),
    ],
)
def test_extract_elsewhere_gets_its_utm_zone_unrotated(
    data_root, tmp_path, place, lon, lat, epsg, zone
):
    path = tmp_path / f"{place}.osm"
    pos = moved_osm(data_root / "osm" / "bondy.osm", path, lon, lat)
    tw = twin.load(osm=path, progress=False)
    assert tw.crs == epsg == tw.graph.graph["crs"] == tw.registry.crs == tw.meta["crs"]
    assert tw.info()["crs"] == epsg and tw.info()["graph"]["crs"] == epsg
    # its nights are read in the zone where it lies, not in Paris's
    assert tw.city.timezone == zone == tw.meta["timezone"] == tw.info()["timezone"]
    assert tw.registry["light"].crs.to_epsg() == int(epsg[5:])
    # every street edge, end to end: projected bearing and length against the geodesic ones
    geod = pyproj.Geod(ellps="WGS84")
    seg = tw.registry["segment"]
    nodes = tw.graph.nodes
    pairs = [(u, v) for u, v in zip(seg["u"], seg["v"], strict=True) if u != v]
    dx = np.array([nodes[v]["x"] - nodes[u]["x"] for u, v in pairs])
    dy = np.array([nodes[v]["y"] - nodes[u]["y"] for u, v in pairs])
    lon1, lat1 = np.array([pos[u] for u, _ in pairs]).T
    lon2, lat2 = np.array([pos[v] for _, v in pairs]).T
    azimuth, _, dist = geod.inv(lon1, lat1, lon2, lat2)
    far = dist > 30
    bearing = np.degrees(np.arctan2(dx, dy))
    turn = (bearing - azimuth + 180) % 360 - 180
    # within the zone, grid north is within ~1.6 degrees of true north (meridian convergence)
    assert np.abs(turn[far]).max() < 2.0
    assert np.hypot(dx, dy)[far] / dist[far] == pytest.approx(1.0, abs=1e-3)
    # Lambert-93, the old fixed CRS, turns these extracts by tens of degrees
    x1, y1 = twin.crs.to_lambert93(lon1, lat1)
    x2, y2 = twin.crs.to_lambert93(lon2, lat2)
    old = (np.degrees(np.arctan2(x2 - x1, y2 - y1)) - azimuth + 180) % 360 - 180
    assert np.abs(old[far]).min() > 20
    # lon/lat in and out go through the twin's CRS
    left, bottom, right, top = tw.bbox
    assert left < lon < right and bottom < lat < top
    light = tw.registry["light"].iloc[0]
    llon, llat = twin.crs.to_lonlat(
        np.array([light.geometry.x]), np.array([light.geometry.y]), crs=tw.crs
    )
    near = tw.registry.nearest((float(llon[0]), float(llat[0])), kind="light")
    assert near.index[0] == light.name and near["distance_m"].iloc[0] < 0.01
    from twin.export import to_geojson

    fc = to_geojson(tw, kinds="junction")
    assert fc["working_crs"] == epsg
    jlon, jlat = np.array([f["geometry"]["coordinates"] for f in fc["features"]]).T
    assert (np.abs(jlon - lon) < 0.02).all() and (np.abs(jlat - lat) < 0.02).all()


def test_the_definition_crs_wins(data_root, tmp_path):
    ext = read_extract(data_root / "osm" / "bondy.osm", crs="EPSG:32631")
    assert ext.crs == ext.graph.graph["crs"] == "EPSG:32631"
    assert ext.features.crs.to_epsg() == 32631
    with pytest.raises(twin.InputValidationError, match="not a projected CRS"):
        read_extract(data_root / "osm" / "bondy.osm", crs="EPSG:4326")
