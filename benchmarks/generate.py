"""Throughput of ``exocube generate`` against plain ``xarray.Dataset.to_netcdf``.

Generates N runs (default 200) at the default grid through a Dask LocalCluster
exactly as ``exocube generate`` does (physics, NetCDF write, sha256, catalogue
record), and reports runs/s and MB written/s. In the same process it then
measures, serially on the same runs' arrays:

- ``generate()``: the physics alone,
- ``write_run()``: exocube's NetCDF writer,
- ``xarray.Dataset.to_netcdf``: the baseline writer (default engine, no options).

The ratio ensemble-time / baseline-write-time shows how much the generator
costs over merely writing its arrays with xarray. The machine is shared with
other engineers; the load average is printed next to the figures.

    .venv/bin/python benchmarks/generate.py [--runs 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import xarray as xr

from exocube.gcm.ensemble import run_ensemble
from exocube.gcm.generator import Climate, generate
from exocube.gcm.netcdf import global_attrs, write_run
from exocube.gcm.sampling import sample_runs
from exocube.grid import CF_META, DEFAULT_GRID, FIELDS_3D
from exocube.parallel import client
from exocube.planet import derive


def to_xarray(climate: Climate, run_id: str) -> xr.Dataset:
    """The same arrays and attributes as a plain xarray Dataset."""
    grid = climate.grid
    coords = {"time": climate.time_days, "plev": grid.plev_array, "lat": grid.lat,
              "lon": grid.lon}
    data = {}
    for name, values in climate.fields.items():
        dims = ("time", "plev", "lat", "lon") if name in FIELDS_3D else ("time", "lat", "lon")
        standard_name, units = CF_META[name]
        data[name] = (dims, values, {"standard_name": standard_name, "units": units})
    return xr.Dataset(data, coords=coords, attrs=global_attrs(climate, run_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="exocube-bench-"))
    try:
        report(args.runs, args.workers, work)
    finally:
        shutil.rmtree(work)


def report(n: int, workers: int, work: Path) -> None:
    specs = sample_runs(n, seed=0)
    db = f"sqlite:///{work / 'catalog.sqlite'}"
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start "
          "(shared with other engineers)")
    print(f"grid: {DEFAULT_GRID.nlat} lat x {DEFAULT_GRID.nlon} lon x {len(DEFAULT_GRID.plev)} "
          f"levels, 1 time step; {n} runs")

    start = time.perf_counter()
    os.environ["EXOCUBE_DASK__N_WORKERS"] = str(workers)
    with client() as dask_client:
        ready = time.perf_counter()
        result = run_ensemble(specs, work / "ensemble", db, client=dask_client)
        done = time.perf_counter()
    mb = result.bytes_written / 1e6
    ensemble_s = done - ready
    print(f"ensemble on Dask LocalCluster ({workers} workers): {n / ensemble_s:.1f} runs/s, "
          f"{mb / ensemble_s:.1f} MB/s written ({mb:.0f} MB in {ensemble_s:.2f} s; cluster "
          f"start-up {ready - start:.2f} s not included)")

    planets = [derive(s.params) for s in specs]
    t0 = time.perf_counter()
    climates = [generate(p) for p in planets]
    t1 = time.perf_counter()
    for spec, climate in zip(specs, climates, strict=True):
        write_run(climate, work / f"own-{spec.run_id}.nc", spec.run_id)
    t2 = time.perf_counter()
    datasets = [to_xarray(c, s.run_id) for s, c in zip(specs, climates, strict=True)]
    t3 = time.perf_counter()
    for spec, ds in zip(specs, datasets, strict=True):
        ds.to_netcdf(work / f"xr-{spec.run_id}.nc")
    t4 = time.perf_counter()
    xr_mb = sum((work / f"xr-{s.run_id}.nc").stat().st_size for s in specs) / 1e6
    print(f"serial, 1 process: generate() {1e3 * (t1 - t0) / n:.1f} ms/run, "
          f"write_run() {1e3 * (t2 - t1) / n:.1f} ms/run")
    print(f"baseline xarray.Dataset.to_netcdf, serial: {n / (t4 - t3):.1f} files/s, "
          f"{xr_mb / (t4 - t3):.1f} MB/s ({1e3 * (t4 - t3) / n:.1f} ms/file)")
    print(f"ratio: ensemble time / baseline write time = {ensemble_s / (t4 - t3):.2f} "
          f"(exocube write_run / xarray write = {(t2 - t1) / (t4 - t3):.2f})")


if __name__ == "__main__":
    main()
