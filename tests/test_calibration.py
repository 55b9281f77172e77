"""Tests of the calibration against traffic counts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_demand import grid_twin

from twin._errors import InputValidationError
from twin.model import Twin
from twin.scenarios import calibration as C
from twin.scenarios import demand as D


def test_geh_hand_worked() -> None:
    # M=400, C=500: 2 * 100^2 / 900 = 22.22, sqrt = 4.714
    assert C.geh(np.array([400.0]), np.array([500.0]))[0] == pytest.approx(4.7140452)
    # M=1200, C=1000: 2 * 200^2 / 2200 = 36.36, sqrt = 6.030
    assert C.geh(np.array([1200.0]), np.array([1000.0]))[0] == pytest.approx(6.0302269)
    assert C.geh(np.array([0.0]), np.array([0.0]))[0] == 0.0
    assert C.geh(np.array([0.0]), np.array([50.0]))[0] == pytest.approx(10.0)
    with pytest.raises(InputValidationError, match="geh"):
        C.geh(np.array([-1.0]), np.array([1.0]))


def test_street_keys() -> None:
    assert C.street_keys("Avenue de l'Europe") == (
        "AVENUE DE L EUROPE",
        "AVENUE DE L EUROPE",
        "EUROPE",
    )
    assert C.street_keys("Bd Benjamin Milhaud")[1] == "BOULEVARD BENJAMIN MILHAUD"
    assert C.street_keys("Rue du Pr. Louis Ravaz")[2] == "PROFESSEUR LOUIS RAVAZ"


def _with_counts(tw: Twin, rows: list[dict[str, object]]) -> Twin:
    counts = pd.DataFrame(rows)
    return Twin(tw.city, tw.graph, tw.registry, meta={}, counts_table=counts)


def test_match_by_name_and_direction() -> None:
    base = grid_twin(n=6)  # "Rue j" runs along x at y=j; "Avenue i" along y at x=i
    tw = _with_counts(
        base,
        [
            # on Rue 2 between Avenue 1 and Avenue 3, heading +x
            {"name": "R. 2", "direction": "1-3", "daily": 1000, "am_peak": 100, "pm_peak": 90},
            {"name": "Rue 2", "direction": "3-1", "daily": 1000, "am_peak": 100, "pm_peak": 90},
            {
                "name": "Rue 2",
                "direction": "Parking-Usine",
                "daily": 1000,
                "am_peak": 100,
                "pm_peak": 90,
            },
            {
                "name": "Voie non dénommée",
                "direction": "x-y",
                "daily": 5,
                "am_peak": 1,
                "pm_peak": 1,
            },
        ],
    )
    m = C.match_counts(tw)
    assert m["street"].tolist()[:3] == ["Rue 2"] * 3
    assert pd.isna(m["street"].iloc[3])
    assert m["direction_found"].tolist()[:3] == [2, 2, 0]
    xs = {n: d["x"] for n, d in tw.graph.nodes(data=True)}
    fwd = m["edges"].iloc[0]
    assert fwd
    assert all(xs[v] > xs[u] for u, v, _ in fwd)
    assert all(xs[v] < xs[u] for u, v, _ in m["edges"].iloc[1])
    assert len(m["edges"].iloc[2]) == 2 * 5  # whole street, both directions


def test_assignment_puts_od_on_shortest_paths() -> None:
    tw = grid_twin(n=6)
    dm = D.build_demand(tw, cell_m=300.0)
    asg = C.Assignment.build(dm, tw.drive)
    T = dm.base_od()
    flows = asg.incidence @ (T + T.T).ravel()
    # every trip between distinct zones crosses at least one edge; each path is >= 1 edge long
    off = (T + T.T).sum() - np.trace(T + T.T)
    assert flows.sum() >= off - 1e-6
    assert asg.unreachable_pairs == 0
    hourly = asg.hourly_flows(dm)
    assert hourly.shape == (24, len(asg.edges))
    np.testing.assert_allclose(hourly.sum(), flows.sum(), rtol=1e-9)


def test_calibrate_needs_counts() -> None:
    with pytest.raises(InputValidationError, match="no traffic counts"):
        C.calibrate(grid_twin(n=4))


@pytest.fixture(scope="module")
def montpellier(tmp_path_factory: pytest.TempPathFactory) -> Twin:
    import twin.model

    root = Path(__file__).resolve().parents[1]
    os.environ.setdefault("TWIN_DATA", str((root / "../shared/data").resolve()))
    os.environ.setdefault("TWIN_CACHE", str(tmp_path_factory.mktemp("cache")))
    return twin.model.load("montpellier", progress=False)


@pytest.mark.slow
def test_montpellier_matching(montpellier: Twin) -> None:
    m = C.match_counts(montpellier)
    assert len(m) == 3314
    matched = m["street"].notna()
    assert matched.mean() > 0.9
    assert (m.loc[~matched, "name"] == "Voie non dénommée").sum() >= 30
    assert (m["direction_found"] == 2).sum() > 1000


@pytest.mark.slow
def test_montpellier_calibration(montpellier: Twin) -> None:
    r = C.calibrate(montpellier, rng=0, starts=1, maxiter=40)
    assert r.matched + r.unmatched == 3314
    assert r.matched > 3000
    t = r.table
    assert {"name", "direction", "observed", "modelled", "geh", "period"} <= set(t.columns)
    assert len(t) == 2 * r.matched
    np.testing.assert_allclose(t["geh"], C.geh(t["modelled"].to_numpy(), t["observed"].to_numpy()))
    assert r.share_geh_below_5 == pytest.approx(float((t["geh"] < 5).mean()))
    assert r.share_geh_below_5 >= r.share_geh_below_5_before - 0.02
    assert 0 < r.params["trip_rate"] < 10
    assert r.params["beta_per_min"] > 0
    again = C.calibrate(montpellier, rng=0, starts=1, maxiter=40)
    assert again.params == r.params
