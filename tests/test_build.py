from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import shapely
from scipy.spatial.distance import pdist

import twin
from twin.build import CABINET_MAX, JUNCTION_DIAMETER_M


def test_montpellier_from_municipal_files(montpellier):
    c = montpellier.counts()
    assert c["light"] == 29_969
    assert montpellier.meta["lights_by_source"] == {"inventory": 29_969}
    # the inventory gives no wattage: every light took its road class's default
    assert montpellier.meta["lights_power_defaulted"] == 29_969
    # 373 signal points; a few stand within one junction
    assert 340 <= c["junction"] <= 373
    assert c["segment"] > 8_000
    assert c["cabinet"] >= 29_969 // CABINET_MAX


def test_montpellier_graph_is_routable(montpellier):
    import networkx as nx

    drive = montpellier.drive
    biggest = max(nx.strongly_connected_components(drive), key=len)
    assert len(biggest) > 0.8 * drive.number_of_nodes()
    # inferred classes: the boulevards and avenues are main roads
    seg = montpellier.registry["segment"]
    assert set(seg["highway"]) >= {"primary", "secondary", "tertiary", "residential", "pedestrian"}
    assert (seg["lighting_class"].str[0].isin(["M", "C", "P"])).all()


def test_montpellier_signals_snap_to_graph_nodes(montpellier):
    j = montpellier.registry["junction"]
    assert (j["nodes"].str.len() > 0).all()
    assert (j["n_signals"].sum()) == 373


def test_cabinets_hold_20_to_60_neighbouring_lights(montpellier):
    reg = montpellier.registry
    cab = reg["cabinet"]
    assert cab["n_lights"].between(20, 60).all()
    sizes = reg["light"].groupby("cabinet").size()
    assert (sizes.reindex(cab.index).to_numpy() == cab["n_lights"].to_numpy()).all()
    # each contract by the documented rule: real power = kVA x 1000 x power factor
    assert (cab["contract_source"] == "rule").all()
    np.testing.assert_allclose(
        cab["contracted_power_w"], cab["contracted_kva"] * 1000.0 * cab["power_factor"]
    )
    # neighbours: a feeder spans at most a few hundred metres
    lights = reg["light"]
    spans = []
    for cid in cab.index[:50]:
        xy = shapely.get_coordinates(lights.geometry[lights["cabinet"] == cid].values)
        spans.append(np.ptp(xy, axis=0).max())
    assert np.median(spans) < 600


def test_paris_signals_cluster_into_junctions(paris):
    reg = paris.registry
    j = reg["junction"]
    assert j["n_signals"].sum() == 78
    assert 30 <= len(j) <= 60
    pts = paris.meta["signal_points"]
    assert len(pts) == 78
    # complete linkage: no two signals of one junction further apart than the diameter
    for _, row in j.iterrows():
        if row.n_signals > 1:
            near = pts[np.hypot(*(pts - [row.geometry.x, row.geometry.y]).T) <= JUNCTION_DIAMETER_M]
            assert len(near) >= row.n_signals or pdist(near).max() <= 2 * JUNCTION_DIAMETER_M
    assert reg["approach"]["junction"].nunique() == len(j)


def test_derived_lights_are_seeded_and_deterministic(data_root):
    a = twin.load("paris-trocadero", seed=1, rebuild=True, progress=False)
    b = twin.load("paris-trocadero", seed=1, rebuild=True, progress=False)
    c = twin.load("paris-trocadero", seed=2, rebuild=True, progress=False)
    la, lb, lc = (t.registry["light"] for t in (a, b, c))
    assert la.index.equals(lb.index)
    assert shapely.equals(la.geometry.values, lb.geometry.values).all()
    assert len(lc) != len(la) or not shapely.equals(la.geometry.values, lc.geometry.values).all()
    # expected count is length / spacing on lit segments: seeds agree within a few %
    assert abs(len(lc) - len(la)) / len(la) < 0.05
    assert set(la["source"]) == {"derived"}


def test_derived_lights_follow_spacing(paris):
    from twin.assets.lighting import ROAD_CLASSES

    seg = paris.registry["segment"]
    lights = paris.registry["light"]
    lit = seg[(seg["lit"] == "yes") | seg["lit_assumed"]]
    expected = (
        lit["length_m"] / ROAD_CLASSES["spacing_m"].reindex(lit["highway"]).to_numpy()
    ).sum()
    assert abs(len(lights) - expected) / expected < 0.05


