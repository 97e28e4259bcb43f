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

from exocube.acquire import (
    SOURCES,
    Outcome,
    Plan,
    PlannedFile,
    Quotas,
    destination_for,
    format_bytes,
    gb,
    load_for_resume,
    parse_names,
    plan_sources,
    run_acquisition,
    select_sources,
    start_run,
    tb,
)
from exocube.acquire import list_runs as list_acquisition_runs
from exocube.catalog import upgrade
from exocube.config import get_settings
from exocube.errors import ConfigError

console = Console(stderr=True)


def _names(values: list[str] | None, option: str, known: list[str]) -> list[str] | None:
    """The names given to ``option``; a usage error (exit 2) for empty or unknown ones."""
    try:
        return parse_names(values, option, known)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _quotas(max_download_gb: float | None, max_storage_tb: float | None) -> Quotas:
    """The quotas in bytes; a usage error (exit 2) for nan, inf or values <= 0."""
    try:
        return Quotas(gb(max_download_gb), tb(max_storage_tb))
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _refuse_with_resume(given: dict[str, object]) -> None:
    used = [name for name, value in given.items() if value not in (None, False)]
    if used:
        raise typer.BadParameter(
            f"--resume continues the stored plan with its destination and quotas; it cannot "
            f"be combined with {', '.join(used)}. Start a new run for other choices")


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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _size(row: dict[str, int]) -> str:
    """Known bytes of a totals row; ``unknown`` when no file's size is known."""
    if row["files"] and row["unknown_size"] == row["files"]:
        return "unknown"
    return format_bytes(row["bytes"])


def _plan_table(plan: Plan) -> Table:
    total = plan.totals()
    title = f"plan: {_count(len(plan.files), 'file')} from {_count(len(plan.sources), 'source')}"
    if plan.failures:
        title += f"; {_count(len(plan.failures), 'source')} not planned"
    table = Table(title=title)
    table.add_column("source", no_wrap=True)
    table.add_column("domain")
    for col in ("files", "known size", "unknown size"):
        table.add_column(col, justify="right")
    for name in plan.sources:
        row = total["source"][name]
        table.add_row(name, SOURCES[name].DOMAIN, str(row["files"]), _size(row),
                      str(row["unknown_size"]))
    table.add_row("total", "", str(len(plan.files)), _size(total["total"]),
                  str(total["total"]["unknown_size"]))
    return table


def _failures_table(plan: Plan) -> Table:
    table = Table(title=f"not planned: {_count(len(plan.failures), 'source')}")
    table.add_column("source", no_wrap=True)
    table.add_column("domain")
    table.add_column("reason", overflow="fold")
    for failure in plan.failures:
        table.add_row(failure.source, failure.domain, failure.reason)
    return table


def _print_plan(plan: Plan) -> None:
    console.print(_plan_table(plan))
    if plan.failures:
        console.print(_failures_table(plan))


