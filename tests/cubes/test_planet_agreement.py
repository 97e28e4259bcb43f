"""Ingest and a prediction request derive the same planet: one locking rule, one R."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders import PARAMS

from exocube.cubes.runparams import resolve
from exocube.errors import InputDataError, ParameterError
from exocube.planet import LOCKING_TIME_LIMIT_YR, derive
from exocube.surrogate.surrogate import check_request

# (case, overrides of the Earth-like PARAMS, expected locked flag)
PLANETS = [
    ("earth", {}, False),
    ("spin-down within 1 Gyr", {"orbital_period_days": 8.0, "host_mass_msun": 0.2,
                                "rotation_period_days": 1.0}, True),
    ("rotation equals orbit", {"orbital_period_days": 300.0, "rotation_period_days": 300.0},
     True),
    # a period read back from a float32 file attribute: 3e-8 relative off the orbit
    ("rotation equals orbit to float32", {
        "orbital_period_days": 299.99, "rotation_period_days": float(np.float32(299.99))},
     True),
    ("slow rotation, long orbit", {"orbital_period_days": 300.0, "rotation_period_days": 200.0,
                                   "pco2_bar": 0.05}, False),
]


def ingest_params(tmp_path: Path, planet: dict[str, float]) -> dict[str, float]:
    """What ingest stores for a run whose file attributes give only the parameter vector."""
    return resolve("run", str(tmp_path / "run.nc"), planet, {}, None)


@pytest.mark.parametrize(("case", "overrides", "locked"), PLANETS, ids=[p[0] for p in PLANETS])
def test_ingest_and_request_agree_on_locking_and_gas_constant(
        tmp_path: Path, case: str, overrides: dict[str, float], locked: bool) -> None:
    planet = {**PARAMS, **overrides}
    stored = ingest_params(tmp_path, planet)
    request = check_request(planet)
    assert request.tidally_locked is locked
    assert stored["tidally_locked"] == float(locked)
    assert stored["rotation_period_days"] == request.params["rotation_period_days"]
    assert stored["r_gas_j_kg_k"] == derive(request.params).r_gas
    assert stored["gravity_m_s2"] == derive(request.params).gravity


def test_the_spin_down_case_is_locked_by_the_time_scale_alone() -> None:
    planet = derive({**PARAMS, "orbital_period_days": 8.0, "host_mass_msun": 0.2})
    assert planet.locking_time_yr < LOCKING_TIME_LIMIT_YR
    assert planet.params["rotation_period_days"] == 8.0


def test_a_gas_constant_from_co2_not_the_dry_air_default(tmp_path: Path) -> None:
    stored = ingest_params(tmp_path, {**PARAMS, "pco2_bar": 0.5})
    # half CO2 by moles: M = 0.5 * 44.01 + 0.5 * 28.96 g/mol, R = 8.3145 / M
    assert stored["r_gas_j_kg_k"] == pytest.approx(8.314462618 / 36.4871e-3, rel=1e-4)


def test_values_a_source_gives_are_kept(tmp_path: Path) -> None:
    stored = ingest_params(tmp_path, {**PARAMS, "orbital_period_days": 8.0,
                                      "host_mass_msun": 0.2, "tidally_locked": 0.0,
                                      "r_gas_j_kg_k": 190.0, "gravity_m_s2": 9.0})
    assert (stored["tidally_locked"], stored["r_gas_j_kg_k"], stored["gravity_m_s2"]) == (
        0.0, 190.0, 9.0)
    assert stored["rotation_period_days"] == PARAMS["rotation_period_days"]


def test_a_co2_pressure_above_the_surface_pressure_is_refused_by_both(tmp_path: Path) -> None:
    planet = {**PARAMS, "surface_pressure_bar": 0.5, "pco2_bar": 0.8}
    with pytest.raises(ParameterError, match="pco2_bar"):
        check_request(planet)
    with pytest.raises(InputDataError, match=r"run 'run'.*pco2_bar.*surface_pressure_bar ?= ?0.5"):
        ingest_params(tmp_path, planet)