def test_cache_warm_load_and_rebuild_on_change(data_root, tmp_path):
    src = tmp_path / "bondy-copy.osm"
    shutil.copy(data_root / "osm" / "bondy.osm", src)
    with twin.set_options(cache=tmp_path / "cache"):
        t0 = time.perf_counter()
        cold = twin.load(osm=src, progress=False)
        cold_s = time.perf_counter() - t0
        warm = twin.load(osm=src, progress=False)
        assert "loaded_from_cache_s" in warm.meta
        assert warm.counts() == cold.counts()
        assert len(list((tmp_path / "cache" / "twins").iterdir())) == 1
        # change one tag: a different checksum, so a rebuild
        text = src.read_text(encoding="utf-8")
        src.write_text(text.replace('k="lit" v="yes"', 'k="lit" v="no"', 5), encoding="utf-8")
        changed = twin.load(osm=src, progress=False)
        assert "loaded_from_cache_s" not in changed.meta
        assert len(list((tmp_path / "cache" / "twins").iterdir())) == 2
    assert cold_s > 0


def test_info_follows_design_contract(montpellier):
    info = montpellier.info()
    assert {"city", "counts", "bbox", "source", "date", "attribution"} <= set(info)
    assert {"light", "cabinet", "segment", "junction", "camera", "sensor"} <= set(info["counts"])
    left, bottom, right, top = info["bbox"]
    assert 3.7 < left < right < 4.0 and 43.5 < bottom < top < 43.7
    assert "Montpellier" in info["attribution"]
    assert info["date"].startswith("201")


def test_bondy_has_osm_assets(bondy):
    c = bondy.counts()
    assert c["camera"] == 1
    assert c["junction"] == 7
    assert c["building"] > 5
    assert c["poi"] > 20
    assert bondy.meta["lights_by_source"] == {"derived": c["light"]}


@pytest.mark.slow
def test_saint_germain_without_lit_tags_uses_lit_by_default(data_root):
    tw = twin.load("saint-germain-en-laye", progress=False)
    seg = tw.registry["segment"]
    assert (seg["lit"] == "unknown").all()
    assert seg["lit_assumed"].sum() > 0
    assert tw.counts()["light"] > 1_000


