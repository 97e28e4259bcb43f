"""A finished ExoPlaSim ensemble is shipped as time-mean run files and a manifest
(``exocube simulate ship``), and the shipped files ingest with no CSV: the round trip
ensemble directory -> shipped folder -> cube store, with the failed run recorded and an
unfinished ensemble refused."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from builders import PARAMS, exoplasim_file
from test_real_domain import EQUILIBRATED, SAME_GRID, cli

from exocube.cubes import open_store
from exocube.errors import InputDataError
from exocube.gcm import ensemble_status, markdown_table, read_manifest, ship_ensemble
from exocube.gcm.equilibrium import DEFAULT_CRITERIA
from exocube.gcm.exoplasim import RunState, write_output
from exocube.gcm.exoplasim_config import RunLength, design_row
from exocube.gcm.exoplasim_ensemble import claim_directory, run_configs

PLANET = {k: str(v) for k, v in PARAMS.items()}
RUNS = {"warm": {"surface_pressure_bar": "2.0"}, "cool": {"insolation_earth": "0.6"},
        "broken": {"surface_pressure_bar": "0.3"}}


def ensemble_dir(tmp_path: Path, unfinished: bool = False) -> Path:
    """An ensemble directory as the driver leaves it: two complete runs (3 output steps each)
    and one failed run (or, with ``unfinished``, one still running)."""
    out = tmp_path / "ens"
    rows = [design_row({"run_id": r, **PLANET, **cols}, r) for r, cols in RUNS.items()]
    configs = run_configs(rows, RunLength(years=3))
    claim_directory(out, configs, DEFAULT_CRITERIA)
    for seed, config in enumerate(configs):
        run_id = config.row.run_id
        rdir = out / "runs" / run_id
        rdir.mkdir(parents=True)
        state = RunState(run_id=run_id, config_digest=config.digest(), years_target=3,
                         years_done=3, status="complete", diagnostics=EQUILIBRATED)
        if run_id == "broken":
            state.status, state.years_done = ("running", 1) if unfinished else ("failed", 1)
            state.error, state.diagnostics = "Program received signal SIGFPE", None
        else:
            raw = exoplasim_file(tmp_path / f"{run_id}.raw.nc", ntime=3, seed=seed,
                                 surface_pressure_bar=float(rows[seed].params[
                                     "surface_pressure_bar"]))
            write_output(raw, out / f"{run_id}.nc", config, state, EQUILIBRATED)
        state.save(rdir / "state.json")
    return out


def test_ship_time_means_and_manifest_then_ingest(tmp_path, dask_client, catalog_url,
                                                  capsys) -> None:
    out, shipped = ensemble_dir(tmp_path), tmp_path / "shipped"
    assert cli("simulate", "ship", "--out", str(out), "--to", str(shipped)) == 0
    printed = capsys.readouterr().out
    assert "2 of 3 runs shipped" in printed
    assert "broken: failed, 1 years: Program received signal SIGFPE" in printed
    runs = {r.run_id: r for r in read_manifest(shipped)}
    assert runs["broken"].status == "failed" and runs["broken"].file is None
    assert runs["warm"].equilibrated is True and runs["warm"].years_run == 3
    assert runs["warm"].parameters["surface_pressure_bar"] == 2.0
    for run_id in ("warm", "cool"):
        with netCDF4.Dataset(out / f"{run_id}.nc") as src, \
                netCDF4.Dataset(shipped / f"{run_id}.nc") as dst:
            assert len(dst.dimensions["time"]) == 1 and len(src.dimensions["time"]) == 3
            for var in ("ta", "ts", "zg", "ps"):
                mean = np.ma.filled(src[var][:].astype(np.float64), np.nan).mean(axis=0)
                np.testing.assert_allclose(dst[var][0], mean, rtol=1e-6, equal_nan=True)
            assert dst.getncattr("run_id") == run_id
            assert dst.getncattr("surface_pressure_bar") == src.getncattr(
                "surface_pressure_bar")
            assert json.loads(dst.getncattr("exoplasim_configure")) == json.loads(
                src.getncattr("exoplasim_configure"))
    files = [str(shipped / r.file) for r in runs.values() if r.file]
    assert cli("ingest", *files, "--store", str(tmp_path / "s.zarr"), "--scheduler",
               dask_client.scheduler.address, *SAME_GRID) == 0
    ds = open_store(str(tmp_path / "s.zarr"))
    assert sorted(ds["run"].values) == ["cool", "warm"]
    assert float(ds.sel(run="warm")["surface_pressure_bar"]) == 2.0
    assert float(ds.sel(run="cool")["insolation_earth"]) == 0.6


def test_unfinished_ensemble_is_refused_naming_the_run(tmp_path) -> None:
    out = ensemble_dir(tmp_path, unfinished=True)
    with pytest.raises(InputDataError, match=r"1 of 3 runs are not finished \(broken\)"):
        ship_ensemble(out, tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()


def test_a_shipped_file_edited_afterwards_is_refused(tmp_path) -> None:
    shipped = tmp_path / "shipped"
    ship_ensemble(ensemble_dir(tmp_path), shipped)
    with netCDF4.Dataset(shipped / "warm.nc", "a") as ds:
        ds["ts"][0, 0, 0] = 1.0
    with pytest.raises(InputDataError, match=r"warm\.nc does not match the sha256"):
        read_manifest(shipped)


def test_status_of_a_running_ensemble_reads_every_run_and_writes_nothing(tmp_path,
                                                                          capsys) -> None:
    out = ensemble_dir(tmp_path, unfinished=True)
    (out / "runs" / "cool" / "state.json").unlink()  # not started yet
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*"))
    rows = {r.run_id: r for r in ensemble_status(out)}
    assert list(rows) == list(RUNS)
    warm, cool, broken = rows["warm"], rows["cool"], rows["broken"]
    assert (warm.status, warm.years_done, warm.years_target) == ("complete", 3, 3)
    assert warm.equilibrated is True and warm.ts_global_mean_k == 288.0
    assert warm.surface_pressure_bar == 2.0 and cool.insolation_earth == 0.6
    assert (cool.status, cool.years_done, cool.years_target) == ("not started", 0, 3)
    assert broken.status == "running" and broken.equilibrated is None
    assert broken.ts_global_mean_k is None
    table = markdown_table(list(rows.values())).splitlines()
    assert len(table) == 2 + len(RUNS)
    assert all(line.count("|") == table[0].count("|") for line in table)
    assert "| warm | no |" in table[2] and "| complete | 3 of 3 | yes | 288.0 | 0.20 |" in table[2]
    assert cli("simulate", "status", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "cool: not started, 0 of 3 years" in printed
    assert "3 runs: 1 complete, 1 not started, 1 running" in printed
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*")) == before


def test_status_of_a_directory_without_an_ensemble_names_the_file(tmp_path) -> None:
    with pytest.raises(InputDataError, match=r"ensemble manifest .*ensemble\.json is unreadable"):
        ensemble_status(tmp_path)
