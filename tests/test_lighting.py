from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from twin._errors import InputValidationError
from twin.assets import lighting as L
from twin.assets.lighting import (
    adaptive_class,
    class_number,
    class_series,
    class_unit,
    class_value,
    design_classes,
    design_table,
    required_fraction,
    select_c_class,
    select_m_class,
    select_p_class,
)

# DESIGN section 4 (EN 13201-2 maintained averages), written out independently of the module
M_L = {"M1": 2.0, "M2": 1.5, "M3": 1.0, "M4": 0.75, "M5": 0.5, "M6": 0.3}
C_E = {"C0": 50.0, "C1": 30.0, "C2": 20.0, "C3": 15.0, "C4": 10.0, "C5": 7.5}
P_E = {"P1": 15.0, "P2": 10.0, "P3": 7.5, "P4": 5.0, "P5": 3.0, "P6": 2.0, "P7": 0.4}
P_MIN = {"P1": 3.0, "P2": 2.0, "P3": 1.5, "P4": 1.0, "P5": 0.6, "P6": 0.4}


# ---------------------------------------------------------------------------------------------
# EN 13201-2 tables
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "value"), list(M_L.items()))
def test_m_values(cls: str, value: float) -> None:
    assert class_value(cls) == value
    assert class_unit(cls) == "cd/m2"
    assert class_series(cls) == "M"


@pytest.mark.parametrize(("cls", "value"), list(C_E.items()))
def test_c_values(cls: str, value: float) -> None:
    assert class_value(cls) == value
    assert class_unit(cls) == "lx"
    assert L.LIGHTING_CLASSES[cls].u0 == 0.4


@pytest.mark.parametrize(("cls", "value"), list(P_E.items()))
def test_p_values_and_minimum(cls: str, value: float) -> None:
    assert class_value(cls) == value
    assert class_unit(cls) == "lx"
    if cls == "P7":  # "performance not determined" (EN 13201-2:2015 Table 3): no minimum
        assert np.isnan(L.LIGHTING_CLASSES[cls].e_min_lx)
    else:
        assert L.LIGHTING_CLASSES[cls].e_min_lx == P_MIN[cls]


def test_m_uniformity_glare_and_edge_ratio() -> None:
    # EN 13201-2:2015 Table 1 (dry): U0 0.40 (M1-M4) / 0.35; Ul 0.70/0.70/0.60/0.60/0.40/0.40;
    # fTI 10/10/15/15/15/20 %; REI 0.35/0.35/0.30/0.30/0.30/0.30
    t = L.class_table().loc[list(M_L)]
    assert t["u0"].tolist() == [0.4, 0.4, 0.4, 0.4, 0.35, 0.35]
    assert t["ul"].tolist() == [0.7, 0.7, 0.6, 0.6, 0.4, 0.4]
    assert t["fti_max_pct"].tolist() == [10, 10, 15, 15, 15, 20]
    assert t["rei_min"].tolist() == [0.35, 0.35, 0.3, 0.3, 0.3, 0.3]


def test_class_table_covers_every_class_once() -> None:
    t = L.class_table()
    assert list(t.index) == [*M_L, *C_E, *P_E]
    assert t["value"].to_dict() == {**M_L, **C_E, **P_E}
    # brighter class number -> larger value, in every series
    for s in "MCP":
        vals = t.loc[t["series"] == s, "value"].to_numpy()
        assert np.all(np.diff(vals) < 0)


def test_off_pseudo_class() -> None:
    assert class_value("off") == 0.0
    assert class_unit("off") == ""
    with pytest.raises(InputValidationError, match="no class number"):
        class_number("off")


def test_class_number_and_tolerant_spelling() -> None:
    assert class_number("M3") == 3
    assert class_number("C0") == 0
    assert class_value("m3") == 1.0
    assert class_value(" P4 ") == 5.0
    assert class_value("OFF") == 0.0


