from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely

import twin
from twin import assets
from twin.assets import KINDS, load_schema
from twin.registry import Registry


@pytest.mark.parametrize("kind", KINDS)
def test_dataclass_fields_follow_the_schema(kind):
    module = getattr(assets, kind)
    record = next(
        v for v in vars(module).values() if dataclasses.is_dataclass(v) and isinstance(v, type)
    )
    assert [f.name for f in dataclasses.fields(record)] == load_schema(kind).names
    assert record.__dataclass_params__.frozen
    for a in load_schema(kind).attributes:
        assert a.description, f"{kind}.{a.name} has no description"


def test_tables_have_exactly_the_schema_columns(montpellier):
    for kind in KINDS:
        assert list(montpellier.registry[kind].columns) == load_schema(kind).names


def test_get_returns_typed_records(montpellier):
    reg = montpellier.registry
    light = reg.get("light:000000")
    assert isinstance(light, assets.light.Light)
    assert light.power_w > 0
    with pytest.raises(twin.UnknownAssetError, match="light:999999"):
        reg.get("light:999999")
    with pytest.raises(twin.UnknownAssetError):
        reg.get("lamp:1")


def test_relations_light_segment_cabinet(montpellier):
    reg = montpellier.registry
    lights = reg["light"]
    lid = lights.index[lights["segment"].notna()][100]
    (seg,) = reg.related(lid, "segment")
    (cab,) = reg.related(lid, "cabinet")
    assert lid in reg.related(seg, "light")
    assert lid in reg.related(cab, "light")
    # the light really is near its segment
    assert lights.geometry[lid].distance(reg["segment"].geometry[seg]) <= 60


def test_relations_junction_approach_detector(montpellier):
    reg = montpellier.registry
    j = reg["approach"]["junction"].iloc[0]
    approaches = reg.related(j, "approach")
    assert approaches
    loops = reg.related(j, "sensor")
    assert len(loops) == len(approaches)
    assert set(reg["sensor"].loc[loops, "sensor_type"]) == {"loop"}


def test_spatial_queries(montpellier):
    reg = montpellier.registry
    # Place de la Comédie, Montpellier
    comedie = (3.8798, 43.6085)
    near = reg.nearest(comedie, kind="light", k=5)
    assert len(near) == 5 and near["distance_m"].is_monotonic_increasing
    assert near["distance_m"].iloc[0] < 50
    within = reg.within_radius(comedie, 100.0, kind="light")
    assert len(within) > 5
    assert (within["distance_m"] <= 100.0).all()
    # brute force agrees
    pt = reg._point(comedie, twin.crs.WGS84)
    brute = (reg["light"].geometry.distance(pt) <= 100.0).sum()
    assert len(within) == brute
    box = reg.within_bbox((3.875, 43.605, 3.885, 43.612), kind=["light", "junction"])
    assert set(box["kind"]) == {"light", "junction"}
    with pytest.raises(twin.InputValidationError, match="bbox"):
        reg.within_bbox((3.9, 43.6, 3.8, 43.7))


def test_registry_validates_tables():
    with pytest.raises(twin.InputValidationError, match="unknown asset type"):
        Registry({"lamp": None})  # type: ignore[dict-item]
    empty = Registry()
    assert sum(empty.counts().values()) == 0


def test_registry_pickles_without_its_trees(montpellier):
    import pickle

    reg = montpellier.registry
    reg.nearest((3.8798, 43.6085), kind="light")
    clone = pickle.loads(pickle.dumps(reg))
    assert clone.counts() == reg.counts()
    assert (
        clone.nearest((3.8798, 43.6085), kind="light").index[0]
        == reg.nearest((3.8798, 43.6085), kind="light").index[0]
    )
    assert np.all(shapely.equals(clone["segment"].geometry.values, reg["segment"].geometry.values))


def test_registry_keeps_the_twins_crs():
    import geopandas as gpd
    import pandas as pd

    def lights(crs, xy):
        return gpd.GeoDataFrame(
            {"id": ["light:000000"], "segment": [None], "cabinet": [None], "source": ["test"]},
            geometry=gpd.points_from_xy([xy[0]], [xy[1]]),
            crs=crs,
        )

    required = {"design_class": "P4", "power_w": 20.0, "flux_lm": 2000.0, "ref": None}
    required |= {"baseline_power_w": 80.0, "luminaire": "street light"}
    # a light in Québec, given in lon/lat: the registry holds it in its own CRS (UTM 19N)
    table = lights("EPSG:4326", (-71.208, 46.8139)).assign(**required)
    reg = Registry({"light": table}, crs="EPSG:32619")
    assert reg.crs == "EPSG:32619" and reg["light"].crs.to_epsg() == 32619
    x = reg["light"].geometry.iloc[0].x
    assert 300_000 < x < 500_000  # UTM easting, west of the zone's central meridian (-69)
    near = reg.nearest((-71.208, 46.8139), kind="light")
    assert near["distance_m"].iloc[0] < 0.01
    # ... and takes the CRS of its tables when none is given
    assert Registry({"light": reg["light"]}).crs == "EPSG:32619"
    pickled = __import__("pickle").loads(__import__("pickle").dumps(reg))
    assert pickled.crs == "EPSG:32619"
    # a registry without a position on Earth (a SUMO net without projection) refuses lon/lat
    local = Registry({"light": pd.DataFrame(table.drop(columns="geometry")).assign(
        geometry=[shapely.Point(10.0, 20.0)])}, crs="local metric")  # fmt: skip
    assert local.nearest((10.0, 20.0), kind="light", crs="local metric").index[0] == "light:000000"
    with pytest.raises(twin.InputValidationError, match="no position on Earth"):
        local.nearest((2.0, 48.0), kind="light")
