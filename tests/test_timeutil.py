from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from astral import Observer
from astral import sun as astral_sun

from twin import timeutil
from twin._errors import InputValidationError
from twin.timeutil import (
    SWITCH_DEPRESSION_DEG,
    dark_hours,
    dark_hours_range,
    dusk_dawn,
    night_slots,
    to_local,
    to_utc,
    validate_date,
    yearly_dark_hours,
)

DIJON = {"lat": 47.32, "lon": 5.04}
PARIS = ZoneInfo("Europe/Paris")


# ---------------------------------------------------------------------------------------------
# validate_date, to_utc, to_local
# ---------------------------------------------------------------------------------------------
def test_validate_date_accepts_date_and_iso_string() -> None:
    assert validate_date(dt.date(2026, 3, 28)) == dt.date(2026, 3, 28)
    assert validate_date("2026-03-28") == dt.date(2026, 3, 28)
    assert validate_date(" 1900-01-01 ") == dt.date(1900, 1, 1)
    assert validate_date("2100-12-31") == dt.date(2100, 12, 31)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-1-5", "YYYY-MM-DD"),
        ("20260105", "YYYY-MM-DD"),
        ("tomorrow", "YYYY-MM-DD"),
        ("2026-02-30", "not a valid date"),
        ("2026-13-01", "not a valid date"),
        ("1899-12-31", "outside the supported range"),
        ("2101-01-01", "outside the supported range"),
        (dt.date(1850, 6, 1), "outside the supported range"),
        (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "datetime"),
        (20260101, "int"),
    ],
)
def test_validate_date_errors_name_the_field(value: object, reason: str) -> None:
    with pytest.raises(InputValidationError, match=rf"^start_day: .*{reason}"):
        validate_date(value, field="start_day")  # type: ignore[arg-type]


def test_validate_date_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="date: "):
        validate_date("x")


