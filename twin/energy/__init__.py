"""Energy of public lighting: pre-LED baseline, LED rollout and the 12-year trajectory.

Dijon Métropole's 12-year contract (February 2018 - 2030) commits to cutting the energy of
public lighting by 65 % against the pre-LED stock, by renewing 93 % of the 34,000 light points
to LED and dimming them by footfall (DESIGN section 4). This module turns a set of light points
into a yearly trajectory and splits the saving between its three levers:

1. **LED renewal** -- an LED luminaire draws :data:`LED_RATIO` (~0.5) of the high-pressure
   sodium (HPS) system it replaces (lamp plus ballast, :data:`HPS_SYSTEM_W`);
2. **switch-off** -- lights off for part of the night (a fraction of the lit hours);
3. **dimming** -- LED lights run below full power on the hours they are lit.

Energy is computed for each calendar year from that year's real dusk-to-dawn hours
(:func:`twin.timeutil.yearly_dark_hours`, from the sun), never from a constant.

The model, for a year with dark hours :math:`H`, LED share :math:`s`, switch-off factor
:math:`o` and dimming factor :math:`d`, and fleet powers :math:`P_{HPS}` (all lights on the
pre-LED stock) and :math:`P_{LED}` (all lights renewed)::

    baseline  = H * P_HPS
    led_only  = H * (s * P_LED + (1 - s) * P_HPS)
    planned   = H * (1 - o) * (s * d * P_LED + (1 - s) * P_HPS)

Switch-off (done per cabinet) applies to every light; dimming applies to the LED lights only
(HPS stock on magnetic ballasts is not dimmed in this model).

Examples
--------
>>> import numpy as np
>>> baseline_power_w(np.array(["residential", "primary"]))
array([ 80.5, 275. ])
>>> led_power_w(np.array(["residential"]))
array([40.25])

The package's parts: :mod:`twin.energy.hps` (the pre-LED baseline and per-light powers),
:mod:`twin.energy.power` (the power curve of a dimmed light, defined once),
:mod:`twin.energy.rollout` (the LED programme), :mod:`twin.energy.yearly` (the yearly
trajectory and the factors read from a plan) and :mod:`twin.energy.plots`.
"""

from __future__ import annotations

from twin.energy import hps as hps
from twin.energy import plots as plots
from twin.energy import power as power
from twin.energy import rollout as rollout
from twin.energy import yearly as yearly
from twin.energy.hps import (
    ATTRIBUTION_ORDER,
    BALLAST_LOSS,
    CONTRACT_END,
    CONTRACT_START,
    HPS_LAMP_W,
    HPS_SYSTEM_W,
    LED_RATIO,
    LED_RATIO_RANGE,
    LED_TARGET_SHARE,
    TARGET_PCT,
    baseline_power_w,
    hps_system_w,
    hps_table,
    led_power_w,
)
from twin.energy.plots import plot_trajectory
from twin.energy.power import DRIVER_FLOOR, drawn_fraction
from twin.energy.rollout import Rollout, front_loaded_shares
from twin.energy.yearly import factors_from_plan, trajectory, year_of_target

__all__ = [
    "ATTRIBUTION_ORDER",
    "BALLAST_LOSS",
    "DRIVER_FLOOR",
    "CONTRACT_END",
    "CONTRACT_START",
    "HPS_LAMP_W",
    "HPS_SYSTEM_W",
    "LED_RATIO",
    "LED_RATIO_RANGE",
    "LED_TARGET_SHARE",
    "TARGET_PCT",
    "Rollout",
    "baseline_power_w",
    "drawn_fraction",
    "front_loaded_shares",
    "factors_from_plan",
    "hps_system_w",
    "hps_table",
    "led_power_w",
    "plot_trajectory",
    "trajectory",
    "year_of_target",
]
