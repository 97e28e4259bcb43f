"""``exocube acquire``: plan, dry-run, fetch and resume acquisition runs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from exocube.acquire import checkpoint as ckpt
from exocube.acquire.plan import Plan, PlannedFile
from exocube.acquire.run import (
    Outcome,
    Quotas,
    destination_for,
    gb,
    load_for_resume,
    plan_sources,
    run_acquisition,
    start_run,
    tb,
)
from exocube.catalog import db as catalog_db
from exocube.config import get_settings

console = Console(stderr=True)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


class RichProgress:
    """An overall bar plus one bar per active file, with rate and ETA."""

    def __init__(self, progress: Progress, plan: Plan) -> None:
        self.progress = progress
        total = plan.known_bytes or None
        self.overall = progress.add_task(f"{len(plan.files)} files", total=total)
        self.tasks: dict[str, TaskID] = {}

    def started(self, item: PlannedFile, offset: int) -> None:
        name = item.relpath if len(item.relpath) < 48 else "..." + item.relpath[-45:]
        self.tasks[item.relpath] = self.progress.add_task(name, total=item.size,
                                                          completed=offset)
        if offset:
            self.progress.advance(self.overall, offset)

    def advance(self, item: PlannedFile, nbytes: int) -> None:
        self.progress.advance(self.tasks[item.relpath], nbytes)
        self.progress.advance(self.overall, nbytes)

    def finished(self, item: PlannedFile, outcome: Outcome) -> None:
        task = self.tasks.pop(item.relpath, None)
        if task is not None:
            self.progress.remove_task(task)
        elif item.size and outcome.state == "skipped":
            self.progress.advance(self.overall, item.size)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
        TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )


def _plan_table(plan: Plan) -> Table:
    table = Table(title=f"plan: {len(plan.files)} files")
    for col in ("source", "domain", "files", "known bytes", "unknown size"):
        table.add_column(col, justify="right" if col not in ("source", "domain") else "left")
    domains = {f.source: f.domain for f in plan.files}
    for name, row in plan.totals()["source"].items():
        table.add_row(name, domains[name], str(row["files"]), f"{row['bytes']:,}",
                      str(row["unknown_size"]))
    table.add_row("total", "", str(len(plan.files)), f"{plan.known_bytes:,}",
                  str(sum(f.size is None for f in plan.files)))
    return table


def _summary_table(summary: dict) -> Table:
    table = Table(title=f"run {summary['run_id']}: {summary['status']}")
    for col in ("source", "done", "quarantined", "failed", "skipped", "bytes", "seconds"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for name, row in summary["sources"].items():
        table.add_row(name, *(str(row[k]) for k in ("done", "quarantined", "failed",
                                                     "skipped")),
                      f"{row['bytes']:,}", f"{row['seconds']:.1f}")
    return table


def acquire(
    domains: Annotated[list[str] | None, typer.Option(help="Domains (comma-separated).")] = None,
    sources: Annotated[list[str] | None, typer.Option(help="Sources (comma-separated).")] = None,
    dest: Annotated[str | None, typer.Option(help="Local directory or s3://bucket/prefix.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan, download nothing.")] = False,
    max_download_gb: Annotated[float | None, typer.Option(help="Download quota (GB).")] = None,
    max_storage_tb: Annotated[float | None, typer.Option(help="Storage quota (TB).")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue the run with this id.")] = None,
    summary_json: Annotated[Path | None, typer.Option(help="Write the summary here.")] = None,
    list_runs: Annotated[bool, typer.Option(help="List recent runs and exit.")] = False,
) -> None:
    """Download public data with resume, verification, quality checks and provenance."""
    settings = get_settings()
    if list_runs:
        catalog_db.upgrade(settings.database_url)
        for row in ckpt.list_runs(settings.database_url):
            print(json.dumps(row))
        return
    if resume:
        catalog_db.upgrade(settings.database_url)
        plan, destination, quotas, checkpoint = load_for_resume(settings, resume)
        run_id = resume
        console.print(f"resuming run {run_id}: {len(plan.files)} files to {destination.root}")
    else:
        plan = asyncio.run(plan_sources(settings, _split(sources), _split(domains)))
        destination = destination_for(settings, dest)
        quotas = Quotas(gb(max_download_gb), tb(max_storage_tb))
        checkpoint = None
        console.print(_plan_table(plan))
        if dry_run:
            print(json.dumps({"plan": plan.totals(), "files": plan.to_json()}, indent=1))
            return
        catalog_db.upgrade(settings.database_url)
        run_id = start_run(settings, plan, destination, quotas,
                           {"sources": _split(sources), "domains": _split(domains)})
        console.print(f"run {run_id} -> {destination.root}")
    with _progress() as progress:
        sink = RichProgress(progress, plan)
        summary = asyncio.run(run_acquisition(settings, plan, destination, quotas, run_id,
                                              checkpoint, sink))
    console.print(_summary_table(summary))
    for row in summary["sources"].values():
        for r in row["reasons"]:
            console.print(f"  {r['state']}: {r['file']}: {r['reason']}", highlight=False)
    text = json.dumps(summary, indent=1)
    if summary_json:
        summary_json.write_text(text)
    print(text)
    if summary["totals"]["failed"]:
        raise typer.Exit(code=2)
