"""`twin data fetch`: the recipe run by osmnx against a local Overpass server (offline).

The server (tests/overpass_server.py) answers Overpass queries from the real OSM extract
``TWIN_DATA/osm/bondy.osm``. What is synthetic: that extract holds Bondy's admin boundary
relation (real tags: admin_level 8, ref:INSEE 93010, population) with only 2 of its 27 member
ways, so it cannot form a polygon; the tests swap its members for one closed way around the
extract's nodes. Two street cabinets are added to test the recipe's ``only_if`` rule (the
extract has none), and a small street list stands in for the 2019 Dijon lists in the coverage
test. Expected figures come from reading the same XML with osmium, independently of the fetch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import geopandas as gpd
import osmium
import osmnx as ox
import pandas as pd
import pytest
import shapely
from overpass_server import OverpassServer

from twin._errors import DataMissingError, InputValidationError, UnknownCityError
from twin.cities import get_city
from twin.fetch import (
    Manifest,
    OverpassUnreachableError,
    fetch_city,
    load_recipe,
    street_coverage,
)
from twin.settings import set_options

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TWIN_DATA", REPO.parent / "shared" / "data"))
if not DATA.is_absolute():
    DATA = (REPO / DATA).resolve()
BONDY_OSM = DATA / "osm" / "bondy.osm"
BONDY_RELATION = 158667  # boundary=administrative, admin_level=8, Bondy
PAVILLONS_RELATION = 162521  # Les Pavillons-sous-Bois: 2 of its 11 member ways in the extract
SYNTHETIC_ID = 10**11

pytestmark = pytest.mark.skipif(not BONDY_OSM.is_file(), reason="TWIN_DATA/osm/bondy.osm missing")

# network_type="all" in osmnx 2.1: highway ways minus areas and these values
_EXCLUDED = {
    *("abandoned", "construction", "no", "planned", "platform", "proposed"),
    *("raceway", "razed", "rest_area", "services"),
}


class _Reference(osmium.SimpleHandler):  # type: ignore[misc]
    """Read the extract with osmium: the figures the fetch must reproduce."""

    def __init__(self) -> None:
        super().__init__()
        self.node_tags: dict[int, dict[str, str]] = {}
        self.way_tags: dict[int, dict[str, str]] = {}
        self.way_nodes: dict[int, list[int]] = {}

    def node(self, n: Any) -> None:
        if len(n.tags):
            self.node_tags[n.id] = {t.k: t.v for t in n.tags}

    def way(self, w: Any) -> None:
        self.way_tags[w.id] = {t.k: t.v for t in w.tags}
        self.way_nodes[w.id] = [nd.ref for nd in w.nodes]

    def nodes_with(self, key: str, value: str) -> set[int]:
        return {i for i, t in self.node_tags.items() if t.get(key) == value}

    def ways_with(self, key: str, value: str) -> set[int]:
        return {i for i, t in self.way_tags.items() if t.get(key) == value}

    def street_ways(self) -> set[int]:
        return {
            i
            for i, t in self.way_tags.items()
            if "highway" in t and t.get("area") != "yes" and t["highway"] not in _EXCLUDED
        }


@pytest.fixture(scope="module")
def ref() -> _Reference:
    handler = _Reference()
    handler.apply_file(str(BONDY_OSM))
    return handler


def _server() -> OverpassServer:
    server = OverpassServer(BONDY_OSM)
    left, bottom, right, top = server.extent
    m = 1e-4
    ring = [
        (left - m, bottom - m),
        (right + m, bottom - m),
        (right + m, top + m),
        (left - m, top + m),
    ]
    server.close_relation(BONDY_RELATION, ring, first_id=SYNTHETIC_ID)
    lon, lat = (left + right) / 2, (bottom + top) / 2
    server.add_node(
        SYNTHETIC_ID + 10, lon, lat, {"man_made": "street_cabinet", "street_cabinet": "lighting"}
    )
    server.add_node(
        SYNTHETIC_ID + 11,
        lon + 1e-4,
        lat,
        {"man_made": "street_cabinet", "street_cabinet": "power"},
    )
    return server


def _recipe(**boundary: Any) -> dict[str, Any]:
    """The real Dijon recipe, with Bondy's search box and output names."""
    recipe, _ = load_recipe(REPO / "data" / "dijon_osm" / "recipe.toml")
    recipe["name"] = "bondy-test"
    recipe["boundary"].update(boundary)
    recipe["output"].update(
        folder="bondy_osm", graph="bondy.graphml", features="bondy_features.geojson"
    )
    recipe["coverage"] = {"reference": "streets/*.streets.csv"}
    return recipe


