"""Deep ensembles in the catalogue: group trained models into one ``models`` row.

``make_ensemble(url, [3, 4, 5], name)`` checks that the catalogue models load and share
their training data, writes the manifest (:mod:`exocube.ml.ensemble`) and records one
row: ``checkpoint_uri`` the manifest, ``mode`` the members' recorded mode, ``config``
``{"ensemble": {"members": [3, 4, 5], "n_members": 3}}``, ``metrics`` the members'
mean of every metric they all record. The row is chosen, promoted and served like any
model; its predictions carry ``<var>_std``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from exocube.catalog import Model, session_scope, upgrade
from exocube.config import get_settings
from exocube.errors import ExocubeError, ModelUnavailableError, ParameterError
from exocube.ml import (
    fit_spread_scale,
    load_members,
    read_manifest,
    record_model,
    write_manifest,
)

log = logging.getLogger(__name__)


def is_ensemble(row: Model) -> bool:
    return isinstance(row.config, dict) and isinstance(row.config.get("ensemble"), dict)


def rows_by_id(database_url: str, model_ids: Sequence[int]) -> list[Model]:
    upgrade(database_url)
    with session_scope(database_url) as session:
        found = {r.id: r for r in session.scalars(
            sa.select(Model).where(Model.id.in_(list(model_ids)))).all()}
        session.expunge_all()
    missing = [i for i in model_ids if i not in found]
    if missing:
        raise ModelUnavailableError(f"no catalogue model has id {missing[0]}; `exocube "
                                    "models list` shows them")
    return [found[i] for i in model_ids]


def make_ensemble(database_url: str | None, model_ids: Sequence[int], name: str,
                  manifest_path: Path | None = None, calibrate: bool = False,
                  store_database_url: str | None = None) -> int:
    """Record the catalogue models ``model_ids`` as one ensemble; return its id. With
    ``calibrate``, fit the spread scale on the members' validation runs (their store, as
    catalogued in ``store_database_url``, default ``database_url``) and keep it in the
    manifest."""
    url = database_url or str(get_settings().database_url)
    if len(set(model_ids)) != len(model_ids) or not model_ids:
        raise ParameterError("model_ids", list(model_ids), "distinct model ids: at least 2, "
                             "or 1 with a std head")
    rows = rows_by_id(url, model_ids)
    nested = [r.id for r in rows if is_ensemble(r)]
    if nested:
        raise ParameterError("model_ids", nested[0], "a trained model, not an ensemble")
    path = (manifest_path or get_settings().home / "ensembles" / f"{name}.json").resolve()
    if path.exists():
        raise ParameterError("manifest", str(path), "a path that does not exist yet")
    manifest = write_manifest(path, name, [r.checkpoint_uri for r in rows], list(model_ids))
    try:
        tasks = load_members(read_manifest(path))
        if calibrate:
            scale = fit_spread_scale(tasks, str(tasks[0].spec.store),
                                     store_database_url or url)
            manifest = write_manifest(path, name, [r.checkpoint_uri for r in rows],
                                      list(model_ids), scale)
    except ExocubeError:
        path.unlink()  # not an ensemble after all: leave no manifest behind, and say why
        raise
    shared = set.intersection(*(set(r.metrics or {}) for r in rows))
    metrics = {k: sum(float(r.metrics[k]) for r in rows) / len(rows) for k in sorted(shared)
               if all(isinstance(r.metrics[k], int | float) for r in rows)}
    config = {"ensemble": {"members": list(model_ids), "n_members": len(rows),
                           "std_scale": manifest.std_scale},
              "store": tasks[0].spec.store}
    model_id = record_model(name, rows[0].mode, str(path), rows[0].dataset_version, metrics,
                            config, url)
    log.info("recorded ensemble %s (%s) of %d members, manifest %s", model_id, name,
             len(manifest.members), path)
    return model_id
