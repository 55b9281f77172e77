from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

import twin
from twin.crs import to_wgs84
from twin.inventory import (
    import_inventory,
    inventory_path,
    list_inventories,
    parse_inventory,
    read_inventory,
    remove_inventory,
    stored_inventory,
    technology_code,
)

MTP_LIGHTS = "montpellier/VilleMTP_MTP_EclairagePublic.zip"


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
    if tw.city.name != "paris-trocadero":  # the bad rows stand in Paris: move them to the city
        c_lon, c_lat = float(np.mean(lon)), float(np.mean(lat))
        for b in bad:
            if b["ID"] != "B3" and b["LAT"] == "48.86":
                b["LAT"] = f"{c_lat:.6f}"
                if b["LON"] == "2.29":
                    b["LON"] = f"{c_lon:.6f}"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(
            fh, fieldnames=["ID", "LON", "LAT", "PUISSANCE", "TECHNO"], delimiter=";"
        )
        w.writeheader()
        w.writerows(rows + bad)
    return n


FIELDS = {"ref": "ID", "lon": "LON", "lat": "LAT", "power_w": "PUISSANCE", "technology": "TECHNO"}


def _area(tw):
    seg = tw.registry["segment"]
    return shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(seg.geometry.values)))


def test_bad_rows_rejected_with_row_field_reason_good_rows_kept(paris, tmp_path):
    path = tmp_path / "inventory.csv"
    n = _write_inventory(path, paris)
    ok, rejected, rows = read_inventory(path, fields=FIELDS, area=_area(paris))
    assert rows == n + 7
    assert len(ok) == n
    assert len(ok) + len(rejected) == rows  # nothing lost
    by_row = {r.row: r for r in rejected}
    first_bad = n + 2  # header is line 1
    assert by_row[first_bad].field == "lon" and "not a number" in by_row[first_bad].reason
    assert (
        by_row[first_bad + 1].field == "power_w" and "out of range" in by_row[first_bad + 1].reason
    )
    assert by_row[first_bad + 2].field == "lon/lat" and "outside" in by_row[first_bad + 2].reason
    assert by_row[first_bad + 3].field == "technology" and "PLASMA" in by_row[first_bad + 3].reason
    assert by_row[first_bad + 4].field == "ref" and "duplicate" in by_row[first_bad + 4].reason
    assert by_row[first_bad + 5].field == "lon" and "empty" in by_row[first_bad + 5].reason
    assert by_row[first_bad + 6].field == "power_w"
    assert set(ok["technology"]) == {"LED", "HPS"}
    assert np.isnan(ok["power_w"]).sum() == n // 4


def test_shapefile_inventory_with_field_mapping(data_root, montpellier):
    parsed = parse_inventory(data_root / MTP_LIGHTS, fields={"luminaire": "type_lante"})
    ok, rejected, rows = parsed.lights, parsed.rejected, parsed.rows
    assert rows == 29_969 and len(ok) == 29_969 and not rejected
    assert parsed.encoding == "UTF-8"  # as the shapefile declares it
    raw = gpd.read_file(f"zip://{data_root / MTP_LIGHTS}")
    expected = raw["type_lante"].str.strip().str.lower().value_counts()
    assert ok["luminaire"].value_counts().to_dict() == expected.to_dict()
    assert expected["lanterne"] >= 22_594


def test_missing_column_is_named(paris, tmp_path):
    path = tmp_path / "inv.csv"
    _write_inventory(path, paris, n=5)
    with pytest.raises(twin.InputValidationError, match="WATTS"):
        read_inventory(path, fields={"power_w": "WATTS", "lon": "LON", "lat": "LAT"})


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Sodium haute pression", "HPS"),
        ("SODIUM HAUTE PRESSION", "HPS"),
        ("sodium-haute-pression", "HPS"),
        ("  sodium  haute\tpression ", "HPS"),
        ("SHP", "HPS"),
        ("Iodures métalliques", "MH"),
        ("IODURES MÉTALLIQUES", "MH"),
        ("iodures_metalliques", "MH"),
        ("Halogénures métalliques", "MH"),
        ("Sodium basse pression", "LPS"),
        ("Diode électroluminescente", "LED"),
        ("led", "LED"),
        ("Ballon fluorescent", "MERCURY"),
        ("Vapeur de mercure", "MERCURY"),
        ("Fluocompacte", "FLUO"),
        ("Plasma à induction", None),
        ("Sodium", None),  # high or low pressure? not guessed
    ],
)
def test_technology_names_with_or_without_accents(name, code):
    assert technology_code(name) == code