def _definition(*communes: tuple[str, str]) -> dict[str, Any]:
    return {
        "name": "bondy",
        "source": {"kind": "osm", "fetch": "bondy"},
        "boundary": {
            "kind": "communes",
            "communes": [{"insee": c, "name": n} for c, n in communes],
        },
    }


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory, ref: _Reference) -> dict[str, Any]:
    dest = tmp_path_factory.mktemp("fetch")
    data_root = tmp_path_factory.mktemp("data")
    streets = sorted(ref.street_ways())[:3]
    (data_root / "streets").mkdir()
    (data_root / "streets" / "93010_-_Bondy.streets.csv").write_text(
        "voie;name;name_norm;last_word_norm;ways\n"
        f"RUE;A;A;A;{streets[0]},{streets[1]}\nRUE;B;B;B;{streets[2]},1\nRUE;C;C;C;2\n",
        encoding="utf-8",
    )
    server = _server()
    before = (ox.settings.overpass_url, ox.settings.use_cache, list(ox.settings.useful_tags_way))
    getaddrinfo = socket.getaddrinfo
    left, bottom, right, top = server.extent
    recipe = _recipe(search_bbox=[left, bottom, right, top])
    t0 = dt.datetime.now(dt.UTC)
    with server, set_options(data=data_root):
        manifest = fetch_city(
            _definition(("93010", "Bondy")),
            dest=dest,
            overpass_url=server.url,
            recipe=recipe,
            progress=False,
        )
    return {
        "manifest": manifest,
        "dest": dest,
        "server": server,
        "t0": t0,
        "settings_before": before,
        "settings_after": (
            ox.settings.overpass_url,
            ox.settings.use_cache,
            list(ox.settings.useful_tags_way),
        ),
        "getaddrinfo": (getaddrinfo, socket.getaddrinfo),
        "streets": streets,
    }


def test_graph_holds_the_streets_and_signals(fetched: dict[str, Any], ref: _Reference) -> None:
    G = ox.load_graphml(fetched["dest"] / "bondy_osm" / "bondy.graphml")
    assert str(G.graph["crs"]).lower() == "epsg:4326"
    way_ids: set[int] = set()
    for _, _, osmid in G.edges(data="osmid"):
        way_ids.update(osmid if isinstance(osmid, list) else [osmid])
    assert way_ids == ref.street_ways()
    # signals stay graph nodes through simplification (recipe graph.keep_nodes)
    # (2 of the 14 signal nodes of the extract lie only on boundary ways: their streets were
    # clipped off, so they are features but not graph nodes)
    street_nodes = {n for w in ref.street_ways() for n in ref.way_nodes[w]}
    signals = {n for n, h in G.nodes(data="highway") if h == "traffic_signals"}
    assert signals == ref.nodes_with("highway", "traffic_signals") & street_nodes
    assert len(signals) == 12
    # recipe useful_tags_way: `lit` reaches the edges (a merged edge lists its ways' values)
    lit_in_graph: set[int] = set()
    for _, _, d in G.edges(data=True):
        ways = d["osmid"] if isinstance(d["osmid"], list) else [d["osmid"]]
        lit = d.get("lit", [])
        if "yes" in (lit if isinstance(lit, list) else [lit]):
            lit_in_graph.update(ways)
        if len(ways) == 1:
            assert d.get("lit") == ref.way_tags[ways[0]].get("lit")
    lit_streets = ref.ways_with("lit", "yes") & ref.street_ways()
    assert lit_streets
    assert lit_streets <= lit_in_graph
    counts = fetched["manifest"].counts
    assert (counts["nodes"], counts["edges"]) == (len(G), len(G.edges))
    assert counts["graph_traffic_signals"] == len(signals)


