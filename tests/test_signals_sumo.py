"""Our signal plans exported to SUMO: SUMO (eclipse-sumo) loads them without a safety warning.

SUMO checks every traffic-light programme it loads: two major (``G``) links into one lane are an
"unsafe green phase", and a programme whose greens the junction's right of way was not built
for is "incompatible with logic" (two links that yield to each other both on a yielding green:
the export holds one of them red for that stage). Our exports of real extracts, multi-node and
multi-lane junctions included, must draw neither; the same programmes with every yielding green
made major must (the check can fail).
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from optimize.coordination import coordinated_plans
from twin.scenarios.network import REFERENCE_WEEKDAY, export_twin, signal_plans
from twin.sumo import sumo_binary

UNSAFE = re.compile(r"unsafe green phase|incompatible with logic", re.IGNORECASE)


def _sumo_warnings(*args: str) -> list[str]:
    """SUMO's warnings on loading and running a few steps (meso)."""
    res = subprocess.run(
        [sumo_binary("sumo"), *args, "--mesosim", "--no-step-log", "--end", "60"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return [line for line in res.stderr.splitlines() if UNSAFE.search(line)]


def _netconvert_warnings(out: Path) -> list[str]:
    """netconvert's warnings on rebuilding the exported net from its plain files and programmes."""
    res = subprocess.run(
        [
            sumo_binary("netconvert"),
            "--node-files",
            str(out / "twin.nod.xml"),
            "--edge-files",
            str(out / "twin.edg.xml"),
            "--tllogic-files",
            str(out / "twin.tls.add.xml"),
            "--offset.disable-normalization",
            "true",
            "-o",
            str(out / "rebuilt.net.xml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return [line for line in res.stderr.splitlines() if UNSAFE.search(line)]


def _check_export(tw, out: Path, *, coordinated: bool) -> None:  # type: ignore[no-untyped-def]
    plans = signal_plans(tw, day=REFERENCE_WEEKDAY, hour=8)
    if coordinated:  # LP splits, corridors at a common cycle, MAXBAND offsets
        plans = coordinated_plans(tw, plans).plans
        assert sum(p.offset_s > 0 for p in plans.values()) >= 10
    export_twin(tw, out, hours=(8, 9), check=False, plans=plans)
    net = ET.parse(out / "twin.net.xml").getroot()
    logics = {el.get("id"): el for el in net.iter("tlLogic")}
    # the net carries our programmes (and only them), with their offsets and cycles
    assert set(logics) == set(plans)
    assert {el.get("programID") for el in logics.values()} == {"twin"}
    for jid, el in logics.items():
        assert float(el.get("offset", "0")) == pytest.approx(plans[jid].offset_s, abs=0.01)
        cycle = sum(float(p.get("duration")) for p in el.iter("phase"))
        assert cycle == pytest.approx(plans[jid].cycle_s, abs=0.05)
    # multi-node junctions are among them (what used to draw the warning)
    tl_nodes = [el.get("tl") for el in ET.parse(out / "twin.nod.xml").getroot().iter("node")]
    assert any(tl_nodes.count(j) > 1 for j in plans)
    assert _netconvert_warnings(out) == []
    assert _sumo_warnings("-c", str(out / "twin.sumocfg")) == []


def test_bondy_export_draws_no_unsafe_green_warning(bondy, tmp_path: Path):
    _check_export(bondy, tmp_path, coordinated=False)


def test_the_warning_check_can_fail(bondy, tmp_path: Path):
    """The same programmes with every yielding green made major: SUMO warns."""
    export_twin(bondy, tmp_path, hours=(8, 9), check=False)
    tls = tmp_path / "twin.tls.add.xml"
    root = ET.parse(tls).getroot()
    for ph in root.iter("phase"):
        ph.set("state", ph.get("state", "").replace("g", "G"))
    for el in root.iter("tlLogic"):
        el.set("programID", "all-major")
    bad = tmp_path / "bad.tls.add.xml"
    ET.ElementTree(root).write(bad)
    warnings = _sumo_warnings("-n", str(tmp_path / "twin.net.xml"), "-a", str(bad))
    assert any("nsafe green phase" in w for w in warnings)


@pytest.mark.slow
def test_montpellier_coordinated_export_carries_offsets_without_warning(
    montpellier, tmp_path: Path
):
    _check_export(montpellier, tmp_path, coordinated=True)