@pytest.mark.parametrize("bad", ["M0", "M7", "C6", "P8", "ME3", "", "3"])
def test_unknown_class_lists_valid_ones(bad: str) -> None:
    with pytest.raises(
        InputValidationError, match=r"^cls: unknown lighting class .*valid: off, M1"
    ):
        class_value(bad)


def test_non_string_class_is_refused() -> None:
    with pytest.raises(InputValidationError, match="^cls: expected lighting class names"):
        class_value(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# CEN/TR 13201-1 selection, hand-worked
# ---------------------------------------------------------------------------------------------
def test_m_urban_main_road() -> None:
    # speed 50 moderate (-1), volume high (+1), mixed (+1), no separation (+1),
    # junction density high (+1), no parking (0), ambient moderate (0), easy (0): VWS 3 -> M3
    assert (
        select_m_class(
            speed_kmh=50,
            traffic_volume="high",
            composition="mixed",
            separation=False,
            junction_density="high",
            parked_vehicles=False,
            ambient_luminosity="moderate",
            navigational_task="easy",
        )
        == "M3"
    )


def test_m_motorway() -> None:
    # 130 very high (+2), high (+1), motorised (0), separated (0), moderate junctions (0),
    # no parking (0), ambient low (-1), easy (0): VWS 2 -> M4
    assert (
        select_m_class(
            speed_kmh=130,
            traffic_volume="high",
            composition="motorised",
            separation="yes",
            ambient_luminosity="low",
        )
        == "M4"
    )
    # same with moderate ambient (0) and a difficult interchange (+1): VWS 4 -> M2
    assert (
        select_m_class(
            speed_kmh=130,
            traffic_volume="high",
            composition="motorised",
            separation=True,
            ambient_luminosity="moderate",
            navigational_task="difficult",
        )
        == "M2"
    )


def test_m_clamped_to_series() -> None:
    # maximum: 2 + 1 + 2 + 1 + 1 + 1 + 1 + 2 = 11 -> 6 - 11 < 1 -> M1
    top = select_m_class(
        speed_kmh=120,
        traffic_volume="high",
        composition="mixed_high_nonmotorised",
        separation=False,
        junction_density="high",
        parked_vehicles=True,
        ambient_luminosity="high",
        navigational_task="very_difficult",
    )
    assert top == "M1"
    # minimum: -2 - 1 + 0 + 0 + 0 + 0 - 1 + 0 = -4 -> 10 -> M6
    bottom = select_m_class(
        speed_kmh=30,
        traffic_volume="low",
        composition="motorised",
        separation=True,
        ambient_luminosity="low",
    )
    assert bottom == "M6"


@pytest.mark.parametrize(
    ("speed", "m_weight", "c_weight"),
    [(30, -2, -1), (40, -2, -1), (41, -1, 0), (70, -1, 0), (71, 1, 2), (99, 1, 2), (100, 2, 3)],
)
def test_speed_bands(speed: float, m_weight: int, c_weight: int) -> None:
    # other M weights: high +1, mixed +1, no separation +1, rest 0 -> VWS = 3 + speed weight
    m = select_m_class(speed_kmh=speed, traffic_volume="high")
    assert m == f"M{min(6, max(1, 6 - (3 + m_weight)))}"
    # other C weights: high +1, mixed +1, no separation +1, difficult +1 -> VWS = 4 + speed
    c = select_c_class(speed_kmh=speed, traffic_volume="high")
    assert c == f"C{min(5, max(0, 6 - (4 + c_weight)))}"


def test_c_examples() -> None:
    # junction of an urban main road: 50 moderate (0), high (+1), mixed (+1), no separation
    # (+1), no parking (0), moderate ambient (0), difficult (+1): VWS 4 -> C2
    assert select_c_class(speed_kmh=50, traffic_volume="high") == "C2"
    # residential crossing at 30: low (-1), moderate (0), mixed (+1), no separation (+1),
    # parking (+1), moderate (0), difficult (+1): VWS 3 -> C3
    assert select_c_class(speed_kmh=30, traffic_volume="moderate", parked_vehicles=True) == "C3"
    # everything at its top: 3 + 1 + 2 + 1 + 1 + 1 + 2 = 11 -> C0
    assert (
        select_c_class(
            speed_kmh=110,
            traffic_volume="high",
            composition="mixed_high_nonmotorised",
            parked_vehicles="present",
            ambient_luminosity="high",
            navigational_task="very_difficult",
        )
        == "C0"
    )
    # and at its bottom: -1 - 1 + 0 + 0 + 0 - 1 + 0 = -3 -> 9 -> C5
    assert (
        select_c_class(
            speed_kmh=30,
            traffic_volume="low",
            composition="motorised",
            separation=True,
            ambient_luminosity="low",
            navigational_task="easy",
        )
        == "C5"
    )


def test_p_examples_from_the_tr_annex() -> None:
    # CEN/TR 13201-1:2014 Annex A.2, footpath for pedestrians and cyclists:
    # dusk-midnight: low speed +1, normal 0, pedestrians & cyclists +1, no parking 0,
    # moderate ambient 0 -> 2 -> P4; midnight-morning: quiet -1, low ambient -1 -> 0 -> P6
    assert (
        select_p_class(speed_kmh=15, use_intensity="normal", composition="pedestrians_cyclists")
        == "P4"
    )
    assert (
        select_p_class(
            speed_kmh=15,
            use_intensity="quiet",
            composition="pedestrians_cyclists",
            ambient_luminosity="low",
        )
        == "P6"
    )


def test_p_residential_and_walking_speed() -> None:
    # residential street: low speed +1, normal 0, all users +2, parking +1, moderate 0 -> P2
    assert (
        select_p_class(
            speed_kmh=30,
            use_intensity="normal",
            composition="pedestrians_cyclists_motorised",
            parked_vehicles=True,
        )
        == "P2"
    )
    # pedestrian street: walking 0, busy +1, pedestrians only 0, high ambient +1 -> P4
    assert (
        select_p_class(
            speed_kmh=5,
            use_intensity="busy",
            composition="pedestrians",
            ambient_luminosity="high",
            facial_recognition=True,
        )
        == "P4"
    )
    # top clamp: 1 + 1 + 2 + 1 + 1 = 6 -> 0 -> P1
    assert (
        select_p_class(
            speed_kmh=30,
            use_intensity="busy",
            composition="pedestrians_cyclists_motorised",
            parked_vehicles=True,
            ambient_luminosity="high",
        )
        == "P1"
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"speed_kmh": 50, "traffic_volume": "huge"}, "traffic_volume"),
        ({"speed_kmh": 50, "traffic_volume": "high", "composition": "cars"}, "composition"),
        ({"speed_kmh": 50, "traffic_volume": "high", "junction_density": True}, "junction_density"),
        ({"speed_kmh": -5, "traffic_volume": "high"}, "speed_kmh"),
        ({"speed_kmh": "fast", "traffic_volume": "high"}, "speed_kmh"),
        ({"speed_kmh": math.nan, "traffic_volume": "high"}, "speed_kmh"),
    ],
)
def test_m_selection_errors_name_the_parameter(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputValidationError, match=f"^{field}: "):
        select_m_class(**kwargs)  # type: ignore[arg-type]


