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


def test_every_shipped_city_carries_its_contract_zone_and_crs():
    for name in available_cities():
        city = get_city(name)
        assert city.timezone == "Europe/Paris"
        assert city.crs == "EPSG:2154"
        assert city.contract.target_pct == 65.0
        assert city.contract.years == range(2018, 2031)
    dijon = get_city("dijon").contract
    assert dijon.label.startswith("Dijon Métropole public-lighting contract")
    # the others say they borrow Dijon's as the reference
    assert "reference" in get_city("montpellier").contract.label


def _city_toml(tmp_path, extra):
    import tomllib

    from twin.cities import _from_mapping

    text = 'name = "x"\ntimezone = "Europe/Paris"\n[source]\nkind = "osm"\nosm = "x.osm"\n' + extra
    return _from_mapping(tomllib.loads(text), path=tmp_path / "x.toml")


def test_contract_fields_are_validated(tmp_path):
    ok = _city_toml(tmp_path, "[contract]\ntarget_pct = 50\nstart = 2020-01-01\nend = 2032-01-01\n")
    assert ok.contract.target_pct == 50.0 and ok.contract.years == range(2020, 2033)
    bad = {
        "target_pct = 120": "contract.target_pct",
        'target_pct = "lots"': "contract.target_pct",
        "led_share_end = 1.5": "contract.led_share_end",
        'start = "soon"': "contract.start",
        "start = 2031-01-01": "contract.end",
        "goal = 3": "unknown field",
    }
    for line, field in bad.items():
        with pytest.raises(twin.InputValidationError, match=field):
            _city_toml(tmp_path, f"[contract]\n{line}\n")


def test_timezone_is_checked(tmp_path):
    from twin.cities import _from_mapping

    with pytest.raises(twin.InputValidationError, match="timezone 'Mars/Olympus'"):
        _from_mapping(
            {"name": "x", "timezone": "Mars/Olympus", "source": {"kind": "osm"}}, path=None
        )
