"""The store on S3 (a moto server on 127.0.0.1): ingest, append, named versions, validate."""

from __future__ import annotations

import numpy as np
import xarray as xr

from exocube import parallel
from exocube.config import DaskOptions
from exocube.cubes import ingest, list_versions, open_store, quarantined_runs, validate_store


def local(da: xr.DataArray) -> np.ndarray:
    """Read in this process: the session's Dask workers (the default scheduler once a
    distributed client exists) started before the S3 credentials were set."""
    return da.compute(scheduler="threads").values


def test_s3_store_with_named_versions(make_runs, s3_bucket) -> None:
    url = f"s3://{s3_bucket}/cubes/demo"
    files = make_runs(3)
    with parallel.client(options=DaskOptions(n_workers=1, memory_limit="1GiB")) as client:
        v1 = ingest(files[:2], url, client=client).version_id
        v2 = ingest(files, url, client=client).version_id
        again = ingest(files, url, client=client)
    assert again.version_id is None and len(again.unchanged) == 3
    assert list_versions(url) == [v1, v2]
    old = open_store(url, version=v1)
    assert list(old["run"].values) == ["run000", "run001"]
    assert old.attrs["version_id"] == v1
    latest = open_store(url)
    assert list(latest["run"].values) == ["run000", "run001", "run002"]
    for path in files:
        src = xr.open_dataset(path)
        np.testing.assert_array_equal(local(latest["zg"].sel(run=src.attrs["run_id"])),
                                      src["zg"].values)
    np.testing.assert_array_equal(local(old["ta"]), local(latest["ta"].isel(run=slice(0, 2))))
    report = validate_store(url, v1)
    assert [r.run_id for r in report.runs] == ["run000", "run001"]
    assert quarantined_runs(url, v1) == set()
