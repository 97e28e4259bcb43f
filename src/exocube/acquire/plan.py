"""Run plans: the files a run will fetch, with expected sizes, per source and domain.

A plan is built by asking each selected source module for its files
(:func:`exocube.acquire.run.plan_sources`), each source on its own: a source
that cannot be planned (host unreachable, error answer, unreadable listing) is
kept as a :class:`PlanFailure` with its reason and the others go on. The plan
is stored in the run's catalogue row so that ``--resume`` uses exactly the same
list even if the archive changed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from exocube.acquire.breaker import CircuitOpenError, HostUnreachableError
from exocube.acquire.names import safe_relpath
from exocube.acquire.options import AcquireOptions
from exocube.acquire.partial import Expected
from exocube.acquire.retry import Politeness
from exocube.acquire.transfer import HTTPStatusError, request
from exocube.acquire.units import size_problem
from exocube.errors import ConfigError, ExocubeError, InputDataError, TransferError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from exocube.acquire.sources.adapter import SourceAdapter

log = logging.getLogger(__name__)


@dataclass
class PlannedFile:
    """One file a run will fetch; ``relpath`` (below the destination) is checked by
    :func:`~exocube.acquire.names.safe_relpath` and raises
    :class:`~exocube.errors.UnsafeNameError` if it cannot be made safe; ``size``
    (``None``: unknown) by :func:`~exocube.acquire.units.size_problem`
    (:class:`~exocube.errors.InputDataError` unless a byte count)."""

    source: str
    domain: str
    relpath: str
    url: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    media_type: str | None = None
    kind: str = "binary"
    missing_ok: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the one place a file's location below the destination is decided
        self.relpath = safe_relpath(self.relpath, source=self.source)
        why = "" if self.size is None else size_problem(self.size)
        if why:
            raise InputDataError(
                f"source {self.source}: {self.relpath}: the size {self.size!r} given by the "
                f"archive {why}. Its index or manifest is malformed; nothing is planned from it")

    @property
    def expected(self) -> Expected:
        return Expected(size=self.size, sha256=self.sha256, md5=self.md5)


@dataclass
class PlanFailure:
    """A selected source that could not be planned, and why."""

    source: str
    domain: str
    reason: str
    error: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


class PlanningError(ExocubeError):
    """No selected source could be planned (the message gives each source's reason)."""

    def __init__(self, failures: list[PlanFailure]) -> None:
        self.failures = failures
        reasons = "; ".join(f"{f.source}: {f.reason}" for f in failures)
        super().__init__(f"no source could be planned, nothing was started: {reasons}")


@dataclass
class Plan:
    """The files of a run and their totals, the sources planned (also those with no
    files) and the sources that could not be planned."""

    files: list[PlannedFile]
    failures: list[PlanFailure] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for f in self.files:
            if f.source not in self.sources:
                self.sources.append(f.source)

    def totals(self) -> dict[str, Any]:
        """Files, known bytes and files of unknown size, per source, per domain and in all;
        a planned source without files counts with zeros."""
        out: dict[str, Any] = {"source": {}, "domain": {}}
        for group in ("source", "domain"):
            acc: dict[str, dict[str, int]] = defaultdict(
                lambda: {"files": 0, "bytes": 0, "unknown_size": 0})
            for f in self.files:
                row = acc[getattr(f, group)]
                row["files"] += 1
                row["bytes"] += f.size or 0
                row["unknown_size"] += f.size is None
            out[group] = dict(acc)
        for name in self.sources:
            out["source"].setdefault(name, {"files": 0, "bytes": 0, "unknown_size": 0})
        out["total"] = {"files": len(self.files), "bytes": self.known_bytes,
                        "unknown_size": sum(f.size is None for f in self.files),
                        "sources_planned": len(self.sources),
                        "sources_not_planned": len(self.failures)}
        return out

    @property
    def known_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.files]

    def failures_json(self) -> list[dict[str, str]]:
        return [f.to_json() for f in self.failures]

    @classmethod
    def from_json(cls, rows: list[dict[str, Any]], failures: list[dict[str, str]] | None = None,
                  sources: list[str] | None = None) -> Plan:
        return cls([PlannedFile(**r) for r in rows],
                   [PlanFailure(**f) for f in failures or []], list(sources or []))


class PlanContext:
    """What a source needs to build its part of a plan: settings and polite HTTP."""

    def __init__(
        self, opts: AcquireOptions, client: httpx.AsyncClient, polite: Politeness
    ) -> None:
        self.opts = opts
        self.client = client
        self.polite = polite

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A polite request that gives up on an unreachable host after
        ``acquire.plan_connect_attempts`` attempts (:class:`HostUnreachableError`)."""
        return await request(self.polite, self.client, method, url,
                             connect_attempts=self.opts.plan_connect_attempts, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def head_size(self, url: str) -> int | None:
        """Content-Length from a HEAD request, or ``None`` when the server does not say."""
        resp = await self.request("HEAD", url)
        length = resp.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None

    async def fill_sizes(self, files: list[PlannedFile]) -> None:
        """HEAD every file whose size is unknown (rate limits apply).

        A HEAD the server refuses or fails leaves the size unknown (a warning).
        A host that cannot be reached, or whose circuit opened, fails the source's
        planning: its files could not be fetched either.
        """
        todo = [f for f in files if f.size is None and f.url.startswith("http")]
        sizes = await asyncio.gather(*(self.head_size(f.url) for f in todo),
                                     return_exceptions=True)
        for size in sizes:
            if isinstance(size, HostUnreachableError | CircuitOpenError):
                raise size
        for f, size in zip(todo, sizes, strict=True):
            if isinstance(size, HTTPStatusError | TransferError):
                log.warning("no size for %s: %s", f.url, size)
            elif isinstance(size, BaseException):
                raise size
            else:
                f.size = size


def parse_names(values: list[str] | None, option: str, known: list[str]) -> list[str] | None:
    """Names given to ``option`` (repeated and/or comma-separated), in order, once each;
    ``None`` when the option was not given.

    An empty or blank name (``--sources ,``, ``kegg,``) and unknown names are a
    :class:`ConfigError` naming them and listing the known ones.
    """
    if values is None:
        return None
    names = [v.strip() for item in values for v in item.split(",")]
    if not names or not all(names):
        raise ConfigError(f"{option} {','.join(values)!r} has an empty name; give names "
                          f"separated by commas, from: {', '.join(known)}")
    unknown = [n for n in dict.fromkeys(names) if n not in known]
    if unknown:
        raise ConfigError(f"{option}: unknown {', '.join(map(repr, unknown))}; known: "
                          f"{', '.join(known)}")
    return list(dict.fromkeys(names))


def select_sources(
    available: Mapping[str, SourceAdapter], sources: list[str] | None, domains: list[str] | None
) -> list[str]:
    """Names of the source modules matching ``--sources`` and ``--domains``."""
    names = list(available)
    known_domains = sorted({m.DOMAIN for m in available.values()})
    parse_names(sources, "--sources", names)
    parse_names(domains, "--domains", known_domains)
    chosen = [n for n in names if (sources is None or n in sources)
              and (domains is None or available[n].DOMAIN in domains)]
    if not chosen:
        raise ConfigError(f"no source matches --sources {','.join(sources or [])!r} and "
                          f"--domains {','.join(domains or [])!r}; "
                          + ", ".join(f"{n} is {available[n].DOMAIN}" for n in sources or []))
    return chosen
