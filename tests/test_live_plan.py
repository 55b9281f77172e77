"""Plans as data (optimize.plans): built from real dimming and signal plans, JSON round-trip."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from optimize import dimming
from optimize import plans as P
from twin._errors import CorruptInputError, InputValidationError

NIGHT = "2024-01-15"


@pytest.fixture(scope="module")
def bondy_night(bondy):
    return dimming.plan(bondy, NIGHT, policy="part_night")


@pytest.fixture(scope="module")
def bondy_signal_docs(bondy):
    from twin.scenarios.network import signal_plans
    from twin.signals.safety import plan_document

    plans = signal_plans(bondy)
    return [plan_document(p, plans.models[j]) for j, p in plans.items()]


def test_lighting_plan_from_a_real_night(bondy_night):
    p = P.from_dimming(bondy_night)
    assert p.kind == "lighting" and p.city == "bondy"
    assert p.id.startswith("lighting-bondy-2024-01-15-")
    lc = p.lighting
    assert lc is not None
    assert lc.level.shape == (bondy_night.sizes["light"], bondy_night.sizes["time"])
    np.testing.assert_array_equal(lc.level, bondy_night["level"].to_numpy())
    # batched per cabinet: every light once, in the cabinet the dataset names
    groups = p.groups()
    assert sorted(a for ls in groups.values() for a in ls) == sorted(lc.light.tolist())
    cab = dict(zip(bondy_night["light"].values, bondy_night["cabinet"].values, strict=True))
    assert all(cab[light] == c for c, ls in groups.items() for light in ls)
    # validity from the first slot to the end of the last, in UTC
    assert p.valid_from.tzinfo is dt.UTC and p.valid_to > p.valid_from
    assert p.valid_from.isoformat().startswith("2024-01-15T16:")


def test_lighting_plan_round_trips_and_id_is_content(bondy_night, tmp_path):
    p = P.from_dimming(bondy_night)
    back = P.from_json(p.to_json())
    assert back == p and back.id == p.id
    np.testing.assert_array_equal(back.lighting.level, p.lighting.level)
    # same content, same id; changed content, another id
    assert P.from_dimming(bondy_night).id == p.id
    other = bondy_night.copy(deep=True)
    other["level"][0, 0] = 0.99
    assert P.from_dimming(other).id != p.id
    # a `twin plan night` folder (dimming.nc) reads into the same plan
    bondy_night.to_netcdf(tmp_path / "dimming.nc", engine="h5netcdf")
    assert P.read(tmp_path) == p
    p.save(tmp_path / "plan.json")
    assert P.read(tmp_path / "plan.json") == p


def test_signal_plan_from_real_documents(bondy_signal_docs, tmp_path):
    now = dt.datetime(2024, 6, 4, 6, tzinfo=dt.UTC)
    p = P.from_signal_documents(bondy_signal_docs, city="bondy", now=now)
    assert p.kind == "signals" and p.valid_from == now
    assert p.valid_to == now + dt.timedelta(days=1)
    assert set(p.groups()) == {d["junction"] for d in bondy_signal_docs}
    assert P.from_json(p.to_json()) == p
    (tmp_path / "plans.json").write_text(json.dumps(bondy_signal_docs))
    (tmp_path / "report.json").write_text(json.dumps({"city": "bondy"}))
    assert P.read(tmp_path).groups() == p.groups()


def test_bad_plans_name_the_field(bondy_night, bondy_signal_docs, tmp_path):
    with pytest.raises(InputValidationError, match="required_level: missing"):
        P.from_dimming(bondy_night.drop_vars("required_level"))
    bad = bondy_night.copy(deep=True)
    bad["level"][3, 3] = np.nan
    with pytest.raises(InputValidationError, match="level: not a finite number"):
        P.from_dimming(bad)
    with pytest.raises(InputValidationError, match=r"signals\[1\].junction: .* two plans"):
        P.from_signal_documents([bondy_signal_docs[0]] * 2, city="bondy")
    with pytest.raises(InputValidationError, match=r"signals\[0\].kind"):
        P.from_signal_documents([{"kind": "other"}], city="bondy")
    doc = json.loads(P.from_dimming(bondy_night).to_json())
    doc["valid_from"] = "2024-01-15T16:00:00"
    with pytest.raises(InputValidationError, match="valid_from: .* no time zone"):
        P.from_json(json.dumps(doc))
    del doc["lighting"]["required"]
    doc["valid_from"] = "2024-01-15T16:00:00Z"
    with pytest.raises(InputValidationError, match=r"lighting.required: missing"):
        P.from_json(json.dumps(doc))
    with pytest.raises(CorruptInputError, match="not JSON"):
        P.from_json(b'{"format": ')
    (tmp_path / "x.nc").write_bytes(b"not netcdf at all")
    with pytest.raises(CorruptInputError, match=r"x.nc: not a readable NetCDF"):
        P.read(tmp_path / "x.nc")
    with pytest.raises(InputValidationError, match="no plan.json, dimming.nc or plans.json"):
        P.read(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)