# --- an awkward inventory made from Montpellier's real one ------------------------------------

TECH_NAMES = [  # name as written -> what it means
    ("Sodium haute pression", "HPS"),
    ("SODIUM HAUTE PRESSION", "HPS"),
    ("sodium-haute-pression", "HPS"),
    ("Iodures métalliques", "MH"),
    ("IODURES MÉTALLIQUES", "MH"),
    ("Diode électroluminescente", "LED"),
    ("LED", "LED"),
    ("Ballon fluorescent", "MERCURY"),
    ("", "LED"),
]
HEADER = ["N°", "Longitude", "Latitude", "Puissance (W)", "Technologie", "Type de lanterne"]


def _french(v: float) -> str:
    return f"{v:.7f}".replace(".", ",")  # a French spreadsheet's decimal comma


def _montpellier_cp1252(data_root: Path, path: Path, *, every: int = 20, swap_columns=False):
    """Montpellier's light points as a French spreadsheet would export them: cp1252, `;`,
    decimal commas, accented technology names, some rows with lon and lat swapped, bad rows.

    Returns what the file holds: good rows by technology, swapped rows, and the bad rows.
    """
    raw = gpd.read_file(f"zip://{data_root / MTP_LIGHTS}").iloc[::every]
    xy = shapely.get_coordinates(raw.geometry.values)
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1])
    lines, expected, swapped = [], {}, []
    for i, (x, y, lum) in enumerate(zip(lon, lat, raw["type_lante"], strict=True)):
        name, code = TECH_NAMES[i % len(TECH_NAMES)]
        a, b = (y, x) if (i % 100 == 7) != swap_columns else (x, y)
        if i % 100 == 7:
            swapped.append(i + 2)
        else:
            expected[code] = expected.get(code, 0) + 1
        power = "" if i % 3 == 0 else str(70 + 30 * (i % 4))
        lum = lum if isinstance(lum, str) else ""  # the real file leaves some empty
        lines.append([f"MTP-{i:05d}", _french(a), _french(b), power, name, lum])
    c_lon, c_lat = _french(float(np.median(lon))), _french(float(np.median(lat)))
    n = len(lines)
    bad = {
        n + 2: (["B-1", c_lon, c_lat, "cent", "LED", "LANTERNE"], "power_w", "not a number"),
        n + 3: (["B-2", c_lon, c_lat, "70", "Plasma à induction", "BORNE"], "technology", "Plasma"),
        n + 4: (["MTP-00001", c_lon, c_lat, "70", "LED", "LANTERNE"], "ref", "duplicate"),
        n + 5: (["B-4", c_lon, "", "70", "LED", "LANTERNE"], "lat", "empty"),
        n + 6: (["B-5", "5,0415", "47,3220", "70", "LED", "PROJECTEUR"], "lon/lat", "outside"),
        n + 7: (["B-6", c_lon, c_lat, "70", "LED", "LANTERNE", "en trop"], "row", "7 fields"),
        n + 8: (["B-7", c_lon, c_lat], "row", "3 fields"),
    }
    lines += [values for values, _, _ in bad.values()]
    text = "\r\n".join(";".join(r) for r in [HEADER, *lines]) + "\r\n"
    path.write_bytes(text.encode("cp1252"))
    return expected, swapped, bad, n