def test_option_error_lists_valid_options() -> None:
    with pytest.raises(InputValidationError, match="valid: busy, normal, quiet"):
        select_p_class(speed_kmh=5, use_intensity="medium", composition="pedestrians")
    with pytest.raises(InputValidationError, match="^facial_recognition: "):
        select_p_class(
            speed_kmh=5,
            use_intensity="busy",
            composition="pedestrians",
            facial_recognition="yes",  # type: ignore[arg-type]
        )


# ---------------------------------------------------------------------------------------------
# adaptive lighting: traffic-volume re-evaluation
# ---------------------------------------------------------------------------------------------
def test_adaptive_matches_re_selection_with_the_slot_volume() -> None:
    # design case of an urban main road, and the same case re-selected with the slot volume
    base = {"speed_kmh": 50, "junction_density": "high"}
    design = select_m_class(traffic_volume="high", **base)
    assert design == "M3"
    for ratio, volume in [(0.9, "high"), (0.46, "high"), (0.30, "moderate"), (0.05, "low")]:
        assert L.volume_option(ratio) == volume
        assert adaptive_class(design, traffic_ratio=ratio) == select_m_class(
            traffic_volume=volume, **base
        )


def test_adaptive_multilane_thresholds() -> None:
    # 50 % of capacity: high on a two-lane road (> 45 %), moderate on a multilane route
    assert adaptive_class("M2", traffic_ratio=0.5) == "M2"
    assert adaptive_class("M2", traffic_ratio=0.5, multilane=True) == "M3"
    assert adaptive_class("M2", traffic_ratio=0.3, multilane=True) == "M4"
    assert adaptive_class("M2", traffic_ratio=0.3) == "M3"


