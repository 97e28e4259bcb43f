"""The run file contract: CF metadata, attributes, determinism, atomic writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from exocube.gcm.generator import generate
from exocube.gcm.netcdf import read_attrs, source, write_run
from exocube.gcm.sampling import sample_runs
from exocube.grid import CF_META, Grid
from exocube.params import ALL_NAMES
from exocube.planet import derive

from .conftest import LOCKED, planet

DERIVED = ("gravity_m_s2", "semi_major_axis_au", "equilibrium_temperature_k", "tidally_locked",
           "r_gas_j_kg_k")


def write(tmp_path: Path, name: str, seed: int = 1, index: int = 0, **kw: object) -> Path:
    spec = sample_runs(index + 1, seed)[index]
    path = tmp_path / f"{name}.nc"
    write_run(generate(derive(spec.params), **kw), path, spec.run_id)
    return path


def test_file_has_the_contract_dims_coordinates_and_attributes(tmp_path: Path) -> None:
    grid = Grid.with_levels(nlat=12, nlon=24, nlev=9)
    path = write(tmp_path, "run", grid=grid, phase_bins=2)
    with xr.open_dataset(path) as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.attrs["source"] == source()
        assert ds.attrs["run_id"] == "gen-s1-n1-00000"
        for name in (*ALL_NAMES, *DERIVED):
            assert name in ds.attrs, name
        for name in ALL_NAMES:
            assert isinstance(ds.attrs[name], float)
        assert ds.attrs["tidally_locked"] in (0, 1)
        for name, (standard_name, units) in CF_META.items():
            var = ds[name]
            assert var.dtype == np.float32
            assert var.attrs["standard_name"] == standard_name
            assert var.attrs["units"] == units
            expected = ("time", "plev", "lat", "lon") if name in ("ta", "ua", "va", "hus", "zg") \
                else ("time", "lat", "lon")
            assert var.dims == expected
        assert dict(ds.sizes) == {"time": 2, "plev": 9, "lat": 12, "lon": 24}
        assert ds.plev.attrs == {"standard_name": "air_pressure", "units": "Pa",
                                 "positive": "down", "axis": "Z"}
        assert np.all(np.diff(ds.plev.values) < 0)
        assert np.all(np.diff(ds.lat.values) > 0) and ds.lat.attrs["units"] == "degrees_north"
        assert ds.lon.values.min() >= 0 and ds.lon.values.max() < 360
        assert ds.lon.attrs["units"] == "degrees_east"
        assert np.issubdtype(ds.time.dtype, np.datetime64)  # CF time units decode
        np.testing.assert_array_equal(ds.plev.values, grid.plev_array)


def test_parameters_in_the_file_are_the_run_parameters(tmp_path: Path) -> None:
    p = planet(**LOCKED)
    path = tmp_path / "locked.nc"
    write_run(generate(p), path, "locked")
    attrs = read_attrs(path)
    for name in ALL_NAMES:
        assert attrs[name] == p.params[name]
    assert attrs["rotation_period_days"] == LOCKED["orbital_period_days"]
    assert attrs["tidally_locked"] == 1
    assert attrs["gravity_m_s2"] == p.gravity


def test_same_run_gives_byte_identical_files(tmp_path: Path) -> None:
    a, b = write(tmp_path, "a", seed=7, index=2), write(tmp_path, "b", seed=7, index=2)
    assert a.read_bytes() == b.read_bytes()
    c = write(tmp_path, "c", seed=8, index=2)
    assert hashlib.sha256(c.read_bytes()).digest() != hashlib.sha256(a.read_bytes()).digest()


def test_nan_is_the_fill_value_below_ground(tmp_path: Path) -> None:
    path = tmp_path / "thin.nc"
    write_run(generate(planet(surface_pressure_bar=0.3)), path, "thin")
    with netCDF4.Dataset(path) as ds:
        assert np.isnan(ds["ta"]._FillValue)
        ds.set_auto_mask(False)
        assert np.isnan(ds["ta"][0, 0]).all()


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path: Path) -> None:
    climate = generate(planet())
    del climate.fields["zg"]  # fault: the writer meets a missing field half-way through
    path = tmp_path / "broken.nc"
    with pytest.raises(KeyError, match="zg"):
        write_run(climate, path, "broken")
    assert list(tmp_path.iterdir()) == []
