"""Ensembles on a real Dask LocalCluster, recorded in the catalogue (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa
from distributed import get_task_stream

from exocube.catalog import Simulation, session_scope
from exocube.errors import CatalogError, InputDataError
from exocube.gcm.ensemble import run_ensemble
from exocube.gcm.netcdf import GENERATOR_NAME, sha256_of
from exocube.gcm.runs import RunSpec
from exocube.gcm.sampling import sample_runs
from exocube.grid import Grid
from exocube.params import ALL_NAMES

SMALL = Grid.with_levels(nlat=8, nlon=16, nlev=6)


def simulations(url: str) -> dict[str, Simulation]:
    with session_scope(url) as s:
        return {row.run_id: row for row in s.scalars(sa.select(Simulation))}


@pytest.mark.services
def test_ensemble_on_a_dask_cluster_records_every_run(
    catalog_url: str, dask_client, tmp_path: Path
) -> None:
    specs = sample_runs(10, seed=3)
    out = tmp_path / "runs"
    done: list[int] = []
    result = run_ensemble(specs, out, catalog_url, grid=SMALL, client=dask_client,
                          on_progress=done.append)
    assert result.n_generated == 10 and sum(done) == 10
    assert sorted(p.name for p in out.iterdir()) == [f"gen-s3-n10-{i:05d}.nc" for i in range(10)]
    rows = simulations(catalog_url)
    assert set(rows) == {s.run_id for s in specs}
    for spec in specs:
        row = rows[spec.run_id]
        path = out / f"{spec.run_id}.nc"
        assert row.status == "complete" and row.generator == GENERATOR_NAME
        assert row.output_uri == path.resolve().as_uri()
        assert row.sha256 == sha256_of(path)
        assert {n: row.parameters[n] for n in ALL_NAMES if n != "rotation_period_days"} == {
            n: spec.params[n] for n in ALL_NAMES if n != "rotation_period_days"}
        assert row.parameters["tidally_locked"] in (0, 1)
        assert row.parameters["gravity_m_s2"] > 0


@pytest.mark.services
def test_rerun_skips_complete_files_and_keeps_one_row_per_run(
    catalog_url: str, tmp_path: Path
) -> None:
    specs = sample_runs(4, seed=9)
    out = tmp_path / "runs"
    run_ensemble(specs, out, catalog_url, grid=SMALL)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_ensemble(specs, out, catalog_url, grid=SMALL)
    assert again.n_skipped == 4 and again.n_generated == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert len(simulations(catalog_url)) == 4


def test_dask_and_in_process_runs_give_identical_files(
    sqlite_url: str, dask_client, tmp_path: Path
) -> None:
    specs = sample_runs(8, seed=12)
    a = run_ensemble(specs, tmp_path / "a", sqlite_url, grid=SMALL, client=dask_client)
    b = run_ensemble(specs[:5], tmp_path / "b", sqlite_url, grid=SMALL)
    for ra, rb in zip(a.records, b.records, strict=False):
        assert ra.run_id == rb.run_id
        assert ra.path.read_bytes() == rb.path.read_bytes()
    assert simulations(sqlite_url)["gen-s12-n8-00000"].output_uri.endswith(
        "/b/gen-s12-n8-00000.nc")


def test_existing_file_from_other_parameters_is_refused_on_a_worker(
    sqlite_url: str, dask_client, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    run_ensemble(sample_runs(3, seed=1), out, sqlite_url, grid=SMALL)
    other_db = f"sqlite:///{tmp_path / 'other.sqlite'}"
    moved = [RunSpec(s.run_id, {**s.params, "radius_earth": 1.0}) for s in sample_runs(3, 1)]
    specs = moved + sample_runs(9, seed=2)
    with pytest.raises(InputDataError, match=r"gen-s1-n3-0000\d\.nc already exists but has"):
        run_ensemble(specs, out, other_db, grid=SMALL, client=dask_client)


def test_other_grid_in_an_existing_directory_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run_ensemble(sample_runs(2, seed=1), out, sqlite_url, grid=SMALL)
    with pytest.raises(InputDataError, match="grid"):
        run_ensemble(sample_runs(2, seed=1), out, sqlite_url,
                     grid=Grid.with_levels(nlat=10, nlon=16, nlev=6))


@pytest.mark.services
def test_catalogue_conflict_is_refused_before_anything_is_written(
    catalog_url: str, tmp_path: Path
) -> None:
    run_ensemble(sample_runs(3, seed=1), tmp_path / "a", catalog_url, grid=SMALL)
    moved = [RunSpec(s.run_id, {**s.params, "radius_earth": 1.0}) for s in sample_runs(3, 1)]
    with pytest.raises(CatalogError, match="gen-s1-n3-0000"):
        run_ensemble(moved, tmp_path / "b", catalog_url, grid=SMALL)
    assert not (tmp_path / "b").exists()


def test_a_smaller_ensemble_of_the_same_seed_joins_the_catalogue(
    sqlite_url: str, tmp_path: Path
) -> None:
    """``--seed 7 --runs 3`` after ``--seed 7 --runs 6``, in one directory and catalogue."""
    out = tmp_path / "runs"
    run_ensemble(sample_runs(6, seed=7), out, sqlite_url, grid=SMALL)
    three = run_ensemble(sample_runs(3, seed=7), out, sqlite_url, grid=SMALL)
    assert three.n_generated == 3
    assert len(simulations(sqlite_url)) == 9 and len(list(out.glob("*.nc"))) == 9
    again = run_ensemble(sample_runs(3, seed=7), out, sqlite_url, grid=SMALL)
    assert again.n_generated == 0 and again.n_skipped == 3


def test_scheduler_address_reaches_an_existing_cluster(
    sqlite_url: str, dask_client, tmp_path: Path
) -> None:
    specs = sample_runs(3, seed=14)  # fewer than 8: in-process unless a scheduler is named
    with get_task_stream(client=dask_client) as stream:
        result = run_ensemble(specs, tmp_path / "runs", sqlite_url, grid=SMALL,
                              scheduler_address=dask_client.scheduler.address)
    assert result.n_generated == 3
    assert any("generate_batch" in str(task["key"]) for task in stream.data)


def test_a_worker_killed_mid_run_loses_no_run(
    sqlite_url: str, dask_client, tmp_path: Path
) -> None:
    specs = sample_runs(24, seed=15)
    pids = dask_client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed: list[int] = []

    def kill_once(_n: int) -> None:
        if not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    result = run_ensemble(specs, tmp_path / "runs", sqlite_url, grid=SMALL, client=dask_client,
                          on_progress=kill_once)
    assert killed
    assert [r.run_id for r in result.records] == [s.run_id for s in specs]
    assert len(simulations(sqlite_url)) == 24
    reference = run_ensemble(specs[:4], tmp_path / "ref", sqlite_url, grid=SMALL)
    for rec in reference.records:
        assert (tmp_path / "runs" / rec.path.name).read_bytes() == rec.path.read_bytes()
    dask_client.wait_for_workers(2, timeout=60)
