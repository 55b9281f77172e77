from __future__ import annotations

import shutil

import pytest

import twin
from twin.osm import read_extract


def test_read_osm_xml_keeps_streets_and_features(data_root):
    ext = read_extract(data_root / "osm" / "bondy.osm")
    highways = [h for *_, h in ext.graph.edges(data="highway")]
    assert None not in highways
    assert {"primary", "residential"} <= {h if isinstance(h, str) else h[0] for h in highways}
    assert ext.graph.graph["crs"] == "EPSG:2154"
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
