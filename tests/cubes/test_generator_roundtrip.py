"""The built-in generator's NetCDF -> store -> the same values on the canonical grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from exocube.cubes import ingest, open_store, validate_store
from exocube.gcm.runs import generate_one
from exocube.gcm.sampling import sample_runs
from exocube.grid import FIELDS_2D, FIELDS_3D, Grid
from exocube.params import ALL_NAMES

GRID = Grid.with_levels(nlat=8, nlon=16, nlev=10)


def test_generator_files_round_trip(tmp_path: Path, dask_client) -> None:
    records = [generate_one(spec, tmp_path, GRID, phase_bins=2) for spec in sample_runs(3, 7)]
    store = str(tmp_path / "cube.zarr")
    ingest([str(r.path) for r in records], store, client=dask_client)
    ds = open_store(store)
    assert ds.sizes == {"run": 3, "time": 2, "plev": 10, "lat": 8, "lon": 16}
    np.testing.assert_allclose(ds["plev"].values, GRID.plev_array)
    np.testing.assert_allclose(ds["lat"].values, GRID.lat)
    for rec in records:
        src = xr.open_dataset(rec.path)
        run = ds.sel(run=rec.run_id).load()
        for name in FIELDS_3D + FIELDS_2D:
            np.testing.assert_allclose(run[name].values, src[name].values, rtol=1e-7,
                                       equal_nan=True)
        for name in (*ALL_NAMES, "gravity_m_s2", "tidally_locked"):
            assert float(run[name]) == pytest.approx(float(src.attrs[name]), rel=1e-12)
    report = validate_store(store)
    assert report.quarantined == [] and report.schema_problems == []
    assert min(r.score for r in report.runs) > 0.95
