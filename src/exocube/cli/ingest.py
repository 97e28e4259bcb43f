"""``exocube ingest`` and ``exocube validate``: build and check a cube store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from exocube import parallel
from exocube.cubes import StoreReport, validate_store
from exocube.cubes import ingest as ingest_files
from exocube.errors import InputDataError
from exocube.grid import LEVELS_SYNTAX, Grid, parse_levels


def ingest(
    files: Annotated[list[str], typer.Argument(help="NetCDF files or globs, one run each.")],
    store: str = typer.Option(..., "--store", help="Store URL: a path or s3://bucket/prefix."),
    time_mean_last: int | None = typer.Option(
        None, "--time-mean-last", help="Keep the mean of the last N time steps (default: all)."),
    source: str = typer.Option("auto", help="Source format: auto, cf, exoplasim, rocke3d."),
    params: str | None = typer.Option(
        None, "--params", help="CSV of run parameters, one row per file: a 'file' column "
        "(path relative to the CSV or here, or file name) or a 'run_id' column."),
    nlat: int | None = typer.Option(None, help="New store: latitudes (default: from the files)."),
    nlon: int | None = typer.Option(None, help="New store: longitudes."),
    nlev: int | None = typer.Option(
        None, help="New store: number of pressure levels, log-spaced from 2 bar to 1 hPa."),
    levels: str | None = typer.Option(
        None, "--levels", help=f"New store: its pressure levels, as {LEVELS_SYNTAX}. Default: the "
        "ingest.levels setting, else the first file's levels, else log:2e5:1e2:20. A run's "
        "values below its surface or above its model top are NaN (masked), not refused."),
    commit_every: int = typer.Option(256, help="Commit a version every N new runs."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unusable files, report them."),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address (default: local)."),
) -> None:
    """Ingest GCM NetCDF files into a versioned cube store."""
    if nlev and levels:
        raise InputDataError(f"--nlev {nlev} and --levels {levels!r} both set the pressure "
                             "levels; give one of them")
    plev = parse_levels(levels) if levels else None
    grid = None
    if nlat or nlon or nlev:
        grid = Grid.with_levels(nlat or 32, nlon or 64, nlev or 20)
    with parallel.client(scheduler) as client:
        result = ingest_files(
            files, store, time_mean_last=time_mean_last, grid=grid, levels=plev, source=source,
            params_csv=params, commit_every=commit_every,
            errors="skip" if skip_bad else "raise", client=client, progress=True)
    print(f"store {result.store}: {len(result.added)} runs added, "
          f"{len(result.unchanged)} already present, {len(result.skipped)} skipped")
    for path, reason in result.skipped.items():
        print(f"  skipped {path}: {reason}")
    print(f"version {result.version_id or '(unchanged)'}")


def validate(
    store: str = typer.Argument(..., help="Store URL: a path or s3://bucket/prefix."),
    version: str | None = typer.Option(None, help="Version id (default: latest)."),
    threshold: float = typer.Option(0.9, help="Quarantine runs scoring below this."),
    report: Annotated[Path | None, typer.Option(help="Write the JSON report to this file.")] = None,
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report, not a table."),
) -> None:
    """Check a store version, score every run, quarantine failing runs."""
    result = validate_store(store, version, threshold=threshold)
    doc = result.to_json()
    if report is not None:
        report.write_text(json.dumps(doc, indent=1))
    if as_json:
        print(json.dumps(doc, indent=1))
    else:
        _print_table(result)
    if result.schema_problems:
        raise typer.Exit(code=1)


def _print_table(result: StoreReport) -> None:
    table = Table(title=f"{result.store} version {result.version_id}")
    for col in ("run", "score", "quarantined", "reasons"):
        table.add_column(col)
    for r in result.runs:
        table.add_row(r.run_id, f"{r.score:.3f}", "yes" if r.quarantined else "",
                      "; ".join(r.reasons))
    console = Console()
    console.print(table)
    for problem in result.schema_problems:
        console.print(f"schema problem: {problem}")
    console.print(f"{len(result.runs)} runs, {len(result.quarantined)} quarantined "
                  f"(threshold {result.threshold})")
