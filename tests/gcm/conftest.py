"""Planets and generated run files shared by the generator tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import xarray as xr

from exocube.gcm.generator import generate
from exocube.gcm.netcdf import write_run
from exocube.grid import DEFAULT_GRID, Grid
from exocube.params import validate_params
from exocube.planet import Planet, derive

EARTH = {
    "radius_earth": 1.0, "mass_earth": 1.0, "orbital_period_days": 365.256,
    "insolation_earth": 1.0, "stellar_teff_k": 5772.0, "stellar_logg_cgs": 4.44,
    "stellar_metallicity_dex": 0.0, "host_mass_msun": 1.0, "rotation_period_days": 1.0,
}
LOCKED = {**EARTH, "orbital_period_days": 12.0, "host_mass_msun": 0.2, "stellar_teff_k": 3100.0,
          "stellar_logg_cgs": 5.0, "insolation_earth": 0.9}


def planet(**overrides: float) -> Planet:
    """Earth, with some parameters changed."""
    return derive(validate_params({**EARTH, **overrides}))


@pytest.fixture
def run_file(tmp_path: Path) -> Callable[..., xr.Dataset]:
    """Generate a run, write it, and open the file (closed at teardown)."""
    opened: list[xr.Dataset] = []

    def make(p: Planet, grid: Grid = DEFAULT_GRID, phase_bins: int = 1,
             run_id: str = "test-run") -> xr.Dataset:
        path = tmp_path / f"{run_id}-{len(opened)}.nc"
        write_run(generate(p, grid, phase_bins), path, run_id)
        ds = xr.open_dataset(path, decode_times=False).load()
        opened.append(ds)
        return ds

    yield make
    for ds in opened:
        ds.close()