# --- hand-written OSM XML ------------------------------------------------------------------------
def write_osm(path, nodes, ways, *, meta=""):
    """OSM XML from {id: (lon, lat, tags)} and {id: (refs, tags)}."""

    def tags(t):
        return "".join(f'<tag k="{k}" v="{v}"/>' for k, v in t.items())

    stamp = 'version="1" timestamp="2021-06-01T12:00:00Z"'
    lines = [f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">{meta}']
    for i, (lon, lat, t) in nodes.items():
        lines.append(f'<node id="{i}" lat="{lat}" lon="{lon}" {stamp}>{tags(t)}</node>')
    for i, (refs, t) in ways.items():
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        lines.append(f'<way id="{i}" {stamp}>{nds}{tags(t)}</way>')
    lines.append("</osm>\n")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --- signals: junctions and signalised crossings ------------------------------------------------
def test_crossing_signals_join_their_junction_or_stand_alone(tmp_path):
    crossing = {"highway": "crossing", "crossing": "traffic_signals"}
    nodes = {
        1: (2.4800, 48.9000, {}),
        2: (2.4815, 48.9000, crossing),  # mid-block, ~110 m from the junction
        3: (2.4830, 48.9000, {"highway": "traffic_signals"}),
        4: (2.4850, 48.9000, {}),
        5: (2.4830, 48.90018, {"highway": "crossing", "crossing:signals": "yes"}),  # 20 m north
        6: (2.4830, 48.9015, {}),
    }
    ways = {
        100: ([1, 2, 3, 4], {"highway": "residential", "name": "Rue Est-Ouest"}),
        101: ([3, 5, 6], {"highway": "residential", "name": "Rue Nord"}),
    }
    tw = twin.load(osm=write_osm(tmp_path / "signals.osm", nodes, ways), progress=False)
    j = tw.registry["junction"]
    assert len(j) == 2 and tw.meta["signals"] == 3 and tw.meta["signals_crossing"] == 2
    junction = j[j["kind"] == "junction"].iloc[0]
    alone = j[j["kind"] == "crossing"].iloc[0]
    assert junction["n_signals"] == 2 and junction["nodes"] == "3"
    assert junction["n_approaches"] == 3
    assert alone["n_signals"] == 1 and alone["nodes"] == "" and alone["n_approaches"] == 2
    app = tw.registry["approach"]
    mine = app[app["junction"] == alone.name]
    assert {(u, v) for u, v in zip(mine["u"], mine["v"], strict=True)} == {(1, 3), (3, 1)}
    x, y = twin.crs.to_xy(np.array([2.4815]), np.array([48.9]), crs=tw.crs)
    stop = shapely.Point(float(x[0]), float(y[0]))
    for geom in mine.geometry:  # each approach ends at the crossing, 30 m long
        assert shapely.get_point(geom, -1).distance(stop) < 0.5
        assert geom.length == pytest.approx(30.0, abs=0.5)
    assert set(mine["bearing_deg"].round()) == {90.0, 270.0}


def test_bondy_crossing_signals(data_root, tmp_path, bondy):
    # the two crossing=traffic_signals of Bondy are also highway=traffic_signals: counted once
    assert bondy.meta["signals"] == 14 and bondy.meta["signals_crossing"] == 0
    assert set(bondy.registry["junction"]["kind"]) == {"junction"}
    # a zebra crossing far from every signal, on a street, turned into a signalised crossing
    root = ET.parse(data_root / "osm" / "bondy.osm").getroot()

    def tag(el, k):
        return next((t.get("v") for t in el.findall("tag") if t.get("k") == k), None)

    lonlat = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    signals = np.array([lonlat[n.get("id")] for n in root.iter("node") if tag(n, "highway") ==
                        "traffic_signals"])  # fmt: skip
    on_streets = {
        nd.get("ref")
        for w in root.iter("way")
        if tag(w, "highway") in ("residential", "tertiary", "secondary", "primary")
        for nd in w.findall("nd")
    }
    chosen = None
    for n in root.iter("node"):
        if tag(n, "highway") == "crossing" and n.get("id") in on_streets:
            d = np.hypot(*((signals - lonlat[n.get("id")]) * [73_000, 111_000]).T).min()
            if d > 150:
                chosen = n
                break
    assert chosen is not None
    for t in chosen.findall("tag"):
        if t.get("k") == "crossing":
            chosen.remove(t)
    ET.SubElement(chosen, "tag", {"k": "crossing", "v": "traffic_signals"})
    path = tmp_path / "bondy-crossing.osm"
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    tw = twin.load(osm=path, progress=False)
    j = tw.registry["junction"]
    assert len(j) == 8 and (j["kind"] == "crossing").sum() == 1
    new = j[j["kind"] == "crossing"].iloc[0]
    assert new["n_approaches"] >= 1
    x, y = twin.crs.to_xy(*(np.array([v]) for v in lonlat[chosen.get("id")]), crs=tw.crs)
    app = tw.registry["approach"]
    for geom in app[app["junction"] == new.name].geometry:
        assert shapely.get_point(geom, -1).distance(shapely.Point(x[0], y[0])) < 1.0


# --- lit by tag, lit by assumption ----------------------------------------------------------------
def test_lit_and_untagged_ways_never_merge(tmp_path):
    nodes = {i: (2.48 + 0.001 * i, 48.9, {}) for i in range(1, 6)}
    ways = {
        10: ([1, 2, 3], {"highway": "residential", "lit": "yes"}),
        11: ([3, 4, 5], {"highway": "residential"}),  # untagged, through a degree-2 node
    }
    tw = twin.load(osm=write_osm(tmp_path / "lit.osm", nodes, ways), progress=False)
    seg = tw.registry["segment"].set_index("osmid")
    assert len(seg) == 2
    assert seg.loc["10", "lit"] == "yes" and not seg.loc["10", "lit_assumed"]
    # residential streets are lit by default: lit by assumption, and said so
    assert seg.loc["11", "lit"] == "unknown" and seg.loc["11", "lit_assumed"]
    lit = tw.meta["lit"]
    assert lit["tag_km"] == pytest.approx(seg.loc["10", "length_m"] / 1000, abs=1e-3)
    assert lit["assumed_km"] == pytest.approx(seg.loc["11", "length_m"] / 1000, abs=1e-3)


def test_bondy_lit_segments_come_from_their_ways_tags(data_root, bondy):
    import ast

    root = ET.parse(data_root / "osm" / "bondy.osm").getroot()
    lit_tag = {}
    for w in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in w.findall("tag")}
        if "highway" in tags:
            lit_tag[int(w.get("id"))] = tags.get("lit")
    seg = bondy.registry["segment"]
    for osmid, lit in zip(seg["osmid"], seg["lit"], strict=True):
        ways = ast.literal_eval(osmid)
        ways = ways if isinstance(ways, list) else [ways]
        tags = {lit_tag[w] for w in ways}
        assert tags == {"yes" if lit == "yes" else "no" if lit == "no" else None}, osmid
    s = bondy.meta["lit"]
    assert s["tag_km"] > 5 and s["assumed_km"] > 5 and s["mixed_km"] == 0
    total = s["tag_km"] + s["assumed_km"] + s["unlit_tag_km"] + s["unlit_untagged_km"]
    assert total == pytest.approx(seg["length_m"].sum() / 1000, abs=0.01)


