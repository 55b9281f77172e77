from __future__ import annotations

import shutil
import time

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
    assert (cab["contracted_power_w"] >= cab["installed_power_w"]).all()
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
