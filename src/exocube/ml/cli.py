"""The training command line: ``exocube train fit --config cfg.yaml``.

A LightningCLI over :class:`~exocube.ml.task.SurrogateTask` and
:class:`~exocube.ml.datamodule.CubeDataModule`: their typed ``__init__``
arguments are the ``model:`` and ``data:`` sections of the config, so
``--data.zarr_root``, ``--model.depth``, ``--model.base_features``,
``--trainer.precision``, ``--trainer.strategy`` and ``--trainer.devices``
work as flags too. The datamodule's ``spec`` (grid, statistics, split) is
linked into the model, so it is saved in every checkpoint.

Lightning's own INFO lines (accelerator availability, "Tip:" adverts, the seed,
"fit stopped") are kept out of exocube's output: its loggers are set to WARNING,
so its warnings still show; ``exocube -v`` lets the INFO lines through. The
model summary table is off unless asked for (``--trainer.enable_model_summary
true``). Two of Lightning's warnings that say nothing about the user's run are
dropped: the hint that ``srun`` is on the PATH (printed on every machine with
SLURM's client installed, inside a job or not) and its own deprecation of
torch's ``LeafSpec`` check (between Lightning and torch, nothing a user can
change). Every other warning shows.

By default: seed 0 (``--trainer.deterministic true`` for bit-identical
re-runs, at about 10x the CPU cost of the 3-D convolutions), the best checkpoint by
``val/loss`` plus the last one, early stopping, a learning-rate monitor, a
CSV logger, and a catalogue row for the trained model.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from lightning import Trainer
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from exocube.ml.datamodule import CubeDataModule
from exocube.ml.record import CatalogueRecorder
from exocube.ml.spec import DataSpec
from exocube.ml.task import SurrogateTask


class SurrogateCLI(LightningCLI):
    """LightningCLI with the data spec linked into the model."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.spec", "model.data_spec", compute_fn=DataSpec.to_dict,
                              apply_on="instantiate")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with a CSV logger under ``default_root_dir`` unless one is configured."""
        cfg = self._get(self.config_init, "trainer", default={})
        if cfg.get("logger") in (None, True) and "logger" not in kwargs:
            root = cfg.get("default_root_dir") or os.getcwd()
            kwargs["logger"] = CSVLogger(save_dir=root, name="surrogate")
        return super().instantiate_trainer(**kwargs)


def trainer_defaults() -> dict[str, Any]:
    return {
        "callbacks": [
            ModelCheckpoint(monitor="val/loss", mode="min", save_last=True,
                            filename="best-{epoch:03d}"),
            EarlyStopping(monitor="val/loss", mode="min", patience=20),
            LearningRateMonitor(logging_interval="epoch"),
            CatalogueRecorder(),
        ],
        # Seeded, but not bit-deterministic by default: torch's deterministic mode makes the
        # CPU 3-D convolutions about 10x slower. Pass --trainer.deterministic true for that.
        "deterministic": False,
        "log_every_n_steps": 10,
        "enable_model_summary": False,
    }


LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning",
                     "lightning_fabric")


NOISE_WARNINGS = (r"The `srun` command is available on your system",
                  r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def quiet_lightning() -> None:
    """Lightning's loggers at WARNING, or at INFO when exocube's own INFO is on (``-v``);
    its two warnings that concern no run (:data:`NOISE_WARNINGS`) dropped."""
    verbose = logging.getLogger("exocube").getEffectiveLevel() <= logging.INFO
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    for message in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def main(args: list[str] | None = None, run: bool = True) -> SurrogateCLI:
    """Run the training CLI with ``args`` (``None``: ``sys.argv``)."""
    quiet_lightning()
    return SurrogateCLI(SurrogateTask, CubeDataModule, seed_everything_default=0,
                        trainer_defaults=trainer_defaults(), args=args, run=run,
                        save_config_kwargs={"overwrite": True})