def test_map_and_info_say_what_is_lit_by_tag_and_by_assumption(bondy, tmp_path, capsys):
    from twin.cli import main
    from twin.plot import plot_map

    fig = plot_map(bondy)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    s = bondy.meta["lit"]
    assert f"lit by tag (lit=yes): {s['tag_km']:,.1f} km" in labels
    assert f"lit by assumption (road class): {s['assumed_km']:,.1f} km" in labels
    assert fig.axes[0].get_xlabel() == "x (m, EPSG:2154)"
    assert main(["info", "--city", "bondy"]) == 0
    out = capsys.readouterr().out
    assert f"{s['tag_km']:,.1f} km by tag" in out and "by assumption" in out


# --- the data's date -----------------------------------------------------------------------------
def test_date_of_osm_xml_pbf_and_osm_base(bondy, data_root, tmp_path):
    import osmium

    assert bondy.meta["source_date"] == "2022-04-12"  # the newest edit in the file
    assert bondy.info()["date_basis"] == "newest OSM timestamp"
    assert bondy.meta["source_date"] != bondy.meta["built_at"][:10]
    pbf = tmp_path / "bondy.osm.pbf"
    writer = osmium.SimpleWriter(str(pbf))
    for obj in osmium.FileProcessor(str(data_root / "osm" / "bondy.osm")):
        writer.add(obj)
    writer.close()
    tw = twin.load(osm=pbf, progress=False)
    assert (tw.info()["date"], tw.info()["date_basis"]) == ("2022-04-12", "newest OSM timestamp")
    # an Overpass answer says which database state it was cut from
    nodes = {i: (2.48 + 0.001 * i, 48.9, {}) for i in range(1, 4)}
    ways = {10: ([1, 2, 3], {"highway": "residential"})}
    meta = '<meta osm_base="2024-03-01T10:00:00Z"/>'
    tw = twin.load(osm=write_osm(tmp_path / "ov.osm", nodes, ways, meta=meta), progress=False)
    assert (tw.info()["date"], tw.info()["date_basis"]) == ("2024-03-01", "osm_base")


def test_date_of_graphml_and_of_a_fetch_manifest(paris, data_root, tmp_path):
    import datetime as dt

    from twin.fetch import Manifest, ManifestFile
    from twin.osm import read_extract

    assert (paris.info()["date"], paris.info()["date_basis"]) == (
        "2022-12-22",
        "GraphML created_date",
    )
    folder = tmp_path / "fetched"
    folder.mkdir()
    graph = folder / "town.graphml"
    shutil.copy(data_root / "osm" / "paris-trocadero.graphml", graph)
    from twin.cache import sha256_file

    manifest = Manifest(
        city="town",
        path=folder / "manifest.json",
        files=(ManifestFile("fetched/town.graphml", graph.stat().st_size, sha256_file(graph)),),
        fetched_at=dt.datetime(2025, 1, 15, 6, 30, tzinfo=dt.UTC),
        overpass_url="https://overpass.example/api",
        osmnx_version="2.1.1",
        recipe="town",
        recipe_sha256="0" * 64,
        licence="ODbL-1.0",
        attribution="© OpenStreetMap contributors",
        bbox=(2.28, 48.85, 2.30, 48.87),
        counts={},
        communes=(),
        coverage=None,
    )
    (folder / "manifest.json").write_text(json.dumps(manifest.to_dict()), encoding="utf-8")
    tw = twin.load(osm=graph, progress=False)
    assert (tw.info()["date"], tw.info()["date_basis"]) == ("2025-01-15", "fetch manifest")
    # a file changed since the fetch is no longer what the manifest describes
    graph.write_bytes(graph.read_bytes().replace(b"Avenue", b"Avenu", 1))
    tw = twin.load(osm=graph, progress=False)
    assert tw.info()["date_basis"] == "GraphML created_date"
    assert read_extract(graph).date.date == "2022-12-22"


def test_date_of_municipal_files(montpellier, data_root):
    import datetime as dt
    import zipfile

    newest = max(
        dt.date(*i.date_time[:3])
        for name in ("VilleMTP_MTP_FilaireVoies.zip", "VilleMTP_MTP_EclairagePublic.zip")
        for i in zipfile.ZipFile(data_root / "montpellier" / name).infolist()
    )
    info = montpellier.info()
    assert (info["date"], info["date_basis"]) == (newest.isoformat(), "newest zip entry")
    assert info["crs"] == "EPSG:2154" and info["clipped"]["ways"] == 0