def test_cp1252_french_inventory_from_montpellier(data_root, montpellier, tmp_path):
    path = tmp_path / "eclairage.csv"
    expected, swapped, bad, n = _montpellier_cp1252(data_root, path)
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")  # really not UTF-8
    parsed = parse_inventory(path, area=_area(montpellier))
    assert parsed.encoding == "cp1252"
    assert parsed.columns == {  # found by name, accents and case aside
        "ref": "N°",
        "lon": "Longitude",
        "lat": "Latitude",
        "power_w": "Puissance (W)",
        "technology": "Technologie",
        "luminaire": "Type de lanterne",
    }
    assert parsed.rows == n + len(bad)
    assert len(parsed.lights) + len(parsed.rejected) == parsed.rows
    assert parsed.lights["technology"].value_counts().to_dict() == expected
    by_row = {r.row: r for r in parsed.rejected}
    assert set(by_row) == set(swapped) | set(bad)
    for row in swapped:
        assert by_row[row].field == "lon/lat"
        assert "longitude and latitude look swapped" in by_row[row].reason
    for row, (_, field, why) in bad.items():
        assert by_row[row].field == field and why in by_row[row].reason, by_row[row]
    # the decimal commas were read as decimals: points lie on Montpellier's streets
    assert parsed.lights.geometry.x.between(765_000, 776_000).all()
    assert not parsed.notes  # a few swapped rows: the columns themselves are right


def test_rejects_file_keeps_the_original_values(data_root, montpellier, tmp_path):
    path = tmp_path / "eclairage.csv"
    _, swapped, bad, n = _montpellier_cp1252(data_root, path)
    original = {
        i + 1: line for i, line in enumerate(path.read_bytes().decode("cp1252").split("\r\n"))
    }
    from twin.inventory import ImportReport

    parsed = parse_inventory(path, area=_area(montpellier))
    report = ImportReport(
        path.name,
        parsed.rows,
        len(parsed.lights),
        parsed.rejected,
        source_columns=parsed.source_columns,
    )
    out = tmp_path / "rejects.csv"
    report.write_rejects(out)
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(swapped) + len(bad)
    assert list(rows[0])[:3] == ["row", "field", "reason"]
    assert list(rows[0])[3:9] == HEADER
    for r in rows:
        line = original[int(r["row"])].split(";")
        given = [r[c] for c in HEADER][: len(line)]
        assert given == line[: len(HEADER)], r  # every value as the file wrote it
    plasma = next(r for r in rows if r["field"] == "technology")
    assert plasma["Technologie"] == "Plasma à induction"
    extra = next(r for r in rows if "7 fields" in r["reason"])
    assert extra["(extra fields)"] == "en trop"
    swap = next(r for r in rows if int(r["row"]) == swapped[0])
    assert swap["Longitude"].startswith("43,")  # a latitude in the longitude column


def test_whole_columns_swapped_are_named(data_root, montpellier, tmp_path):
    path = tmp_path / "eclairage.csv"
    _montpellier_cp1252(data_root, path, every=200, swap_columns=True)
    parsed = parse_inventory(path, area=_area(montpellier))
    looks = [r for r in parsed.rejected if "look swapped" in r.reason]
    assert len(looks) >= 0.9 * parsed.rows - 10
    assert parsed.notes and "longitude and latitude columns the other way round" in parsed.notes[0]
    assert "--field lon=Latitude --field lat=Longitude" in parsed.notes[0]


def test_swapped_out_of_range_without_an_area(tmp_path):
    path = tmp_path / "inv.csv"
    path.write_text("lon,lat\n100.50,13.75\n13.75,100.50\n", encoding="utf-8")  # Bangkok
    parsed = parse_inventory(path)
    assert len(parsed.lights) == 1
    (r,) = parsed.rejected
    assert r.row == 3 and "longitude and latitude look swapped" in r.reason


def test_encodings_utf8_bom_geojson_cp1252_and_undecodable(data_root, montpellier, tmp_path):
    raw = gpd.read_file(f"zip://{data_root / MTP_LIGHTS}").iloc[:40].to_crs("EPSG:4326")
    raw["Technologie"] = ["Iodures métalliques", "Sodium haute pression"] * 20
    # GeoJSON written by a tool that knew no better than cp1252
    gj = tmp_path / "eclairage.geojson"
    gj.write_bytes(raw.to_json(ensure_ascii=False).encode("cp1252"))
    parsed = parse_inventory(gj, area=_area(montpellier))
    assert parsed.encoding == "cp1252" and len(parsed.lights) == 40
    assert parsed.lights["technology"].value_counts().to_dict() == {"MH": 20, "HPS": 20}
    # UTF-8 with a byte-order mark, as Excel writes "CSV UTF-8"
    xy = shapely.get_coordinates(raw.geometry.values)
    body = "lon;lat;technologie\n" + "".join(f"{x};{y};Iodures métalliques\n" for x, y in xy)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    parsed = parse_inventory(bom)
    assert parsed.encoding == "utf-8-sig" and set(parsed.lights["technology"]) == {"MH"}
    # bytes no Windows-1252 text holds: said plainly, and --encoding reads them
    odd = tmp_path / "odd.csv"
    odd.write_bytes(body.encode("utf-8").replace("é".encode(), b"\x81"))
    with pytest.raises(twin.CorruptInputError, match="--encoding"):
        parse_inventory(odd)
    parsed = parse_inventory(odd, encoding="latin-1")
    assert parsed.encoding == "iso8859-1" and len(parsed.rejected) == len(xy)
    assert "unknown technology" in parsed.rejected[0].reason
    with pytest.raises(twin.InputValidationError, match="encoding"):
        parse_inventory(odd, encoding="klingon")


