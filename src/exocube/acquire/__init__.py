"""Acquisition: resumable, verified, polite downloads and their provenance.

Layout. The download protocol: ``transfer`` (HTTP: request, resume, verify),
``ftp``, ``retry`` (the one retry loop and :class:`~exocube.acquire.retry.Politeness`),
``partial`` (``.part`` files and their typed sidecar). How bytes move:
``client`` (the httpx client and its scoped httpcore setting), ``bodies`` (the
body readers and the one choice between them), ``pipes`` (write paths),
``threads`` (cancellable worker threads). Around them: ``ratelimit``,
``breaker``, ``budget`` (download quota), ``destination`` (local or S3),
``plan`` and ``run`` (runs with catalogue checkpoints), ``provenance``,
``units`` (readable sizes, quotas), ``names`` (remote names made safe),
``sources/`` (one module per archive, each a ``SourceAdapter``) and
``quality/`` (one validator per format). docs/acquire.md walks through one
download step by step. The settings (:mod:`exocube.acquire.options`) are
defined in the root module :mod:`exocube.config`, which imports no stage. Other
stages import this package's public names (``__all__``), not its modules.
"""

from __future__ import annotations

from exocube.acquire.checkpoint import list_runs
from exocube.acquire.plan import Plan, PlannedFile, parse_names, select_sources
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
from exocube.acquire.sources import SOURCES
from exocube.acquire.units import format_bytes

__all__ = [
    "SOURCES",
    "Outcome",
    "Plan",
    "PlannedFile",
    "Quotas",
    "destination_for",
    "format_bytes",
    "gb",
    "list_runs",
    "load_for_resume",
    "parse_names",
    "plan_sources",
    "run_acquisition",
    "select_sources",
    "start_run",
    "tb",
]
