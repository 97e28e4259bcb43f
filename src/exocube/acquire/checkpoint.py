"""Run state in the catalogue (``acquisition_runs``): the plan and options in
``config``, progress in ``checkpoint``, the final ``summary``.

Files that are done are the run's ``artifacts`` rows; the checkpoint holds the
bytes downloaded and the failed/skipped files with their reasons. Bytes of
unfinished files live in their ``.part`` files, so a resumed run continues them
from their byte offset.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from exocube.catalog import AcquisitionRun, session_scope
from exocube.errors import CatalogError


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


def create_run(db_url: str, run_id: str, config: dict[str, Any]) -> None:
    with session_scope(db_url) as s:
        s.add(AcquisitionRun(id=run_id, config=config, status="running",
                             checkpoint={"bytes_downloaded": 0, "failed": {}, "skipped": {}}))


def load_run(db_url: str, run_id: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """``(config, checkpoint, status)`` of a run, or :class:`CatalogError` naming it."""
    with session_scope(db_url) as s:
        run = s.get(AcquisitionRun, run_id)
        if run is None:
            raise CatalogError(f"no acquisition run {run_id!r} in the catalogue {db_url}; "
                               "list runs with `exocube acquire --list-runs`")
        return dict(run.config), dict(run.checkpoint or {}), run.status


def save_checkpoint(db_url: str, run_id: str, checkpoint: dict[str, Any], status: str) -> None:
    with session_scope(db_url) as s:
        run = s.get(AcquisitionRun, run_id)
        run.checkpoint = {**checkpoint, "updated_at": datetime.now(UTC).isoformat()}
        run.status = status


def finish_run(db_url: str, run_id: str, checkpoint: dict[str, Any], status: str,
               summary: dict[str, Any]) -> None:
    with session_scope(db_url) as s:
        run = s.get(AcquisitionRun, run_id)
        run.checkpoint = checkpoint
        run.status = status
        run.summary = summary
        run.finished_at = datetime.now(UTC)


def list_runs(db_url: str, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent runs, newest first."""
    with session_scope(db_url) as s:
        rows = s.execute(sa.select(AcquisitionRun).order_by(AcquisitionRun.started_at.desc())
                         .limit(limit)).scalars().all()
        return [{"id": r.id, "status": r.status, "started_at": r.started_at.isoformat(),
                 "files": len(r.config.get("plan", []))} for r in rows]
