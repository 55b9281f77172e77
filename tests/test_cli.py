from __future__ import annotations

import json

import pytest

from twin.cli import main


def test_info_json_montpellier(montpellier, capsys):
    assert main(["info", "--city", "montpellier", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["counts"]["light"] == 29_969
    assert 340 <= info["counts"]["junction"] <= 373
    assert info["attribution"]


def test_info_text(paris, capsys):
    assert main(["info", "--city", "paris-trocadero"]) == 0
    out = capsys.readouterr().out
    assert "junction" in out and "OpenStreetMap" in out


def test_unknown_city_exit_code_and_message(capsys):
    with pytest.raises(SystemExit):
        main(["info", "--city"])
    assert main(["info", "--city", "lyon"]) == 2
    err = capsys.readouterr().err
    assert "unknown city 'lyon'" in err and "montpellier" in err


def test_map_png(paris, tmp_path):
    out = tmp_path / "map.png"
    assert main(["map", "--city", "paris-trocadero", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 50_000


def test_cities(capsys):
    assert main(["cities"]) == 0
    assert "dijon" in capsys.readouterr().out


def test_import_sumo_network_makes_a_city(tmp_path, capsys):
    import subprocess

    from twin.sumo import sumo_binary

    net = tmp_path / "grid.net.xml"
    subprocess.run(
        [
            sumo_binary("netgenerate"),
            "--grid",
            "--grid.number=4",
            "--grid.length=150",
            "--default.lanenumber=2",
            "-o",
            str(tmp_path / "plain.net.xml"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            sumo_binary("netconvert"),
            "-s",
            str(tmp_path / "plain.net.xml"),
            "--tls.set",
            "B1,C2",
            "-o",
            str(net),
        ],
        check=True,
        capture_output=True,
    )
    assert main(["import", "sumo", str(net)]) == 0
    out = capsys.readouterr().out
    assert "16 nodes" in out
    import twin

    tw = twin.load(net)
    assert tw.counts()["junction"] == 2
    assert {d["sumo_id"] for _, d in tw.graph.nodes(data=True)} >= {"B1", "C2"}


def test_junction_map_png(paris, tmp_path):
    out = tmp_path / "junctions.png"
    assert main(["map", "--city", "paris-trocadero", "--junctions", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_calibrate_writes_geh_per_site(montpellier, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "cal"
    args = ["calibrate", "--city", "montpellier", "--out", str(out), "--starts", "1"]
    assert main([*args, "--matrix-estimation", "--holdout", "0.25"]) == 0
    printed = capsys.readouterr().out
    assert "GEH < 5" in printed and "matrix estimation" in printed
    report = json.loads((out / "calibration.json").read_text())
    assert report["matched"] + report["unmatched"] == 3314
    for label in ("parameters", "matrix_estimation"):
        table = pd.read_csv(out / f"geh_{label}.csv")
        assert len(table) == 2 * report["matched"]  # one row per site and peak
        assert (out / f"geh_{label}.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(out / "geh_parameters.csv")
    assert report["share_geh_below_5"] == pytest.approx(float((table["geh"] < 5).mean()))
    held = table.groupby("street")["holdout"].first()
    assert held.mean() == pytest.approx(0.25, abs=0.01)  # streets held out, not rows
    me = report["matrix_estimation"]
    assert {"cell_r2", "trip_end_slope", "share_geh_below_5_holdout"} <= set(me)


def test_demo_is_an_alias_of_plan_night():
    from twin.cli import _parser, cmd_plan_night

    argv = ["--city", "montpellier", "--date", "2026-12-15", "--out", "x"]
    night = _parser().parse_args(["plan", "night", *argv])
    demo = _parser().parse_args(["demo", *argv])
    assert night.func is demo.func is cmd_plan_night
    assert {k: v for k, v in vars(night).items() if k not in {"command", "plan_command"}} == {
        k: v for k, v in vars(demo).items() if k != "command"
    }
