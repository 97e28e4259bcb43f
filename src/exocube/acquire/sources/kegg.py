"""KEGG, the Kyoto Encyclopedia of Genes and Genomes (domain: astrobiology).

Metabolic pathways and modules (which chemistry life uses) through the KEGG
REST API: ``<base>/list/<database>`` gives ``id<TAB>name`` lines, and
``<base>/get/<id>`` the flat-file entry. KEGG asks for at most 3 requests per
second, and answers 404 when an entry does not exist: that is "no result"
(the file is skipped with that reason), not a failure.
"""

from __future__ import annotations

from pathlib import Path

from exocube.acquire.options import AcquireOptions
from exocube.acquire.plan import PlanContext, PlannedFile
from exocube.acquire.quality import QualityReport

NAME = "kegg"
DOMAIN = "astrobiology"
DESCRIPTION = "KEGG REST (list/get): pathway and module entries"
MAX_REQUESTS_PER_SECOND: float | None = 3.0  # KEGG asks for at most 3 per second


def base_url(opts: AcquireOptions) -> str:
    return opts.kegg.base_url


def parse_list(text: str) -> list[str]:
    """Entry ids from a ``list`` answer (``path:map00010<TAB>Glycolysis ...``)."""
    ids = []
    for line in text.splitlines():
        if line.strip():
            ids.append(line.split("\t", 1)[0].strip())
    return ids


async def plan(ctx: PlanContext) -> list[PlannedFile]:
    o = ctx.opts.kegg
    base = o.base_url.rstrip("/")
    ids = list(o.entries)
    if not ids:
        resp = await ctx.get(f"{base}/list/{o.database}")
        ids = parse_list(resp.text)[: o.max_entries]
    return [PlannedFile(
        source=NAME, domain=DOMAIN, relpath=f"{NAME}/{o.database}/{i.replace(':', '_')}.txt",
        url=f"{base}/get/{i}", media_type="text/plain", kind="kegg", missing_ok=True,
        meta={"entry": i},
    ) for i in ids]


def validate(path: Path, item: PlannedFile) -> QualityReport:
    """A KEGG flat file starts with ``ENTRY`` and ends with ``///``."""
    report = QualityReport()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        report.error("kegg.encoding", f"not UTF-8 text: {exc}", penalty=1.0)
        return report
    if not text.startswith("ENTRY"):
        report.error("kegg.format", f"does not start with ENTRY: {text[:40]!r}", penalty=0.6)
    if not text.rstrip().endswith("///"):
        report.error("kegg.format", "does not end with the /// record terminator (truncated?)",
                     penalty=0.6)
    return report
