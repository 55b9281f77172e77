from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import twin
from twin.cli import _COMMANDS, _GROUPS, main

TWIN = Path(sys.executable).parent / "twin"  # the console script, as a user runs it
REPO = Path(__file__).resolve().parents[1]


def run_twin(*args, env=None, cwd=None, timeout=600):
    """Run the installed ``twin`` command; returns (exit status, stdout, stderr).

    The output is decoded as is: a carriage return stays one (progress bars draw with them).
    """
    full_env = {**os.environ, "TWIN_PROGRESS": "0", **(env or {})}
    res = subprocess.run(
        [str(TWIN), *map(str, args)], capture_output=True, env=full_env, cwd=cwd, timeout=timeout
    )
    return res.returncode, res.stdout.decode(), res.stderr.decode()


def files_under(folder: Path) -> set[str]:
    """Everything under a folder, hidden files and empty folders included."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_one_line(err: str, *needles: str) -> str:
    """Exactly one line on stderr, holding every needle, and no traceback."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- the commands that work -----------------------------------------------------------------


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
    assert main(["info", "--city"]) == 2
    assert_one_line(capsys.readouterr().err, "--city", "expected one argument")
    assert main(["info", "--city", "lyon"]) == 2
    line = assert_one_line(capsys.readouterr().err, "unknown city 'lyon'", "montpellier")
    assert line.startswith("twin info: error: --city:")


