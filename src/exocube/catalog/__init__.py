"""The provenance catalogue: SQLAlchemy models, sessions and migrations."""

from exocube.catalog.db import current_revision, engine_for, session_scope, upgrade
from exocube.catalog.models import (
    AcquisitionRun,
    Artifact,
    Base,
    Dataset,
    DatasetFile,
    Model,
    ModelPromotion,
    RunQuality,
    Simulation,
    Source,
    utcnow,
)

__all__ = [
    "AcquisitionRun",
    "Artifact",
    "Base",
    "Dataset",
    "DatasetFile",
    "Model",
    "ModelPromotion",
    "RunQuality",
    "Simulation",
    "Source",
    "current_revision",
    "engine_for",
    "session_scope",
    "upgrade",
    "utcnow",
]
