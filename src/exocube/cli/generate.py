"""``exocube generate``: an ensemble of built-in generator runs, one NetCDF file each."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from exocube.config import get_settings
from exocube.gcm import EnsembleResult, run_ensemble, runs_from
from exocube.grid import Grid


class OnInvalid(enum.StrEnum):
    raise_ = "raise"
    skip = "skip"


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields the callback that advances it."""
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def summary(result: EnsembleResult) -> str:
    """One line saying what was generated and where."""
    return (f"{result.n_generated} run(s) generated, {result.n_skipped} already complete, "
            f"in {result.out_dir}; recorded in the catalogue")


def generate(
    out: Annotated[Path, typer.Option("--out", help="Directory for the <run_id>.nc files.")],
    runs: Annotated[int | None, typer.Option(
        "--runs", "-n", min=1,
        help="Number of runs (Latin hypercube); with --from-csv, use at most this many rows.",
    )] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the Latin hypercube.")] = 0,
    from_csv: Annotated[Path | None, typer.Option(
        "--from-csv", help="Take parameters from CSV rows instead (exocube or NASA pscomppars "
        "column names).",
    )] = None,
    on_invalid: Annotated[OnInvalid, typer.Option(
        "--on-invalid",
        help="A CSV row with an invalid value: stop with an error (raise) or skip it.",
    )] = OnInvalid.raise_,
    phase_bins: Annotated[int, typer.Option(
        "--phase-bins", min=1, help="Time steps: 1 = time mean, K = K phase bins.")] = 1,
    nlat: Annotated[int, typer.Option("--nlat", help="Latitudes of the grid.")] = 32,
    nlon: Annotated[int, typer.Option("--nlon", help="Longitudes of the grid.")] = 64,
    nlev: Annotated[int, typer.Option(
        "--nlev", help="Pressure levels (2 bar to 1 hPa, log-spaced).")] = 20,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="Dask scheduler address (default: a local cluster).")] = None,
) -> None:
    """Generate an ensemble of planet climates with the built-in generator."""
    grid = Grid.with_levels(nlat=nlat, nlon=nlon, nlev=nlev)
    specs = runs_from(runs, seed, from_csv, on_invalid=on_invalid.value)
    settings = get_settings()
    with progress_bar(len(specs), "generating") as advance:
        result = run_ensemble(specs, out, settings.database_url, grid=grid,
                              phase_bins=phase_bins, scheduler_address=scheduler,
                              on_progress=advance)
    print(summary(result))
