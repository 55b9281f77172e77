from __future__ import annotations

import csv

import numpy as np
import pytest
import shapely

import twin
from twin.crs import to_wgs84
from twin.inventory import import_inventory, inventory_path, read_inventory, remove_inventory


def _write_inventory(path, tw, n=200):
    lights = tw.registry["light"].iloc[:n]
    xy = shapely.get_coordinates(lights.geometry.values)
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1])
    rows = []
    for i in range(n):
        rows.append(
            {
                "ID": f"L{i}",
                "LON": f"{lon[i]:.7f}",
                "LAT": f"{lat[i]:.7f}",
                "PUISSANCE": "" if i % 4 == 0 else str(40 + i % 3 * 10),
                "TECHNO": "SHP" if i % 5 == 0 else "LED",
            }
        )
    bad = [
        {"ID": "B1", "LON": "abc", "LAT": "48.86", "PUISSANCE": "50", "TECHNO": "LED"},
        {"ID": "B2", "LON": "2.29", "LAT": "48.86", "PUISSANCE": "-5", "TECHNO": "LED"},
        {"ID": "B3", "LON": "5.04", "LAT": "47.32", "PUISSANCE": "50", "TECHNO": "LED"},  # Dijon
        {"ID": "B4", "LON": "2.29", "LAT": "48.86", "PUISSANCE": "50", "TECHNO": "PLASMA"},
        {"ID": "L3", "LON": "2.29", "LAT": "48.86", "PUISSANCE": "50", "TECHNO": "LED"},  # dup id
        {"ID": "B6", "LON": "", "LAT": "48.86", "PUISSANCE": "50", "TECHNO": "LED"},
        {"ID": "B7", "LON": "2.29", "LAT": "48.86", "PUISSANCE": "cinquante", "TECHNO": "LED"},
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(
            fh, fieldnames=["ID", "LON", "LAT", "PUISSANCE", "TECHNO"], delimiter=";"
        )
        w.writeheader()
        w.writerows(rows + bad)
    return n


FIELDS = {"ref": "ID", "lon": "LON", "lat": "LAT", "power_w": "PUISSANCE", "technology": "TECHNO"}


def test_bad_rows_rejected_with_row_field_reason_good_rows_kept(paris, tmp_path):
    path = tmp_path / "inventory.csv"
    n = _write_inventory(path, paris)
    seg = paris.registry["segment"]
    area = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(seg.geometry.values)))
    ok, rejected, rows = read_inventory(path, fields=FIELDS, area=area)
    assert rows == n + 7
    assert len(ok) == n
    assert len(ok) + len(rejected) == rows  # nothing lost
    by_row = {r.row: r for r in rejected}
    first_bad = n + 2  # header is line 1
    assert by_row[first_bad].field == "lon" and "not a number" in by_row[first_bad].reason
    assert (
        by_row[first_bad + 1].field == "power_w" and "out of range" in by_row[first_bad + 1].reason
    )
    assert by_row[first_bad + 2].field == "geometry" and "outside" in by_row[first_bad + 2].reason
    assert by_row[first_bad + 3].field == "technology" and "PLASMA" in by_row[first_bad + 3].reason
    assert by_row[first_bad + 4].field == "ref" and "duplicate" in by_row[first_bad + 4].reason
    assert by_row[first_bad + 5].field == "lon" and "empty" in by_row[first_bad + 5].reason
    assert by_row[first_bad + 6].field == "power_w"
    assert set(ok["technology"]) == {"LED", "HPS"}
    assert np.isnan(ok["power_w"]).sum() == n // 4


def test_import_replaces_lights_and_persists(paris, tmp_path):
    path = tmp_path / "inventory.csv"
    n = _write_inventory(path, paris)
    with twin.set_options(cache=tmp_path / "cache"):
        tw = twin.load("paris-trocadero", progress=False)
        report = import_inventory(tw, path, fields=FIELDS, save=True)
        assert report.accepted == n and len(report.rejected) == 7
        assert report.power_defaulted == n // 4
        assert tw.counts()["light"] == n
        assert set(tw.registry["light"]["source"]) == {"inventory"}
        assert tw.registry["cabinet"]["n_lights"].sum() == n
        assert "row" in report.summary()
        again = twin.load("paris-trocadero", progress=False)
        assert again.counts()["light"] == n
        assert inventory_path("paris-trocadero").is_file()
        assert remove_inventory("paris-trocadero")
        back = twin.load("paris-trocadero", progress=False)
        assert back.counts()["light"] != n


def test_shapefile_inventory_with_field_mapping(data_root, montpellier):
    ok, rejected, rows = read_inventory(
        data_root / "montpellier" / "VilleMTP_MTP_EclairagePublic.zip",
        fields={"luminaire": "type_lante"},
    )
    assert rows == 29_969 and len(ok) == 29_969 and not rejected
    import geopandas as gpd

    raw = gpd.read_file(f"zip://{data_root / 'montpellier' / 'VilleMTP_MTP_EclairagePublic.zip'}")
    expected = raw["type_lante"].str.strip().str.lower().value_counts()
    assert ok["luminaire"].value_counts().to_dict() == expected.to_dict()
    assert expected["lanterne"] >= 22_594


def test_missing_column_is_named(paris, tmp_path):
    path = tmp_path / "inv.csv"
    _write_inventory(path, paris, n=5)
    with pytest.raises(twin.InputValidationError, match="WATTS"):
        read_inventory(path, fields={"power_w": "WATTS", "lon": "LON", "lat": "LAT"})


def test_cli_import_inventory(paris, tmp_path, capsys):
    from twin.cli import main

    path = tmp_path / "inventory.csv"
    _write_inventory(path, paris, n=50)
    args = ["import-inventory", "--city", "paris-trocadero", str(path)]
    for ours, theirs in FIELDS.items():
        args += ["--field", f"{ours}={theirs}"]
    rejects = tmp_path / "rejects.csv"
    with twin.set_options(cache=tmp_path / "cache"):
        assert main([*args, "--rejects", str(rejects)]) == 0
    out = capsys.readouterr().out
    assert "50 accepted, 7 rejected" in out
    assert len(rejects.read_text().splitlines()) == 8
