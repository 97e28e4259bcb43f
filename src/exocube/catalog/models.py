"""Catalogue tables (SQLAlchemy 2 declarative models).

The catalogue records where every artefact came from: sources and their
downloaded artifacts, acquisition runs with their checkpoints, GCM simulations
with their parameter vectors, cube-store dataset versions with the files each
added and the quality of each run, trained models with their metrics, and
the model promoted for each prediction mode.

The schema is created and changed only by Alembic migrations
(``exocube db upgrade``); the models here must match the newest migration
(``tests/catalog/test_migrations.py`` checks that).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Timezone-aware current time in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class Source(Base):
    """A data source (an archive, a GCM, the built-in generator)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    domain: Mapped[str] = mapped_column(String(64))
    base_url: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    artifacts: Mapped[list[Artifact]] = relationship(back_populates="source")


class AcquisitionRun(Base):
    """One ``exocube acquire`` run: its plan/config, status and checkpoint."""

    __tablename__ = "acquisition_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(32), default="planned")
    checkpoint: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    artifacts: Mapped[list[Artifact]] = relationship(back_populates="run")


class Artifact(Base):
    """A file fetched from a source, with its provenance and quality."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("uri", name="uq_artifacts_uri"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("acquisition_runs.id"))
    uri: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    media_type: Mapped[str | None] = mapped_column(String(128))
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quality_score: Mapped[float | None] = mapped_column(Float)
    quality_reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(32), default="verified")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    source: Mapped[Source | None] = relationship(back_populates="artifacts")
    run: Mapped[AcquisitionRun | None] = relationship(back_populates="artifacts")


class Simulation(Base):
    """One GCM run (built-in generator or a real GCM) and its parameter vector."""

    __tablename__ = "simulations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(128), unique=True)
    generator: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32), default="pending")
    output_uri: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # a real GCM's run (migration 0003_simulation_runs)
    wall_time_s: Mapped[float | None] = mapped_column(Float)
    years_run: Mapped[int | None] = mapped_column(Integer)
    equilibrated: Mapped[bool | None] = mapped_column(Boolean)
    diagnostics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    log_tail: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Dataset(Base):
    """One immutable version of a cube store."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("store_uri", "version_id", name="uq_datasets_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_uri: Mapped[str] = mapped_column(Text)
    version_id: Mapped[str] = mapped_column(String(64))
    parent_version: Mapped[str | None] = mapped_column(String(64))
    schema_version: Mapped[str] = mapped_column(String(16))
    code_version: Mapped[str] = mapped_column(String(64))
    n_runs: Mapped[int] = mapped_column(Integer, default=0)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    files: Mapped[list[DatasetFile]] = relationship(back_populates="dataset")
    run_quality: Mapped[list[RunQuality]] = relationship(back_populates="dataset")


class DatasetFile(Base):
    """A source file that a dataset version added, with its hash."""

    __tablename__ = "dataset_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(128))

    dataset: Mapped[Dataset] = relationship(back_populates="files")


class RunQuality(Base):
    """The validation score of one run in one dataset version."""

    __tablename__ = "run_quality"
    __table_args__ = (UniqueConstraint("dataset_id", "run_id", name="uq_run_quality"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    run_id: Mapped[str] = mapped_column(String(128))
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    quarantined: Mapped[bool] = mapped_column(Boolean, default=False)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="run_quality")


class Model(Base):
    """A trained model checkpoint and the dataset version it was trained on."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(32))
    checkpoint_uri: Mapped[str] = mapped_column(Text)
    dataset_version: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelPromotion(Base):
    """The model a user promoted to answer one prediction mode (at most one per mode)."""

    __tablename__ = "model_promotions"

    mode: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    promoted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Fit(Base):
    """One Bayesian fit (exocube.ifu): its model, status, provenance and diagnostics."""

    __tablename__ = "fits"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32), default="warmup")
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sampler: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    warmup_state: Mapped[bytes | None] = mapped_column(LargeBinary)
    diagnostics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: with ``start="optimum"``: every optimum found (exocube.ifu.optima.StartReport)
    start_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FitBlock(Base):
    """One committed block of a fit's draws, with the sampler state after it."""

    __tablename__ = "fit_blocks"
    __table_args__ = (UniqueConstraint("fit_id", "block_index", name="uq_fit_blocks_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fit_id: Mapped[str] = mapped_column(ForeignKey("fits.id"))
    block_index: Mapped[int] = mapped_column(Integer)
    n_draws: Mapped[int] = mapped_column(Integer)
    divergences: Mapped[int] = mapped_column(Integer, default=0)
    draws: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TaskResult(Base):
    """The result of one brokered task, stored once per task id (idempotent)."""

    __tablename__ = "task_results"
    __table_args__ = (UniqueConstraint("task_id", name="uq_task_results_task"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    worker: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Campaign(Base):
    """A campaign of brokered fits: its kind, the spec its tasks are derived from, and
    how many tasks it has (results in ``task_results``, task ids ``<campaign id>:<index>``)."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_tasks: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
