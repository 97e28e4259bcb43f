"""Provenance in the catalogue: one ``sources`` row per archive and one
``artifacts`` row per file (URL, time, response headers, sha256, size, tool
version, run id, quality score and reasons)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from exocube.catalog import Artifact, Source, session_scope


@dataclass(frozen=True)
class KnownArtifact:
    """What the catalogue already knows about a file at a URI."""

    uri: str
    size: int | None
    sha256: str | None
    status: str
    run_id: str | None


def known_artifacts(db_url: str, root: str) -> dict[str, KnownArtifact]:
    """Artifacts stored under a destination root, by URI."""
    with session_scope(db_url) as s:
        rows = s.execute(sa.select(Artifact.uri, Artifact.size, Artifact.sha256,
                                   Artifact.status, Artifact.run_id)
                         .where(Artifact.uri.like(root.rstrip("/") + "/%"))).all()
    return {r.uri: KnownArtifact(r.uri, r.size, r.sha256, r.status, r.run_id) for r in rows}


def ensure_sources(db_url: str, sources: list[dict[str, str]]) -> dict[str, int]:
    """Insert or update ``sources`` rows (before a run starts); ids by name."""
    ids = {}
    with session_scope(db_url) as s:
        for row in sources:
            src = s.execute(sa.select(Source).where(Source.name == row["name"])
                            ).scalar_one_or_none()
            if src is None:
                src = Source(**row)
                s.add(src)
                s.flush()
            else:
                src.domain, src.base_url = row["domain"], row["base_url"]
                src.description = row["description"]
            ids[row["name"]] = src.id
    return ids


def record_artifact(
    db_url: str,
    *,
    source_id: int,
    uri: str,
    url: str,
    size: int,
    sha256: str,
    media_type: str | None,
    provenance: dict[str, Any],
    quality_score: float,
    quality_reasons: list[dict[str, Any]],
    status: str,
    run_id: str,
) -> int:
    """Insert or update the artifact at ``uri`` (one transaction); its id."""
    with session_scope(db_url) as s:
        art = s.execute(sa.select(Artifact).where(Artifact.uri == uri)).scalar_one_or_none()
        if art is None:
            art = Artifact(uri=uri)
            s.add(art)
        art.source_id = source_id
        art.run_id = run_id
        art.url = url
        art.size = size
        art.sha256 = sha256
        art.media_type = media_type
        art.provenance = provenance
        art.quality_score = quality_score
        art.quality_reasons = quality_reasons
        art.status = status
        s.flush()
        return art.id
