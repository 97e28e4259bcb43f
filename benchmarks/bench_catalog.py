"""A benchmark's own catalogue: an SQLite file in its output folder, made the default."""

from __future__ import annotations

import os
from pathlib import Path

from exocube.catalog import upgrade
from exocube.config import get_settings


def private_catalogue(out: Path) -> str:
    """Create ``out`` and the catalogue ``out/catalog.sqlite`` (migrated); make it the
    catalogue that training records its models in (``EXOCUBE_DATABASE_URL``); its URL."""
    out.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{out / 'catalog.sqlite'}"
    upgrade(db)
    os.environ["EXOCUBE_DATABASE_URL"] = db
    get_settings.cache_clear()
    return db
