from __future__ import annotations

import pytest

import twin
from twin.cities import available_cities, from_file, get_city, resolve_data_file


def test_shipped_cities_are_the_design_ones():
    assert available_cities() == [
        "bondy",
        "dijon",
        "montpellier",
        "paris-trocadero",
        "saint-germain-en-laye",
    ]


def test_dijon_has_the_24_communes_of_the_street_lists(data_root):
    dijon = get_city("dijon")
    codes = {c["insee"] for c in dijon.boundary["communes"]}
    on_disk = {p.name.split("_-_")[0] for p in (data_root / "dijon-streets-2019").glob("*.csv")}
    assert len(codes) == 24
    assert codes == on_disk
    assert 240_000 < dijon.population < 270_000
    assert dijon.expected["light"] == 34_000
    assert dijon.timezone == "Europe/Paris"


def test_unknown_city_lists_the_known_ones():
    with pytest.raises(twin.UnknownCityError) as err:
        get_city("lyon")
    for name in available_cities():
        assert name in str(err.value)


def test_missing_dijon_extract_names_the_fetch_command(tmp_path):
    with twin.set_options(data=tmp_path), pytest.raises(twin.DataMissingError) as err:
        twin.load("dijon")
    msg = str(err.value)
    assert "twin data fetch dijon" in msg
    assert "--city montpellier" in msg


def test_data_roots_twin_data_first_then_repo(data_root):
    city = get_city("bondy")
    assert resolve_data_file(city, "osm/bondy.osm") == data_root / "osm" / "bondy.osm"


def test_osm_file_definition(data_root, tmp_path):
    c = from_file(data_root / "osm" / "paris-trocadero.graphml")
    assert c.source == {"kind": "osm", "graph": str(data_root / "osm" / "paris-trocadero.graphml")}
    with pytest.raises(twin.InputValidationError, match="not an OSM extract"):
        from_file(tmp_path / "x.shp")
    with pytest.raises(twin.DataMissingError):
        from_file(tmp_path / "absent.osm")
