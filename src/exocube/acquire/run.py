"""Acquisition runs: plan, dry run, quotas, checkpointed execution, resume.

``plan_sources`` asks each selected source for its files. ``start_run`` stores
the plan in the catalogue; ``execute`` fetches every file (in parallel, within
per-host limits), checks quotas before each file, validates it, publishes it
to the destination (or its quarantine) and records provenance. ``resume_run``
reloads a run's plan and continues: files already verified at the destination
are skipped, ``.part`` files continue from their byte offset.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from exocube.acquire import checkpoint as ckpt
from exocube.acquire.breaker import CircuitOpenError, describe
from exocube.acquire.budget import DownloadBudget, FileAllowance
from exocube.acquire.client import make_client
from exocube.acquire.destination import Destination
from exocube.acquire.ftp import FTPDownloader
from exocube.acquire.names import collisions
from exocube.acquire.partial import PartFile
from exocube.acquire.plan import (
    Plan,
    PlanContext,
    PlanFailure,
    PlannedFile,
    PlanningError,
    select_sources,
)
from exocube.acquire.provenance import (
    KnownArtifact,
    ensure_sources,
    known_artifacts,
    record_artifact,
)
from exocube.acquire.retry import Politeness
from exocube.acquire.sources import SOURCES
from exocube.acquire.transfer import Fetched, HTTPDownloader, HTTPStatusError, host_of
from exocube.acquire.units import GB, TB, format_bytes, quota_bytes
from exocube.config import Settings
from exocube.errors import ExocubeError, QuotaExceededError, TransferError, UnsafeNameError

log = logging.getLogger(__name__)


class ProgressSink(Protocol):
    """What a run reports while it works (the CLI draws rich progress bars)."""

    def started(self, item: PlannedFile, offset: int) -> None: ...
    def advance(self, item: PlannedFile, nbytes: int) -> None: ...
    def finished(self, item: PlannedFile, outcome: Outcome) -> None: ...


@dataclass
class Quotas:
    """Limits checked before each file (``None``: no limit)."""

    max_download_bytes: int | None = None
    max_storage_bytes: int | None = None


@dataclass
class Outcome:
    """What happened to one planned file."""

    relpath: str
    source: str
    state: str
    reason: str = ""
    bytes: int = 0
    size: int | None = None
    seconds: float = 0.0
    uri: str | None = None
    quality_score: float | None = None


@dataclass
class RunState:
    """Counters shared by the file tasks of one run."""

    stored: int = 0
    reserved_storage: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def politeness_for(settings: Settings, source_names: list[str]) -> Politeness:
    """Rate limits from the settings, plus any limit a selected source asks for."""
    opts = settings.acquire.model_copy(deep=True)
    for name in source_names:
        source = SOURCES[name]
        limit = source.MAX_REQUESTS_PER_SECOND
        if limit:
            host = host_of(source.base_url(opts))
            opts.host_requests_per_second[host] = min(
                limit, opts.host_requests_per_second.get(host, limit))
    return Politeness(opts)


async def plan_sources(
    settings: Settings, sources: list[str] | None = None, domains: list[str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Plan:
    """Ask each selected source for its files, all at once; the plan of a new run.

    Each source plans on its own: one that fails (unreachable host, error answer,
    unreadable listing, bad setting) becomes a :class:`PlanFailure` with its reason
    and the others are planned. :class:`PlanningError` when none could be planned.
    ``transport`` carries the planning requests (recording or replaying answers).
    """
    names = select_sources(SOURCES, sources, domains)
    polite = politeness_for(settings, names)
    async with make_client(settings.acquire, settings.acquire.plan_max_bytes,
                           transport) as client:
        ctx = PlanContext(settings.acquire, client, polite)
        parts = await asyncio.gather(*(_plan_one(ctx, name) for name in names))
    plan = Plan([], [], [])
    for name, part in zip(names, parts, strict=True):
        if isinstance(part, PlanFailure):
            plan.failures.append(part)
        else:
            plan.sources.append(name)
            plan.files.extend(part)
    if not plan.sources:
        raise PlanningError(plan.failures)
    return plan


async def _plan_one(ctx: PlanContext, name: str) -> list[PlannedFile] | PlanFailure:
    """The files of one source, or why it could not be planned.

    A source gets ``acquire.plan_timeout`` seconds in all. Exocube's errors carry
    their reason; anything else raised while reading an archive's answers (a
    parser meeting a body it does not expect) is reported with its type (its
    traceback is logged at INFO, ``-v``) instead of ending the run.
    """
    source = SOURCES[name]
    try:
        files = await asyncio.wait_for(source.plan(ctx), ctx.opts.plan_timeout)
    except TimeoutError:
        reason = (f"planning took longer than acquire.plan_timeout ({ctx.opts.plan_timeout:g} s;"
                  f" base URL {source.base_url(ctx.opts)}): the archive answers too slowly")
        log.info("source %s not planned: %s", name, reason)
        return PlanFailure(name, source.DOMAIN, reason, "TimeoutError")
    except ExocubeError as exc:
        log.info("source %s not planned: %s", name, exc)
        return PlanFailure(name, source.DOMAIN, str(exc), type(exc).__name__)
    except Exception as exc:
        log.info("source %s not planned: unexpected %s", name, describe(exc), exc_info=True)
        return PlanFailure(name, source.DOMAIN, f"unexpected {describe(exc)} while planning "
                           f"(base URL {source.base_url(ctx.opts)})", type(exc).__name__)
    log.info("source %s: %d files planned", name, len(files))
    return files


def destination_for(settings: Settings, root: str | None) -> Destination:
    root = root or settings.acquire.destination or str(settings.home / "data")
    key = hashlib.sha1(root.encode(), usedforsecurity=False).hexdigest()[:12]
    return Destination.from_string(root, settings.home / "staging" / key,
                                   settings.s3.storage_options())


def start_run(
    settings: Settings, plan: Plan, dest: Destination, quotas: Quotas,
    request: dict[str, Any],
) -> str:
    """Record a new run with its plan; its id."""
    run_id = ckpt.new_run_id()
    ckpt.create_run(settings.database_url, run_id, {
        "plan": plan.to_json(), "planned_sources": plan.sources,
        "plan_failures": plan.failures_json(), "destination": dest.root,
        "quotas": asdict(quotas), "request": request,
    })
    return run_id


def load_for_resume(settings: Settings, run_id: str) -> tuple[Plan, Destination, Quotas, dict]:
    """The stored plan, destination, quotas and checkpoint of ``run_id``."""
    config, checkpoint, _status = ckpt.load_run(settings.database_url, run_id)
    dest = destination_for(settings, config["destination"])
    plan = Plan.from_json(config["plan"], config.get("plan_failures"),
                          config.get("planned_sources"))
    return plan, dest, Quotas(**config["quotas"]), checkpoint


class RunExecutor:
    """Fetches, validates, publishes and records the files of one run."""

    def __init__(
        self, settings: Settings, run_id: str, plan: Plan, dest: Destination, quotas: Quotas,
        progress: ProgressSink | None = None,
    ) -> None:
        self.settings = settings
        self.opts = settings.acquire
        self.db = settings.database_url
        self.run_id = run_id
        self.plan = plan
        self.dest = dest
        self.quotas = quotas
        self.progress = progress
        self.state = RunState()
        self.budget = DownloadBudget(quotas.max_download_bytes)
        self._lock = asyncio.Lock()
        self._db_lock = threading.Lock()
        self._source_ids: dict[str, int] = {}
        self._last_save = 0.0

    async def execute(self, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run every planned file; the summary (also stored in the catalogue)."""
        t0 = time.monotonic()
        self.budget.used = int((checkpoint or {}).get("bytes_downloaded", 0))
        known = await asyncio.to_thread(known_artifacts, self.db, self.dest.root)
        self.state.stored = sum(k.size or 0 for k in known.values())
        names = sorted({f.source for f in self.plan.files}
                       | {f.source for f in self.plan.failures})
        self._source_ids = await asyncio.to_thread(ensure_sources, self.db, [
            {"name": n, "domain": SOURCES[n].DOMAIN, "base_url": SOURCES[n].base_url(self.opts),
             "description": SOURCES[n].DESCRIPTION} for n in names])
        polite = politeness_for(self.settings, names)
        slots = asyncio.Semaphore(self.opts.max_parallel_files)
        async with make_client(self.opts) as client:
            http = HTTPDownloader(client, polite, self.opts.chunk_size, self.opts.resume_min_bytes)
            ftp = FTPDownloader(polite, self.opts.read_timeout)

            clashes = self._clashes()

            async def one(i: int, item: PlannedFile) -> None:
                outcome = clashes.get(i)
                if outcome is None:
                    async with slots:
                        outcome = await self._one(item, known, http, ftp)
                await self._record_outcome(item, outcome)

            try:
                await asyncio.gather(*(one(i, f) for i, f in enumerate(self.plan.files)))
            except BaseException:
                await asyncio.to_thread(self._save, "interrupted")
                raise
        return await asyncio.to_thread(self._finish, time.monotonic() - t0)

    def _clashes(self) -> dict[int, Outcome]:
        """Outcomes of planned files that an earlier one of the plan excludes: the same
        name and URL again (skipped), or a name that lands on its file or directory
        (failed; see :func:`~exocube.acquire.names.collisions`)."""
        out: dict[int, Outcome] = {}
        first: set[tuple[str, str]] = set()
        unique: list[int] = []
        for i, f in enumerate(self.plan.files):
            if (f.relpath, f.url) in first:
                out[i] = Outcome(f.relpath, f.source, "skipped", "planned twice (same name "
                                 "and URL): fetched once")
            else:
                first.add((f.relpath, f.url))
                unique.append(i)
        for j, reason in collisions([self.plan.files[i].relpath for i in unique]).items():
            f = self.plan.files[unique[j]]
            out[unique[j]] = Outcome(f.relpath, f.source, "failed",
                                     f"{reason} ({f.url}); not fetched", size=f.size)
        return out

    async def _one(
        self, item: PlannedFile, known: dict[str, KnownArtifact], http: HTTPDownloader,
        ftp: FTPDownloader,
    ) -> Outcome:
        t0 = time.monotonic()
        done = self._already_done(item, known)
        if done:
            return Outcome(item.relpath, item.source, "skipped", done, size=item.size)
        try:
            part = self.dest.part_for(item.relpath)
        except UnsafeNameError as exc:  # PlannedFile checked it already: a last guard
            return self._failed(item, exc, t0)
        offset = part.offset() if part.meta(item.url) else 0
        allowance = self._reserve(item, offset)
        if isinstance(allowance, str):
            return Outcome(item.relpath, item.source, "skipped", allowance, size=item.size)
        if self.progress:
            self.progress.started(item, offset)
        try:
            fetched = await self._fetch(item, part, http, ftp, allowance)
            return await asyncio.to_thread(self._finalise, item, fetched, t0)
        except HTTPStatusError as exc:
            if item.missing_ok and exc.status == 404:
                return Outcome(item.relpath, item.source, "skipped", "no result (HTTP 404)")
            return self._failed(item, exc, t0)
        except QuotaExceededError as exc:
            log.warning("%s: %s", item.relpath, exc)
            return Outcome(item.relpath, item.source, "skipped", str(exc), allowance.received,
                           item.size, time.monotonic() - t0)
        except (CircuitOpenError, TransferError, ExocubeError) as exc:
            return self._failed(item, exc, t0)
        except OSError as exc:  # the local side: permissions, space, a file where a dir goes
            return self._failed(item, TransferError(
                f"{item.relpath}: local file error: {exc}. Check the destination's "
                "permissions and free space, and that no file stands where a folder is "
                "needed; then resume the run"), t0)
        finally:
            allowance.release()
            self.state.reserved_storage -= item.size or 0

    async def _fetch(
        self, item: PlannedFile, part: PartFile, http: HTTPDownloader, ftp: FTPDownloader,
        allowance: FileAllowance,
    ) -> Fetched:
        received: Callable[[int], None] | None = None
        if self.progress:
            progress = self.progress

            def received(n: int) -> None:
                progress.advance(item, n)

        if item.url.startswith("ftp://"):
            return await ftp.fetch(item.url, part, item.expected, received, allowance)
        return await http.fetch(item.url, part, item.expected, received, allowance)

    def _finalise(self, item: PlannedFile, fetched: Fetched, t0: float) -> Outcome:
        """Validate, publish (or quarantine), record provenance: one file is done."""
        report = SOURCES[item.source].validate(fetched.part.part, item)
        quarantined = report.quarantined(self.opts.quality_threshold)
        uri = self.dest.publish(fetched.part, item.relpath, quarantined)
        with self._db_lock:
            self._record(item, fetched, uri, report, quarantined)
        state = "quarantined" if quarantined else "done"
        reason = "; ".join(r["message"] for r in report.errors)[:500] if quarantined else ""
        self.state.stored += fetched.size
        return Outcome(item.relpath, item.source, state, reason, fetched.bytes_received,
                       fetched.size, time.monotonic() - t0, uri, report.score)

    def _record(self, item: PlannedFile, fetched: Fetched, uri: str, report: Any,
                quarantined: bool) -> None:
        record_artifact(
            self.db,
            source_id=self._source_ids[item.source],
            uri=uri, url=item.url, size=fetched.size, sha256=fetched.sha256,
            media_type=item.media_type or fetched.headers.get("content-type"),
            provenance={**fetched.provenance(), "run_id": self.run_id,
                        "published_md5": item.md5, "plan": {"relpath": item.relpath,
                                                            "kind": item.kind}},
            quality_score=report.score, quality_reasons=report.reasons,
            status="quarantined" if quarantined else "verified", run_id=self.run_id,
        )

    def _failed(self, item: PlannedFile, exc: Exception, t0: float) -> Outcome:
        log.warning("%s failed: %s", item.relpath, exc)
        return Outcome(item.relpath, item.source, "failed", str(exc), size=item.size,
                       seconds=time.monotonic() - t0)

    def _already_done(self, item: PlannedFile, known: dict[str, KnownArtifact]) -> str:
        """A reason to skip when the file is verified at the destination already."""
        for quarantined in (False, True):
            art = known.get(self.dest.uri(item.relpath, quarantined))
            if art is None:
                continue
            if item.sha256 and art.sha256 != item.sha256:
                continue
            if self.dest.size(item.relpath, quarantined) != art.size:
                continue
            where = "quarantine" if quarantined else "destination"
            return f"already verified in the {where} (run {art.run_id})"
        return ""

    def _reserve(self, item: PlannedFile, offset: int) -> FileAllowance | str:
        """Check quotas before a file and reserve its bytes: the file's download
        allowance (drawn as bytes arrive), or the reason it is over a quota."""
        need = None if item.size is None else max(item.size - offset, 0)
        allowance = self.budget.reserve(need)
        if isinstance(allowance, str):
            return allowance
        q, s = self.quotas, self.state
        if q.max_storage_bytes is not None:
            used = s.stored + s.reserved_storage
            if used + (item.size or 0) > q.max_storage_bytes:
                allowance.release()
                return (f"storage quota: {format_bytes(used)} stored or reserved, this file "
                        f"needs {format_bytes(item.size or 0)}, limit "
                        f"{format_bytes(q.max_storage_bytes)}")
        s.reserved_storage += item.size or 0
        return allowance

    async def _record_outcome(self, item: PlannedFile, outcome: Outcome) -> None:
        self.state.outcomes.append(outcome)
        if outcome.state == "failed":
            self.state.failed[item.relpath] = outcome.reason
        elif outcome.state == "skipped":
            self.state.skipped[item.relpath] = outcome.reason
        if self.progress:
            self.progress.finished(item, outcome)
        now = time.monotonic()
        noteworthy = outcome.state in ("failed", "skipped") and not outcome.reason.startswith(
            "already")
        if noteworthy or now - self._last_save > 1.0:
            self._last_save = now
            async with self._lock:
                await asyncio.to_thread(self._save, "running")

    def _checkpoint(self) -> dict[str, Any]:
        return {"bytes_downloaded": self.budget.used, "failed": dict(self.state.failed),
                "skipped": dict(self.state.skipped)}

    def _save(self, status: str) -> None:
        ckpt.save_checkpoint(self.db, self.run_id, self._checkpoint(), status)

    def _finish(self, seconds: float) -> dict[str, Any]:
        summary = summarise(self.run_id, self.dest.root, self.state.outcomes, seconds,
                            self.plan.failures)
        failed = summary["totals"]["failed"] or summary["totals"]["sources_not_planned"]
        status = "completed_with_failures" if failed else "completed"
        summary["status"] = status
        ckpt.finish_run(self.db, self.run_id, self._checkpoint(), status, summary)
        return summary