def test_adaptive_shift_is_at_most_two_steps_and_never_brighter() -> None:
    ratios = np.linspace(0.0, 1.5, 61)
    names = [c for c in L.LIGHTING_CLASSES]
    for dv in ("high", "moderate", "low"):
        for name in names:
            out = adaptive_class(
                np.full(ratios.shape, name), traffic_ratio=ratios, design_volume=dv
            )
            shift = np.array([class_number(o) for o in out]) - class_number(name)
            assert shift.min() >= 0
            assert shift.max() <= {"high": 2, "moderate": 1, "low": 0}[dv]
            assert all(class_series(o) == class_series(name) for o in out)
            # monotone: less traffic never needs more light
            assert np.all(np.diff(shift) <= 0)
    # the full two steps are reached where the series leaves room
    assert adaptive_class("C1", traffic_ratio=0.0) == "C3"
    assert adaptive_class("P5", traffic_ratio=0.0) == "P7"  # EN 13201-2's P7 below P6
    assert adaptive_class("P6", traffic_ratio=0.0) == "P7"
    # M6 and C5 are the bottom of their series: no lower class, no dimming by class
    assert adaptive_class("M6", traffic_ratio=0.0) == "M6"
    assert adaptive_class("C5", traffic_ratio=0.0) == "C5"


def test_adaptive_p_with_pedestrian_flow() -> None:
    # P4 designed for a busy peak: quiet pedestrians but moderate cars -> the busier wins
    assert adaptive_class("P4", traffic_ratio=0.0, pedestrian_ratio=0.1) == "P6"
    assert adaptive_class("P4", traffic_ratio=0.3, pedestrian_ratio=0.1) == "P5"
    assert adaptive_class("P4", traffic_ratio=0.0, pedestrian_ratio=0.7) == "P4"
    assert adaptive_class("P2", traffic_ratio=0.1, design_volume="normal") == "P3"


def test_adaptive_with_design_vws_respects_the_clamp() -> None:
    # motorway-like design with VWS 8 (M1 after clamping): re-selected with low volume the
    # sum is 6, still M0 -> M1: no darkening is allowed
    assert adaptive_class("M1", traffic_ratio=0.0, design_vws=8) == "M1"
    assert adaptive_class("M1", traffic_ratio=0.0, design_vws=5) == "M3"
    with pytest.raises(InputValidationError, match="^design_vws: "):
        adaptive_class("M3", traffic_ratio=0.0, design_vws=5)


