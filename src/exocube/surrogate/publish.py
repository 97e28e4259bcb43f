"""Catalogue models in and out: export one as a self-contained folder, import one.

``export_catalogue_model(url, 3, out, note=...)`` writes catalogue model 3 (a trained
network or an ensemble row) as an exported model (:mod:`exocube.ml.export`) with its
catalogue record (and an ensemble's members' records: their training configuration and
metrics) as provenance. ``import_model(url, folder)`` checks an exported model
(every file against its SHA-256, the networks load) and records it as a new catalogue
row whose ``checkpoint_uri`` is the folder's file (once: importing the same folder again
gives the same row), so it is chosen, promoted, served and
evaluated like a model trained here. The row's ``config`` keeps the exported training
configuration and says where it was imported from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from exocube.catalog import Model
from exocube.ml import (
    export_model,
    is_manifest,
    load_exported,
    model_entry,
    read_provenance,
    record_model,
)
from exocube.surrogate.ensemble import is_ensemble, rows_by_id
from exocube.surrogate.loading import catalogue_rows

log = logging.getLogger(__name__)


def export_catalogue_model(database_url: str, model_id: int, out: Path,
                           note: str = "") -> Path:
    """Export catalogue model ``model_id`` into the new folder ``out``; return the file
    to load."""
    row = rows_by_id(database_url, [model_id])[0]
    member_ids = row.config["ensemble"].get("members", []) if is_ensemble(row) else []
    members = [_record(r) for r in rows_by_id(database_url, member_ids)]
    return export_model(row.checkpoint_uri, out, {"model": _record(row), "members": members,
                                                  "note": note})


def _record(row: Model) -> dict[str, Any]:
    return {"catalogue_id": int(row.id), "name": row.name, "mode": row.mode,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "dataset_version": row.dataset_version, "metrics": dict(row.metrics or {}),
            "config": dict(row.config or {})}


def import_model(database_url: str, folder: Path, name: str | None = None) -> int:
    """Record the exported model in ``folder`` in the catalogue; return its id (the
    existing row's if the catalogue already holds this folder's file)."""
    folder = folder.resolve()
    record = read_provenance(folder).get("model", {})
    tasks = load_exported(folder)
    entry = model_entry(folder)
    known = [r for r in catalogue_rows(database_url) if r.checkpoint_uri == str(entry)]
    if known:
        log.info("%s is already catalogue model %s", folder, known[0].id)
        return int(known[0].id)
    config = dict(record.get("config") or {})
    if is_manifest(entry):  # loaded through its manifest, as an ensemble row is
        ensemble = dict(config.get("ensemble") or {})
        config["ensemble"] = {**ensemble, "members": [], "n_members": len(tasks)}
    config["imported_from"] = str(folder)
    model_id = record_model(name or str(record.get("name", folder.name)),
                            str(record.get("mode", "datacube")), str(entry),
                            record.get("dataset_version") or tasks[0].spec.version,
                            dict(record.get("metrics") or {}), config, database_url)
    log.info("imported %s as catalogue model %s", folder, model_id)
    return model_id


__all__ = ["export_catalogue_model", "import_model"]
