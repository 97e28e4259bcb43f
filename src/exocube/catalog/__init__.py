"""The provenance catalogue: SQLAlchemy models, sessions and migrations."""

from exocube.catalog.db import current_revision, engine_for, redacted_url, session_scope, upgrade
from exocube.catalog.models import (
    AcquisitionRun,
    Artifact,
    Base,
    Campaign,
    Dataset,
    DatasetFile,
    Fit,
    FitBlock,
    Model,
    ModelPromotion,
    RunQuality,
    Simulation,
    Source,
    TaskResult,
    utcnow,
)

__all__ = [
    "AcquisitionRun",
    "Artifact",
    "Base",
    "Campaign",
    "Dataset",
    "DatasetFile",
    "Fit",
    "FitBlock",
    "Model",
    "ModelPromotion",
    "RunQuality",
    "Simulation",
    "Source",
    "TaskResult",
    "current_revision",
    "engine_for",
    "redacted_url",
    "session_scope",
    "upgrade",
    "utcnow",
]
