"""Footfall calibration: counts drawn from a known demand are recovered; bad rows are refused.

The "truth" walks 1.4 times the prior and puts 26% of a weekday's walking in the evening and
night hours (the prior: 17.3%); counts are Poisson draws of it per quarter-hour on 40 counters of
Bondy over two weeks. The fit must find the truth on the held-out counters, within the stated
tolerances, and the default parameters must fit them worse.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from twin._errors import InputValidationError
from twin.scenarios import footfall_calibration as fc
from twin.scenarios.calendar import CalendarDemand
from twin.scenarios.profiles import local_slots

TRUTH = fc.FootfallCalibration(scale=1.4, night_share=0.26)
DAYS = [dt.date(2025, 3, 3) + dt.timedelta(days=k) for k in range(14)]  # no DST change
#: tolerances of the recovered parameters (two weeks of 40 counters' quarter-hours)
SCALE_TOL = 0.01  # relative (seeds 1-3 give 0.05-0.10%)
SHARE_TOL = 0.005  # absolute (seeds 1-3 give 0.0002 at most)


def counters_of(tw, n: int = 40) -> dict[str, str]:
    """``n`` counters on walkable segments, spread over the footfall range."""
    daily = CalendarDemand.from_twin(tw).daily_footfall
    walk = daily[daily > 0].sort_values(kind="stable")
    pick = walk.index[np.linspace(0, len(walk) - 1, n).round().astype(int)]
    return {f"fc:{i:02d}": str(s) for i, s in enumerate(pick)}


def truth_counts(tw, counters: dict[str, str], *, seed: int = 1) -> pd.DataFrame:
    """Quarter-hour counts of the truth, local times without offset (as many exports give)."""
    rng = np.random.default_rng(seed)
    truth = TRUTH.apply(CalendarDemand.from_twin(tw), timezone=tw.city.timezone)
    segs = list(counters.values())
    rows = []
    for day in DAYS:
        times, _ = local_slots(day, tz=tw.city.timezone, slot_minutes=15)
        rate = truth.footfall(segs, times)
        counts = rng.poisson(rate * 0.25)
        local = pd.DatetimeIndex(times).tz_localize("UTC").tz_convert(tw.city.timezone)
        stamps = local.strftime("%Y-%m-%dT%H:%M:%S")
        for j, (cid, seg) in enumerate(counters.items()):
            rows += [
                {"counter": cid, "segment": seg, "start": s, "minutes": "15", "count": str(c)}
                for s, c in zip(stamps, counts[j], strict=True)
            ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def counts(bondy):
    return truth_counts(bondy, counters_of(bondy))


@pytest.fixture(scope="module")
def fit(bondy, counts):
    return fc.calibrate_footfall(bondy, counts)


def test_the_truth_is_recovered_and_fits_the_held_out_counters(fit):
    c = fit.calibration
    assert abs(c.scale / TRUTH.scale - 1) < SCALE_TOL, c
    assert abs(c.night_share - TRUTH.night_share) < SHARE_TOL, c
    s = fit.shares()
    assert s["counters_holdout"] >= 8 and s["counters_fitted"] >= 20, s
    # on the held-out counters: the calibrated demand is within Poisson noise of the counts
    # (mean GEH of a Poisson count against its mean is about 0.8), the default is not
    assert s["mean_geh_holdout_after"] < 1.0, s
    assert s["share_geh_below_5_holdout_after"] > 0.995, s
    assert s["mean_geh_holdout_before"] > 1.5 * s["mean_geh_holdout_after"], s
    assert s["share_geh_below_5_holdout_before"] < s["share_geh_below_5_holdout_after"] - 0.02, s
    assert fit.accepted == fit.rows and fit.rejected.empty
    assert fit.identified == {"day": True, "night": True}


def test_held_out_counters_do_not_move_the_fit(bondy, counts, fit):
    """The held-out counters' counts are not used: changing them changes no parameter."""
    held = set(fit.counters.loc[fit.counters["holdout"], "counter"])
    changed = counts.copy()
    on = changed["counter"].isin(held)
    changed.loc[on, "count"] = (changed.loc[on, "count"].astype(int) * 3).astype(str)
    again = fc.calibrate_footfall(bondy, changed)
    assert again.calibration == fit.calibration
    assert again.shares()["mean_geh_holdout_after"] > 2 * fit.shares()["mean_geh_holdout_after"]


def test_only_day_counts_leave_the_night_share_the_priors(bondy, counts):
    local_hour = pd.to_datetime(counts["start"]).dt.hour
    day_only = counts[~local_hour.isin(fc.NIGHT_HOURS)]
    got = fc.calibrate_footfall(bondy, day_only)
    assert got.identified == {"day": True, "night": False}
    assert got.calibration.night_share == pytest.approx(fc.prior_night_share())
    assert "not identified" in got.summary()