# --- stored inventories: keyed by the data they belong to -------------------------------------


@pytest.mark.slow
def test_stored_inventory_is_keyed_by_the_source_not_the_name(bondy, data_root, tmp_path):
    path = tmp_path / "inventory.csv"
    n = _write_inventory(path, bondy, n=40)
    same = tmp_path / "copy" / "renamed.osm"  # the same data under another name
    other = tmp_path / "other" / "bondy.osm"  # other data under the same name
    same.parent.mkdir()
    other.parent.mkdir()
    shutil.copy(data_root / "osm" / "bondy.osm", same)
    text = (data_root / "osm" / "bondy.osm").read_text(encoding="utf-8")
    other.write_text(text.replace("</osm>", "<!-- another edition -->\n</osm>"), encoding="utf-8")
    with twin.set_options(cache=tmp_path / "cache"):
        tw = twin.load("bondy", progress=False)
        derived = tw.counts()["light"]
        report = import_inventory(tw, path, fields=FIELDS, save=True)
        assert report.accepted == n and report.stored
        assert inventory_path("bondy").stem == report.stored
        (stored,) = list_inventories()
        assert stored.id == report.stored and stored.city == "bondy"
        assert stored.record["source"]["osm"]["name"] == "bondy.osm"
        assert stored.record["encoding"] == "utf-8" and stored.record["accepted"] == n
        assert twin.load("bondy", progress=False).counts()["light"] == n
        assert twin.load(osm=same, progress=False).counts()["light"] == n
        assert stored_inventory(same).id == stored.id
        elsewhere = twin.load(osm=other, progress=False)
        assert elsewhere.name == "bondy"  # same name as the shipped city, other data
        assert "inventory" not in elsewhere.meta["lights_by_source"]
        assert elsewhere.counts()["light"] == derived
        assert stored_inventory(other) is None
        assert remove_inventory("bondy") and not remove_inventory("bondy")
        assert list_inventories() == []
        assert twin.load("bondy", progress=False).counts()["light"] == derived


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
        assert "row" in report.summary() and "encoding utf-8" in report.summary()
        again = twin.load("paris-trocadero", progress=False)
        assert again.counts()["light"] == n
        assert inventory_path("paris-trocadero").is_file()
        assert remove_inventory("paris-trocadero")
        back = twin.load("paris-trocadero", progress=False)
        assert back.counts()["light"] != n


def test_cli_import_inventory_alias(paris, tmp_path, capsys):
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


