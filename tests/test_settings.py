"""Settings: defaults, ``TWIN_*`` environment overrides, coercion errors, nested ``set_options``."""

from __future__ import annotations

from pathlib import Path

import pytest

import twin
from twin.settings import REPO_ROOT, Settings, get_settings, set_options


@pytest.fixture
def env(monkeypatch):
    """A clean environment: no TWIN_* variable but the ones a test sets."""
    import os

    for name in list(os.environ):
        if name.startswith("TWIN_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_are_documented_once(env, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    s = get_settings()
    assert s == Settings()
    assert s.cache == tmp_path / "metropolis-twin"
    assert (s.data, s.use_cache, s.seed, s.progress, s.slot_minutes) == (None, True, 2018, True, 15)
    assert s.data_roots == [REPO_ROOT / "data"]
    doc = Settings.__doc__ or ""
    for name in Settings.__dataclass_fields__:
        assert f"{name} :" in doc, f"{name} is not documented"


@pytest.mark.parametrize(
    ("var", "raw", "field", "value"),
    [
        ("TWIN_DATA", "~/somewhere", "data", Path("~/somewhere").expanduser()),
        ("TWIN_DATA", "", "data", None),
        ("TWIN_CACHE", "/var/cache/twin", "cache", Path("/var/cache/twin")),
        ("TWIN_USE_CACHE", "0", "use_cache", False),
        ("TWIN_USE_CACHE", " Yes ", "use_cache", True),
        ("TWIN_PROGRESS", "off", "progress", False),
        ("TWIN_SEED", "42", "seed", 42),
        ("TWIN_SEED", "-3", "seed", -3),
        ("TWIN_SLOT_MINUTES", "30", "slot_minutes", 30),
        ("TWIN_OVERPASS_URL", "http://localhost:1/api", "overpass_url", "http://localhost:1/api"),
    ],
)
def test_environment_overrides_each_field(env, var, raw, field, value):
    env.setenv(var, raw)
    assert getattr(get_settings(), field) == value


def test_data_roots_put_twin_data_first(env, tmp_path):
    env.setenv("TWIN_DATA", str(tmp_path))
    assert get_settings().data_roots == [tmp_path, REPO_ROOT / "data"]


@pytest.mark.parametrize(
    ("var", "raw", "message"),
    [
        (
            "TWIN_USE_CACHE",
            "maybe",
            "TWIN_USE_CACHE: 'maybe' is not a boolean (use 1/0, true/false)",
        ),
        ("TWIN_PROGRESS", "2", "TWIN_PROGRESS: '2' is not a boolean"),
        ("TWIN_SEED", "1.5", "TWIN_SEED: '1.5' is not an integer"),
        ("TWIN_SLOT_MINUTES", "", "TWIN_SLOT_MINUTES: '' is not an integer"),
        ("TWIN_SLOT_MINUTES", "7", "slot_minutes: 7 does not divide an hour"),
        ("TWIN_CACHE", " ", "TWIN_CACHE: a folder is needed, got ' '"),
    ],
)
def test_bad_environment_values_name_the_variable(env, var, raw, message):
    env.setenv(var, raw)
    with pytest.raises(twin.InputValidationError) as err:
        get_settings()
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": "x"}, "set_options(seed=...): 'x' is not an integer"),
        ({"seed": True}, "set_options(seed=...): True is not an integer"),
        ({"seed": 1.0}, "set_options(seed=...): 1.0 is not an integer"),
        ({"use_cache": "perhaps"}, "set_options(use_cache=...): 'perhaps' is not a boolean"),
        ({"progress": 1}, "set_options(progress=...): 1 is not a boolean"),
        ({"cache": None}, "set_options(cache=...): a folder is needed, got None"),
        ({"data": 3}, "set_options(data=...): 3 is not a path"),
        ({"overpass_url": 80}, "set_options(overpass_url=...): 80 is not text"),
        ({"slot_minutes": 45}, "slot_minutes: 45 does not divide an hour"),
        ({"colour": "red"}, "set_options: unknown option 'colour'; valid: cache, data,"),
    ],
)
def test_set_options_validates_and_leaves_nothing_behind(env, options, message):
    before = get_settings()
    with pytest.raises(twin.InputValidationError) as err, set_options(**options):
        pass
    assert message in str(err.value)
    assert get_settings() == before


def test_set_options_nest_and_unwind_in_order(env, tmp_path):
    env.setenv("TWIN_SEED", "7")
    with set_options(seed=1, cache=str(tmp_path)) as outer:
        assert outer.seed == 1 and outer.cache == tmp_path  # options win over the environment
        with set_options(seed=2, progress=False) as inner:
            assert (inner.seed, inner.progress, inner.cache) == (2, False, tmp_path)
            with set_options(seed=2):  # an equal layer inside: unwinding removes this one
                pass
            assert get_settings().seed == 2
        assert (get_settings().seed, get_settings().progress) == (1, True)
        with pytest.raises(ZeroDivisionError), set_options(seed=3):
            _ = 1 / 0
        assert get_settings().seed == 1
    assert get_settings().seed == 7


def test_set_options_reaches_twin_load(env, data_root, tmp_path):
    with set_options(data=data_root, cache=tmp_path / "c", use_cache=False):
        tw = twin.load("bondy", progress=False)
    assert tw.counts()["junction"] == 7
    assert not (tmp_path / "c").exists()
