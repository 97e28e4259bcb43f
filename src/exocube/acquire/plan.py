"""Run plans: the files a run will fetch, with expected sizes, per source and domain.

A plan is built by asking each selected source module for its files
(:func:`build_plan`), then stored in the run's catalogue row so that
``--resume`` uses exactly the same list even if the archive changed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from exocube.acquire.names import safe_relpath
from exocube.acquire.options import AcquireOptions
from exocube.acquire.partial import Expected
from exocube.acquire.transfer import HTTPStatusError, Politeness
from exocube.errors import ConfigError, TransferError

log = logging.getLogger(__name__)


@dataclass
class PlannedFile:
    """One file a run will fetch; ``relpath`` (below the destination) is checked by
    :func:`~exocube.acquire.names.safe_relpath` and raises
    :class:`~exocube.errors.UnsafeNameError` if it cannot be made safe."""

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

    @property
    def expected(self) -> Expected:
        return Expected(size=self.size, sha256=self.sha256, md5=self.md5)


@dataclass
class Plan:
    """The files of a run and their totals."""

    files: list[PlannedFile]

    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """Files, known bytes and files of unknown size, per source and per domain."""
        out: dict[str, dict[str, dict[str, int]]] = {"source": {}, "domain": {}}
        for group in ("source", "domain"):
            acc: dict[str, dict[str, int]] = defaultdict(
                lambda: {"files": 0, "bytes": 0, "unknown_size": 0})
            for f in self.files:
                row = acc[getattr(f, group)]
                row["files"] += 1
                row["bytes"] += f.size or 0
                row["unknown_size"] += f.size is None
            out[group] = dict(acc)
        return out

    @property
    def known_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.files]

    @classmethod
    def from_json(cls, rows: list[dict[str, Any]]) -> Plan:
        return cls([PlannedFile(**r) for r in rows])


class PlanContext:
    """What a source needs to build its part of a plan: settings and polite HTTP."""

    def __init__(
        self, opts: AcquireOptions, client: httpx.AsyncClient, polite: Politeness
    ) -> None:
        self.opts = opts
        self.client = client
        self.polite = polite

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.polite.request(self.client, "GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.polite.request(self.client, "POST", url, **kwargs)

    async def head_size(self, url: str) -> int | None:
        """Content-Length from a HEAD request, or ``None`` when the server does not say."""
        resp = await self.polite.request(self.client, "HEAD", url)
        length = resp.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None

    async def fill_sizes(self, files: list[PlannedFile]) -> None:
        """HEAD every file whose size is unknown (rate limits apply)."""
        todo = [f for f in files if f.size is None and f.url.startswith("http")]
        sizes = await asyncio.gather(*(self.head_size(f.url) for f in todo),
                                     return_exceptions=True)
        for f, size in zip(todo, sizes, strict=True):
            if isinstance(size, HTTPStatusError | TransferError):
                log.warning("no size for %s: %s", f.url, size)
            elif isinstance(size, BaseException):
                raise size
            else:
                f.size = size


def select_sources(
    available: dict[str, Any], sources: list[str] | None, domains: list[str] | None
) -> list[str]:
    """Names of the source modules matching ``--sources`` and ``--domains``."""
    names = list(available)
    for name in sources or []:
        if name not in available:
            raise ConfigError(f"unknown source {name!r}; known sources: {', '.join(names)}")
    known_domains = sorted({m.DOMAIN for m in available.values()})
    for dom in domains or []:
        if dom not in known_domains:
            raise ConfigError(f"unknown domain {dom!r}; known domains: {', '.join(known_domains)}")
    chosen = [n for n in names if (not sources or n in sources)
              and (not domains or available[n].DOMAIN in domains)]
    if not chosen:
        raise ConfigError(f"no source matches sources={sources} and domains={domains}")
    return chosen