def test_features_file(fetched: dict[str, Any], ref: _Reference) -> None:
    gdf = gpd.read_file(fetched["dest"] / "bondy_osm" / "bondy_features.geojson")
    assert gdf.crs.to_epsg() == 4326
    assert {"element", "osmid", "feature", "name", "amenity", "population"} <= set(gdf.columns)
    cameras = gdf[gdf["man_made"] == "surveillance"]
    assert set(cameras["osmid"]) == ref.nodes_with("man_made", "surveillance") != set()
    schools = gdf[gdf["amenity"] == "school"]
    expected = {("node", i) for i in ref.nodes_with("amenity", "school")}
    expected |= {("way", i) for i in ref.ways_with("amenity", "school")}
    assert set(zip(schools["element"], schools["osmid"], strict=True)) == expected
    assert set(schools.geom_type) == {"Point", "Polygon"}
    signals = gdf[gdf["highway"] == "traffic_signals"]
    assert set(signals["osmid"]) == ref.nodes_with("highway", "traffic_signals")
    assert len(signals) == 14  # figure given by the data README
    # only the lighting cabinet passes the recipe's only_if rule
    cabinets = gdf[gdf["man_made"] == "street_cabinet"]
    assert list(cabinets["osmid"]) == [SYNTHETIC_ID + 10]
    # the commune boundary with its real OSM tags
    commune = gdf[gdf["feature"] == "boundary=administrative"]
    assert list(commune["ref:INSEE"]) == ["93010"]
    assert list(commune["population"]) == [ref_relation_tag("population")]
    # counts in the manifest agree with the file
    by_tag = fetched["manifest"].counts["features_by_tag"]
    assert fetched["manifest"].counts["features"] == len(gdf)
    assert by_tag["highway=traffic_signals"] == len(signals)
    assert by_tag["amenity=school"] == len(expected)
    assert by_tag["man_made=street_cabinet"] == 1
    assert by_tag["shop=*"] == int(gdf["shop"].notna().sum())
    raw = json.loads((fetched["dest"] / "bondy_osm" / "bondy_features.geojson").read_text("utf-8"))
    assert raw["attribution"] == "© OpenStreetMap contributors"
    scalar = (str, int, float, type(None))
    assert all(isinstance(v, scalar) for f in raw["features"] for v in f["properties"].values())


def ref_relation_tag(key: str) -> str:
    text = BONDY_OSM.read_text(encoding="utf-8")
    block = text[text.index(f'<relation id="{BONDY_RELATION}"') :]
    block = block[: block.index("</relation>")]
    found = re.search(rf'<tag k="{re.escape(key)}" v="([^"]*)"', block)
    assert found is not None
    return found.group(1)


def test_manifest(fetched: dict[str, Any]) -> None:
    manifest: Manifest = fetched["manifest"]
    dest: Path = fetched["dest"]
    assert manifest.path == (dest / "bondy_osm" / "manifest.json").resolve()
    names = {f.name for f in manifest.files}
    assert names == {
        "bondy_osm/boundary.geojson",
        "bondy_osm/bondy.graphml",
        "bondy_osm/bondy_features.geojson",
    }
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert on_disk == names | {"bondy_osm/manifest.json"}
    for f in manifest.files:
        content = (dest / f.name).read_bytes()
        assert f.bytes == len(content)
        assert f.sha256 == hashlib.sha256(content).hexdigest()
    assert manifest.licence == "ODbL-1.0"
    assert manifest.attribution == "© OpenStreetMap contributors"
    assert manifest.osmnx_version == ox.__version__
    assert manifest.overpass_url == fetched["server"].url
    assert manifest.fetched_at.tzinfo is not None
    assert fetched["t0"] - dt.timedelta(seconds=1) <= manifest.fetched_at <= dt.datetime.now(dt.UTC)
    assert manifest.communes[0]["insee"] == "93010"
    assert manifest.communes[0]["population"] == int(ref_relation_tag("population"))
    canonical = json.dumps(_recipe(search_bbox=list(fetched["server"].extent)), sort_keys=True)
    assert manifest.recipe_sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    again = Manifest.read(manifest.path)
    assert again == manifest
    raw = json.loads(manifest.path.read_text("utf-8"))
    assert raw["fetched_at"].endswith("+00:00")
    # coverage: 3 of the 5 way ids of the street list are streets of the extract
    assert manifest.coverage is not None
    assert (manifest.coverage["way_ids"], manifest.coverage["present"]) == (5, 3)
    assert manifest.coverage["by_commune"] == {"93010": 0.6}