def test_adaptive_vectorised_equals_scalar_and_keeps_off() -> None:
    rng = np.random.default_rng(7)
    design = rng.choice(["M2", "M4", "C1", "C4", "P2", "P5", "off"], size=(50, 8))
    ratio = rng.random((50, 8))
    ml = rng.random((50, 1)) < 0.5
    out = adaptive_class(design, traffic_ratio=ratio, multilane=ml)
    assert out.shape == (50, 8)
    for i in range(50):
        for j in range(8):
            assert out[i, j] == adaptive_class(
                str(design[i, j]), traffic_ratio=float(ratio[i, j]), multilane=bool(ml[i, 0])
            )
    assert np.all(out[design == "off"] == "off")


def test_adaptive_errors() -> None:
    with pytest.raises(InputValidationError, match="^traffic_ratio: "):
        adaptive_class("M3", traffic_ratio=-0.1)
    with pytest.raises(InputValidationError, match="^traffic_ratio: "):
        adaptive_class("M3", traffic_ratio=math.nan)
    with pytest.raises(InputValidationError, match="^design_volume: "):
        adaptive_class("M3", traffic_ratio=0.1, design_volume="peak")
    with pytest.raises(InputValidationError, match="^design: "):
        adaptive_class("X9", traffic_ratio=0.1)


# ---------------------------------------------------------------------------------------------
# road classes and segment design classes
# ---------------------------------------------------------------------------------------------
def test_road_classes_table() -> None:
    rc = L.ROAD_CLASSES
    assert rc.index.is_unique
    for col in ("lanes", "speed_kph", "lit_default", "spacing_m", "hps_lamp_w", "series"):
        assert col in rc.columns
    osm = ["motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential"]
    osm += ["living_street", "service", "pedestrian", "footway", "cycleway", "path", "steps"]
    osm += ["track", "motorway_link", "primary_link", "secondary_link", "tertiary_link"]
    assert set(osm) <= set(rc.index)
    assert rc["hps_lamp_w"].between(70, 250).all()
    assert rc["spacing_m"].between(15, 50).all()
    assert rc.loc["primary", "spacing_m"] > rc.loc["residential", "spacing_m"]
    assert rc.loc["primary", "hps_lamp_w"] > rc.loc["residential", "hps_lamp_w"]
    assert rc.loc["residential", "lit_default"]
    assert not rc.loc["motorway", "lit_default"]
    assert set(rc["series"]) == {"M", "P"}
    # the most important classes come first (used to rank merged OSM ways)
    assert list(rc.index[:3]) == ["motorway", "trunk", "primary"]
    # every option named in the table is an option of the CEN/TR tables
    m_rows, p_rows = rc[rc["series"] == "M"], rc[rc["series"] == "P"]
    assert set(m_rows["volume"]) <= set(L.M_PARAMETERS["traffic_volume"])
    assert set(p_rows["volume"]) <= set(L.P_PARAMETERS["use_intensity"])
    assert set(m_rows["composition"]) <= set(L.M_PARAMETERS["composition"])
    assert set(p_rows["composition"]) <= set(L.P_PARAMETERS["composition"])
    assert set(rc["c_composition"]) - {""} <= set(L.C_PARAMETERS["composition"])
    assert set(rc["navigation"]) <= set(L.M_PARAMETERS["navigational_task"])
    assert set(rc["ambient"]) <= set(L.M_PARAMETERS["ambient_luminosity"])
    print(rc.to_string())  # printable


def test_road_classes_agree_with_energy_hps_table() -> None:
    from twin.energy import HPS_LAMP_W

    for hw, lamp_w in HPS_LAMP_W.items():
        if hw in L.ROAD_CLASSES.index:
            assert L.ROAD_CLASSES.loc[hw, "hps_lamp_w"] == lamp_w, hw


def test_road_class_defaults() -> None:
    d = L.road_class_defaults("primary")
    assert d["series"] == "M"
    assert d["speed_kph"] == 50.0
    with pytest.raises(InputValidationError, match="^highway: unknown road class 'highway'"):
        L.road_class_defaults("highway")