def summarise(
    run_id: str, root: str, outcomes: list[Outcome], seconds: float,
    plan_failures: list[PlanFailure] | None = None,
) -> dict[str, Any]:
    """Per source: files done/quarantined/failed/skipped with reasons, bytes, time;
    a source that could not be planned has ``planned: false`` and ``plan_error``."""
    per: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "planned": True, "done": 0, "quarantined": 0, "failed": 0, "skipped": 0, "bytes": 0,
        "seconds": 0.0, "reasons": []})
    for o in outcomes:
        row = per[o.source]
        row[o.state] += 1
        row["bytes"] += o.bytes
        row["seconds"] = round(row["seconds"] + o.seconds, 3)
        if o.reason:
            row["reasons"].append({"file": o.relpath, "state": o.state, "reason": o.reason})
    for failure in plan_failures or []:
        per[failure.source].update(planned=False, plan_error=failure.reason)
    totals = {k: sum(r[k] for r in per.values())
              for k in ("done", "quarantined", "failed", "skipped", "bytes")}
    totals["sources_not_planned"] = len(plan_failures or [])
    return {"run_id": run_id, "destination": root, "seconds": round(seconds, 3),
            "sources": dict(per), "totals": totals}


async def run_acquisition(
    settings: Settings, plan: Plan, dest: Destination, quotas: Quotas, run_id: str,
    checkpoint: dict[str, Any] | None = None, progress: ProgressSink | None = None,
) -> dict[str, Any]:
    """Execute (or continue) a run; its summary."""
    executor = RunExecutor(settings, run_id, plan, dest, quotas, progress)
    return await executor.execute(checkpoint)


def gb(value: float | None) -> int | None:
    """Bytes of ``--max-download-gb`` (:class:`ConfigError` unless finite and above 0)."""
    return quota_bytes(value, GB, "--max-download-gb")


def tb(value: float | None) -> int | None:
    """Bytes of ``--max-storage-tb`` (:class:`ConfigError` unless finite and above 0)."""
    return quota_bytes(value, TB, "--max-storage-tb")


__all__ = ["Outcome", "Plan", "Quotas", "RunExecutor", "destination_for",
           "load_for_resume", "plan_sources", "run_acquisition", "start_run"]
