"""The signals benchmark runs (its quick instance) and ends with its JSON line (DESIGN 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_signals_benchmark_quick(data_root: Path):
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "signals.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TWIN_DATA": str(data_root), "TWIN_PROGRESS": "0"},
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert last["benchmark"] == "signals"
    assert set(last) == {"benchmark", "figures", "reference", "ratios", "targets"}
    assert last["targets"]["plan_s"]["met"] and last["targets"]["unsafe_plans"]["met"]
    assert last["figures"]["plans"] > 20
    assert last["reference"]["des_delay_webster_s"] > 0
    assert last["figures"]["bus_wait_priority_s"] < last["reference"]["bus_wait_without_priority_s"]
    # the wide clustered junctions get their plan, with the all-red their geometry needs, up
    # to 12 s (Paris-Trocadéro's junction:41 would need 15.7 s)
    assert last["figures"]["plans_all_red_over_6_s"] > 0
    assert "no plan: all-red over the 12 s ceiling" in res.stdout