def test_design_classes_hand_worked() -> None:
    hw = np.array(
        ["primary", "primary", "trunk", "secondary", "residential", "footway", "footway"]
        + ["primary", "motorway"]
    )
    speed = np.array([50, 80, 90, 50, 30, 5, 5, 50, 130], dtype=float)
    lanes = np.array([2, 2, 2, 4, 1, 1, 1, 2, 3], dtype=float)
    junction = np.array([False] * 6 + [True, True, False])
    got = design_classes(hw, speed_kmh=speed, lanes=lanes, junction=junction).tolist()
    assert got == [
        # primary 50: -1 speed, +1 high, +1 mixed, +1 no separation, +1 junctions -> 3 -> M3
        "M3",
        # primary 80 (outside built-up areas): +1 speed, +1, +1, +1, junctions 0, ambient -1
        # -> 3 -> M3
        "M3",
        # trunk 90, 2 lanes on a separated carriageway: +1 speed, +1 high, motorised 0,
        # separated 0 -> 2 -> M4
        "M4",
        # secondary with 4 lanes is a multilane route, high at peak: -1 +1 +1 +1 +1 -> M3
        "M3",
        # residential: low speed +1, normal 0, all users +2, parking +1 -> 4 -> P2
        "P2",
        # footway: walking 0, normal 0, pedestrians 0 -> 0 -> P6
        "P6",
        # footway at a junction is no motor conflict area: stays P6
        "P6",
        # primary junction: C speed 0, high +1, mixed +1, no separation +1, difficult +1 -> C2
        "C2",
        # motorway 130: +2 very high, +1 high, rest 0 -> 3 -> M3
        "M3",
    ]


def test_design_classes_defaults_fill_missing_speed_and_lanes() -> None:
    hw = L.ROAD_CLASSES.index.to_numpy(dtype=str)
    n = hw.size
    nan = design_classes(hw, speed_kmh=np.full(n, np.nan), lanes=np.full(n, np.nan))
    explicit = design_classes(
        hw,
        speed_kmh=L.ROAD_CLASSES["speed_kph"].to_numpy(float),
        lanes=L.ROAD_CLASSES["lanes"].to_numpy(float),
    )
    np.testing.assert_array_equal(nan, explicit)
    assert set(nan) <= set(L.LIGHTING_CLASSES)


def _scalar_design(hw: str, speed: float, lanes: float, junction: bool) -> str:
    """Reference: the documented rules of design_classes applied with the scalar selectors."""
    row = L.ROAD_CLASSES.loc[hw]
    separated = row["separation"] == "yes"
    multilane = lanes >= 4 or (separated and lanes >= 2)
    fast = hw in ("motorway", "trunk", "motorway_link", "trunk_link")
    rural = speed > 70 and not fast and row["series"] == "M"
    ambient = "low" if rural else row["ambient"]
    if junction and row["c_composition"]:
        volume = row["volume"]
        if row["series"] == "P":
            volume = {"busy": "high", "normal": "moderate", "quiet": "low"}[volume]
        elif multilane:
            volume = "high"
        nav = "difficult" if row["navigation"] == "easy" else row["navigation"]
        return select_c_class(
            speed_kmh=speed,
            traffic_volume=volume,
            composition=row["c_composition"],
            separation=row["separation"],
            parked_vehicles=row["parked"],
            ambient_luminosity=ambient,
            navigational_task=nav,
        )
    if row["series"] == "P":
        return select_p_class(
            speed_kmh=speed,
            use_intensity=row["volume"],
            composition=row["composition"],
            parked_vehicles=row["parked"],
            ambient_luminosity=row["ambient"],
        )
    return select_m_class(
        speed_kmh=speed,
        traffic_volume="high" if multilane else row["volume"],
        composition=row["composition"],
        separation=row["separation"],
        junction_density="moderate" if rural else row["junction_density"],
        parked_vehicles=row["parked"],
        ambient_luminosity=ambient,
        navigational_task=row["navigation"],
    )


