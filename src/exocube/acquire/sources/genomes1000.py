"""The 1000 Genomes Project (domain: genomics).

Files are found through the project's index file (``current.tree`` at the root
of ``ftp.1000genomes.ebi.ac.uk/vol1/ftp``): one tab-separated line per entry,
``path  type  size  updated  md5`` (size and MD5 are recognised by their form,
so the parser does not depend on the column order after ``type``). Every
selected file is planned with its size and published MD5, fetched over FTP
(``REST`` resume) or HTTPS, and verified against that MD5. Validation checks
gzip integrity (VCFs and their tabix indexes are BGZF) and a VCF's
``##fileformat=VCF`` header line.
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import re
import time
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import unquote, urlsplit

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport
from exocube.acquire.quality.gzipcheck import validate_gzip
from exocube.acquire.units import format_bytes
from exocube.errors import InputDataError, TransferError

MD5 = re.compile(r"[0-9a-fA-F]{32}")
DIGITS = re.compile(r"[0-9]+")  # str.isdigit also takes "\u00b2" and other scripts' digits
NAME = "genomes1000"
DOMAIN = "genomics"
DESCRIPTION = "1000 Genomes: index file with per-file MD5, FTP/HTTPS downloads"
MAX_REQUESTS_PER_SECOND: float | None = None  # the settings' limits only


def base_url(opts: AcquireOptions) -> str:
    return opts.genomes1000.base_url


def parse_index(text: str, base_path: str) -> list[tuple[str, int | None, str | None]]:
    """``(path relative to base, size, md5)`` for every file line of the index.

    Index paths are relative to the server root (``vol1/ftp/release/...``); the
    part that the base URL already names is removed, also on mirrors whose root
    differs (base ``/mirror/vol1/ftp``).
    """
    segments = base_path.strip("/").split("/")
    prefixes = ["/".join(segments[i:]) + "/" for i in range(len(segments)) if segments[i]]
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 5:
            raise InputDataError(f"index line {lineno} has {len(cols)} fields, expected 5 "
                                 f"(path, type, size, updated, md5): {line[:80]!r}")
        path, kind = cols[0], cols[1]
        if kind != "file":
            continue
        size = next((int(c) for c in cols[2:] if DIGITS.fullmatch(c.strip())), None)
        md5 = next((c.strip().lower() for c in cols[2:] if MD5.fullmatch(c.strip())), None)
        path = next((path.removeprefix(p) for p in prefixes if path.startswith(p)), path)
        rows.append((path, size, md5))
    return rows


def _ftp_text(url: str, opts: AcquireOptions) -> str:
    """The index over FTP, in a thread: it stops itself after ``plan_timeout``
    seconds or ``plan_max_bytes`` bytes (the awaiting task cannot stop a thread)."""
    parts = urlsplit(url)
    out = io.BytesIO()
    deadline = time.monotonic() + opts.plan_timeout
    stopped: list[str] = []

    def write(block: bytes) -> None:
        if out.tell() + len(block) > opts.plan_max_bytes:
            stopped.append(f"the index is larger than acquire.plan_max_bytes "
                           f"({format_bytes(opts.plan_max_bytes)}); stopped reading it")
        elif time.monotonic() > deadline:
            stopped.append(f"reading the index took longer than acquire.plan_timeout "
                           f"({opts.plan_timeout:g} s)")
        if stopped:
            raise TransferError(f"{url}: {stopped[0]}")
        out.write(block)

    try:
        with ftplib.FTP(timeout=opts.read_timeout) as ftp:
            ftp.connect(parts.hostname or "", parts.port or 21)
            ftp.login(parts.username or "anonymous", parts.password or "exocube@")
            ftp.retrbinary(f"RETR {unquote(parts.path)}", write)
    except ftplib.Error:
        if stopped:  # the server's "426 Transfer aborted" on leaving is our doing
            raise TransferError(f"{url}: {stopped[0]}") from None
        raise
    return out.getvalue().decode("utf-8")


async def fetch_index(ctx: PlanContext) -> str:
    o = ctx.opts.genomes1000
    url = f"{o.base_url.rstrip('/')}/{o.index}"
    if url.startswith("ftp://"):
        try:
            return await asyncio.to_thread(_ftp_text, url, ctx.opts)
        except (ftplib.Error, OSError, EOFError) as exc:
            raise TransferError(f"cannot read the 1000 Genomes index {url}: {exc}") from exc
    return (await ctx.get(url)).text


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    o = ctx.opts.genomes1000
    base = o.base_url.rstrip("/")
    rows = parse_index(await fetch_index(ctx), urlsplit(base).path)
    return [PlannedFile(
        source=NAME, domain=DOMAIN, relpath=f"{NAME}/{path}", url=f"{base}/{path}",
        size=size, md5=md5, kind="gzip" if path.endswith((".gz", ".tbi", ".bgz")) else "binary",
        media_type="application/gzip" if path.endswith(".gz") else None,
    ) for path, size, md5 in rows if any(fnmatch(path, pat) for pat in o.include)]


def validate(path: Path, item: PlannedFile) -> QualityReport:
    if item.kind != "gzip":
        report = QualityReport()
        report.flag("format", "no format validator for this file type; size and MD5 verified",
                    penalty=0.0)
        return report
    vcf = item.relpath.endswith((".vcf.gz", ".vcf.bgz"))
    return validate_gzip(path, b"##fileformat=VCF" if vcf else None)
