"""Folders as ``twin calibrate --out`` writes them, fabricated for a small city's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def calibration_folder(
    tw: Any, folder: Path, *, trip_rate: float, cell_m: float = 500.0, **extra: Any
) -> np.ndarray:
    """A calibration folder with its OD factors 1 but one cell (3); returns the factors."""
    from twin.scenarios.demand import build_demand

    n = len(build_demand(tw, cell_m=cell_m).zone_ids)
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "city": tw.city.name,
        "cell_m": cell_m,
        "params": {"trip_rate": trip_rate, "beta_per_min": 0.2, "external_share": 0.1},
        **extra,
    }
    (folder / "calibration.json").write_text(json.dumps(report))
    factor = np.ones((n, n))
    factor[0, 1] = 3.0
    np.save(folder / "od_factor.npy", factor)
    return factor
