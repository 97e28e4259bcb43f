"""An ingest killed with SIGKILL leaves an openable store; re-running completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from exocube.cubes import ingest, list_versions, open_store

INGEST = ("import sys; from exocube.cubes.ingest import ingest; "
          "ingest(sys.argv[2:], sys.argv[1], commit_every=1)")


def test_sigkill_mid_ingest_then_rerun_completes(make_runs, store_dir, dask_client) -> None:
    files = make_runs(12)
    env = {**os.environ, "EXOCUBE_DASK__N_WORKERS": "1", "EXOCUBE_DASK__MEMORY_LIMIT": "1GiB"}
    proc = subprocess.Popen(
        [sys.executable, "-c", INGEST, store_dir, *files],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    latest = Path(store_dir) / "latest.json"
    deadline = time.monotonic() + 120
    while not latest.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the ingest and its Dask workers
    proc.wait()
    assert latest.exists(), proc.stderr.read().decode()[-2000:] if proc.stderr else ""

    crashed = open_store(store_dir)
    committed = list(crashed["run"].values)
    assert 1 <= len(committed) < 12 and len(set(committed)) == len(committed)
    crashed.load()  # every committed run reads back in full

    result = ingest(files, store_dir, client=dask_client)
    ds = open_store(store_dir)
    runs = sorted(ds["run"].values)
    assert runs == [f"run{i:03d}" for i in range(12)]
    assert sorted(result.added) == sorted(set(runs) - set(committed))
    assert list_versions(store_dir)[-1] == result.version_id
    for path in files[::5]:
        src = xr.open_dataset(path)
        np.testing.assert_array_equal(ds["ta"].sel(run=src.attrs["run_id"]).values,
                                      src["ta"].values)