def test_to_utc_and_to_local() -> None:
    summer = dt.datetime(2026, 7, 1, 22, 30, tzinfo=PARIS)
    assert to_utc(summer) == dt.datetime(2026, 7, 1, 20, 30, tzinfo=dt.UTC)
    assert to_utc(summer).utcoffset() == dt.timedelta(0)
    winter = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    loc = to_local(winter)
    assert (loc.hour, loc.utcoffset()) == (13, dt.timedelta(hours=1))
    assert to_local(winter, "America/New_York").hour == 7
    with pytest.raises(InputValidationError, match="naive"):
        to_utc(dt.datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(InputValidationError, match="naive"):
        to_local(dt.datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(InputValidationError, match="tz: unknown time zone"):
        to_local(winter, "Mars/Olympus")


# ---------------------------------------------------------------------------------------------
# dusk and dawn
# ---------------------------------------------------------------------------------------------
def _almanac_elevation_deg(t: dt.datetime, lat: float, lon: float) -> float:
    """Independent check: the Astronomical Almanac's low-precision solar position (~0.01 deg).

    Sun's mean longitude L and mean anomaly g from the days since J2000.0, ecliptic longitude
    lambda = L + 1.915 sin g + 0.020 sin 2g, obliquity 23.439 deg, then right ascension,
    declination, the equation of time 4 (L - alpha) minutes and the local hour angle.
    """
    n = (t - dt.datetime(2000, 1, 1, 12, tzinfo=dt.UTC)).total_seconds() / 86400.0
    mean_lon = (280.460 + 0.9856474 * n) % 360.0
    g = math.radians((357.528 + 0.9856003 * n) % 360.0)
    lam = math.radians(mean_lon + 1.915 * math.sin(g) + 0.020 * math.sin(2 * g))
    eps = math.radians(23.439 - 0.0000004 * n)
    alpha = math.degrees(math.atan2(math.cos(eps) * math.sin(lam), math.cos(lam))) % 360.0
    decl = math.asin(math.sin(eps) * math.sin(lam))
    eqt_min = 4.0 * (((mean_lon - alpha) + 180.0) % 360.0 - 180.0)
    tu = t.astimezone(dt.UTC)
    minutes = tu.hour * 60 + tu.minute + tu.second / 60 + tu.microsecond / 6e7
    hour_angle = math.radians((minutes + 4.0 * lon + eqt_min) / 4.0 - 180.0)
    phi = math.radians(lat)
    sin_el = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)
    return math.degrees(math.asin(sin_el))


@pytest.mark.parametrize(
    "evening",
    [
        dt.date(2026, 1, 15),
        dt.date(2026, 3, 28),
        dt.date(2026, 6, 21),
        dt.date(2026, 9, 22),
        dt.date(2026, 10, 24),
        dt.date(2031, 12, 21),
    ],
)
def test_dusk_dawn_sun_is_at_the_switching_depression(evening: dt.date) -> None:
    on, off = dusk_dawn(evening, **DIJON)
    assert on.utcoffset() == dt.timedelta(0)
    assert off.utcoffset() == dt.timedelta(0)
    assert on.date() == evening
    assert off.date() == evening + dt.timedelta(days=1)
    # astral treats the depression as apparent (refraction-corrected): the geometric depression
    # is ~0.11 deg more; allow 0.2 deg in all (about one minute of time)
    for t in (on, off):
        assert _almanac_elevation_deg(t, **DIJON) == pytest.approx(-SWITCH_DEPRESSION_DEG, abs=0.2)
    minute = dt.timedelta(minutes=1)
    # setting at dusk, rising at dawn
    assert _almanac_elevation_deg(on + minute, **DIJON) < _almanac_elevation_deg(on, **DIJON)
    assert _almanac_elevation_deg(off + minute, **DIJON) > _almanac_elevation_deg(off, **DIJON)


def test_switching_is_after_sunset_and_before_sunrise() -> None:
    obs = Observer(latitude=47.32, longitude=5.04)
    for evening in (dt.date(2026, 1, 15), dt.date(2026, 6, 21)):
        on, off = dusk_dawn(evening, **DIJON)
        sunset = astral_sun.sunset(obs, evening)
        sunrise = astral_sun.sunrise(obs, evening + dt.timedelta(days=1))
        # 3 degrees below the horizon: roughly 15-25 minutes after sunset at 47 N
        assert dt.timedelta(minutes=10) < on - sunset < dt.timedelta(minutes=30)
        assert dt.timedelta(minutes=10) < sunrise - off < dt.timedelta(minutes=30)


def test_depression_shortens_the_night() -> None:
    h = [dark_hours("2026-11-01", **DIJON, depression_deg=d) for d in (0.833, 3.0, 6.0)]
    assert h[0] > h[1] > h[2]


def test_dusk_dawn_other_longitude_is_the_local_evening() -> None:
    # Sydney: the evening of 28 March local is about 08:00 UTC the same day
    on, off = dusk_dawn("2026-03-28", lat=-33.87, lon=151.21)
    assert on.date() == dt.date(2026, 3, 28)
    assert 7 <= on.hour <= 9
    assert 10 < (off - on).total_seconds() / 3600 < 13


def test_polar_cases_are_errors() -> None:
    with pytest.raises(InputValidationError, match="lat: .*polar day"):
        dusk_dawn("2026-06-21", lat=70.0, lon=20.0)
    with pytest.raises(InputValidationError, match="lat: .*polar night"):
        dusk_dawn("2026-12-21", lat=75.0, lon=20.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lat": 95.0, "lon": 5.0}, "lat"),
        ({"lat": float("nan"), "lon": 5.0}, "lat"),
        ({"lat": 47.0, "lon": 200.0}, "lon"),
        ({"lat": 47.0, "lon": 5.0, "depression_deg": -1.0}, "depression_deg"),
        ({"lat": 47.0, "lon": 5.0, "depression_deg": 20.0}, "depression_deg"),
    ],
)
def test_dusk_dawn_bad_site(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InputValidationError, match=f"^{field}: "):
        dusk_dawn("2026-01-01", **kwargs)


