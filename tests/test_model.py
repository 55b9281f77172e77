"""twin.load and Twin: by name, by path, --osm, a City; cache hits and misses; rebuild."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

import twin
from twin import cache
from twin.cities import from_file, get_city


def _entries(root: Path) -> list[Path]:
    folder = root / "twins"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def cached(tmp_path_factory, data_root):
    """A cache folder holding Bondy, built once, and the twin built into it."""
    root = tmp_path_factory.mktemp("model-cache")
    with twin.set_options(cache=root):
        built = twin.load("bondy", progress=False)
    return root, built


def test_first_load_builds_and_caches(cached):
    root, built = cached
    assert "loaded_from_cache_s" not in built.meta
    (entry,) = _entries(root)
    assert entry.name.startswith("bondy-") and (entry / "manifest.json").is_file()
    assert built.meta["code_version"] == cache.CODE_VERSION


def test_second_load_is_a_hit_with_the_same_twin(cached):
    root, built = cached
    with twin.set_options(cache=root):
        warm = twin.load("bondy", progress=False)
    assert warm.meta["loaded_from_cache_s"] >= 0
    assert warm.counts() == built.counts()
    assert warm.graph.number_of_edges() == built.graph.number_of_edges()
    assert list(warm.registry["light"].index) == list(built.registry["light"].index)
    assert len(_entries(root)) == 1


def test_another_seed_misses_and_rebuild_replaces(cached, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(cached[0], root)
    with twin.set_options(cache=root):
        other = twin.load("bondy", seed=7, progress=False)
        assert "loaded_from_cache_s" not in other.meta and other.meta["seed"] == 7
        assert len(_entries(root)) == 2
        first = {p.name: json.loads((p / "manifest.json").read_text()) for p in _entries(root)}
        again = twin.load("bondy", seed=7, rebuild=True, progress=False)
        assert "loaded_from_cache_s" not in again.meta
        after = {p.name: json.loads((p / "manifest.json").read_text()) for p in _entries(root)}
        assert after.keys() == first.keys()  # the same entry, written anew
        assert twin.load("bondy", seed=7, progress=False).counts() == again.counts()
    assert other.counts()["light"] == again.counts()["light"]


def test_use_cache_off_writes_nothing(data_root, tmp_path):
    with twin.set_options(cache=tmp_path / "c", use_cache=False):
        tw = twin.load("paris-trocadero", progress=False)
    assert "loaded_from_cache_s" not in tw.meta
    assert not (tmp_path / "c").exists()


def test_load_by_path_str_osm_and_city_agree(cached, data_root, tmp_path):
    root, built = cached
    copy = tmp_path / "bondy-copy.osm"
    shutil.copy(data_root / "osm" / "bondy.osm", copy)
    with twin.set_options(cache=root):
        by_path = twin.load(copy, progress=False)
        by_str = twin.load(str(copy), progress=False)
        by_osm = twin.load("montpellier", osm=copy, progress=False)  # --osm wins over the city
        by_city = twin.load(from_file(copy), progress=False)
    assert by_path.name == by_str.name == by_osm.name == by_city.name == "bondy-copy"
    assert "loaded_from_cache_s" not in by_path.meta
    assert all("loaded_from_cache_s" in t.meta for t in (by_str, by_osm, by_city))
    same = ("segment", "light", "junction", "cabinet", "camera")  # no population: no fleet
    assert {k: by_path.counts()[k] for k in same} == {k: built.counts()[k] for k in same}
    assert by_path.city.source["kind"] == "osm"


def test_a_graphml_path_loads(data_root):
    tw = twin.load(data_root / "osm" / "paris-trocadero.graphml", progress=False)
    assert tw.name == "paris-trocadero"
    assert tw.graph.number_of_nodes() > 1000 and tw.counts()["junction"] > 10


def test_a_city_definition_loads_with_its_own_key(cached):
    root, built = cached
    city = dataclasses.replace(get_city("bondy"), defaults={"catalogue": "led-2018", "depots": 2})
    with twin.set_options(cache=root):
        tw = twin.load(city, progress=False)
    assert "loaded_from_cache_s" not in tw.meta
    assert tw.counts()["depot"] == 2 and built.counts()["depot"] == 1


@pytest.mark.parametrize(
    ("city", "error", "words"),
    [
        ("lyon", twin.UnknownCityError, "unknown city 'lyon'; available: bondy"),
        ("nowhere.osm", twin.DataMissingError, "file not found"),
        ("notes.txt", twin.UnknownCityError, "unknown city 'notes.txt'"),
    ],
)
def test_bad_city_arguments_say_what_is_wrong(city, error, words):
    with pytest.raises(error) as err:
        twin.load(city)
    assert words in str(err.value)


def test_osm_must_be_an_extract(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("x")
    with pytest.raises(twin.InputValidationError, match="is not an OSM extract"):
        twin.load(osm=bad)


def test_twin_face(cached):
    _, tw = cached
    assert repr(tw).startswith("<Twin bondy: ") and "lights" in repr(tw)
    assert tw.name == "bondy" and tw.crs == "EPSG:2154"
    left, bottom, right, top = tw.bbox
    assert 2.4 < left < right < 2.6 and 48.8 < bottom < top < 49.0
    assert tw.centre == tuple(get_city("bondy").centre)
    seg = tw.registry["segment"]
    drive = {s for *_, s in tw.drive.edges(data="segment")}
    assert drive == set(seg.index[seg["drive"]])
    assert tw.walk.number_of_edges() <= tw.graph.number_of_edges()
    info = tw.info()
    assert info["counts"] == tw.counts() and info["graph"]["crs"] == "EPSG:2154"
    assert info["source"]["files"]["osm"]["name"] == "bondy.osm"
