"""``ingest``: GCM NetCDF files into a versioned cube store, in parallel on Dask.

Each file is one run. Workers hash the file, skip it when the store already
holds that hash, reuse a complete run group left by an interrupted ingest, or
read, remap and write the run's own immutable group. A new store's grid is the
``grid`` given, else the first file's own canonical grid, else the default; its
pressure levels are ``levels`` when given (``exocube ingest --levels``, or the
``ingest.levels`` setting), and are then fixed for the store's life. The client collects the
results and commits a new version every ``commit_every`` runs, so an ingest
killed at any moment leaves a store that opens at its last committed version,
and re-running the same command finishes the job without duplicating a run.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed import Client, as_completed
from rich.console import Console
from rich.progress import Progress

from exocube import parallel
from exocube.catalog import upgrade
from exocube.config import get_settings
from exocube.cubes import runparams, versions
from exocube.cubes.process import build_run
from exocube.cubes.runs import read_summary, run_key, write_run_group
from exocube.cubes.schema import SCHEMA_VERSION, Layout, check_run
from exocube.cubes.sources import read_source
from exocube.cubes.store import STORE_DOC, StoreLocation
from exocube.errors import InputDataError, StoreError
from exocube.grid import DEFAULT_GRID, Grid, parse_levels

log = logging.getLogger(__name__)
ERRORS = ("raise", "skip")
TASKS_PER_THREAD = 4
BATCH_MAX = 8


@dataclass
class IngestResult:
    """What an ingest did: versions created, runs added, files already present or skipped."""

    store: str
    versions: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def version_id(self) -> str | None:
        return self.versions[-1] if self.versions else None


@dataclass(frozen=True)
class FileTask:
    """Everything a worker needs to process one file (picklable)."""

    loc: StoreLocation
    layout: Layout
    known: Mapping[str, str]  # sha256 -> run id already in the store
    source: str
    csv_rows: Mapping[str, Mapping[str, float]]  # by resolved file path or by run id
    database_url: str | None


def expand(patterns: Iterable[str]) -> list[str]:
    """Files named by paths or glob patterns, sorted, each once."""
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise InputDataError(f"no file matches {pattern!r}")
        found += [str(Path(m).resolve()) for m in matches]
    return list(dict.fromkeys(found))


def ingest(
    files: Iterable[str], store: str, *, time_mean_last: int | None = None,
    grid: Grid | None = None, levels: Sequence[float] | None = None,
    source: str = "auto", params_csv: str | None = None,
    commit_every: int = 256, errors: str = "raise", client: Client | None = None,
    database_url: str | None = None, storage_options: dict[str, Any] | None = None,
    progress: bool = False,
) -> IngestResult:
    """Ingest ``files`` into the store at ``store`` (a path or ``s3://bucket/prefix``).

    ``levels`` [Pa] are a new store's pressure levels (default: the ``ingest.levels``
    setting, else those of ``grid``, of the first file or of the default grid); for an
    existing store they must equal its levels."""
    if errors not in ERRORS:
        raise InputDataError(f"errors={errors!r}; use one of {ERRORS}")
    if commit_every < 1:
        raise InputDataError(f"commit_every={commit_every}; use a positive number of runs")
    paths = expand(files)
    csv_rows = runparams.read_params_csv(params_csv, paths) if params_csv else {}
    loc = StoreLocation.parse(store, storage_options)
    db_url = database_url or get_settings().database_url
    upgrade(db_url)
    layout = store_layout(loc, paths[0], grid, time_mean_last, source, levels)
    parent = versions.head_manifest(loc)
    versions.ensure_recorded(loc, layout, parent and parent["version_id"], db_url)
    task = FileTask(loc, layout, {r["sha256"]: r["run_id"] for r in (parent or {}).get("runs", [])},
                    source, csv_rows, db_url)
    result = IngestResult(store=loc.url)
    with _client(client) as dask_client:
        _run(dask_client, paths, task, parent, commit_every, errors, result, progress)
    versions.refresh_root_view(loc, layout)  # also for stores made before the root view
    return result


@contextmanager
def _client(existing: Client | None) -> Iterator[Client]:
    if existing is not None:
        yield existing
        return
    with parallel.client() as dask_client:
        yield dask_client


def store_layout(loc: StoreLocation, first_file: str, grid: Grid | None,
                 time_mean_last: int | None, source: str,
                 levels: Sequence[float] | None = None) -> Layout:
    """The existing store's layout (checked against explicit options) or a new one."""
    doc = loc.read_json(STORE_DOC)
    plev = None if levels is None else tuple(sorted((float(p) for p in levels), reverse=True))
    if doc is not None:
        layout = Layout.from_json(doc["layout"])
        wanted = Layout.from_grid(grid, layout.ntime, layout.time_mean_last) if grid else layout
        if plev is not None:
            wanted = Layout.from_json({**wanted.to_json(), "plev": plev})
        if time_mean_last is not None:
            wanted = Layout.from_json({**wanted.to_json(), "time_mean_last": time_mean_last,
                                       "ntime": 1})
        layout.check_same(wanted)
        return layout
    src = read_source(first_file, source)
    if time_mean_last is not None and time_mean_last < 1:
        raise InputDataError(f"--time-mean-last {time_mean_last}: use a positive step count")
    ntime = 1 if time_mean_last is not None else int(src.time.size)
    new_grid = grid or grid_of(src) or DEFAULT_GRID
    configured = get_settings().ingest.levels  # a default for new stores only
    if plev is None and grid is None and configured is not None:
        plev = parse_levels(configured)
    if plev is not None:
        new_grid = Grid(new_grid.nlat, new_grid.nlon, plev)
    layout = Layout.from_grid(new_grid, ntime, time_mean_last)
    loc.write_json(STORE_DOC, {"schema_version": SCHEMA_VERSION, "layout": layout.to_json()})
    return layout