def test_a_french_export_is_read_latin1_semicolons(bondy, counts, fit, tmp_path):
    """French column names, ';', Latin-1, a decimal comma and an accented counter id."""
    french = counts.rename(
        columns={"counter": "Identifiant du compteur", "segment": "tronçon", "start": "Date",
                 "minutes": "durée (min)", "count": "Comptage"}
    )  # fmt: skip
    french["Comptage"] = french["Comptage"] + ",0"
    french["Identifiant du compteur"] = french["Identifiant du compteur"].str.replace(
        "fc:", "Rue Piétonne ", regex=False
    )
    path = tmp_path / "comptages.csv"
    french.to_csv(path, sep=";", index=False, encoding="latin-1")
    obs = fc.read_counts(path)
    assert obs["counter"].iloc[0].startswith("Rue Piétonne")
    got = fc.calibrate_footfall(bondy, obs, holdout=0.0)
    assert got.accepted == len(counts)
    assert abs(got.calibration.scale / TRUTH.scale - 1) < SCALE_TOL


def test_every_bad_row_is_refused_with_its_counter_and_reason(bondy, counts):
    good = counts.iloc[:8].copy()
    sensor = bondy.registry["sensor"]
    registry_counter = str(sensor.index[sensor["sensor_type"] == "footfall"][0])
    seg0 = good["segment"].iloc[0]
    bad = pd.DataFrame(
        [
            {"counter": "x:nosuch", "segment": "", "start": "2025-03-04T10:00:00", "count": "5"},
            {"counter": "x:seg", "segment": "segment:nosuch", "start": "2025-03-04T10:00:00",
             "count": "5"},
            {"counter": "x:neg", "segment": seg0, "start": "2025-03-04T10:00:00", "count": "-2"},
            {"counter": "x:nan", "segment": seg0, "start": "2025-03-04T10:00:00", "count": "NaN"},
            {"counter": "x:early", "segment": seg0, "start": "2025-02-20T10:00:00", "count": "5"},
            {"counter": "x:time", "segment": seg0, "start": "4th of March", "count": "5"},
            {"counter": "x:long", "segment": seg0, "start": "2025-03-04T10:30:00", "count": "5",
             "minutes": "60"},
            {"counter": "x:dst", "segment": seg0, "start": "2025-03-30T02:15:00", "count": "5"},
            {"counter": "", "segment": seg0, "start": "2025-03-04T10:00:00", "count": "5"},
            {"counter": good["counter"].iloc[0], "segment": seg0, "start": good["start"].iloc[0],
             "count": "7"},
            {"counter": registry_counter, "segment": "", "start": "2025-03-04T10:00:00+01:00",
             "count": "12"},
        ]
    ).fillna({"minutes": "15"})  # fmt: skip
    obs = pd.concat([good, bad], ignore_index=True)
    period = (dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    accepted, rejected = fc.check_counts(obs, bondy, period=period)
    assert len(accepted) + len(rejected) == len(obs)
    assert set(accepted["counter"]) == {good["counter"].iloc[0], registry_counter}
    why = dict(zip(rejected["counter"], rejected["reason"], strict=True))
    assert why == {
        "x:nosuch": "no such footfall counter in the registry (and no segment given)",
        "x:seg": "no matching segment in the twin",
        "x:neg": "negative or NaN count",
        "x:nan": "negative or NaN count",
        "x:early": "outside the range 2025-03-01 to 2025-03-31",
        "x:time": "not a time",
        "x:long": "period not within one clock hour (hourly GEH)",
        "x:dst": "local time a DST change makes ambiguous or skips",
        "": "no counter id",
        good["counter"].iloc[0]: "second row of this counter and start",
    }
    # the registry counter takes its registry segment
    row = accepted[accepted["counter"] == registry_counter].iloc[0]
    assert row["segment"] == str(sensor.loc[registry_counter, "segment"])
    assert row["start"] == pd.Timestamp("2025-03-04T09:00:00")  # naive UTC


def test_a_counter_on_two_segments_and_a_segment_nobody_walks(bondy, counts):
    seg = bondy.registry["segment"]
    obs = counts.iloc[:2].copy()
    other = str(seg.index[seg["walk"].astype(bool)][-1])
    obs.loc[obs.index[1], "segment"] = other
    _, rejected = fc.check_counts(obs, bondy)
    assert rejected["reason"].tolist() == ["counter tied to another segment on an earlier row"]
    if (~seg["walk"].astype(bool)).any():
        obs = counts.iloc[:1].copy()
        obs["segment"] = str(seg.index[~seg["walk"].astype(bool)][0])
        _, rejected = fc.check_counts(obs, bondy)
        assert rejected["reason"].tolist() == ["segment nobody may walk (no footfall in the model)"]


def test_nothing_accepted_or_nothing_fitted_is_an_error(bondy, counts, fit):
    obs = counts.iloc[:4].copy()
    obs["count"] = "-1"
    with pytest.raises(InputValidationError, match="none accepted of 4"):
        fc.calibrate_footfall(bondy, obs)
    held = set(fit.counters.loc[fit.counters["holdout"], "counter"])
    with pytest.raises(InputValidationError, match="every counter is held out"):
        fc.calibrate_footfall(bondy, counts[counts["counter"].isin(held)])


def test_the_plan_reads_the_night_share_and_not_the_scale(bondy):
    """Footfall reaches the plan as each segment's share of its busiest hour."""
    from optimize.dimming import forecast_night

    prior = CalendarDemand.from_twin(bondy)
    tz = bondy.city.timezone
    day = dt.date(2025, 3, 4)
    base = forecast_night(bondy, day, demand=prior).footfall_ratio
    scaled = forecast_night(
        bondy, day, demand=fc.FootfallCalibration(scale=1.4).apply(prior, timezone=tz)
    ).footfall_ratio
    np.testing.assert_allclose(scaled, base)
    fore = forecast_night(bondy, day, demand=TRUTH.apply(prior, timezone=tz))
    busier = fore.footfall_ratio
    # the night hours rise against the day's busiest hour (which moves to 19 h); dusk before
    # 19 h falls a little against it
    night = np.isin(np.floor(np.asarray(fore.night.hour_local, dtype=float)) % 24, fc.NIGHT_HOURS)
    assert night.any() and (~night).any()
    assert (busier[:, night] >= base[:, night] - 1e-12).all()
    assert (busier[:, night] > base[:, night] + 0.1).any()
    assert (busier[:, ~night] <= base[:, ~night] + 1e-12).all()


def test_a_written_calibration_is_read_back(tmp_path):
    import json

    (tmp_path / fc.FILE).write_text(
        json.dumps({"city": "bondy", "params": TRUTH.to_dict()}), encoding="utf-8"
    )
    assert fc.load_footfall_calibration(tmp_path, city="bondy") == TRUTH
    with pytest.raises(InputValidationError, match="city 'bondy' is not the twin's"):
        fc.load_footfall_calibration(tmp_path, city="montpellier")
    (tmp_path / fc.FILE).write_text(
        json.dumps({"city": "bondy", "params": {**TRUTH.to_dict(), "night_share": 1.5}})
    )
    with pytest.raises(InputValidationError, match="night_share: 1.5 must be a share"):
        fc.load_footfall_calibration(tmp_path)
    with pytest.raises(InputValidationError, match="no such file"):
        fc.load_footfall_calibration(tmp_path / "nowhere")


def test_the_cli_writes_the_fit_and_the_plan_reads_it(bondy, counts, fit, tmp_path, capsys):
    import json

    from twin.cli import main

    csv = tmp_path / "comptages.csv"
    first = counts.iloc[0]
    bad = pd.DataFrame(
        [{"counter": "x:neg", "segment": first["segment"], "start": first["start"],
          "minutes": "15", "count": "-4"}]
    )  # fmt: skip
    pd.concat([counts, bad]).to_csv(csv, sep=";", index=False, encoding="latin-1")
    out = tmp_path / "fcal"
    assert main(["footfall", "calibrate", "--city", "bondy", "--counts", str(csv),
                 "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "1 negative or NaN count" in printed and "held-out counters" in printed
    report = json.loads((out / fc.FILE).read_text())
    assert report["params"]["scale"] == pytest.approx(fit.calibration.scale)
    assert report["observations"] == {
        "read": len(counts) + 1,
        "accepted": len(counts),
        "rejected": {"negative or NaN count": 1},
    }
    hours = pd.read_csv(out / "geh_footfall_hours.csv")
    assert len(hours) == len(fit.table) and hours["holdout"].any()
    assert pd.read_csv(out / "counts_rejected.csv")["counter"].tolist() == ["x:neg"]
    for png in ("geh_footfall.png", "geh_footfall_default.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    night = tmp_path / "night"
    argv = ["plan", "night", "--city", "bondy", "--date", "2025-03-04", "--out", str(night)]
    assert main([*argv, "--footfall-calibration", str(out)]) == 0
    plan = json.loads((night / "report.json").read_text())
    assert plan["footfall_calibration"]["night_share"] == pytest.approx(fit.calibration.night_share)
    with pytest.raises(InputValidationError, match="city 'bondy' is not the twin's"):
        fc.load_footfall_calibration(out, city="montpellier")


def test_montpellier_proxy_is_the_citys_pedestrian_marking(montpellier, bondy):
    """No counts: the municipal marking is set against the prior; it calibrates nothing."""
    figures, table = fc.proxy_report(montpellier)
    # the road file's OCCUPATION = Piéton centrelines, matched to segments by IDARC
    assert figures["marked_segments"] == 641
    assert table["marked"].sum() == 641
    # what it shows: the prior does not rank the city's pedestrian streets among the busiest
    assert figures["marked_as_residential"] > 0.8 * figures["marked_segments"]
    assert figures["share_marked_in_top_quarter"] < 0.25
    assert figures["mean_footfall_marked"] < figures["mean_footfall_other"]
    with pytest.raises(InputValidationError, match="not municipal road files"):
        fc.pedestrian_marking(bondy)
