"""The surrogate model: its data, its training task, its data spec and its scores.

The names below are what the other stages (``surrogate``, ``serve``, the CLI) use;
the evaluation is imported from :mod:`exocube.ml.evaluate` and the training command
line from :mod:`exocube.ml.cli` (both heavier to import).
"""

from exocube.ml.cli import main as train_main
from exocube.ml.datamodule import CubeDataModule
from exocube.ml.ensemble import (
    DEEP_ENSEMBLE,
    STD_HEAD,
    EnsembleManifest,
    is_manifest,
    load_members,
    mean_and_std,
    read_manifest,
    write_manifest,
)
from exocube.ml.evaluate import evaluate_checkpoint, fit_spread_scale
from exocube.ml.export import export_model, load_exported, model_entry, read_provenance
from exocube.ml.hull import ExtrapolationWarning, distance_to_hull
from exocube.ml.record import CatalogueRecorder, record_model
from exocube.ml.scalar import SCALAR_NAMES, SCALAR_UNITS, denormalise_scalars
from exocube.ml.spec import (
    LEGACY_PARAM_NAMES,
    SPEC_VERSION,
    DataSpec,
    GridWindow,
    ParamScale,
    ParamTable,
    Split,
)
from exocube.ml.stacked import StackedMembers
from exocube.ml.task import SurrogateTask, load_task

__all__ = [
    "DEEP_ENSEMBLE",
    "LEGACY_PARAM_NAMES",
    "SCALAR_NAMES",
    "SCALAR_UNITS",
    "SPEC_VERSION",
    "STD_HEAD",
    "CatalogueRecorder",
    "CubeDataModule",
    "DataSpec",
    "EnsembleManifest",
    "ExtrapolationWarning",
    "GridWindow",
    "ParamScale",
    "ParamTable",
    "Split",
    "StackedMembers",
    "SurrogateTask",
    "denormalise_scalars",
    "distance_to_hull",
    "evaluate_checkpoint",
    "export_model",
    "fit_spread_scale",
    "is_manifest",
    "load_exported",
    "load_members",
    "load_task",
    "mean_and_std",
    "model_entry",
    "read_manifest",
    "read_provenance",
    "record_model",
    "train_main",
    "write_manifest",
]