def grid_of(src: Any) -> Grid | None:
    """The canonical grid a file is already on (pressure levels, cell-centre lat/lon), if any."""
    levels = src.levels["ta"]
    if levels.kind != "pressure":
        return None
    plev = tuple(sorted((float(p) for p in levels.a), reverse=True))
    candidate = Grid(nlat=src.lat.size, nlon=src.lon.size, plev=plev)
    from exocube.cubes.horizontal import canonical_order, same_grid

    _, _, lat, lon = canonical_order(src.lat, src.lon)
    return candidate if same_grid(lat, lon, candidate.lat, candidate.lon) else None


def process_file(path: str, task: FileTask) -> dict[str, Any]:
    """Worker side: hash, skip or reuse, else read, remap and write one run group."""
    content = Path(path).read_bytes()  # hashed, then parsed from memory
    sha = hashlib.sha256(content).hexdigest()
    if sha in task.known:
        return {"status": "present", "file": path, "sha256": sha, "run_id": task.known[sha]}
    key = run_key(sha, task.layout)
    summary = read_summary(task.loc, key)
    if summary is not None:
        return {**summary, "status": "reused", "file": path}
    src = read_source(path, task.source, content)
    run_id = str(src.attrs.get("run_id") or Path(path).stem)
    params = runparams.resolve(run_id, path, src.attrs, task.csv_rows, task.database_url)
    cube = build_run(src, task.layout, run_id, params)
    check_run(cube, task.layout)
    base = {"run_id": run_id, "key": key, "sha256": sha, "file": path, "format": src.format,
            "params": params}
    return {**write_run_group(task.loc, key, cube, task.layout, base), "status": "written"}


def process_batch(paths: list[str], task: FileTask) -> list[dict[str, Any]]:
    """Worker side: several files per task, so scheduling costs little per file.

    An unusable file does not stop the batch: its outcome carries the error
    message, and the client raises it or skips the file.
    """
    outcomes = []
    for path in paths:
        try:
            outcomes.append(process_file(path, task))
        except InputDataError as exc:
            outcomes.append({"status": "error", "file": path, "error": str(exc)})
    return outcomes


def batches(paths: list[str], threads: int) -> list[list[str]]:
    """About four tasks per worker thread, at most eight files each."""
    size = min(BATCH_MAX, max(1, math.ceil(len(paths) / (TASKS_PER_THREAD * threads))))
    return [paths[i:i + size] for i in range(0, len(paths), size)]


def _run(client: Client, paths: list[str], task: FileTask, parent: dict[str, Any] | None,
         commit_every: int, errors: str, result: IngestResult, progress: bool) -> None:
    run_ids = {r["run_id"]: r["sha256"] for r in (parent or {}).get("runs", [])}
    threads = max(sum(client.nthreads().values()), 1)
    futures = client.map(process_batch, batches(paths, threads), task=task, pure=False)
    pending: list[dict[str, Any]] = []
    bar = (Progress(transient=True, console=Console(stderr=True)) if progress
           else nullcontext())
    try:
        with bar:
            bar_task = bar.add_task("ingest", total=len(paths)) if progress else None
            for future in as_completed(futures):
                for outcome in future.result():
                    if progress:
                        bar.advance(bar_task)
                    if not _keep(outcome, errors, result, run_ids):
                        continue
                    pending.append(outcome)
                    if len(pending) >= commit_every:
                        parent = _commit(task, parent, pending, result)
                        pending = []
    except BaseException:
        client.cancel(futures)
        raise
    if pending:
        _commit(task, parent, pending, result)


def _keep(outcome: dict[str, Any], errors: str, result: IngestResult,
          run_ids: dict[str, str]) -> bool:
    """Whether an outcome is a run to commit; raises for bad input unless skipping."""
    if outcome["status"] == "error":
        if errors == "raise":
            raise InputDataError(outcome["error"])
        log.warning("skipped: %s", outcome["error"])
        result.skipped[outcome["file"]] = outcome["error"]
        return False
    if outcome["status"] == "present":
        result.unchanged.append(outcome["file"])
        return False
    _check_unique(outcome, run_ids)
    return True


def _check_unique(outcome: dict[str, Any], run_ids: dict[str, str]) -> None:
    run_id, sha = outcome["run_id"], outcome["sha256"]
    if run_ids.get(run_id, sha) != sha:
        raise InputDataError(
            f"{outcome['file']}: run id {run_id!r} is already taken by a different file "
            f"(sha256 {run_ids[run_id][:12]}...); give the run a new run_id attribute or "
            "ingest into another store"
        )
    run_ids[run_id] = sha


def _commit(task: FileTask, parent: dict[str, Any] | None, pending: list[dict[str, Any]],
            result: IngestResult) -> dict[str, Any]:
    if task.database_url is None:
        raise StoreError("a catalogue database URL is needed to record versions")
    manifest = versions.commit(task.loc, task.layout, parent, pending, task.database_url)
    result.versions.append(manifest["version_id"])
    result.added += manifest["added"]
    return manifest
