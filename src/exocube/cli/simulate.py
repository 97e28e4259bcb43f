"""``exocube simulate exoplasim|status|ship``: an ExoPlaSim ensemble from a design CSV,
where it stands, and its shipped time means."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from exocube import parallel
from exocube.config import get_settings
from exocube.gcm import (
    RESOLUTIONS,
    EquilibriumCriteria,
    ExoPlaSimEnsembleResult,
    RunLength,
    RunOutcome,
    ensemble_status,
    markdown_table,
    plan_ensemble,
    read_design,
    run_plan,
    ship_ensemble,
)

app = typer.Typer(help="Run a real GCM ensemble.", no_args_is_help=True)


def _print_outcome(outcome: RunOutcome) -> None:
    if outcome.status == "failed":
        print(f"{outcome.run_id}: failed after {outcome.years_done} years: {outcome.error}")
        return
    diag = outcome.diagnostics or {}
    flag = "equilibrated" if diag.get("equilibrated") else "not equilibrated"
    print(f"{outcome.run_id}: {outcome.status}, {outcome.years_done} years, {flag} "
          f"(TOA net {diag.get('toa_net_flux_w_m2', float('nan')):.2f} W m-2, ts drift "
          f"{diag.get('ts_drift_k_per_year', float('nan')):.3f} K/yr), {outcome.output}")


def _summary(result: ExoPlaSimEnsembleResult) -> str:
    done = result.with_status("complete")
    skipped = sum(not o.ran for o in result.outcomes)
    return (f"ensemble {result.ensemble_id} in {result.out_dir}: {len(done)} complete, "
            f"{len(result.with_status('failed'))} failed ({skipped} were already finished); "
            "recorded in the catalogue")


@app.command()
def exoplasim(
    design: Annotated[Path, typer.Option("--design", help="Design CSV: run_id and planet "
                                         "parameters, one run per row (docs/gcm.md).")],
    out: Annotated[Path, typer.Option("--out", help="Ensemble directory (created; re-run "
                                      "the same command to continue it).")],
    years: Annotated[int, typer.Option("--years", min=1, help="Model years per run (the cap "
                                       "with --min-years).")] = 10,
    min_years: Annotated[int | None, typer.Option(
        "--min-years", min=2, help="Stop a run early once it has run this many years and is "
        "equilibrated.")] = None,
    resolution: Annotated[str, typer.Option("--resolution", help=f"One of {RESOLUTIONS}.")
                          ] = "T21",
    cluster: Annotated[str, typer.Option(
        "--cluster", help="local (Dask LocalCluster), slurm (one SLURM job per worker) or a "
        "Dask scheduler address.")] = "local",
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Local workers (runs at a time); default from settings.")
    ] = None,
    ncpus: Annotated[int, typer.Option("--ncpus", min=1, help="MPI processes per run.")] = 1,
    year_days: Annotated[float | None, typer.Option(
        "--year-days", help="Length of one model year (restart segment) in days; default: "
        "the orbital year of a rotating planet, 360 for a locked one.")] = None,
    write_days: Annotated[float, typer.Option(
        "--write-days", help="ExoPlaSim output interval in days.")] = 5.0,
    times: Annotated[int, typer.Option(
        "--times", min=1, help="Time steps per post-processed year (12 = monthly).")] = 12,
    max_toa: Annotated[float, typer.Option(
        "--max-toa-imbalance", help="Equilibrated: |TOA net flux| at most this [W m-2].")
    ] = 1.0,
    max_drift: Annotated[float, typer.Option(
        "--max-ts-drift", help="Equilibrated: |global ts drift| at most this [K/yr].")] = 0.1,
    slurm_jobs: Annotated[int, typer.Option("--slurm-jobs", min=1, help="SLURM worker jobs.")
                          ] = 2,
    slurm_partition: Annotated[str | None, typer.Option("--slurm-partition")] = None,
    slurm_account: Annotated[str | None, typer.Option("--slurm-account")] = None,
    slurm_walltime: Annotated[str, typer.Option("--slurm-walltime")] = "24:00:00",
    slurm_memory: Annotated[str, typer.Option("--slurm-memory")] = "2GiB",
) -> None:
    """Run an ExoPlaSim ensemble over a design CSV, resumably, and catalogue every run."""
    rows = read_design(design)
    length = RunLength(years=years, year_days=year_days, write_days=write_days, times=times,
                       min_years=min_years)
    criteria = EquilibriumCriteria(max_toa, max_drift)
    slurm = parallel.SlurmOptions(
        jobs=slurm_jobs, cores=ncpus, memory=slurm_memory, walltime=slurm_walltime,
        partition=slurm_partition, account=slurm_account,
        log_directory=str((out / "slurm-logs").resolve()))
    plan = plan_ensemble(rows, out, get_settings().database_url, length=length,
                         resolution=resolution, ncpus=ncpus, criteria=criteria)
    with parallel.cluster_client(cluster, n_workers=workers, slurm=slurm) as client:
        result = run_plan(plan, client, on_outcome=_print_outcome)
    print(_summary(result))
    sys.stdout.flush()
    if result.with_status("failed"):
        raise typer.Exit(code=2)


@app.command()
def ship(
    out: Annotated[Path, typer.Option("--out", help="A finished ensemble directory (every "
                                      "run complete or failed).")],
    to: Annotated[Path, typer.Option("--to", help="Folder for the time-mean run files and "
                                     "MANIFEST.json.")],
) -> None:
    """Write a finished ensemble's time-mean run files and its manifest (docs/gcm.md)."""
    runs = ship_ensemble(out, to)
    for run in runs:
        print(_run_line(f"{run.run_id}: {run.status}, {run.years_run} years",
                        run.equilibrated, run.ts_global_mean_k, run.error))
    print(f"{sum(r.status == 'complete' for r in runs)} of {len(runs)} runs shipped in {to}")


@app.command()
def status(
    out: Annotated[Path, typer.Option("--out", help="An ensemble directory (finished or "
                                      "still running; nothing is written).")],
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown table of "
                                           "docs/gcm.md instead of one line per run.")] = False,
) -> None:
    """Where an ensemble stands: each run's planet, years, status and equilibrium."""
    rows = ensemble_status(out)
    if markdown:
        print(markdown_table(rows))
    else:
        for r in rows:
            print(_run_line(f"{r.run_id}: {r.status}, {r.years_done} of {r.years_target} years",
                            r.equilibrated, r.ts_global_mean_k, r.error))
    counts = {s: sum(r.status == s for r in rows) for s in sorted({r.status for r in rows})}
    print(f"{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f"; {sum(r.model_hours for r in rows):.1f} model hours so far")


def _run_line(head: str, equilibrated: bool | None, ts_k: float | None,
              error: str | None) -> str:
    """One run's line: status and years, then its equilibrium flag, ts and error if any."""
    if equilibrated is not None:
        head += ", equilibrated" if equilibrated else ", not equilibrated"
    if ts_k is not None:
        head += f", ts {ts_k:.1f} K"
    return head + (f": {error}" if error else "")
