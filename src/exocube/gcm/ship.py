"""Ship a finished ExoPlaSim ensemble: one time-mean NetCDF per run, and a manifest.

``ship_ensemble(out, target)`` reads an ensemble directory made by ``exocube simulate
exoplasim`` (its ``ensemble.json``, each run's ``runs/<run_id>/state.json`` and
``<run_id>.nc``) and writes into ``target``:

- ``<run_id>.nc`` for every complete run: the run's output file (its last model year, with
  the planet's parameters, equilibrium diagnostics and ExoPlaSim configuration as global
  attributes) averaged over time to one step, float32 and zlib-compressed. It is an ordinary
  run file: ``exocube ingest`` reads it with no CSV;
- ``MANIFEST.json``: the ensemble id, ExoPlaSim and exocube versions, the equilibrium
  criteria, and per run its status, years run, equilibrium flag and diagnostics, global-mean
  surface temperature, the sha256 of the shipped file (or, for a failed run, the model's
  reason).

Every run must be finished (complete or failed): an ensemble still running is refused,
naming the unfinished runs. Files are written under a temporary name, then renamed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from exocube import __version__
from exocube.errors import InputDataError
from exocube.gcm.exoplasim import RunState
from exocube.gcm.netcdf import sha256_of
from exocube.gcm.status import ENSEMBLE_MANIFEST, read_json, run_state

MANIFEST = "MANIFEST.json"
MANIFEST_KIND = "exocube-shipped-exoplasim-ensemble"


@dataclass(frozen=True)
class ShippedRun:
    """One run of a shipped ensemble, as its manifest records it."""

    run_id: str
    status: str
    years_run: int
    equilibrated: bool | None
    ts_global_mean_k: float | None
    parameters: dict[str, Any]
    file: str | None
    sha256: str | None
    error: str | None


def ship_ensemble(out: Path, target: Path) -> list[ShippedRun]:
    """Write the time means of a finished ensemble in ``out`` into ``target``."""
    manifest = read_json(out / ENSEMBLE_MANIFEST, "the ensemble manifest")
    states = {cfg["row"]["run_id"]: run_state(out, cfg["row"]["run_id"])
              for cfg in manifest["runs"]}
    unfinished = sorted(r for r, s in states.items() if s.status not in ("complete", "failed"))
    if unfinished:
        raise InputDataError(
            f"{out}: {len(unfinished)} of {len(states)} runs are not finished "
            f"({', '.join(unfinished[:8])}{' ...' if len(unfinished) > 8 else ''}); "
            "continue the ensemble first")
    target.mkdir(parents=True, exist_ok=True)
    shipped = [_ship_run(out, target, cfg, states[cfg["row"]["run_id"]])
               for cfg in manifest["runs"]]
    doc = {"kind": MANIFEST_KIND, "ensemble_id": manifest["ensemble_id"],
           "exoplasim": manifest["exoplasim"], "exocube": __version__,
           "criteria": manifest["criteria"], "time_mean": "the last model year of each run",
           "configurations": manifest["runs"], "runs": [vars(r) for r in shipped]}
    _write_atomic(target / MANIFEST, json.dumps(doc, indent=1, sort_keys=True).encode())
    return shipped


def read_manifest(folder: Path) -> list[ShippedRun]:
    """The runs of a shipped ensemble folder, checked against their recorded sha256."""
    doc = read_json(folder / MANIFEST, "the shipped ensemble's manifest")
    if doc.get("kind") != MANIFEST_KIND:
        raise InputDataError(f"{folder / MANIFEST} is not a shipped ExoPlaSim ensemble")
    runs = [ShippedRun(**r) for r in doc["runs"]]
    for run in runs:
        if run.file is not None and sha256_of(folder / run.file) != run.sha256:
            raise InputDataError(f"{folder / run.file} does not match the sha256 its "
                                 "manifest records")
    return runs


def _ship_run(out: Path, target: Path, config: Mapping[str, Any],
              state: RunState) -> ShippedRun:
    run_id = state.run_id
    params = {**config["row"]["params"], "pch4_bar": config["row"]["pch4_bar"],
              "tidally_locked": config["row"]["tidally_locked"]}
    diag = state.diagnostics or {}
    if state.status == "failed":
        return ShippedRun(run_id, "failed", state.years_done, None, None, params, None, None,
                          state.error)
    name = f"{run_id}.nc"
    time_mean(out / name, target / name)
    return ShippedRun(run_id, "complete", state.years_done, bool(diag.get("equilibrated")),
                      diag.get("ts_global_mean_k"), params, name, sha256_of(target / name),
                      None)


def time_mean(source: Path, target: Path) -> None:
    """Average every time-dependent variable of ``source`` to one time step (float32,
    compressed), keeping coordinates and global attributes; temporary name, then rename."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with netCDF4.Dataset(source) as src, netCDF4.Dataset(tmp, "w") as dst:
            _copy_time_mean(src, dst)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_time_mean(src: netCDF4.Dataset, dst: netCDF4.Dataset) -> None:
    steps = len(src.dimensions["time"])
    for name, dim in src.dimensions.items():
        dst.createDimension(name, 1 if name == "time" else len(dim))
    dst.setncatts({k: src.getncattr(k) for k in src.ncattrs()})
    dst.setncattr("time_mean_of", f"{steps} output steps of the run's last model year")
    for name, var in src.variables.items():
        data = var[:]
        floating = data.dtype.kind == "f"
        if floating:  # missing values (masked) become NaN and stay out of the mean
            data = np.ma.filled(np.ma.asarray(data, dtype=np.float64), np.nan)
        if "time" in var.dimensions:
            data = _mean(np.asarray(data), var.dimensions.index("time"))
        kind = np.float32 if floating else data.dtype
        out = dst.createVariable(name, kind, var.dimensions, zlib=True, complevel=4,
                                 fill_value=np.float32(np.nan) if floating else None)
        out.setncatts({k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"})
        out[:] = np.asarray(data).astype(kind)


def _mean(data: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN (NaN where every step is missing), keeping the axis."""
    if data.dtype.kind != "f":
        return data.mean(axis=axis, keepdims=True)
    count = np.sum(~np.isnan(data), axis=axis, keepdims=True)
    total = np.nansum(data, axis=axis, keepdims=True)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
