"""gzip integrity: the whole stream decompresses and every member's CRC-32 and
length trailer match."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from exocube.acquire.quality import QualityReport


def validate_gzip(path: Path, first_line_prefix: bytes | None = None) -> QualityReport:
    """Decompress ``path`` fully; optionally check the first line (e.g. ``##fileformat=VCF``)."""
    report = QualityReport()
    try:
        with gzip.open(path, "rb") as fh:
            head = fh.readline()
            while fh.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        report.error("gzip", f"gzip stream is corrupt or truncated: {exc}", penalty=1.0)
        return report
    if first_line_prefix and not head.startswith(first_line_prefix):
        report.error("gzip.content", f"first line {head[:40]!r} does not start with "
                     f"{first_line_prefix!r}", penalty=0.5)
    return report