def test_design_classes_vectorised_equals_scalar() -> None:
    rng = np.random.default_rng(42)
    n = 600
    hw = rng.choice(L.ROAD_CLASSES.index.to_numpy(dtype=str), n)
    speed = rng.choice([5.0, 20.0, 30.0, 45.0, 50.0, 70.0, 80.0, 90.0, 110.0, 130.0], n)
    lanes = rng.choice([1.0, 2.0, 3.0, 4.0, 6.0], n)
    junction = rng.random(n) < 0.3
    got = design_classes(hw, speed_kmh=speed, lanes=lanes, junction=junction)
    want = [
        _scalar_design(h, s, ln, j) for h, s, ln, j in zip(hw, speed, lanes, junction, strict=True)
    ]
    np.testing.assert_array_equal(got, np.array(want))
    # object arrays (pandas columns) give the same answer
    np.testing.assert_array_equal(
        design_classes(hw.astype(object), speed_kmh=speed, lanes=lanes, junction=junction), got
    )


def test_design_table_feeds_adaptive() -> None:
    hw = np.array(["primary", "residential", "secondary"])
    t = design_table(hw, speed_kmh=np.array([50.0, 30.0, 50.0]), lanes=np.array([2.0, 1.0, 2.0]))
    assert t["design_volume"].tolist() == ["high", "normal", "moderate"]
    night = adaptive_class(
        t["lighting_class"].to_numpy(str),
        traffic_ratio=np.zeros(3),
        design_volume=t["design_volume"].to_numpy(str),
        design_vws=t["vws"].to_numpy(),
    )
    # primary high->low two steps, residential normal->quiet one, secondary moderate->low one
    assert night.tolist() == ["M5", "P3", "M5"]


def test_design_classes_errors() -> None:
    one = np.array([50.0])
    with pytest.raises(InputValidationError, match="^highway: no road-class defaults for 'runway'"):
        design_classes(np.array(["runway"]), speed_kmh=one, lanes=one)
    with pytest.raises(InputValidationError, match="^speed_kmh: expected 2 values"):
        design_classes(np.array(["primary", "primary"]), speed_kmh=np.ones(3), lanes=np.ones(2))
    with pytest.raises(InputValidationError, match="^speed_kmh: speeds must be within"):
        design_classes(np.array(["primary"]), speed_kmh=np.array([500.0]), lanes=one)
    with pytest.raises(InputValidationError, match="^junction: "):
        design_classes(np.array(["primary"]), speed_kmh=one, lanes=one, junction=np.array([1]))
    with pytest.raises(InputValidationError, match="^highway: expected a 1-d array"):
        design_classes(np.array([1, 2]), speed_kmh=one, lanes=one)


def test_design_classes_large_input_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    hw = rng.choice(L.ROAD_CLASSES.index.to_numpy(dtype=str), n)
    out = design_classes(
        hw,
        speed_kmh=rng.choice([30.0, 50.0, 90.0, np.nan], n),
        lanes=rng.choice([1.0, 2.0, 4.0, np.nan], n),
        junction=rng.random(n) < 0.1,
    )
    assert out.shape == (n,)


def test_led_catalogue_and_unmatched_class() -> None:
    from twin.assets.luminaire import load_catalogue

    cat = load_catalogue("led-2018")
    # every design class has a luminaire; P7 is reached only by dimming, never designed for
    assert set(cat.index) == set(L.LIGHTING_CLASSES) - {"P7"}
    assert L.UNMATCHED_CLASS in L.LIGHTING_CLASSES
    for s in "MCP":
        p = cat.loc[[c for c in cat.index if c.startswith(s)], "power_w"].to_numpy()
        assert np.all(np.diff(p) < 0)  # brighter class, bigger luminaire
    assert (cat["min_level"].between(0.0, 0.5)).all()
    assert ((cat["flux_lm"] / cat["power_w"]).between(80, 200)).all()


