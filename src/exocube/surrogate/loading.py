"""Find the trained models in the catalogue and load their checkpoints.

A checkpoint of :class:`~exocube.ml.task.SurrogateTask` always predicts the
3-D fields (mode ``datacube``); when it was trained with the scalar head it
also predicts the scalar diagnostics (mode ``scalar``), and so both at once
(mode ``joint``). For each mode the newest catalogue model able to answer it
is used. No spectral surrogate exists in exocube, so mode ``spectral`` is
always unavailable, with that reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
import torch
from numpy.typing import NDArray

from exocube.catalog import Model, session_scope, upgrade
from exocube.ml.task import SurrogateTask
from exocube.ml.transforms import encode_params

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("scalar", "datacube", "joint", "spectral")
MODEL_MODES: tuple[str, ...] = ("scalar", "datacube", "joint")
SPECTRAL_REASON = (
    "no spectral surrogate exists in exocube yet: the project trains 3-D climate (datacube) "
    "and scalar-diagnostic models only, and nothing predicts spectra from them; ask for mode "
    "'datacube' or 'joint' and forward-model spectra from the fields yourself"
)


@dataclass(frozen=True)
class ModelInfo:
    """What identifies the model behind an answer."""

    id: int
    name: str
    checkpoint: str
    dataset_version: str | None
    store: str | None
    recorded_mode: str
    created_at: str
    metrics: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "checkpoint": self.checkpoint,
                "dataset_version": self.dataset_version, "store": self.store,
                "recorded_mode": self.recorded_mode, "created_at": self.created_at,
                "metrics": dict(self.metrics)}


@dataclass
class LoadedModel:
    """A loaded checkpoint with its catalogue record and encoded training parameters."""

    info: ModelInfo
    task: SurrogateTask
    train_encoded: NDArray[np.float64]

    @property
    def modes(self) -> tuple[str, ...]:
        return ("scalar", "datacube", "joint") if self.task.has_scalars else ("datacube",)

    @cached_property
    def grid(self) -> dict[str, NDArray[np.float64]]:
        spec = self.task.hparams.data_spec
        return {k: np.asarray(spec[k], dtype=np.float64) for k in ("plev", "lat", "lon")}


def load_checkpoint(row: Model) -> LoadedModel:
    """Load one catalogue row's checkpoint on the CPU, in evaluation mode."""
    task = SurrogateTask.load_from_checkpoint(row.checkpoint_uri, map_location="cpu")
    task.eval()
    spec = task.hparams.data_spec
    p = spec["params"]
    rows = [p["runs"].index(r) for r in spec["split"]["train"]]
    values = torch.tensor(np.asarray(p["values"], np.float64)[rows])
    locked = torch.tensor(np.asarray(p["tidally_locked"], bool)[rows])
    train = encode_params(values, locked).numpy().astype(np.float64)
    info = ModelInfo(
        id=int(row.id), name=row.name, checkpoint=row.checkpoint_uri,
        dataset_version=row.dataset_version or spec.get("version"), store=spec.get("store"),
        recorded_mode=row.mode, created_at=row.created_at.isoformat() if row.created_at else "",
        metrics={k: float(v) for k, v in (row.metrics or {}).items()
                 if isinstance(v, int | float)})
    return LoadedModel(info=info, task=task, train_encoded=train)


def catalogue_rows(database_url: str) -> list[Model]:
    """Every ``models`` row, newest first."""
    upgrade(database_url)
    with session_scope(database_url) as session:
        rows = session.scalars(sa.select(Model).order_by(Model.id.desc())).all()
        session.expunge_all()
    return list(rows)


def select_models(database_url: str) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """The newest loadable model for each mode, and why the other modes are unavailable."""
    chosen: dict[str, LoadedModel] = {}
    problems: list[str] = []
    rows = catalogue_rows(database_url)
    for row in rows:
        if all(m in chosen for m in MODEL_MODES):
            break
        if row.mode not in MODEL_MODES:
            problems.append(f"model {row.id} ({row.name}) has mode {row.mode!r}, which exocube "
                            "cannot load")
            continue
        if not Path(row.checkpoint_uri).is_file():
            problems.append(f"model {row.id} ({row.name}): checkpoint {row.checkpoint_uri} "
                            "does not exist")
            log.warning("skipping catalogue model %s: checkpoint %s is missing", row.id,
                        row.checkpoint_uri)
            continue
        loaded = load_checkpoint(row)
        for mode in loaded.modes:
            chosen.setdefault(mode, loaded)
        log.info("loaded model %s (%s) for modes %s", row.id, row.name, loaded.modes)
    unavailable = {"spectral": SPECTRAL_REASON}
    for mode in MODEL_MODES:
        if mode in chosen:
            continue
        if not rows:
            why = (f"the catalogue at {_safe_url(database_url)} has no trained models; train "
                   "one with `exocube train fit --config cfg.yaml` (or run `exocube demo`)")
        else:
            need = "a model trained with the scalar head" if mode != "datacube" else "a model"
            why = (f"no catalogue model can answer mode {mode!r} (it needs {need})"
                   + (": " + "; ".join(problems) if problems else ""))
        unavailable[mode] = why
    return chosen, unavailable


def _safe_url(url: str) -> str:
    """The database URL without a password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparsable URL>"
