"""Parameter validation: every failure names the field, the value and the range."""

from __future__ import annotations

import math

import pytest

from exocube.errors import ParameterError
from exocube.params import REQUIRED_NAMES, SPECS, validate_params

EARTH = {"radius_earth": 1.0, "mass_earth": 1.0, "orbital_period_days": 365.25,
         "insolation_earth": 1.0, "stellar_teff_k": 5772.0, "stellar_logg_cgs": 4.438,
         "stellar_metallicity_dex": 0.0, "host_mass_msun": 1.0}


def test_valid_earth_gets_defaults() -> None:
    out = validate_params(EARTH)
    assert out["surface_pressure_bar"] == SPECS["surface_pressure_bar"].default
    assert set(REQUIRED_NAMES) <= set(out)


@pytest.mark.parametrize("field, value, pattern", [
    ("radius_earth", -1.0, r"radius_earth=-1.0 is invalid: expected a finite number in "
     r"\[0.5, 2.5\]"),
    ("stellar_teff_k", math.nan, r"stellar_teff_k=nan .*\[2300.0, 7000.0\] K"),
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
