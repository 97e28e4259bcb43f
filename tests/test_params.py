"""Parameter validation against the physical validity bounds: every failure names the
field, the value and the bound."""

from __future__ import annotations

import math

import pytest

from exocube.errors import ParameterError
from exocube.params import (
    ALL_NAMES,
    MODEL_INPUT_NAMES_V1,
    MODEL_INPUT_SPECS_V1,
    REQUIRED_NAMES,
    SPECS,
    validate_params,
)

EARTH = {"radius_earth": 1.0, "mass_earth": 1.0, "orbital_period_days": 365.25,
         "insolation_earth": 1.0, "stellar_teff_k": 5772.0, "stellar_logg_cgs": 4.438,
         "stellar_metallicity_dex": 0.0, "host_mass_msun": 1.0}


def test_valid_earth_gets_defaults() -> None:
    out = validate_params(EARTH)
    assert out["surface_pressure_bar"] == SPECS["surface_pressure_bar"].default
    assert set(REQUIRED_NAMES) <= set(out)


@pytest.mark.parametrize("field, value, pattern", [
    ("radius_earth", -1.0, r"radius_earth=-1.0 is invalid: expected a finite number in "
     r"\[0.25, 3.0\]"),
    ("stellar_teff_k", math.nan, r"stellar_teff_k=nan .*\[2300.0, 10000.0\] K"),
    ("surface_pressure_bar", 200.0, r"surface_pressure_bar=200.0 .*\[0.01, 100.0\] bar"),
    ("pch4_bar", -0.1, r"pch4_bar=-0.1 .*\[0.0, 100.0\] bar"),
    ("stellar_teff_k", 10001.0, r"stellar_teff_k=10001.0 .*\[2300.0, 10000.0\] K"),
    ("insolation_earth", "bright", r"insolation_earth='bright'"),
])
def test_bad_values_name_field_value_and_range(field: str, value: object, pattern: str) -> None:
    with pytest.raises(ParameterError, match=pattern) as info:
        validate_params({**EARTH, field: value})
    assert info.value.field == field


def test_missing_and_unknown_fields() -> None:
    partial = {k: v for k, v in EARTH.items() if k != "host_mass_msun"}
    with pytest.raises(ParameterError, match="missing required fields: \\['host_mass_msun'\\]"):
        validate_params(partial)
    with pytest.raises(ParameterError, match="radius_jupiter"):
        validate_params({**EARTH, "radius_jupiter": 1.0})


def test_real_atmospheres_outside_the_generator_are_valid() -> None:
    """A 3-bar run, a CO2-free run, a CH4-bearing run, a pure-CO2 atmosphere, an A star."""
    for extra in ({"surface_pressure_bar": 3.0}, {"pco2_bar": 0.0},
                  {"pch4_bar": 0.01, "pco2_bar": 0.2}, {"surface_pressure_bar": 90.0,
                                                         "pco2_bar": 90.0},
                  {"stellar_teff_k": 9500.0, "host_mass_msun": 2.3, "stellar_logg_cgs": 4.2}):
        out = validate_params({**EARTH, **extra})
        assert {k: out[k] for k in extra} == extra
    assert validate_params(EARTH)["pch4_bar"] == 0.0
    assert set(validate_params(EARTH)) == set(ALL_NAMES)


def test_partial_pressures_above_the_surface_pressure_name_both_fields() -> None:
    with pytest.raises(ParameterError, match=r"pco2_bar=2.5 is invalid: expected at most "
                       r"surface_pressure_bar = 2 bar") as info:
        validate_params({**EARTH, "surface_pressure_bar": 2.0, "pco2_bar": 2.5})
    assert info.value.field == "pco2_bar"
    with pytest.raises(ParameterError, match=r"pco2_bar=1.5 .*surface_pressure_bar = 1 bar"):
        validate_params({**EARTH, "pco2_bar": 1.5})  # against the default surface pressure
    with pytest.raises(ParameterError, match=r"pch4_bar=0.6 is invalid: expected at most "
                       r"surface_pressure_bar - pco2_bar = 0.5 bar \(surface_pressure_bar = 1, "
                       r"pco2_bar = 0.5\)"):
        validate_params({**EARTH, "pco2_bar": 0.5, "pch4_bar": 0.6})
    assert validate_params({**EARTH, "pco2_bar": 0.7, "pch4_bar": 0.3})["pch4_bar"] == 0.3


def test_model_input_v1_is_the_frozen_vector_of_older_checkpoints() -> None:
    assert MODEL_INPUT_NAMES_V1 == (
        "radius_earth", "mass_earth", "orbital_period_days", "insolation_earth",
        "stellar_teff_k", "stellar_logg_cgs", "stellar_metallicity_dex", "host_mass_msun",
        "surface_pressure_bar", "pco2_bar", "rotation_period_days")
    scale = {n: (s.low, s.high, s.log_scale) for n, s in MODEL_INPUT_SPECS_V1.items()}
    assert scale == {
        "radius_earth": (0.5, 2.5, False), "mass_earth": (0.1, 12.0, True),
        "orbital_period_days": (0.5, 500.0, True), "insolation_earth": (0.1, 3.0, False),
        "stellar_teff_k": (2300.0, 7000.0, False), "stellar_logg_cgs": (3.5, 5.5, False),
        "stellar_metallicity_dex": (-1.0, 0.6, False), "host_mass_msun": (0.08, 1.5, False),
        "surface_pressure_bar": (0.1, 2.0, True), "pco2_bar": (1e-6, 1.0, True),
        "rotation_period_days": (0.25, 500.0, True)}
    # every v1 range lies inside the validity bounds, so older stores stay valid
    for name, spec in MODEL_INPUT_SPECS_V1.items():
        assert SPECS[name].low <= spec.low and spec.high <= SPECS[name].high
