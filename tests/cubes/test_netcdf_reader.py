"""The in-memory NetCDF reader decodes exactly as ``xarray.open_dataset`` does."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from exocube.cubes.sources.netcdf import read_netcdf
from exocube.errors import InputDataError


def packed_file(path: Path) -> Path:
    """Packed ints with _FillValue, float missing_value, a char-array coordinate named
    by a ``coordinates`` attribute, and variables out of xarray's order."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 5)
        nc.createDimension("s", 3)
        nc.title = "packed"
        aux = nc.createVariable("lab", "S1", ("x", "s"))
        t = nc.createVariable("t", "i2", ("x",), fill_value=-999)
        t.scale_factor, t.add_offset = np.float32(0.5), np.float32(200.0)
        x = nc.createVariable("x", "f8", ("x",))
        u = nc.createVariable("u", "f8", ("x",))
        u.missing_value, u.coordinates, u.units = 1e20, "lab", "K"
        v = nc.createVariable("v", "f4", ("x",), fill_value=np.float32(-5))
        v.valid_max, v.scale_factor = 2.0, 2.0  # xarray does not mask valid_max
        nc.set_auto_maskandscale(False)  # write the raw values below as they are
        aux[:] = netCDF4.stringtochar(np.array(["ab", "cd", "ef", "gh", "ij"], dtype="S3"))
        t[:] = np.array([1, 2, -999, -1, 4], dtype="i2")
        x[:] = np.arange(5.0)
        u[:] = [1, 2, 1e20, 3, 4]
        v[:] = [1, 2, 3, -5, 4]
    return path


def test_reader_matches_xarray_decoding(tmp_path: Path) -> None:
    path = packed_file(tmp_path / "packed.nc")
    ours = read_netcdf(path)
    ref = xr.open_dataset(path, engine="netcdf4", decode_times=False,
                          decode_timedelta=False).load()
    assert list(ours.variables) == list(ref.variables)
    assert list(ours.data_vars) == list(ref.data_vars) == ["t", "u", "v"]
    assert ours.attrs == ref.attrs
    for name in ref.variables:
        assert ours[name].dims == ref[name].dims
        assert ours[name].attrs == ref[name].attrs
        assert ours[name].dtype == ref[name].dtype
        np.testing.assert_array_equal(ours[name].values, ref[name].values)
    np.testing.assert_array_equal(ours["t"].values, [200.5, 201.0, np.nan, 199.5, 202.0])
    np.testing.assert_array_equal(ours["u"].values, [1, 2, np.nan, 3, 4])
    np.testing.assert_array_equal(ours["v"].values, [2, 4, 6, np.nan, 8])


def test_reader_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not a netcdf file")
    with pytest.raises(InputDataError, match=r"bad\.nc: not a readable NetCDF file"):
        read_netcdf(bad)
    with pytest.raises(InputDataError, match=r"missing\.nc: no such file"):
        read_netcdf(tmp_path / "missing.nc")


def test_reader_from_bytes_matches_reader_from_file(tmp_path: Path) -> None:
    path = packed_file(tmp_path / "packed.nc")
    from_file, from_bytes = read_netcdf(path), read_netcdf(path, path.read_bytes())
    assert list(from_bytes.variables) == list(from_file.variables)
    for name, var in from_file.variables.items():
        assert from_bytes[name].identical(var)
    with pytest.raises(InputDataError, match=r"bad\.nc: not a readable NetCDF file"):
        read_netcdf(tmp_path / "bad.nc", b"not a netcdf file")
