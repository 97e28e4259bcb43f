"""Quality checks, one module per format: tables (CSV/TAP), FITS, NetCDF, gzip.

Each validator returns a :class:`QualityReport`: a score between 0 and 1 and
the reasons behind it. Reasons have a level: ``flag`` for values that are
unusual but may be genuine (a 415 K brown-dwarf host, a 4e8-day orbit) and cost
little, ``error`` for what cannot be right (unreadable file, failed checksum,
missing column, impossible value) and costs much. Below the configured
threshold (``acquire.quality_threshold``) an artifact is quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class QualityReport:
    """A score in [0, 1] and the reasons that lowered it."""

    score: float = 1.0
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def flag(self, check: str, message: str, penalty: float = 0.01, **extra: Any) -> None:
        """Record something unusual but possibly genuine."""
        self._add("flag", check, message, penalty, extra)

    def error(self, check: str, message: str, penalty: float = 0.5, **extra: Any) -> None:
        """Record something that cannot be right."""
        self._add("error", check, message, penalty, extra)

    def _add(self, level: str, check: str, message: str, penalty: float, extra: Any) -> None:
        self.reasons.append({"level": level, "check": check, "message": message,
                             "penalty": round(penalty, 4), **extra})
        self.score = max(0.0, round(self.score - penalty, 6))

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.reasons if r["level"] == "error"]

    @property
    def flags(self) -> list[dict[str, Any]]:
        return [r for r in self.reasons if r["level"] == "flag"]

    def quarantined(self, threshold: float) -> bool:
        return self.score < threshold

    def merge(self, other: QualityReport) -> QualityReport:
        for r in other.reasons:
            self._add(r["level"], r["check"], r["message"], r["penalty"],
                      {k: v for k, v in r.items()
                       if k not in ("level", "check", "message", "penalty")})
        return self