def test_dusk_dawn_bad_date() -> None:
    with pytest.raises(InputValidationError, match="^evening: "):
        dusk_dawn("2026-02-29", **DIJON)


# ---------------------------------------------------------------------------------------------
# yearly totals
# ---------------------------------------------------------------------------------------------
def test_yearly_dark_hours_at_dijon_close_to_4100() -> None:
    total = yearly_dark_hours(2026, **DIJON)
    assert total == pytest.approx(4100, rel=0.02)
    # winter nights are long, summer nights short, as they should be
    h = dark_hours_range("2026-01-01", "2026-12-31", **DIJON)
    assert h.size == 365
    assert float(h.sum()) == pytest.approx(total)
    assert h.argmax() in range(340, 365) or h.argmax() < 5
    assert 165 < h.argmin() < 180
    assert 15.0 < h.max() < 15.3
    assert 7.2 < h.min() < 7.8


def test_yearly_dark_hours_leap_year_has_one_more_night() -> None:
    assert dark_hours_range("2028-01-01", "2028-12-31", **DIJON).size == 366
    assert yearly_dark_hours(2028, **DIJON) > yearly_dark_hours(2027, **DIJON) + 10


def test_yearly_dark_hours_depends_on_latitude() -> None:
    # further north: longer winter nights but much shorter summer nights; yearly total falls
    assert yearly_dark_hours(2026, lat=55.0, lon=5.0) < yearly_dark_hours(2026, lat=43.3, lon=5.4)


def test_thirteen_year_trajectory_from_a_cold_cache() -> None:
    timeutil._yearly.cache_clear()
    timeutil._dusk_dawn_cached.cache_clear()
    totals = [yearly_dark_hours(y, **DIJON) for y in range(2018, 2031)]
    assert len(totals) == 13
    assert all(4000 < t < 4500 for t in totals)


def test_yearly_dark_hours_bad_input() -> None:
    with pytest.raises(InputValidationError, match="^year: "):
        yearly_dark_hours(2101, **DIJON)
    with pytest.raises(InputValidationError, match="^year: "):
        yearly_dark_hours("2026", **DIJON)  # type: ignore[arg-type]
    with pytest.raises(InputValidationError, match="^end: "):
        dark_hours_range("2026-02-01", "2026-01-01", **DIJON)


# ---------------------------------------------------------------------------------------------
# night slots
# ---------------------------------------------------------------------------------------------
def _check_contiguous(night: timeutil.Night) -> None:
    total = (night.dawn - night.dusk).total_seconds()
    assert night.duration_s.sum() == pytest.approx(total, abs=1e-6)
    assert night.start[0] == np.datetime64(night.dusk.replace(tzinfo=None), "ns")
    assert night.end[-1] == np.datetime64(night.dawn.replace(tzinfo=None), "ns")
    np.testing.assert_array_equal(night.end[:-1], night.start[1:])
    assert np.all(night.duration_s > 0)
    assert np.all(night.duration_s <= night.slot_minutes * 60)
    assert np.all(np.diff(night.start.astype(np.int64)) > 0)  # no duplicated UTC instant
    assert night.start.dtype == np.dtype("datetime64[ns]")
    assert len(night.local_start) == len(night) == night.hour_local.size


def test_night_slots_winter_grid() -> None:
    night = night_slots("2026-01-15", **DIJON)
    _check_contiguous(night)
    # every slot but the first starts on the local quarter hour
    for t in night.local_start[1:]:
        assert t.minute % 15 == 0
        assert (t.second, t.microsecond) == (0, 0)
        assert t.utcoffset() == dt.timedelta(hours=1)
    assert night.duration_s[1:-1].tolist() == [900.0] * (len(night) - 2)
    # dusk is about 17:30 local in mid-January at Dijon
    assert 17.0 < night.hour_local[0] < 18.0
    expected_hours = np.array([t.hour + t.minute / 60 + t.second / 3600 for t in night.local_start])
    np.testing.assert_allclose(night.hour_local[1:], expected_hours[1:])
    assert night.hour_local[1] == 17.75