def test_queries_and_settings(fetched: dict[str, Any]) -> None:
    server: OverpassServer = fetched["server"]
    queries = [q["data"] for q in server.queries]
    assert len(queries) == 3
    assert all(f"({kind}['admin_level'='8']" in queries[0] for kind in ("node", "way", "relation"))
    assert queries[1].count('way["highway"]') == 1
    assert "(node['highway'='traffic_signals']" in queries[2]
    assert "(relation['shop']" in queries[2]
    assert not any(r.endswith("/status") for r in server.requests)  # rate-limit call disabled
    assert fetched["settings_before"] == fetched["settings_after"]
    assert fetched["getaddrinfo"][0] is fetched["getaddrinfo"][1]


def test_bbox_recipe(tmp_path: Path, ref: _Reference) -> None:
    with _server() as server:
        left, bottom, right, top = _declared_bounds()
        box = [left, bottom, (left + right) / 2, top]  # the western half of the extract
        recipe = _recipe(kind="bbox", bbox=box)
        definition = {"name": "bondy-west", "source": {"fetch": "unused"}}
        manifest = fetch_city(
            definition, dest=tmp_path, overpass_url=server.url, recipe=recipe, progress=False
        )
    G = ox.load_graphml(tmp_path / "bondy_osm" / "bondy.graphml")
    xs = [x for _, x in G.nodes(data="x")]
    assert min(xs) >= left - 1e-9
    assert max(xs) <= box[2] + 1e-9
    assert 0 < len(G.edges) < len(ref.street_ways()) * 2
    boundary = gpd.read_file(tmp_path / "bondy_osm" / "boundary.geojson")
    assert len(boundary) == 1
    assert boundary.geometry.iloc[0].equals(shapely.box(*box))
    assert manifest.communes == ()


def _declared_bounds() -> tuple[float, float, float, float]:
    with BONDY_OSM.open(encoding="utf-8") as f:
        head = "".join(next(f) for _ in range(5))
    found = re.search(
        r'<bounds minlat="([-.0-9]+)" minlon="([-.0-9]+)" maxlat="([-.0-9]+)" maxlon="([-.0-9]+)"',
        head,
    )
    assert found is not None
    minlat, minlon, maxlat, maxlon = (float(v) for v in found.groups())
    return minlon, minlat, maxlon, maxlat


def test_missing_commune_is_named(tmp_path: Path) -> None:
    with _server() as server:
        left, bottom, right, top = server.extent
        recipe = _recipe(search_bbox=[left, bottom, right, top])
        # Les Pavillons-sous-Bois: a real relation of the extract, but clipped (9 of 11 ways
        # missing), so no polygon can be built; Montreuil: absent altogether
        definition = _definition(
            ("93010", "Bondy"), ("93057", "Les Pavillons-sous-Bois"), ("93048", "Montreuil")
        )
        with pytest.raises(
            DataMissingError, match=r"93057 \(Les Pavillons-sous-Bois\), 93048 \(Montreuil\)"
        ) as err:
            fetch_city(
                definition, dest=tmp_path, overpass_url=server.url, recipe=recipe, progress=False
            )
    assert "93010" not in str(err.value)
    assert not (tmp_path / "bondy_osm" / "manifest.json").exists()


def _dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def test_unreachable_endpoint_names_it_and_the_offline_way(tmp_path: Path) -> None:
    url = _dead_endpoint()
    with pytest.raises(OverpassUnreachableError) as err:
        fetch_city("dijon", dest=tmp_path, overpass_url=url, progress=False)
    text = str(err.value)
    assert url in text
    assert "--city montpellier" in text
    assert "TWIN_DATA=../shared/data" in text
    assert isinstance(err.value, ConnectionError)


