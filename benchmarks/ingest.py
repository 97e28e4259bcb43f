"""Throughput of ``exocube ingest`` against a plain xarray loop and the raw I/O limit.

Generates N runs (default 200, default grid, 4 phase bins) with the built-in
generator, then measures on the same files, in this order:

- raw limit: read every file's bytes and write the same bytes uncompressed,
  one output file per input (the least any ingest must do);
- plain loop: ``xarray.open_dataset(f).expand_dims(run=[id]).to_zarr(store,
  append_dim="run")`` per file (the first with ``mode="w"``), serially;
- exocube: ``exocube.cubes.ingest`` into a new store on a Dask LocalCluster
  started by ``exocube.parallel.client`` as ``ingest`` starts its own (default 2
  workers, heap-friendly malloc settings). Starting the cluster and importing exocube on
  its workers is excluded, as the others need neither; everything else --
  catalogue migration check, hashing, remapping, statistics, writing, version
  commits (with their ``syncfs``) and catalogue rows -- is timed.

Throughput is input NetCDF megabytes per wall-clock second. The files sit in
the page cache for all three (they were just written). Before each measurement
the dirty pages left by the previous one are flushed (``os.sync``, not timed), so
none pays for another's writeback. The machine is shared with other engineers; its load average is
printed next to the figures.

    .venv/bin/python benchmarks/ingest.py [--runs 200] [--phase-bins 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import xarray as xr

from exocube.config import DaskOptions
from exocube.cubes import ingest, open_store
from exocube.gcm.ensemble import run_ensemble
from exocube.gcm.sampling import sample_runs
from exocube.parallel import client


def raw_limit(files: list[Path], out: Path) -> float:
    out.mkdir()
    start = time.perf_counter()
    for i, path in enumerate(files):
        data = path.read_bytes()
        with open(out / f"{i}.bin", "wb") as fh:
            fh.write(data)
    return time.perf_counter() - start


def plain_loop(files: list[Path], store: Path) -> float:
    warnings.filterwarnings("ignore", message=".*Consolidated metadata.*")
    start = time.perf_counter()
    for i, path in enumerate(files):
        ds = xr.open_dataset(path)
        ds = ds.expand_dims(run=[ds.attrs["run_id"]])
        if i == 0:
            ds.to_zarr(store, mode="w", consolidated=True)
        else:
            ds.to_zarr(store, append_dim="run", consolidated=True)
    return time.perf_counter() - start


def exocube_ingest(files: list[Path], store: Path, workers: int, db: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    opts = DaskOptions(n_workers=workers, threads_per_worker=1)
    with client(options=opts) as dask_client:
        dask_client.run(importlib.import_module, "exocube.cubes.ingest")
        t1 = time.perf_counter()
        ingest([str(f) for f in files], str(store), client=dask_client, database_url=db)
        t2 = time.perf_counter()
    return t2 - t1, t1 - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--phase-bins", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="exocube-bench-ingest-"))
    try:
        report(args.runs, args.phase_bins, args.workers, work)
    finally:
        shutil.rmtree(work)


def report(n: int, phase_bins: int, workers: int, work: Path) -> None:
    db = f"sqlite:///{work / 'catalog.sqlite'}"
    result = run_ensemble(sample_runs(n, seed=0), work / "runs", db, phase_bins=phase_bins)
    files = [r.path for r in result.records]
    mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start "
          "(shared with other engineers)")
    print(f"input: {n} generated runs, {phase_bins} phase bins, {mb:.0f} MB of NetCDF")
    os.sync()
    raw_s = raw_limit(files, work / "raw")
    print(f"raw limit (read + write the same bytes, uncompressed): {mb / raw_s:8.1f} MB/s "
          f"({raw_s:.2f} s)")
    os.sync()
    plain_s = plain_loop(files, work / "plain.zarr")
    print(f"plain loop open_dataset().to_zarr(append_dim='run'):   {mb / plain_s:8.1f} MB/s "
          f"({plain_s:.2f} s)")
    os.sync()
    ours_s, startup = exocube_ingest(files, work / "cube.zarr", workers, db)
    print(f"exocube ingest, {workers} Dask workers:                  {mb / ours_s:8.1f} MB/s "
          f"({ours_s:.2f} s; cluster start-up and module import on the workers, "
          f"{startup:.2f} s, not included)")
    assert open_store(str(work / "cube.zarr")).sizes["run"] == n
    stored = sum(p.stat().st_size for p in (work / "cube.zarr").rglob("*") if p.is_file()) / 1e6
    print(f"store size {stored:.0f} MB (blosc-zstd) for {mb:.0f} MB of input")
    print(f"ratio vs plain loop: {plain_s / ours_s:.2f}x (target >= 2)")
    print(f"ratio vs raw limit:  {raw_s / ours_s:.2f} (target >= 0.5)")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