def _twin(*args, cache, check=True):
    env = {**os.environ, "TWIN_CACHE": str(cache), "TWIN_PROGRESS": "0"}
    cmd = [str(Path(sys.executable).parent / "twin"), *map(str, args)]  # the console script
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.mark.slow
def test_cli_import_list_remove_montpellier_cp1252(data_root, tmp_path):
    """As a user would: import an awkward file, find it listed, use it, remove it."""
    path = tmp_path / "eclairage.csv"
    expected, swapped, bad, n = _montpellier_cp1252(data_root, path, every=10)
    cache = tmp_path / "cache"
    rejects = tmp_path / "out" / "rejets.csv"
    res = _twin(
        "inventory", "import", "--city", "montpellier", path, "--rejects", rejects, cache=cache
    )
    accepted = sum(expected.values())
    assert f"{n + len(bad)} rows, {accepted} accepted, {len(swapped) + len(bad)} rejected" in (
        res.stdout
    )
    assert "encoding cp1252" in res.stdout
    assert "longitude and latitude look swapped" in res.stdout
    assert len(rejects.read_text(encoding="utf-8").splitlines()) == 1 + len(swapped) + len(bad)
    listed = json.loads(_twin("inventory", "list", "--json", cache=cache).stdout)
    assert [(s["city"], s["accepted"], s["encoding"]) for s in listed] == [
        ("montpellier", accepted, "cp1252")
    ]
    assert set(listed[0]["source"]) == {"roads", "lights", "signals", "counts"}
    text = _twin("inventory", "list", cache=cache).stdout
    assert listed[0]["id"] in text and "eclairage.csv" in text
    info = json.loads(_twin("info", "--city", "montpellier", "--json", cache=cache).stdout)
    assert info["counts"]["light"] == accepted
    res = _twin("inventory", "remove", listed[0]["id"][:6], cache=cache)
    assert f"removed inventory {listed[0]['id']} (montpellier)" in res.stdout
    info = json.loads(_twin("info", "--city", "montpellier", "--json", cache=cache).stdout)
    assert info["counts"]["light"] == 29_969
    res = _twin("inventory", "remove", "--city", "montpellier", cache=cache, check=False)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "twin inventory remove: error: inventory remove: no inventory stored for the data of "
        "montpellier"
    ]


def test_maintenance_factor_and_install_year_read_checked_and_planned(paris, tmp_path):
    """French columns found unmapped; bad values rejected naming the field; the plans use them."""
    import datetime as dt

    from optimize import dimming

    lights = paris.registry["light"].iloc[:40]
    xy = shapely.get_coordinates(lights.geometry.values)
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1])
    next_year = dt.datetime.now(dt.UTC).year + 1
    good = [("0,8", "2019"), ("0.9", "03/05/2021"), ("", "2020-06-30"), ("0.85", "")]
    bad = [("1.2", "2019"), ("0", "2019"), ("0.8", str(next_year)), ("0.8", "vers 2010")]
    values = [good[i % len(good)] for i in range(36)] + bad
    path = tmp_path / "inventaire.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["ID", "LON", "LAT", "Facteur de maintenance", "Année de pose"])
        for i, (mf, year) in enumerate(values):
            w.writerow([f"L{i}", f"{lon[i]:.7f}", f"{lat[i]:.7f}", mf, year])
    parsed = parse_inventory(path, area=_area(paris), to_crs=paris.crs)
    assert parsed.columns["maintenance_factor"] == "Facteur de maintenance"
    assert parsed.columns["install_year"] == "Année de pose"
    assert [(r.row, r.field) for r in parsed.rejected] == [
        (38, "maintenance_factor"),
        (39, "maintenance_factor"),
        (40, "install_year"),
        (41, "install_year"),
    ]
    assert "in the future" in parsed.rejected[2].reason
    ok = parsed.lights
    assert ok["maintenance_factor"].head(4).tolist()[:2] == [0.8, 0.9]
    assert np.isnan(ok["maintenance_factor"].iloc[2])
    assert ok["install_year"].head(3).tolist() == [2019.0, 2021.0, 2020.0]
    assert np.isnan(ok["install_year"].iloc[3])
    with twin.set_options(cache=tmp_path / "cache"):
        tw = twin.load("paris-trocadero", progress=False)
        report = import_inventory(tw, path)
        assert report.maintenance_given == 27 and report.install_year_given == 27
        assert "maintenance factor given for 27" in report.summary()
        reg = tw.registry["light"].set_index("ref")
        assert reg.loc["L0", "maintenance_factor"] == 0.8
        assert reg.loc["L1", "install_year"] == 2021.0
        table = dimming.light_table(tw)
        assert int(table["maintenance_defaulted"].sum()) == 36 - 27
        assert int(table["install_year_defaulted"].sum()) == 36 - 27
        # the CLO factor follows each light's own MF and age: MF 0.8 of 2019 < MF 0.9 of 2021
        lon_c, lat_c = tw.centre
        clo = dimming.clo_factor(table, 2026, lat=lat_c, lon=lon_c)
        pos = {r: i for i, r in enumerate(tw.registry["light"]["ref"])}
        assert clo[pos["L0"]] < clo[pos["L1"]] < 1.0