def test_default_destination_is_the_recipe_root(tmp_path: Path) -> None:
    from twin.fetch import _writable_root

    with set_options(data=tmp_path):
        assert _writable_root("dijon") == REPO / "data"
        assert _writable_root(_recipe()) == tmp_path


def test_endpoint_from_settings(tmp_path: Path) -> None:
    url = _dead_endpoint()
    with (
        set_options(overpass_url=url),
        pytest.raises(OverpassUnreachableError, match=re.escape(url)),
    ):
        fetch_city("dijon", dest=tmp_path, progress=False)


def test_dijon_recipe_covers_the_metropolis() -> None:
    recipe, digest = load_recipe("dijon")
    assert len(digest) == 64
    assert recipe["boundary"]["kind"] == "communes"
    box = shapely.box(*recipe["boundary"]["search_bbox"])
    path = DATA / "dijon-velo" / "amenagements-cyclables.csv"
    if not path.is_file():
        pytest.skip("dijon-velo data missing")
    cycle = pd.read_csv(path, sep=";")
    shapes = [shapely.geometry.shape(json.loads(s)) for s in cycle["geo_shape"].dropna()]
    assert box.contains(shapely.union_all(shapes))
    # the 24 communes of the definition are those of the 2019 street lists
    lists = sorted((DATA / "dijon-streets-2019").glob("*.streets.csv"))
    codes = {p.name.split("_-_")[0] for p in lists}
    assert {c["insee"] for c in get_city("dijon").boundary["communes"]} == codes
    assert len(codes) == 24


def test_bad_input_names_the_field(tmp_path: Path) -> None:
    recipe = _recipe(search_bbox=[5.2, 47.2, 4.9, 47.4])
    with pytest.raises(InputValidationError, match=r"recipe\.boundary\.search_bbox"):
        fetch_city(_definition(("93010", "Bondy")), dest=tmp_path, recipe=recipe)
    with pytest.raises(InputValidationError, match=r"source\.fetch"):
        fetch_city("montpellier", dest=tmp_path)
    with pytest.raises(UnknownCityError, match="available: .*dijon"):
        fetch_city("atlantis", dest=tmp_path)
    bad = _recipe(kind="circle")
    with pytest.raises(InputValidationError, match=r"recipe\.boundary\.kind"):
        load_recipe(bad)
    with pytest.raises(InputValidationError, match=r"boundary\.communes"):
        fetch_city(_definition(), dest=tmp_path, recipe=_recipe(), overpass_url=_dead_endpoint())


def test_street_coverage_by_commune(tmp_path: Path) -> None:
    a = tmp_path / "21003_-_Ahuy.streets.csv"
    b = tmp_path / "21231_-_Dijon.streets.csv"
    a.write_text("voie;name;name_norm;last_word_norm;ways\nRUE;X;X;X;1,2,3\n", encoding="utf-8")
    b.write_text(
        "voie;name;name_norm;last_word_norm;ways\nRUE;Y;Y;Y;4\nRUE;Z;Z;Z;3\n", encoding="utf-8"
    )
    cov = street_coverage({1, 4, 99}, [a, b])
    assert (cov["way_ids"], cov["present"], cov["share"]) == (4, 2, 0.5)
    assert cov["by_commune"] == {"21003": round(1 / 3, 4), "21231": 0.5}


def test_fetched_extract_loads_as_a_twin(fetched: dict[str, Any], tmp_path: Path) -> None:
    """What the recipe writes is what `twin.load("dijon")` reads: graph + features, same path."""
    import dataclasses

    import twin

    dest = fetched["dest"]
    graphml = next(dest.rglob("*.graphml"))
    features = next(p for p in dest.rglob("*.geojson") if "feature" in p.name)
    city = dataclasses.replace(
        get_city("dijon"),
        name="fetched-bondy",
        source={"kind": "osm", "graph": str(graphml), "features": str(features)},
    )
    with set_options(cache=tmp_path):
        tw = twin.load(city, progress=False)
    counts = tw.counts()
    assert counts["camera"] == 1
    assert counts["junction"] >= 5
    assert counts["building"] > 5
    assert counts["light"] > 100
    assert tw.meta["source_kind"] == "osm"
