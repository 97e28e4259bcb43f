"""Unusable input: a clear error naming the file and the problem; the store is unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from exocube.cubes import ingest, list_versions, open_store
from exocube.errors import InputDataError


def not_netcdf(path: Path) -> Path:
    path.write_text("run,ta\n1,288\n")
    return path


def missing_ta(path: Path) -> Path:
    return _rewrite(path, lambda ds: ds.drop_vars("ta"))


def no_coordinates(path: Path) -> Path:
    return _rewrite(path, lambda ds: ds.drop_vars(["lat", "lon"]))


def nan_surface_pressure(path: Path) -> Path:
    def spoil(ds: xr.Dataset) -> xr.Dataset:
        ps = ds["ps"].values.copy()
        ps[0, 2, 3] = np.nan
        return ds.assign(ps=(ds["ps"].dims, ps, ds["ps"].attrs))
    return _rewrite(path, spoil)


def missing_parameter(path: Path) -> Path:
    def drop(ds: xr.Dataset) -> xr.Dataset:
        del ds.attrs["stellar_teff_k"]
        return ds
    return _rewrite(path, drop)


def _rewrite(path: Path, change: Callable[[xr.Dataset], xr.Dataset]) -> Path:
    ds = xr.open_dataset(path, decode_times=False).load()
    path.unlink()
    change(ds).to_netcdf(path)
    return path


CASES = [
    (not_netcdf, "not a readable NetCDF file"),
    (missing_ta, "no variable for 'ta'"),
    (no_coordinates, "no latitude"),
    (nan_surface_pressure, "surface pressure 'ps' has 1 of"),
    (missing_parameter, "missing parameters ['stellar_teff_k']"),
]


@pytest.mark.parametrize(("spoil", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_file_is_refused_and_the_store_is_unchanged(spoil, message, make_runs, store_dir,
                                                        dask_client) -> None:
    ingest(make_runs(2), store_dir, client=dask_client)
    versions, before = list_versions(store_dir), open_store(store_dir).load()
    good, bad = make_runs(2, start=2)
    spoil(Path(bad))
    with pytest.raises(InputDataError) as info:
        ingest([good, bad], store_dir, client=dask_client)
    assert bad in str(info.value) and message in str(info.value)
    assert list_versions(store_dir) == versions
    after = open_store(store_dir).load()
    assert after.identical(before)


def test_bad_file_can_be_skipped_on_request(make_runs, store_dir, dask_client) -> None:
    good, bad = make_runs(2)
    missing_ta(Path(bad))
    result = ingest([good, bad], store_dir, errors="skip", client=dask_client)
    assert result.added == ["run000"] and list(result.skipped) == [bad]


def test_same_run_id_from_another_file_is_refused(make_runs, store_dir, tmp_path,
                                                  dask_client) -> None:
    (first,) = make_runs(1)
    ingest([first], store_dir, client=dask_client)
    other = tmp_path / "other.nc"
    ds = xr.open_dataset(first, decode_times=False).load()
    (ds.assign(ts=ds["ts"] + 1.0)).to_netcdf(other)
    with pytest.raises(InputDataError, match="run id 'run000' is already taken"):
        ingest([str(other)], store_dir, client=dask_client)
