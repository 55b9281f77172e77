"""GeoJSON and NGSI-LD exports of the registry, checked against the Smart Data Models schemas.

The JSON schemas in ``tests/schemas/`` are the published Smart Data Models schemas (see the
README there); ``attributes.json`` lists each model's attributes with their NGSI type, enum and
unit as the ``pysmartdatamodels`` package carries them. Both are read offline.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import geopandas as gpd
import jsonschema
import numpy as np
import pandas as pd
import pytest
import shapely
from referencing import Registry as RefRegistry
from referencing import Resource
from referencing.jsonschema import DRAFT202012

from twin._errors import InputValidationError
from twin.cli import main
from twin.crs import WGS84
from twin.export import (
    CONTEXTS,
    CORE_CONTEXT,
    entity_urn,
    ngsi_ld_to_keyvalues,
    to_geojson,
    to_ngsi_ld,
)
from twin.model import Twin
from twin.registry import Registry

SCHEMAS = Path(__file__).resolve().parent / "schemas"
ENTITY_TYPES = tuple(CONTEXTS)
COMMON_URLS = (
    "https://smart-data-models.github.io/data-models/common-schema.json",
    "https://fiware.github.io/dataModels/common-schema.json",
)
# The id pattern of the Smart Data Models' EntityIdentifierType (common-schema.json).
ID_PATTERN = re.compile(r"^[\w\-\.\{\}\$\+\*\[\]`|~^@!,:\\]+$")


# -- validation helpers ------------------------------------------------------------------------
def _load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validators() -> dict[str, jsonschema.protocols.Validator]:
    common = Resource.from_contents(_load("common-schema.json"), default_specification=DRAFT202012)
    refs = RefRegistry().with_resources([(url, common) for url in COMMON_URLS])
    cls = jsonschema.Draft202012Validator
    return {
        t: cls(_load(f"{t}.schema.json"), registry=refs, format_checker=cls.FORMAT_CHECKER)
        for t in ENTITY_TYPES
    }


@pytest.fixture(scope="module")
def model_attributes() -> dict[str, Any]:
    return _load("attributes.json")


def _coords(geometry: dict[str, Any]) -> np.ndarray:
    return np.asarray(shapely.get_coordinates(shapely.from_geojson(json.dumps(geometry))))


def check_entities(
    entities: list[dict[str, Any]],
    validators: dict[str, Any],
    model_attributes: dict[str, Any],
) -> Counter[str]:
    """Validate every entity (schema + normalized structure + model attributes); count types."""
    counts: Counter[str] = Counter()
    for ent in entities:
        etype = ent["type"]
        assert etype in validators, etype
        counts[etype] += 1
        assert ent["id"].startswith(f"urn:ngsi-ld:{etype}:")
        assert ID_PATTERN.match(ent["id"]), ent["id"]
        assert ent["@context"] == [CONTEXTS[etype], CORE_CONTEXT]
        known = model_attributes[etype]["attributes"]
        for name, attr in ent.items():
            if name in ("id", "type", "@context"):
                continue
            assert name in known, f"{etype}.{name} is not an attribute of the model"
            assert attr["type"] == known[name]["typeNGSI"], f"{etype}.{name}: {attr['type']}"
            if attr["type"] == "Relationship":
                targets = attr["object"] if isinstance(attr["object"], list) else [attr["object"]]
                assert targets
                assert all(isinstance(t, str) and t.startswith("urn:ngsi-ld:") for t in targets)
            else:
                assert attr["value"] is not None, f"{etype}.{name} has a null value"
                if "enum" in known[name]:
                    assert attr["value"] in known[name]["enum"], f"{etype}.{name}"
            if attr["type"] == "GeoProperty":
                assert shapely.from_geojson(json.dumps(attr["value"])).is_valid
        errors = list(validators[etype].iter_errors(ngsi_ld_to_keyvalues(ent)))
        assert not errors, f"{ent['id']}: {errors[0].message} at {list(errors[0].path)}"
    return counts


# -- the schemas really check ------------------------------------------------------------------
def test_schemas_reject_bad_entities(validators: dict[str, Any]) -> None:
    light = {
        "id": "urn:ngsi-ld:Streetlight:x:light:1",
        "type": "Streetlight",
        "location": {"type": "Point", "coordinates": [2.3, 48.8]},
        "status": "ok",
    }
    assert validators["Streetlight"].is_valid(light)
    assert not validators["Streetlight"].is_valid({**light, "status": "broken"})
    assert not validators["Streetlight"].is_valid({k: v for k, v in light.items() if k != "status"})
    bad_location = {**light, "location": {"type": "Point", "coordinates": [2.3]}}
    assert not validators["Streetlight"].is_valid(bad_location)
    assert not validators["Streetlight"].is_valid({**light, "id": "has spaces"})
    cabinet = {
        "id": "urn:ngsi-ld:StreetlightControlCabinet:x:cabinet:1",
        "type": "StreetlightControlCabinet",
        "location": {"type": "Point", "coordinates": [2.3, 48.8]},
        "workingMode": "automatic",
        "refStreetlightGroup": ["urn:ngsi-ld:StreetlightGroup:x:cabinet:1"],
        "maximumPowerAvailable": 3.0,
    }
    assert validators["StreetlightControlCabinet"].is_valid(cabinet)
    assert not validators["StreetlightControlCabinet"].is_valid(
        {**cabinet, "maximumPowerAvailable": -1}
    )
    assert not validators["StreetlightControlCabinet"].is_valid(
        {**cabinet, "refStreetlightGroup": []}
    )
    segment = {
        "id": "urn:ngsi-ld:RoadSegment:x:segment:1",
        "type": "RoadSegment",
        "name": "Rue",
        "refRoad": "urn:ngsi-ld:Road:x:road:1",
        "startPoint": {"type": "Point", "coordinates": [2.3, 48.8]},
        "endPoint": {"type": "Point", "coordinates": [2.4, 48.8]},
        "allowedVehicleType": ["anyVehicle"],
    }
    assert validators["RoadSegment"].is_valid(segment)
    assert not validators["RoadSegment"].is_valid({**segment, "allowedVehicleType": ["tram"]})
    assert not validators["RoadSegment"].is_valid({**segment, "totalLaneNumber": 0})
    assert not validators["Road"].is_valid({"id": "r", "type": "Road", "name": "R"})


def test_keyvalues_projection() -> None:
    ent = {
        "id": "urn:ngsi-ld:Road:x:road:1",
        "type": "Road",
        "length": {"type": "Property", "value": 1.5, "unitCode": "KMT"},
        "refRoadSegment": {"type": "Relationship", "object": ["urn:a", "urn:b"]},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
        "@context": [CORE_CONTEXT],
    }
    assert ngsi_ld_to_keyvalues(ent) == {
        "id": "urn:ngsi-ld:Road:x:road:1",
        "type": "Road",
        "length": 1.5,
        "refRoadSegment": ["urn:a", "urn:b"],
        "location": {"type": "Point", "coordinates": [1, 2]},
    }
    with pytest.raises(InputValidationError, match="length"):
        ngsi_ld_to_keyvalues({"id": "x", "type": "Road", "length": 1.5})


def test_entity_urn_is_urn_safe() -> None:
    assert entity_urn("Streetlight", "paris-trocadero", "light:000001") == (
        "urn:ngsi-ld:Streetlight:paris-trocadero:light:000001"
    )
    urn = entity_urn("Road", "Saint Étienne (test)", "road:1")
    assert urn == "urn:ngsi-ld:Road:Saint-tienne-test:road:1"
    assert ID_PATTERN.match(urn)


# -- NGSI-LD on real twins ---------------------------------------------------------------------
@pytest.mark.parametrize("city", ["bondy", "paris"])
def test_ngsi_ld_entities_validate(
    city: str,
    request: pytest.FixtureRequest,
    validators: dict[str, Any],
    model_attributes: dict[str, Any],
) -> None:
    tw = request.getfixturevalue(city)
    entities = to_ngsi_ld(tw)
    assert isinstance(entities, list)
    counts = check_entities(entities, validators, model_attributes)
    reg = tw.registry
    assert counts["Streetlight"] == len(reg["light"]) > 0
    assert counts["StreetlightControlCabinet"] == len(reg["cabinet"]) > 0
    assert counts["StreetlightGroup"] == len(reg["cabinet"])
    assert counts["RoadSegment"] == len(reg["segment"]) > 0
    models = reg["light"][["technology", "luminaire", "power_w", "flux_lm"]].drop_duplicates()
    assert counts["StreetlightModel"] == len(models)
    assert 0 < counts["Road"] <= len(reg["segment"])
    # every entity carries the data's attribution
    assert all(e["dataProvider"]["value"] == tw.city.attribution for e in entities)


def test_ngsi_ld_ids_unique_stable_and_relations_resolve(bondy: Twin) -> None:
    first = to_ngsi_ld(bondy)
    second = to_ngsi_ld(bondy)
    assert isinstance(first, list)
    assert first == second
    ids = [e["id"] for e in first]
    assert len(ids) == len(set(ids))
    known = set(ids)
    for ent in first:
        for name, attr in ent.items():
            if isinstance(attr, dict) and attr.get("type") == "Relationship":
                targets = attr["object"] if isinstance(attr["object"], list) else [attr["object"]]
                missing = [t for t in targets if t not in known]
                assert not missing, f"{ent['id']}.{name} -> {missing[0]}"


def test_ngsi_ld_values_follow_the_registry(bondy: Twin) -> None:
    entities = to_ngsi_ld(bondy)
    assert isinstance(entities, list)
    by_id = {e["id"]: e for e in entities}
    lights = bondy.registry["light"]
    cabinets = bondy.registry["cabinet"]
    segments = bondy.registry["segment"]

    def urn(t: str, local: str) -> str:
        return entity_urn(t, bondy.city.name, local)

    for lid, row in lights.iterrows():
        ent = by_id[urn("Streetlight", lid)]
        assert ent["status"]["value"] == "ok"
        assert ent["refStreetlightControlCabinet"]["object"] == urn(
            "StreetlightControlCabinet", row["cabinet"]
        )
        model = by_id[ent["refStreetlightModel"]["object"]]
        assert model["powerConsumption"]["value"] == pytest.approx(row["power_w"])
        assert model["powerConsumption"]["unitCode"] == "WTT"
        assert model["luminousFlux"]["value"] == pytest.approx(row["flux_lm"])
        assert model["lampTechnology"]["value"] == row["technology"]
    for cid, row in cabinets.iterrows():
        cab = by_id[urn("StreetlightControlCabinet", cid)]
        assert cab["maximumPowerAvailable"]["value"] == pytest.approx(
            row["contracted_power_w"] / 1000.0
        )
        assert cab["maximumPowerAvailable"]["unitCode"] == "KWT"
        group = by_id[cab["refStreetlightGroup"]["object"][0]]
        members = {urn("Streetlight", i) for i in lights.index[lights["cabinet"] == cid]}
        assert set(group["refStreetlight"]["object"]) == members
        assert len(members) == row["n_lights"]
        assert group["location"]["value"]["type"] == "MultiPoint"
        assert len(group["location"]["value"]["coordinates"]) == len(members)
    # every segment belongs to exactly one road, and the road lists it
    listed: Counter[str] = Counter()
    for ent in entities:
        if ent["type"] == "Road":
            listed.update(ent["refRoadSegment"]["object"])
    for sid, row in segments.iterrows():
        ent = by_id[urn("RoadSegment", sid)]
        assert listed[ent["id"]] == 1
        assert ent["id"] in by_id[ent["refRoad"]["object"]]["refRoadSegment"]["object"]
        assert ent["length"]["value"] == pytest.approx(row["length_m"] / 1000.0, abs=1e-6)
        assert ent["maximumAllowedSpeed"]["value"] == pytest.approx(row["speed_kph"])
        assert ent["totalLaneNumber"]["value"] == row["lanes"]
        assert ("anyVehicle" in ent["allowedVehicleType"]["value"]) == bool(row["drive"])
        if isinstance(row["name"], str):
            assert ent["name"]["value"] == row["name"]
        line = ent["location"]["value"]["coordinates"]
        assert ent["startPoint"]["value"]["coordinates"] == line[0]
        assert ent["endPoint"]["value"]["coordinates"] == line[-1]


def test_ngsi_ld_coordinates_are_lon_lat_in_the_city(bondy: Twin) -> None:
    entities = to_ngsi_ld(bondy)
    assert isinstance(entities, list)
    left, bottom, right, top = bondy.bbox
    margin = 0.005  # degrees, ~500 m
    for ent in entities:
        for attr in ent.values():
            if isinstance(attr, dict) and attr.get("type") == "GeoProperty":
                xy = _coords(attr["value"])
                assert (xy[:, 0] >= left - margin).all()
                assert (xy[:, 0] <= right + margin).all()
                assert (xy[:, 1] >= bottom - margin).all()
                assert (xy[:, 1] <= top + margin).all()
    # Bondy is at about 2.48 E, 48.91 N: longitude first
    light = next(e for e in entities if e["type"] == "Streetlight")
    lon, lat = light["location"]["value"]["coordinates"]
    assert 2.4 < lon < 2.6
    assert 48.8 < lat < 49.0
    # and the position is the registry's, projected back
    lid = light["name"]["value"]
    expected = bondy.registry["light"].loc[[lid]].geometry.to_crs(WGS84).iloc[0]
    assert (lon, lat) == pytest.approx((expected.x, expected.y), abs=1e-6)


def test_ngsi_ld_kinds_subset_and_errors(bondy: Twin, tmp_path: Path) -> None:
    only_lights = to_ngsi_ld(bondy, kinds=["light"])
    assert isinstance(only_lights, list)
    assert {e["type"] for e in only_lights} == {"Streetlight", "StreetlightModel"}
    only_roads = to_ngsi_ld(bondy, kinds="segment")
    assert isinstance(only_roads, list)
    assert {e["type"] for e in only_roads} == {"RoadSegment", "Road"}
    with pytest.raises(InputValidationError, match="kinds: 'camera' has no mapping"):
        to_ngsi_ld(bondy, kinds=["camera"])
    with pytest.raises(InputValidationError, match="kinds: unknown asset type 'lamp'"):
        to_ngsi_ld(bondy, kinds=["lamp"])
    with pytest.raises(InputValidationError, match="out: folder"):
        to_ngsi_ld(bondy, tmp_path / "missing" / "x.json")
    with pytest.raises(InputValidationError, match="levels: given"):
        to_ngsi_ld(bondy, kinds=["segment"], levels={"light:000000": 0.5})


def test_ngsi_ld_levels_give_power_state(
    bondy: Twin, validators: dict[str, Any], model_attributes: dict[str, Any]
) -> None:
    ids = bondy.registry["light"].index[:3]
    levels = pd.Series([0.0, 0.4, 1.0], index=ids)
    entities = to_ngsi_ld(bondy, kinds=["light"], levels=levels)
    assert isinstance(entities, list)
    check_entities(entities, validators, model_attributes)
    by_name = {e["name"]["value"]: e for e in entities if e["type"] == "Streetlight"}
    assert [by_name[i]["powerState"]["value"] for i in ids] == ["off", "low", "on"]
    assert [by_name[i]["illuminanceLevel"]["value"] for i in ids] == [0.0, 0.4, 1.0]
    other = bondy.registry["light"].index[3]
    assert "powerState" not in by_name[other]
    with pytest.raises(InputValidationError, match="levels: 'light:000001' has level 1.5"):
        to_ngsi_ld(bondy, kinds=["light"], levels={ids[0]: 0.5, "light:000001": 1.5})
    with pytest.raises(InputValidationError, match="not lights of the registry"):
        to_ngsi_ld(bondy, kinds=["light"], levels={"light:999999": 0.5})


# -- small synthetic registry: NaN, metal halide, a cabinet without lights -----------------------
@pytest.fixture
def tiny(bondy: Twin) -> Twin:
    pts = gpd.GeoSeries.from_xy([662800.0, 662850.0], [6867840.0, 6867850.0], crs="EPSG:2154")
    lights = gpd.GeoDataFrame(
        {
            "id": ["light:000000", "light:000001"],
            "segment": ["segment:000000", "segment:000000"],
            "cabinet": ["cabinet:0", "cabinet:0"],
            "source": ["osm", "inventory"],
            "ref": ["123456", None],
            "technology": ["MH", "HPS"],
            "luminaire": ["bollard", "floodlight"],
            "power_w": [70.0, 150.0],
            "baseline_power_w": [80.5, 168.0],
            "flux_lm": [np.nan, 14500.0],
            "design_class": ["P3", None],
        },
        geometry=pts,
    )
    cabinets = gpd.GeoDataFrame(
        {
            "id": ["cabinet:0", "cabinet:1"],
            "n_lights": [2, 0],
            "installed_power_w": [220.0, 0.0],
            "contracted_power_w": [3000.0, np.nan],
        },
        geometry=gpd.GeoSeries.from_xy([662810.0, 662900.0], [6867845.0, 6867900.0], crs=2154),
    )
    segments = gpd.GeoDataFrame(
        {
            "id": ["segment:000000"],
            "u": [1],
            "v": [2],
            "osmid": ["42"],
            "name": [None],
            "highway": ["primary_link"],
            "lanes": [2],
            "speed_kph": [50.0],
            "oneway": [True],
            "length_m": [100.0],
            "lighting_class": ["M3"],
        },
        geometry=gpd.GeoSeries(
            [shapely.LineString([(662790.0, 6867830.0), (662890.0, 6867830.0)])], crs=2154
        ),
    )
    reg = Registry({"light": lights, "cabinet": cabinets, "segment": segments})
    return Twin(bondy.city, bondy.graph, reg, dict(bondy.meta))


def test_ngsi_ld_synthetic_edge_cases(
    tiny: Twin, validators: dict[str, Any], model_attributes: dict[str, Any]
) -> None:
    entities = to_ngsi_ld(tiny)
    assert isinstance(entities, list)
    check_entities(entities, validators, model_attributes)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in entities:
        by_type.setdefault(e["type"], []).append(e)
    models = {m["name"]["value"]: m for m in by_type["StreetlightModel"]}
    mh = models["MH bollard 70 W"]
    assert "lampTechnology" not in mh  # not in the model's enum: named in the description
    assert "metal halide" in mh["description"]["value"]
    assert "luminousFlux" not in mh  # NaN flux is left out, never null
    assert mh["category"]["value"] == ["bollard"]
    hps = models["HPS floodlight 150 W 14500 lm"]
    assert hps["lampTechnology"]["value"] == "HPS"
    assert "category" not in hps
    light0 = next(e for e in by_type["Streetlight"] if e["name"]["value"] == "light:000000")
    assert light0["source"]["value"] == "https://www.openstreetmap.org/node/123456"
    cab1 = next(
        e for e in by_type["StreetlightControlCabinet"] if e["name"]["value"] == "cabinet:1"
    )
    assert "maximumPowerAvailable" not in cab1
    group1 = next(
        e for e in by_type["StreetlightGroup"] if e["name"]["value"] == "lights of cabinet:1"
    )
    assert "refStreetlight" not in group1
    assert group1["location"]["value"]["type"] == "Point"
    seg = by_type["RoadSegment"][0]
    assert seg["category"]["value"] == ["oneway", "link"]
    assert seg["roadClass"]["value"] == "MAJOR_CITY_ROAD"
    assert seg["name"]["value"] == "segment:000000"
    road = by_type["Road"][0]
    assert road["roadClass"]["value"] == "primary"
    assert road["name"]["value"].startswith("unnamed primary_link")


def test_geojson_is_json_safe(tiny: Twin) -> None:
    fc = to_geojson(tiny)
    assert isinstance(fc, dict)
    json.dumps(fc, allow_nan=False)  # raises on NaN
    feats = {f["id"]: f for f in fc["features"]}
    assert feats["light:000000"]["properties"]["flux_lm"] is None
    assert feats["light:000001"]["properties"]["ref"] is None
    assert feats["cabinet:1"]["properties"]["contracted_power_w"] is None
    assert feats["cabinet:0"]["properties"]["n_lights"] == 2
    assert isinstance(feats["segment:000000"]["properties"]["oneway"], bool)
    assert feats["segment:000000"]["properties"]["kind"] == "segment"


# -- GeoJSON on a real twin --------------------------------------------------------------------
def test_geojson_roundtrip_through_geopandas(paris: Twin, tmp_path: Path) -> None:
    out = tmp_path / "paris.geojson"
    n = to_geojson(paris, out)
    counts = {k: v for k, v in paris.registry.counts().items() if v}
    assert n == sum(counts.values())
    raw = json.loads(out.read_text(encoding="utf-8"))
    assert raw["type"] == "FeatureCollection"
    assert raw["attribution"] == paris.city.attribution == "© OpenStreetMap contributors, ODbL 1.0"
    assert raw["licence"] == paris.city.licence
    assert len({f["id"] for f in raw["features"]}) == n
    back = gpd.read_file(out)
    assert back.crs.to_epsg() == 4326
    assert back["kind"].value_counts().to_dict() == counts
    for kind in counts:
        table = paris.registry[kind]
        got = back[back["kind"] == kind].set_index("id").loc[table.index]
        expected = table.geometry.to_crs(WGS84).values
        a = shapely.get_coordinates(got.geometry.values)
        b = shapely.get_coordinates(expected)
        assert a.shape == b.shape
        assert np.abs(a - b).max() < 1e-6, kind
    lights = back[back["kind"] == "light"].set_index("id")
    reg = paris.registry["light"]
    assert np.allclose(lights.loc[reg.index, "power_w"].to_numpy(float), reg["power_w"])


def test_geojson_kinds_and_stability(bondy: Twin, tmp_path: Path) -> None:
    a, b = tmp_path / "a.geojson", tmp_path / "b.geojson"
    assert to_geojson(bondy, a, kinds=["light", "cabinet"]) == (
        len(bondy.registry["light"]) + len(bondy.registry["cabinet"])
    )
    to_geojson(bondy, b, kinds=["cabinet", "light"])
    assert a.read_bytes() == b.read_bytes()
    fc = json.loads(a.read_text(encoding="utf-8"))
    assert {f["properties"]["kind"] for f in fc["features"]} == {"light", "cabinet"}
    with pytest.raises(InputValidationError, match="kinds: unknown asset type 'lamp'"):
        to_geojson(bondy, kinds=["lamp"])
    with pytest.raises(InputValidationError, match="is a folder"):
        to_geojson(bondy, tmp_path)


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_exports(
    bondy: Twin,
    tmp_path: Path,
    validators: dict[str, Any],
    model_attributes: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "bondy.ngsi-ld.json"
    assert main(["export", "ngsi-ld", "--city", "bondy", "--out", str(out)]) == 0
    entities = json.loads(out.read_text(encoding="utf-8"))
    assert f"{len(entities)} records written" in capsys.readouterr().out
    counts = check_entities(entities, validators, model_attributes)
    assert counts["Streetlight"] == len(bondy.registry["light"])
    geo = tmp_path / "lights.geojson"
    assert main(["export", "geojson", "--city", "bondy", "--kind", "light", "--out", str(geo)]) == 0
    fc = json.loads(geo.read_text(encoding="utf-8"))
    assert len(fc["features"]) == len(bondy.registry["light"])
    assert (
        main(["export", "ngsi-ld", "--city", "bondy", "--kind", "camera", "--out", str(out)]) == 2
    )
    assert "kinds" in capsys.readouterr().err


# -- scale: Montpellier ----------------------------------------------------------------------------
@pytest.mark.slow
def test_montpellier_exports_at_scale(
    montpellier: Twin,
    tmp_path: Path,
    validators: dict[str, Any],
    model_attributes: dict[str, Any],
) -> None:
    # correctness at scale; how long it takes is the build benchmark's business, not a test's
    n = to_geojson(montpellier, tmp_path / "mtp.geojson")
    assert n == len(montpellier.registry)
    m = to_ngsi_ld(montpellier, tmp_path / "mtp.json")
    entities = json.loads((tmp_path / "mtp.json").read_text(encoding="utf-8"))
    assert len(entities) == m
    assert len({e["id"] for e in entities}) == m
    # validate a deterministic sample with every type (all of them takes a minute)
    firsts = {e["type"]: i for i, e in reversed(list(enumerate(entities)))}
    sample = [e for i, e in enumerate(entities) if i % 20 == 0 or i in firsts.values()]
    counts = check_entities(sample, validators, model_attributes)
    assert set(counts) == set(ENTITY_TYPES)
    assert montpellier.city.attribution.startswith("Ville de Montpellier")
    assert all(e["dataProvider"]["value"] == montpellier.city.attribution for e in entities)


def test_attributes_file_matches_pysmartdatamodels(model_attributes: dict[str, Any]) -> None:
    """The stored attribute list is what the installed pysmartdatamodels carries."""
    pytest.importorskip("pysmartdatamodels")
    import gzip
    from importlib.resources import files

    path = files("pysmartdatamodels") / "model-assets" / "smartdatamodels.json.gz"
    with path.open("rb") as fh, gzip.open(fh) as unzipped:
        rows = json.load(unzipped)
    for model, entry in model_attributes.items():
        repo = entry["repository"].split("/")[1]
        fresh = {
            r["property"]: r.get("typeNGSI")
            for r in rows
            if r.get("dataModel") == model and r.get("repoName") == repo and "parentId" not in r
        }
        for name, attr in entry["attributes"].items():
            assert fresh.get(name) == attr["typeNGSI"], f"{model}.{name}"