def _summary_table(summary: dict) -> Table:
    table = Table(title=f"run {summary['run_id']}: {summary['status']}")
    for col in ("source", "done", "quarantined", "failed", "skipped", "size", "seconds"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for name, row in summary["sources"].items():
        if not row["planned"]:
            table.add_row(name, "not planned", "", "", "", "", "")
            continue
        table.add_row(name, *(str(row[k]) for k in ("done", "quarantined", "failed",
                                                     "skipped")),
                      format_bytes(row["bytes"]), f"{row['seconds']:.1f}")
    return table


def _print_summary(summary: dict) -> None:
    console.print(_summary_table(summary))
    unplanned = [n for n, row in summary["sources"].items() if not row["planned"]]
    for name, row in summary["sources"].items():
        for r in row["reasons"]:
            console.print(f"  {r['state']}: {r['file']}: {r['reason']}", highlight=False)
        if name in unplanned:
            console.print(f"  not planned: {name}: {row['plan_error']}", highlight=False)
    if summary["totals"]["failed"]:
        console.print(f"{_count(summary['totals']['failed'], 'file')} failed; once the cause "
                      f"is fixed, continue with: exocube acquire --resume {summary['run_id']}",
                      highlight=False)
    if unplanned:
        console.print("sources not planned are not part of this run; once they are "
                      f"reachable: exocube acquire --sources {','.join(unplanned)}",
                      highlight=False)


DOMAINS = sorted({m.DOMAIN for m in SOURCES.values()})


def acquire(
    domains: Annotated[list[str] | None, typer.Option(
        metavar="NAMES", help=f"Domains, comma-separated or repeated: {', '.join(DOMAINS)}. "
        "Default: every domain.")] = None,
    sources: Annotated[list[str] | None, typer.Option(
        metavar="NAMES", help=f"Sources, comma-separated or repeated: {', '.join(SOURCES)}. "
        "Default: every source.")] = None,
    dest: Annotated[str | None, typer.Option(
        metavar="DEST", help="A local directory or s3://bucket/prefix (default: "
        "acquire.destination, else <home>/data).")] = None,
    dry_run: Annotated[bool, typer.Option(
        help="Print the plan (table on stderr, JSON on stdout), download nothing.")] = False,
    max_download_gb: Annotated[float | None, typer.Option(
        metavar="GB", help="Download quota in GB (1e9 bytes), above 0.")] = None,
    max_storage_tb: Annotated[float | None, typer.Option(
        metavar="TB", help="Storage quota in TB (1e12 bytes), above 0.")] = None,
    resume: Annotated[str | None, typer.Option(
        metavar="RUN_ID", help="Continue this run with its stored plan, destination and "
        "quotas.")] = None,
    summary_json: Annotated[Path | None, typer.Option(
        metavar="PATH", help="Also write the summary JSON here.")] = None,
    list_runs: Annotated[bool, typer.Option(help="List recent runs and exit.")] = False,
) -> None:
    """Download public data with resume, verification, quality checks and provenance.

    Each source is planned on its own; sources that cannot be planned are listed
    with their reason and the others go ahead. Exit status: 0 when everything
    planned was fetched, 2 when a file failed or a source could not be planned,
    1 when no source could be planned (nothing is started).
    """
    settings = get_settings()
    if list_runs:
        upgrade(settings.database_url)
        for row in list_acquisition_runs(settings.database_url):
            print(json.dumps(row))
        return
    if resume:
        _refuse_with_resume({"--sources": sources, "--domains": domains, "--dest": dest,
                             "--dry-run": dry_run, "--max-download-gb": max_download_gb,
                             "--max-storage-tb": max_storage_tb})
        upgrade(settings.database_url)
        plan, destination, quotas, checkpoint = load_for_resume(settings, resume)
        run_id = resume
        console.print(f"resuming run {run_id}: {len(plan.files)} files to {destination.root}")
    else:
        chosen = _names(sources, "--sources", list(SOURCES))
        chosen_domains = _names(domains, "--domains", DOMAINS)
        quotas = _quotas(max_download_gb, max_storage_tb)
        try:
            select_sources(SOURCES, chosen, chosen_domains)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from exc
        plan = asyncio.run(plan_sources(settings, chosen, chosen_domains))
        destination = destination_for(settings, dest)
        checkpoint = None
        _print_plan(plan)
        if dry_run:
            print(json.dumps({"plan": plan.totals(), "files": plan.to_json(),
                              "not_planned": plan.failures_json()}, indent=1))
            return
        upgrade(settings.database_url)
        run_id = start_run(settings, plan, destination, quotas,
                           {"sources": chosen, "domains": chosen_domains})
        console.print(f"run {run_id} -> {destination.root}")
    with _progress() as progress:
        sink = RichProgress(progress, plan)
        summary = asyncio.run(run_acquisition(settings, plan, destination, quotas, run_id,
                                              checkpoint, sink))
    _print_summary(summary)
    text = json.dumps(summary, indent=1)
    if summary_json:
        summary_json.write_text(text)
    print(text)
    if summary["totals"]["failed"] or summary["totals"]["sources_not_planned"]:
        raise typer.Exit(code=2)
