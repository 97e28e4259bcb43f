"""The one prediction entry over the catalogue's trained surrogates.

``predict(params, mode=...)`` validates a parameter set, derives tidal
locking, measures the request's distance to the model's training hull,
refuses requests far outside it unless ``allow_extrapolation`` is set, and
answers with a :class:`Prediction` that carries the model version, the
dataset version and the out-of-domain flag. Modes: ``scalar``, ``datacube``,
``joint`` and ``spectral`` (no spectral model exists, so it reports why).

``get_surrogate_model(mode, config)`` and ``get_data_module(mode, config)``
keep the earlier in-house system's entry points.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from exocube.config import Settings, get_settings
from exocube.ml import CubeDataModule, SurrogateTask
from exocube.surrogate.ensemble import is_ensemble, make_ensemble
from exocube.surrogate.loading import (
    MODEL_MODES,
    MODES,
    SPECTRAL_REASON,
    LoadedModel,
    ModelChoice,
    ModelInfo,
    catalogue_rows,
    promotions,
    unusable_reason,
)
from exocube.surrogate.planets import BatchSummary, predict_catalogue
from exocube.surrogate.prediction import FIELD_DIMS_2D, FIELD_DIMS_3D, SCALAR_META, Prediction
from exocube.surrogate.promotion import promote, unpromote
from exocube.surrogate.publish import export_catalogue_model, import_model
from exocube.surrogate.suggest import Suggestion, suggest_runs, write_design
from exocube.surrogate.surrogate import Surrogate, check_request, encode_rows


@lru_cache(maxsize=4)
def default_surrogate(database_url: str | None = None) -> Surrogate:
    """The models of a catalogue (default: the settings' one), loaded once per process.
    Call ``default_surrogate.cache_clear()`` to reload."""
    return Surrogate.from_catalogue(database_url)


def predict(params: Mapping[str, object], mode: str = "datacube",
            allow_extrapolation: bool = False, database_url: str | None = None) -> Prediction:
    """Predict one planet's climate with the catalogue's model for ``mode`` (the promoted
    one, else the newest; for another choice use ``Surrogate.from_catalogue(url, choice=...)``).

    Raises ParameterError for an invalid parameter set or one far outside the
    training data (unless ``allow_extrapolation``), ModelUnavailableError when no
    model answers ``mode``.
    """
    return default_surrogate(database_url).predict(params, mode, allow_extrapolation)


def _database_url(config: Settings | Mapping[str, Any] | None) -> str:
    if config is None:
        return str(get_settings().database_url)
    if isinstance(config, Settings):
        return str(config.database_url)
    url = config.get("database_url")
    return str(url) if url else str(get_settings().database_url)


def get_surrogate_model(mode: str, config: Settings | Mapping[str, Any] | None = None
                        ) -> SurrogateTask:
    """The trained LightningModule answering ``mode`` (compatibility entry point).

    ``config`` is exocube Settings or a mapping with ``database_url``; ``None`` uses
    the process settings.
    """
    return default_surrogate(_database_url(config)).model_for(mode).task


def get_data_module(mode: str, config: Settings | Mapping[str, Any] | None = None
                    ) -> CubeDataModule:
    """The datamodule of the store, version and split the ``mode`` model was trained on."""
    url = _database_url(config)
    task = default_surrogate(url).model_for(mode).task
    return CubeDataModule.for_spec(task.spec, database_url=url)

__all__ = [
    "FIELD_DIMS_2D",
    "FIELD_DIMS_3D",
    "MODEL_MODES",
    "MODES",
    "SCALAR_META",
    "SPECTRAL_REASON",
    "BatchSummary",
    "LoadedModel",
    "ModelChoice",
    "ModelInfo",
    "Prediction",
    "Suggestion",
    "Surrogate",
    "catalogue_rows",
    "check_request",
    "default_surrogate",
    "encode_rows",
    "export_catalogue_model",
    "get_data_module",
    "get_surrogate_model",
    "import_model",
    "is_ensemble",
    "make_ensemble",
    "predict",
    "predict_catalogue",
    "promote",
    "promotions",
    "suggest_runs",
    "unpromote",
    "unusable_reason",
    "write_design",
]