def test_map_png_into_folders_made_on_success(paris, tmp_path):
    out = tmp_path / "maps" / "paris" / "map.png"
    assert main(["map", "--city", "paris-trocadero", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 50_000
    assert files_under(tmp_path) == {"maps", "maps/paris", "maps/paris/map.png"}  # no leftovers


def test_cities(capsys):
    assert main(["cities"]) == 0
    assert "dijon" in capsys.readouterr().out


def test_import_sumo_network_makes_a_city(tmp_path, capsys):
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

    tw = twin.load(net)
    assert tw.counts()["junction"] == 2
    assert {d["sumo_id"] for _, d in tw.graph.nodes(data=True)} >= {"B1", "C2"}


def test_junction_map_png(paris, tmp_path):
    out = tmp_path / "junctions.png"
    assert main(["map", "--city", "paris-trocadero", "--junctions", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_geojson_into_a_new_folder(bondy, tmp_path, capsys):
    out = tmp_path / "exports" / "bondy.geojson"
    assert main(["export", "geojson", "--city", "bondy", "--out", str(out), "--kind", "light"]) == 0
    assert "records written" in capsys.readouterr().out
    features = json.loads(out.read_text())["features"]
    assert len(features) == bondy.counts()["light"]
    assert files_under(tmp_path) == {"exports", "exports/bondy.geojson"}


@pytest.mark.slow
def test_calibrate_writes_geh_per_site(montpellier, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "cal"
    args = ["calibrate", "--city", "montpellier", "--out", str(out), "--starts", "1"]
    assert (
        main(
            [*args, "--matrix-estimation", "--holdout", "0.3", "--paths", "free",
             "--gateways-from-counts"]
        )
        == 0
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "GEH < 5" in printed and "matrix estimation" in printed
    assert "gateways sized from counts" in printed
    report = json.loads((out / "calibration.json").read_text())
    # the gateways the counts sized, and those left to capacity (held-out entry roads among them)
    assert len(report["gateways"]["count"]) >= 5
    assert report["gateways"]["capacity (count held out)"]
    gates = pd.read_csv(out / "gateways.csv")
    assert len(gates) == sum(len(v) for v in report["gateways"].values())
    assert (out / "external_ends.npy").exists()
    assert report["matched"] + report["unmatched"] == 3314
    for label in ("parameters", "matrix_estimation"):
        table = pd.read_csv(out / f"geh_{label}.csv")
        # one row per count and peak, but for the counts left out (listed with their reason)
        counts = pd.read_csv(out / f"geh_counts_{label}.csv")
        left_out = pd.read_csv(out / "counts_left_out.csv")["count"].nunique()
        assert len(counts) == 2 * (report["matched"] + report["unmatched"] - left_out)
        # one row per site and peak, the mean of its counts
        assert len(table) == 2 * table["site"].nunique() < len(counts)
        assert set(counts["site"]) == set(table["site"])
        assert (out / f"geh_{label}.png").read_bytes()[:4] == b"\x89PNG"
    assert {"share_geh_below_5_fitted", "share_geh_below_5_holdout"} <= set(report["per_count"])
    table = pd.read_csv(out / "geh_parameters.csv")
    assert report["share_geh_below_5"] == pytest.approx(float((table["geh"] < 5).mean()))
    held = table.groupby("street")["holdout"].first()
    assert held.mean() == pytest.approx(0.3, abs=0.04)  # streets held out, not rows
    assert pd.read_csv(out / "counts_left_out.csv")["site"].notna().all()
    me = report["matrix_estimation"]
    assert {"cell_r2", "trip_end_slope", "share_geh_below_5_holdout"} <= set(me)
    assert not [p for p in tmp_path.rglob("*.partial")]


def test_demo_is_an_alias_of_plan_night():
    from twin.cli import _parser, cmd_plan_night

    argv = ["--city", "montpellier", "--date", "2026-12-15", "--out", "x"]
    night = _parser().parse_args(["plan", "night", *argv])
    demo = _parser().parse_args(["demo", *argv])
    assert night._command.run is demo._command.run is cmd_plan_night
    assert {
        k: v for k, v in vars(night).items() if k not in {"command", "plan_command", "_prog"}
    } == {k: v for k, v in vars(demo).items() if k not in {"command", "_prog"}}


# --- help and version ------------------------------------------------------------------------


def _every_command() -> list[list[str]]:
    names = {"": None}
    for spec in _COMMANDS:
        for name in (spec.name, *spec.aliases):
            words = name.split()
            for depth in range(1, len(words) + 1):
                names[" ".join(words[:depth])] = None
    return [name.split() for name in names]


def test_help_of_every_command_and_group(capsys):
    commands = _every_command()
    assert ["plan", "night"] in commands and ["inventory", "remove"] in commands
    assert set(_GROUPS) <= {" ".join(c) for c in commands}
    for words in commands:
        assert main([*words, "--help"]) == 0, words
        out = capsys.readouterr().out
        assert out.startswith(f"usage: {' '.join(['twin', *words])}"), (words, out[:80])
        assert "Traceback" not in out


def test_help_and_version_as_a_user_runs_them():
    code, out, err = run_twin("--help")
    assert code == 0 and "plan" in out and "inventory" in out and err == ""
    code, out, err = run_twin("--version")
    assert (code, out.strip(), err) == (0, f"twin {twin.__version__}", "")


# --- bad input: one line naming the field and the reason, exit 2, nothing written -----------

BAD = [
    # (arguments, what the line must name, why)
    (["plan", "night", "--date", "2026-02-30", "--out", "{tmp}/n"], "--date", "not a valid date"),
    (["plan", "night", "--date", "tomorrow", "--out", "{tmp}/n"], "--date", "YYYY-MM-DD"),
    (["plan", "night", "--objective", "fastest", "--out", "{tmp}/n"], "--objective", "not one of"),
    (["plan", "night", "--switch-off", "25:00-05:00", "--out", "{tmp}/n"], "--switch-off", "clock"),
    (["plan", "night", "--switch-off", "01:00", "--out", "{tmp}/n"], "--switch-off", "HH:MM-HH:MM"),
    (["plan", "night", "--switch-off", "02:00-02:00", "--out", "{tmp}/n"], "--switch-off", "same"),
    (["plan", "night", "--out", "{tmp}/afile"], "--out", "is a file; a folder is expected"),
    (["plan", "night", "--out", "{tmp}/afile/night"], "--out", "afile is a file, not a folder"),
    (["plan", "night", "--out", ""], "--out", "empty path"),
    (["plan", "night"], "--out", "required"),
    (["demo", "--seed", "-3", "--out", "{tmp}/n"], "--seed", "negative"),
    (["plan", "night", "--seed", "x", "--out", "{tmp}/n"], "--seed", "not a whole number"),
    (["plan", "night", "--city", "lyon", "--out", "{tmp}/n"], "--city", "unknown city 'lyon'"),
    (["plan", "night", "--osm", "{tmp}/nowhere.osm", "--out", "{tmp}/n"], "--osm", "no such file"),
    (["info", "--osm", "{tmp}/afile"], "--osm", "is not an OSM extract"),
    (["info", "--osm", "{tmp}/adir.osm"], "--osm", "is a folder"),
    (["map", "--out", "{tmp}/adir.osm"], "--out", "is a folder; a file is expected"),
    (["map", "--out", "{tmp}/map.txt"], "--out", "expected a .png"),
    (["export", "geojson", "--out", "{tmp}/adir.osm"], "--out", "is a folder"),
    (["export", "ngsi-ld", "--out", "{tmp}/x.geojson"], "--out", "expected a .json"),
    (["export", "sumo", "--out", "{tmp}/afile"], "--out", "is a file; a folder"),
    (["export", "geojson", "--out", "{tmp}/x.geojson", "--kind", "lamp"], "--kind", "'lamp'"),
    (["export", "ngsi-ld", "--out", "{tmp}/x.json", "--kind", "camera"], "--kind", "NGSI-LD"),
    (["export", "sumo", "--out", "{tmp}/s", "--kind", "light"], "--kind", "not kinds"),
    (["energy", "--year", "20x6", "--out", "{tmp}/e"], "--year", "not a calendar year"),
    (["energy", "--year", "1850", "--out", "{tmp}/e"], "--year", "1900-2100"),
    (["energy", "--switch-off", "25:00-05:00", "--out", "{tmp}/e"], "--switch-off", "clock"),
    (["optimize", "signals", "--out", "{tmp}/afile"], "--out", "is a file; a folder"),
    (["calibrate", "--holdout", "1.5", "--out", "{tmp}/c"], "--holdout", "[0, 1)"),
    (["calibrate", "--starts", "0", "--out", "{tmp}/c"], "--starts", "at least 1"),
    (["calibrate", "--me-weight", "nan", "--out", "{tmp}/c"], "--me-weight", "finite"),
    (["calibrate", "--rng", "-1", "--out", "{tmp}/c"], "--rng", "negative"),
    (["footfall", "calibrate", "--out", "{tmp}/f"], "--counts", "required"),
    (
        ["footfall", "calibrate", "--counts", "{tmp}/none.csv", "--out", "{tmp}/f"],
        "--counts",
        "no such file",
    ),
    (["footfall", "calibrate", "--db", "mysql://x", "--out", "{tmp}/f"], "--db", "sqlite:///"),
    (
        [
            "footfall",
            "calibrate",
            "--counts",
            "{tmp}/inv.csv",
            "--holdout",
            "1.5",
            "--out",
            "{tmp}/f",
        ],
        "--holdout",
        "[0, 1)",
    ),
    (
        ["plan", "night", "--footfall-calibration", "{tmp}/adir.osm", "--out", "{tmp}/n"],
        "footfall_calibration.json",
        "no such file",
    ),
    (["data", "fetch", "dijon", "--dest", "{tmp}/afile"], "--dest", "is a file"),
    (["data", "fetch", "dijon", "--overpass-url", "ftp://x"], "--overpass-url", "http"),
    (["inventory", "import", "{tmp}/none.csv"], "file", "no such file"),
    (["inventory", "import", "{tmp}/inv.csv", "--field", "watts"], "--field", "OURS=THEIRS"),
    (["inventory", "import", "{tmp}/inv.csv", "--field", "power_w=WATTS"], "WATTS", "no column"),
    (["inventory", "import", "{tmp}/inv.csv", "--encoding", "klingon"], "encoding", "klingon"),
    (["inventory", "import", "{tmp}/inv.csv", "--crs", "EPSG:99999"], "--crs", "not a CRS"),
    (
        ["inventory", "import", "{tmp}/inv.csv", "--rejects", "{tmp}/adir.osm"],
        "--rejects",
        "folder",
    ),
    (["inventory", "import", "{tmp}/odd.csv"], "odd.csv", "--encoding"),
    (["import-inventory", "{tmp}/inv.csv", "--rejects", "{tmp}/r.txt"], "--rejects", ".csv"),
    (["inventory", "remove", "0123456789abcdef"], "inventory id", "no stored inventory"),
    (["inventory", "remove"], "inventory remove", "give the ids"),
    (["frobnicate"], "COMMAND", "invalid choice"),
]


@pytest.fixture
def workdir(tmp_path):
    """A folder with a file, a folder named like an extract, and two small inventories."""
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "adir.osm").mkdir()
    (tmp_path / "inv.csv").write_text("lon;lat;puissance\n4.84;45.75;70\n", encoding="utf-8")
    (tmp_path / "odd.csv").write_bytes(b"lon;lat;techno\n4.84;45.75;\x81\x8d\n")
    return tmp_path


@pytest.mark.parametrize(("argv", "field", "reason"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_argument_one_line_exit_2_nothing_written(argv, field, reason, workdir, capsys):
    before = files_under(workdir)
    args = [a.replace("{tmp}", str(workdir)) for a in argv]
    # --city dijon (the default) has no data here: an error about the arguments, not about
    # Dijon's missing extract, shows they were checked before any twin was loaded
    assert main(args) == 2
    captured = capsys.readouterr()
    assert_one_line(captured.err, field, reason)
    assert files_under(workdir) == before  # no folder, no staging left behind


def test_bad_settings_one_line(monkeypatch, capsys):
    monkeypatch.setenv("TWIN_PROGRESS", "maybe")
    assert main(["cities"]) == 2
    assert_one_line(capsys.readouterr().err, "TWIN_PROGRESS", "not a boolean")


@pytest.mark.parametrize(
    ("argv", "field", "reason"),
    [
        (["plan", "night", "--date", "2026-02-30", "--out", "{tmp}/n"], "--date", "valid date"),
        (["plan", "night", "--out", "{tmp}/afile"], "--out", "is a file"),
        (["demo", "--objective", "cheapest", "--out", "{tmp}/n"], "--objective", "cheapest"),
        (["map", "--out", "{tmp}/afile/map.png"], "--out", "not a folder"),
        (["inventory", "import", "{tmp}/odd.csv"], "odd.csv", "--encoding"),
    ],
)
def test_bad_argument_as_a_user_runs_it(argv, field, reason, workdir):
    before = files_under(workdir)
    args = [a.replace("{tmp}", str(workdir)) for a in argv]
    code, out, err = run_twin(*args, env={"TWIN_PROGRESS": "1"})
    assert code == 2 and out == ""
    assert_one_line(err, field, reason)
    assert files_under(workdir) == before


@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot write in (root included: made immutable)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK) and shutil.which("chattr"):
        immutable = (
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        )
    try:
        probe = folder / "probe"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("no way to make a folder unwritable for this user here")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_unwritable_out_one_line_exit_2(unwritable):
    for argv in (
        ["plan", "night", "--out", f"{unwritable}/night"],
        ["plan", "night", "--out", str(unwritable)],
        ["map", "--out", f"{unwritable}/sub/map.png"],
        ["export", "sumo", "--out", f"{unwritable}/sumo"],
    ):
        code, out, err = run_twin(*argv)
        assert code == 2, argv
        assert_one_line(err, "--out", "cannot write in", str(unwritable))
    assert list(unwritable.iterdir()) == []


# --- failures after work began: nothing half-written, bars closed first ----------------------


@pytest.fixture
def truncated_osm(data_root, tmp_path):
    """Bondy's real extract, cut short: the reader fails once the job has started."""
    path = tmp_path / "cut.osm"
    path.write_bytes((data_root / "osm" / "bondy.osm").read_bytes()[:20_000])
    return path


def test_failure_inside_the_job_leaves_no_output_folder(truncated_osm, tmp_path):
    out = tmp_path / "plans" / "night"
    before = files_under(tmp_path)
    code, stdout, err = run_twin("plan", "night", "--osm", truncated_osm, "--out", out)
    assert code == 2
    assert_one_line(err, "cut.osm", "truncated")
    assert not out.exists() and not out.parent.exists()
    assert files_under(tmp_path) == before


def test_failure_leaves_an_existing_output_folder_as_it_was(truncated_osm, tmp_path):
    out = tmp_path / "night"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    code, _, err = run_twin("demo", "--osm", truncated_osm, "--out", out)
    assert code == 2
    assert_one_line(err, "truncated")
    assert files_under(out) == {"notes.txt"}


def test_progress_bars_are_closed_before_the_error_line(truncated_osm, tmp_path):
    """With progress on, the bars of the job and of the build were drawn, then erased; the
    terminal shows the error alone on its line, and nothing is drawn after it."""
    from test_progress import render

    code, _, err = run_twin(
        "plan", "night", "--osm", truncated_osm, "--out", tmp_path / "n",
        env={"TWIN_PROGRESS": "1"},
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert "night plan" in err and "building cut" in err  # both bars were shown
    screen = render(err)
    assert len(screen) == 1 and screen[0].startswith("twin plan night: error: "), screen
    assert "truncated" in screen[0]
    assert err.endswith("\n") and "\r" not in err.split("twin plan night: error: ")[1]


def test_twin_progress_0_turns_the_bars_off(data_root, tmp_path):
    extract = tmp_path / "bondy.osm"
    shutil.copy(data_root / "osm" / "bondy.osm", extract)
    env = {"TWIN_CACHE": str(tmp_path / "cache")}
    code, _, err = run_twin("info", "--osm", extract, env={**env, "TWIN_PROGRESS": "1"})
    assert code == 0 and "building bondy" in err  # the build draws a bar
    code, _, err = run_twin(
        "info", "--osm", extract, "--rebuild", env={**env, "TWIN_PROGRESS": "0"}
    )
    assert code == 0 and err == ""


# --- the input reader's errors, as the command line shows them --------------------------------


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        (
            "nohighway.osm",
            '<?xml version="1.0"?>\n<osm version="0.6">\n'
            '<node id="1" lat="48.9" lon="2.48"/><node id="2" lat="48.91" lon="2.49"/>\n'
            '<way id="3"><nd ref="1"/><nd ref="2"/><tag k="building" v="yes"/></way>\n</osm>\n',
            "nohighway.osm",
        ),
        (
            "notgraphml.graphml",
            '<?xml version="1.0"?>\n<html><body><p>a web page saved by mistake</p></body></html>\n',
            "notgraphml.graphml",
        ),
    ],
)
def test_unusable_extract_one_line_exit_2(name, content, needle, tmp_path):
    extract = tmp_path / name
    extract.write_text(content)
    code, out, err = run_twin("info", "--osm", extract, env={"TWIN_CACHE": str(tmp_path / "cache")})
    assert code == 2, err
    assert_one_line(err, needle)


@pytest.mark.slow
def test_plan_night_says_where_cabinet_caps_bind(montpellier, tmp_path, capsys):
    """The main job says how many cabinets' contracted kVA binds when compliance is below 100%."""
    out = tmp_path / "night"
    assert (
        main(["plan", "night", "--city", "montpellier", "--date", "2026-12-15", "--out", str(out)])
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    n = report["cap_binding_cabinets"]
    assert n > 0 and report["compliance_pct"] < 100.0
    assert f"the contracted kVA of {n:,} cabinets binds tonight" in capsys.readouterr().out
