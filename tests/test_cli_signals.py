"""`twin optimize signals` on a real city: coordinated plans with offsets, bands, SUMO files."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xarray as xr
from calibration_folders import calibration_folder

from twin.cli import main


@pytest.mark.slow
def test_optimize_signals_one_corridor_with_sumo(montpellier, tmp_path: Path, capsys):
    out = tmp_path / "signals"
    code = main(
        [
            "optimize",
            "signals",
            "--city",
            "montpellier",
            "--corridor",
            "Avenue de Toulouse",
            "--out",
            str(out),
            "--sumo",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    (name, corridor), *_ = report["corridors"].items()
    assert name.startswith("Avenue de Toulouse") and corridor["status"] == "Optimal"
    assert corridor["band_out_s"] + corridor["band_in_s"] > 0
    docs = {d["junction"]: d for d in json.loads((out / "plans.json").read_text())}
    assert len(docs) == report["plans"] > 300
    # the corridor's plans carry MAXBAND's offsets at its common cycle (or half of it, for
    # a double-cycled junction), here and in SUMO
    ds = xr.open_dataset(out / "plans.nc")
    net = ET.parse(out / "sumo" / "twin.net.xml").getroot()
    sumo_offsets = {el.get("id"): float(el.get("offset")) for el in net.iter("tlLogic")}
    assert set(corridor["double_cycled"]) <= set(corridor["offsets_s"])
    for j, off in corridor["offsets_s"].items():
        cycle = corridor["cycle_s"] / (2 if j in corridor["double_cycled"] else 1)
        plan_off = round(off, 2) % cycle
        assert float(ds["offset"].sel(junction=j)) == pytest.approx(plan_off, abs=0.01)
        assert float(ds["cycle"].sel(junction=j)) == pytest.approx(cycle)
        assert sumo_offsets[j] == pytest.approx(plan_off, abs=0.01)
    assert any(c > 0 for cs in report["coupling_index"].values() for c in cs)
    assert (out / "corridor_0_time_space.png").stat().st_size > 10_000


@pytest.mark.slow
def test_unknown_corridor_lists_the_nearest(montpellier, tmp_path: Path, capsys):
    code = main(
        [
            "optimize",
            "signals",
            "--city",
            "montpellier",
            "--corridor",
            "Avenue de Tolouse",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "no corridor 'Avenue de Tolouse'" in err
    assert "nearest: Avenue de Toulouse (junction:" in err
    assert not (tmp_path / "x").exists()


def test_optimize_signals_bondy_bus_priority(bondy, tmp_path: Path, capsys):
    out = tmp_path / "b"
    assert main(["optimize", "signals", "--city", "bondy", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # junction:4 (9.3 s all-red) has its other stage at the minimum green: no spare for a bus
    assert "bus routes, priority at 2 junctions (1 more with no spare green)" in text
    docs = json.loads((out / "bus_priority.json").read_text())
    assert {d["junction"] for d in docs} == {"junction:2", "junction:3", "junction:4"}
    assert all(d["lines"] and d["extended"]["cycle_s"] for d in docs)
    assert (out / "delay.png").stat().st_size > 10_000


def test_bad_bus_line_list_refused_before_loading(tmp_path: Path, capsys):
    bad = tmp_path / "lines.csv"
    bad.write_text("line,way\n12,abc\n", encoding="utf-8")
    args = ["optimize", "signals", "--city", "bondy", "--bus-lines", str(bad)]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "lines.csv, row 2: 'way' 'abc' is not an OSM way id" in err
    assert "Traceback" not in err


def test_infeasible_corridor_reported_with_binding_constraints(paris, tmp_path: Path, capsys):
    """Paris-Trocadéro's Rue de Longchamp, whole, has no band at its speeds (coordinated only
    where its links are coupled, its first four signals have one)."""
    out = tmp_path / "p"
    args = ["optimize", "signals", "--city", "paris-trocadero", "--out", str(out)]
    assert main([*args, "--min-coupling", "0"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    (name, corridor), *_ = report["corridors"].items()
    assert name.startswith("Rue de Longchamp") and corridor["status"] == "infeasible"
    assert corridor["binding"] and all("[" in b for b in corridor["binding"])
    assert f"{name}: infeasible; binding constraints {', '.join(corridor['binding'])}" in printed
    # its junctions keep offsets 0 (only a coordinated corridor's have others); every plan is
    # still written
    docs = json.loads((out / "plans.json").read_text())
    coordinated = {j for c in report["corridors"].values() for j in c.get("offsets_s", {})}
    assert len(docs) == report["plans"]
    assert all(d["offset_s"] == 0 or d["junction"] in coordinated for d in docs)
    # no relations in a GraphML extract: plans without bus priority, and the report says why
    assert "no bus priority" in report["bus_priority"]


def test_bad_min_coupling_refused(tmp_path: Path, capsys):
    args = ["optimize", "signals", "--city", "bondy", "--out", str(tmp_path / "o")]
    assert main([*args, "--min-coupling", "-0.1"]) == 2
    assert "--min-coupling: '-0.1' is not a number at least 0" in capsys.readouterr().err


def test_optimize_signals_sized_on_a_calibrated_demand(bondy, tmp_path: Path, capsys):
    """Plans follow the calibrated demand: half the trip rate, shorter cycles and greens."""
    docs, reports = {}, {}
    for name, rate in (("full", 3.7), ("half", 1.85)):
        calibration_folder(bondy, tmp_path / f"cal_{name}", trip_rate=rate)
        out = tmp_path / name
        args = ["optimize", "signals", "--city", "bondy", "--out", str(out)]
        assert main([*args, "--calibration", str(tmp_path / f"cal_{name}")]) == 0
        docs[name] = {d["junction"]: d for d in json.loads((out / "plans.json").read_text())}
        reports[name] = json.loads((out / "report.json").read_text())
    assert "demand calibrated by" in capsys.readouterr().out
    assert set(docs["full"]) == set(docs["half"]) and docs["full"]
    assert all("calibrated by" in r["demand"] for r in reports.values())
    assert reports["full"]["local_hour"] == reports["half"]["local_hour"]
    # junction:2's three stages sit at their minimum greens at either demand; the others'
    # cycles and greens shrink with the flows
    shorter = 0
    for j, full in docs["full"].items():
        half = docs["half"][j]
        assert half["cycle_s"] <= full["cycle_s"] + 1e-6
        greens = zip(half["stages"], full["stages"], strict=True)
        assert all(h["green_s"] <= f["green_s"] + 1e-6 for h, f in greens)
        shorter += half["cycle_s"] < full["cycle_s"] - 1.0
    assert shorter >= 2
    # and the calibrated demand's equilibrium flows are not the default's road-class profiles
    default = tmp_path / "default"
    assert main(["optimize", "signals", "--city", "bondy", "--out", str(default)]) == 0
    by_default = {d["junction"]: d for d in json.loads((default / "plans.json").read_text())}
    assert any(abs(by_default[j]["cycle_s"] - d["cycle_s"]) > 1.0 for j, d in docs["full"].items())


def test_optimize_signals_refuses_a_bad_calibration_folder(bondy, tmp_path: Path, capsys):
    args = ["optimize", "signals", "--city", "bondy"]
    cases = []
    cases.append((tmp_path / "none", r"none/calibration\.json: no such file"))
    bad = tmp_path / "nan"
    calibration_folder(bondy, bad, trip_rate=float("nan"))
    cases.append((bad, r"nan/calibration\.json: params\.trip_rate nan is not a non-negative"))
    other = tmp_path / "cells"  # OD factors of 250 m cells for a 500 m calibration
    calibration_folder(bondy, other, trip_rate=3.7, cell_m=250.0)
    report = json.loads((other / "calibration.json").read_text())
    (other / "calibration.json").write_text(json.dumps({**report, "cell_m": 500.0}))
    cases.append((other, r"cells/od_factor\.npy: .*shape"))
    for k, (folder, match) in enumerate(cases):
        out = tmp_path / f"o{k}"
        assert main([*args, "--out", str(out), "--calibration", str(folder)]) == 2
        err = capsys.readouterr().err
        assert re.search(match, err), err
        assert "Traceback" not in err
        assert not out.exists()
