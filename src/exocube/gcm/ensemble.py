"""Generate an ensemble of runs in parallel and record each in the catalogue.

Runs are grouped into batches and mapped over a Dask client (a LocalCluster
from :func:`exocube.parallel.client` unless a client or scheduler address is
given); fewer than :data:`IN_PROCESS_MAX` runs are generated in this process.
A run whose file already exists is skipped after checking that the file was
made from the same parameters, grid and phase bins. Each finished batch is
recorded in the ``simulations`` table in one transaction.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from distributed import Client, as_completed
from sqlalchemy import select

from exocube import __version__, parallel
from exocube.catalog import Simulation, session_scope, upgrade
from exocube.errors import CatalogError, InputDataError
from exocube.gcm.netcdf import GENERATOR_NAME, GENERATOR_VERSION
from exocube.gcm.runs import (
    RunRecord,
    RunSpec,
    catalogue_parameters,
    generate_batch,
    generate_one,
)
from exocube.grid import DEFAULT_GRID, Grid
from exocube.params import ALL_NAMES, OPTIONAL_DEFAULTS
from exocube.planet import derive

log = logging.getLogger(__name__)

IN_PROCESS_MAX = 8
CONFLICT_FIX = ("a run id names one parameter vector: rename that planet in the CSV, or "
                "remove that simulation row (or use another catalogue, EXOCUBE_DATABASE_URL)")
TASKS_PER_THREAD = 4


@dataclass(frozen=True)
class EnsembleResult:
    """What an ensemble call produced."""

    out_dir: Path
    records: list[RunRecord]

    @property
    def n_generated(self) -> int:
        return sum(r.generated for r in self.records)

    @property
    def n_skipped(self) -> int:
        return len(self.records) - self.n_generated

    @property
    def bytes_written(self) -> int:
        return sum(r.path.stat().st_size for r in self.records if r.generated)


def record_runs(database_url: str, records: Sequence[RunRecord]) -> None:
    """Insert or refresh the runs' ``simulations`` rows in one transaction."""
    version = f"{GENERATOR_VERSION} (exocube {__version__})"
    with session_scope(database_url) as session:
        for rec in records:
            row = session.scalar(select(Simulation).where(Simulation.run_id == rec.run_id))
            if row is None:
                row = Simulation(run_id=rec.run_id, generator=GENERATOR_NAME,
                                 parameters=rec.parameters)
                session.add(row)
            elif not _same_parameters(row.parameters, rec.parameters):
                raise CatalogError(
                    f"the catalogue already has run {rec.run_id!r} with other parameters "
                    f"({row.output_uri}); {CONFLICT_FIX}"
                )
            row.version = version
            row.status = "complete"
            row.output_uri = rec.path.resolve().as_uri()
            row.sha256 = rec.sha256


def check_catalogue(database_url: str, specs: Sequence[RunSpec]) -> None:
    """Refuse, before anything is written, run ids the catalogue has with other parameters."""
    wanted = {s.run_id: catalogue_parameters(derive(s.params)) for s in specs}
    ids = list(wanted)
    with session_scope(database_url) as session:
        for start in range(0, len(ids), 500):
            rows = session.scalars(
                select(Simulation).where(Simulation.run_id.in_(ids[start:start + 500])))
            for row in rows:
                if not _same_parameters(row.parameters, wanted[row.run_id]):
                    raise CatalogError(
                        f"the catalogue already has run {row.run_id!r} with other parameters "
                        f"({row.output_uri}); {CONFLICT_FIX}"
                    )


def _same_parameters(stored: dict[str, float], new: dict[str, float]) -> bool:
    stored = {**OPTIONAL_DEFAULTS, **stored}  # rows made before an optional parameter
    return all(
        name in stored and math.isclose(float(stored[name]), new[name], rel_tol=1e-12)
        for name in ALL_NAMES
    )


def run_ensemble(
    specs: Sequence[RunSpec],
    out_dir: Path,
    database_url: str,
    *,
    grid: Grid = DEFAULT_GRID,
    phase_bins: int = 1,
    client: Client | None = None,
    scheduler_address: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EnsembleResult:
    """Generate ``specs`` into ``out_dir`` and record them in the catalogue at ``database_url``."""
    if phase_bins < 1:
        raise InputDataError(f"phase_bins={phase_bins} is invalid: expected an integer >= 1")
    upgrade(database_url)
    check_catalogue(database_url, specs)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = on_progress or (lambda _n: None)
    if client is None and scheduler_address is None and len(specs) < IN_PROCESS_MAX:
        records = []
        for spec in specs:
            rec = generate_one(spec, out_dir, grid, phase_bins)
            record_runs(database_url, [rec])
            records.append(rec)
            progress(1)
        return EnsembleResult(out_dir, records)
    if client is not None:
        return EnsembleResult(out_dir, _on_client(client, specs, out_dir, grid, phase_bins,
                                                  database_url, progress))
    with parallel.client(scheduler_address) as dask_client:
        return EnsembleResult(out_dir, _on_client(dask_client, specs, out_dir, grid,
                                                  phase_bins, database_url, progress))


def _on_client(
    client: Client, specs: Sequence[RunSpec], out_dir: Path, grid: Grid, phase_bins: int,
    database_url: str, progress: Callable[[int], None],
) -> list[RunRecord]:
    threads = max(sum(client.nthreads().values()), 1)
    size = max(1, math.ceil(len(specs) / (TASKS_PER_THREAD * threads)))
    batches = [list(specs[i:i + size]) for i in range(0, len(specs), size)]
    log.info("generating %d runs in %d tasks on %d Dask threads", len(specs), len(batches),
             threads)
    futures = client.map(generate_batch, batches, out_dir=str(out_dir.resolve()), grid=grid,
                         phase_bins=phase_bins, pure=False)
    records: list[RunRecord] = []
    try:
        for future in as_completed(futures):
            batch = future.result()
            record_runs(database_url, batch)
            records.extend(batch)
            progress(len(batch))
    except BaseException:
        client.cancel(futures)
        raise
    order = {s.run_id: i for i, s in enumerate(specs)}
    return sorted(records, key=lambda r: order[r.run_id])