# ---------------------------------------------------------------------------------------------
# required output fraction
# ---------------------------------------------------------------------------------------------
def test_required_fraction_is_the_class_ratio() -> None:
    # L(M5) / L(M3) = 0.5 / 1.0; P6 / P3 = 2 / 7.5; C4 / C2 = 10 / 20
    assert required_fraction("M3", "M5", maintenance_margin=0.0) == pytest.approx(0.5)
    assert required_fraction("P3", "P6", maintenance_margin=0.0) == pytest.approx(2 / 7.5)
    assert required_fraction("C2", "C4", maintenance_margin=0.0) == pytest.approx(0.5)
    # with the default 10 % margin
    assert pytest.approx(0.10) == L.MAINTENANCE_MARGIN
    assert required_fraction("M3", "M5") == pytest.approx(0.55)
    assert required_fraction("M1", "M6", maintenance_margin=0.2) == pytest.approx(0.3 / 2 * 1.2)


def test_required_fraction_caps_and_off() -> None:
    assert required_fraction("M3", "M3") == 1.0  # 1.1 capped
    assert required_fraction("M4", "M2") == 1.0  # brighter than designed: full output
    assert required_fraction("P2", "off") == 0.0
    assert isinstance(required_fraction("P2", "P4"), float)


def test_required_fraction_across_series() -> None:
    # C and P values are both average horizontal illuminance (lx): comparable
    assert required_fraction("C3", "P3", maintenance_margin=0.0) == pytest.approx(0.5)
    with pytest.raises(InputValidationError, match="^required: class series M .* and P .*"):
        required_fraction("M3", "P4")
    with pytest.raises(InputValidationError, match="^required: class series C .* and M "):
        required_fraction(np.array(["C2", "C2"]), np.array(["C3", "M4"]))
    with pytest.raises(InputValidationError, match="^design: 'off' is not a design class"):
        required_fraction("off", "off")
    with pytest.raises(InputValidationError, match="^maintenance_margin: "):
        required_fraction("M3", "M4", maintenance_margin=-0.1)
    with pytest.raises(InputValidationError, match="^required: unknown lighting class 'Q1'"):
        required_fraction("M3", "Q1")


def test_required_fraction_vectorised_equals_scalar() -> None:
    rng = np.random.default_rng(3)
    series = {"M": list(M_L), "C": list(C_E), "P": list(P_E)}
    design_s = rng.choice(list("MCP"), 300)
    design = np.array([rng.choice(series[s]) for s in design_s])
    required = np.array(
        [
            [rng.choice([*series[s], "off"]) if s != "C" else rng.choice([*P_E, *C_E, "off"])]
            for s in design_s
        ]
        * 1
    ).reshape(300, 1)
    required = np.concatenate([required, np.where(design_s == "M", "M6", "P6")[:, None]], axis=1)
    got = required_fraction(design[:, None], required)
    assert got.shape == (300, 2)
    for i in range(300):
        for j in range(2):
            want = required_fraction(str(design[i]), str(required[i, j]))
            assert got[i, j] == pytest.approx(want)
            if required[i, j] != "off":
                ratio = class_value(required[i, j]) / class_value(design[i]) * 1.1
                assert want == pytest.approx(min(1.0, ratio))
    pd_col = pd.Series(design).to_numpy(dtype=object)
    np.testing.assert_allclose(required_fraction(pd_col[:, None], required), got)


def test_required_fraction_full_size() -> None:
    # a Dijon-sized stock over a long night (its time is the dimming benchmark's business)
    rng = np.random.default_rng(1)
    design = rng.choice(["M2", "M3", "M4"], 34_000)[:, None]
    required = rng.choice(["M3", "M4", "M5", "M6", "off"], (34_000, 64))
    frac = required_fraction(design, required)
    assert frac.shape == (34_000, 64)
    assert frac.min() == 0.0
    assert frac.max() == 1.0
