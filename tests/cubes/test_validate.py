"""Validation: schema, per-run scores in the catalogue, quarantine, table and JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import xarray as xr

from exocube.catalog import RunQuality, session_scope
from exocube.cubes import ingest, open_store, quarantined_runs, validate_store
from exocube.cubes.validate import check_run, schema_problems


def spoil(path: str, **changes: float) -> None:
    """Scale variables of a file in place (e.g. zg=1.3 breaks hydrostatic balance)."""
    ds = xr.open_dataset(path, decode_times=False).load()
    for name, factor in changes.items():
        ds[name] = ds[name] * np.float32(factor)
    Path(path).unlink()
    ds.to_netcdf(path)


def test_good_runs_score_high_and_broken_ones_are_quarantined(make_runs, store_dir,
                                                              dask_client, catalog_url) -> None:
    files = make_runs(3)
    spoil(files[1], zg=1.3)
    spoil(files[2], hus=40.0)
    ingest(files, store_dir, client=dask_client)
    report = validate_store(store_dir)
    scores = {r.run_id: r for r in report.runs}
    assert scores["run000"].score > 0.99 and not scores["run000"].quarantined
    assert scores["run001"].quarantined
    assert any("hypsometric" in reason for reason in scores["run001"].reasons)
    assert scores["run002"].quarantined
    assert any("q_sat" in reason for reason in scores["run002"].reasons)
    assert report.schema_problems == []
    assert quarantined_runs(store_dir) == {"run001", "run002"}
    with session_scope(catalog_url) as session:
        rows = session.scalars(sa.select(RunQuality).order_by(RunQuality.run_id)).all()
        assert [(r.run_id, r.quarantined) for r in rows] == [
            ("run000", False), ("run001", True), ("run002", True)]
    # runs are immutable: their scores still count in a later version
    ingest(make_runs(1, start=3), store_dir, client=dask_client)
    assert quarantined_runs(store_dir) == {"run001", "run002"}


def test_schema_problems_are_named(make_runs, store_dir, dask_client) -> None:
    ingest(make_runs(1), store_dir, client=dask_client)
    ds = open_store(store_dir)
    assert schema_problems(ds) == []
    broken = ds.isel(lat=slice(None, None, -1))
    broken["ta"].attrs["units"] = "degC"
    problems = schema_problems(broken)
    assert "coordinate lat is not in canonical order/range" in problems
    assert "ta units 'degC', expected 'K'" in problems


def test_nan_above_ground_counts_and_model_top_is_reported(make_runs, store_dir,
                                                           dask_client) -> None:
    ingest(make_runs(1), store_dir, client=dask_client)
    run = open_store(store_dir).isel(run=0).load()
    metrics, _ = check_run(run)
    assert metrics["nonfinite"] == 0.0
    hole = run.copy(deep=True)
    hole["ua"][0, 4, 3, 3] = np.nan  # an isolated hole above ground
    assert check_run(hole)[0]["ua_nonfinite"] > 0
    top = run.copy(deep=True)
    for name in ("ta", "ua", "va", "hus", "zg"):
        top[name][:, -2:] = np.nan  # the source model stopped below the store's top
    metrics, reasons = check_run(top)
    assert metrics["levels_above_source_top"] == 2 and metrics["nonfinite"] == 0.0
    assert any("above the source model top" in r for r in reasons)


def test_cli_prints_a_table_and_writes_json(make_runs, store_dir, dask_client, tmp_path,
                                            capsys) -> None:
    from exocube.cli import main

    ingest(make_runs(2), store_dir, client=dask_client)
    out = tmp_path / "report.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", store_dir, "--report", str(out)])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "run000" in printed and "0 quarantined" in printed
    doc = json.loads(out.read_text())
    assert [r["run_id"] for r in doc["runs"]] == ["run000", "run001"]
    assert doc["runs"][0]["score"] == pytest.approx(1.0, abs=0.01)


def test_a_store_reads_on_a_fresh_home_without_db_upgrade(make_runs, store_dir, dask_client,
                                                          tmp_path: Path,
                                                          exocube_home: Path) -> None:
    """The store was made elsewhere (its catalogue is not this home's): reading it on a
    fresh home creates and migrates the home's default catalogue on first use."""
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    ingest(make_runs(2), store_dir, client=dask_client, database_url=elsewhere)
    validate_store(store_dir, database_url=elsewhere)
    assert not (exocube_home / "catalog.sqlite").exists()
    assert quarantined_runs(store_dir) == set()  # this home's catalogue has no scores
    assert (exocube_home / "catalog.sqlite").is_file()
