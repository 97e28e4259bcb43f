"""Record a trained model in the catalogue ``models`` table."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L

from exocube.catalog import Model, session_scope, upgrade
from exocube.config import get_settings
from exocube.ml.spec import DataSpec

log = logging.getLogger(__name__)


def record_model(name: str, mode: str, checkpoint: str, dataset_version: str | None,
                 metrics: dict[str, float], config: dict[str, Any],
                 database_url: str | None = None) -> int:
    """Insert one ``models`` row; return its id."""
    url = database_url or get_settings().database_url
    upgrade(url)
    with session_scope(url) as session:
        row = Model(name=name, mode=mode, checkpoint_uri=checkpoint,
                    dataset_version=dataset_version, metrics=metrics, config=config)
        session.add(row)
        session.flush()
        return int(row.id)


class CatalogueRecorder(L.Callback):
    """After ``fit``, record the best checkpoint with its dataset version and metrics."""

    def __init__(self, name: str = "surrogate", database_url: str | None = None) -> None:
        self.name = name
        self.database_url = database_url
        self.model_id: int | None = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run or not trainer.is_global_zero:
            return
        ckpt = trainer.checkpoint_callback
        path = getattr(ckpt, "best_model_path", "") or getattr(ckpt, "last_model_path", "")
        if not path:
            log.warning("no checkpoint was saved, so the model is not recorded in the catalogue")
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        best = getattr(ckpt, "best_model_score", None)
        if best is not None:
            metrics["best_" + str(ckpt.monitor)] = float(best)
        spec = DataSpec.from_dict(pl_module.hparams["data_spec"])
        config = {k: v for k, v in pl_module.hparams.items() if k != "data_spec"}
        config.update(store=spec.store, split_seed=spec.split.seed,
                      n_train=len(spec.split.train), n_val=len(spec.split.val),
                      n_test=len(spec.split.test), epochs=trainer.current_epoch)
        self.model_id = record_model(self.name, "datacube", str(Path(path).resolve()),
                                     spec.version, metrics, config, self.database_url)
        log.info("recorded model %s (%s) in the catalogue", self.model_id, path)
