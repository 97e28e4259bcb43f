"""A local store's root opens with plain ``xarray.open_zarr`` (no exocube) as the latest
version, with the values exocube reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from exocube.cubes import ingest, open_store

READER = """
import json, sys
import numpy as np
import xarray

ds = xarray.open_zarr(sys.argv[1])
assert not [m for m in sys.modules if m.split(".")[0] == "exocube"], "exocube was imported"
np.savez(sys.argv[2], ta=ds["ta"].values, ps=ds["ps"].values, hus=ds["hus"].values,
         radius_earth=ds["radius_earth"].values, ta_mean=ds["ta_mean"].values,
         plev=ds["plev"].values)
print(json.dumps({"runs": [str(r) for r in ds["run"].values],
                  "version_id": ds.attrs["version_id"]}))
"""


def assert_same(plain: xr.Dataset | dict, ours: xr.Dataset) -> None:
    for name in ("ta", "ps", "hus", "radius_earth", "ta_mean", "plev"):
        np.testing.assert_array_equal(np.asarray(plain[name]), ours[name].values, err_msg=name)


def test_plain_xarray_in_a_fresh_process_reads_the_latest_version(
        make_runs, store_dir, dask_client, tmp_path: Path) -> None:
    ingest(make_runs(3), store_dir, client=dask_client)
    out = tmp_path / "plain.npz"
    proc = subprocess.run([sys.executable, "-c", READER, store_dir, str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    ours = open_store(store_dir).load()
    assert doc == {"runs": list(ours["run"].values), "version_id": ours.attrs["version_id"]}
    assert_same(dict(np.load(out)), ours)


def test_the_root_follows_each_ingest_and_links_run_chunks(make_runs, store_dir,
                                                           dask_client) -> None:
    ingest(make_runs(2), store_dir, client=dask_client)
    first = open_store(store_dir).attrs["version_id"]
    ingest(make_runs(2, start=2), store_dir, client=dask_client, commit_every=1)
    ours = open_store(store_dir).load()
    with xr.open_zarr(store_dir) as plain:
        assert plain.attrs["version_id"] == ours.attrs["version_id"] != first
        assert list(plain["run"].values) == list(ours["run"].values)
        assert sorted(ours["run"].values) == ["run000", "run001", "run002", "run003"]
        assert_same(plain.load(), ours)
    manifest = json.loads((Path(store_dir) / "versions" / ours.attrs["version_id"]
                           / "manifest.json").read_text())
    for i, run in enumerate(manifest["runs"]):  # hard links: the view takes no space
        view = os.stat(Path(store_dir) / "ta" / f"c.{i}.0.0.0.0")
        group = os.stat(Path(store_dir) / "runs" / run["key"] / "ta" / "c.0.0.0.0.0")
        assert view.st_ino == group.st_ino
    np.testing.assert_array_equal(open_store(store_dir, version=first)["ta"].values,
                                  ours["ta"].values[:2])  # the old version is unchanged


def test_a_store_without_a_root_view_gets_one_at_the_next_ingest(make_runs, store_dir,
                                                                 dask_client) -> None:
    files = make_runs(2)
    ingest(files, store_dir, client=dask_client)
    (Path(store_dir) / "zarr.json").unlink()  # as a store made before the root view
    result = ingest(files, store_dir, client=dask_client)
    assert result.added == [] and result.version_id is None
    with xr.open_zarr(store_dir) as plain:
        assert_same(plain.load(), open_store(store_dir).load())