def test_night_slots_spring_dst_night() -> None:
    # evening 2026-03-28: at 02:00 local on the 29th clocks jump to 03:00
    night = night_slots("2026-03-28", **DIJON, slot_minutes=15)
    _check_contiguous(night)
    clock = [t.strftime("%H:%M") for t in night.local_start]
    assert not any(c.startswith("02:") for c in clock)
    i = clock.index("01:45")
    assert clock[i + 1] == "03:00"
    assert night.duration_s[i] == 900.0  # 01:45 CET -> 03:00 CEST is 15 real minutes
    assert night.local_start[0].utcoffset() == dt.timedelta(hours=1)
    assert night.local_start[-1].utcoffset() == dt.timedelta(hours=2)
    # slot count: one slot opened at dusk plus one per quarter-hour boundary inside the night
    span = night.dawn - night.dusk
    q0 = math.floor(night.dusk.timestamp() / 900) + 1
    q1 = math.ceil(night.dawn.timestamp() / 900) - 1
    assert len(night) == 1 + (q1 - q0 + 1)
    assert span.total_seconds() / 3600 < 12  # a late-March night, not inflated by the DST hour


def test_night_slots_autumn_dst_night() -> None:
    # evening 2026-10-24: at 03:00 CEST on the 25th clocks go back to 02:00 CET
    night = night_slots("2026-10-24", **DIJON, slot_minutes=15)
    _check_contiguous(night)
    twos = [t for t in night.local_start if t.hour == 2]
    assert len(twos) == 8  # 02:00..02:45 twice
    assert [t.fold for t in twos] == [0] * 4 + [1] * 4
    assert [t.utcoffset() for t in twos] == [dt.timedelta(hours=2)] * 4 + [
        dt.timedelta(hours=1)
    ] * 4
    assert np.count_nonzero(night.hour_local == 2.25) == 2
    assert len(set(night.start.tolist())) == len(night)
    # the night is measured in UTC, so the repeated hour adds no energy time
    assert night.duration_s.sum() / 3600 == pytest.approx(night.hours)


@pytest.mark.parametrize("minutes", [1, 5, 10, 20, 30, 60])
def test_night_slots_other_slot_lengths(minutes: int) -> None:
    night = night_slots("2026-07-01", **DIJON, slot_minutes=minutes)
    _check_contiguous(night)
    assert all(t.minute % minutes == 0 for t in night.local_start[1:])


@pytest.mark.parametrize("bad", [7, 0, -15, 45, 90, 15.0, True, "15"])
def test_night_slots_bad_slot_minutes(bad: object) -> None:
    with pytest.raises(InputValidationError, match="^slot_minutes: "):
        night_slots("2026-01-15", **DIJON, slot_minutes=bad)  # type: ignore[arg-type]


def test_night_slots_other_zone_grid_is_local() -> None:
    # Kathmandu is UTC+05:45: the local quarter-hour grid is not the UTC one
    night = night_slots("2026-01-15", lat=27.7, lon=85.3, tz="Asia/Kathmandu", slot_minutes=30)
    _check_contiguous(night)
    assert all(t.minute in (0, 30) for t in night.local_start[1:])
    assert all(t.second == 0 for t in night.local_start[1:])
    assert 17.0 < night.hour_local[0] < 19.0


def test_night_is_frozen() -> None:
    night = night_slots("2026-01-15", **DIJON)
    with pytest.raises(AttributeError):
        night.slot_minutes = 30  # type: ignore[misc]
