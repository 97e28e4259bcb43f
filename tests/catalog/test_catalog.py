"""Catalogue round trips and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from exocube.catalog import (
    AcquisitionRun,
    Artifact,
    Base,
    Dataset,
    DatasetFile,
    Model,
    RunQuality,
    Simulation,
    Source,
    current_revision,
    engine_for,
    session_scope,
    upgrade,
)
from exocube.catalog.db import downgrade
from exocube.errors import CatalogError

pytestmark = pytest.mark.services


def head_revision(url: str) -> str | None:
    """The newest migration (helpers chain theirs after 0001)."""
    from alembic.script import ScriptDirectory

    from exocube.catalog.db import alembic_config

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_upgrade_from_empty_creates_every_table(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision(empty_db_url)
    tables = set(sa.inspect(engine_for(empty_db_url)).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_models_match_migrations(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    with engine_for(empty_db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    downgrade(empty_db_url, "base")
    assert "simulations" not in sa.inspect(engine_for(empty_db_url)).get_table_names()
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision(empty_db_url)


def test_round_trip_every_table(catalog_url: str) -> None:
    params = {"radius_earth": 1.0, "insolation_earth": 0.66, "stellar_teff_k": 2566.0}
    with session_scope(catalog_url) as s:
        src = Source(name="nasa_exoplanet_archive", domain="astronomy", base_url="http://x")
        run = AcquisitionRun(id="run-1", config={"sources": ["nasa"]}, checkpoint={"done": [1]})
        s.add_all([src, run])
        s.flush()
        s.add(Artifact(source_id=src.id, run_id=run.id, uri="file:///a.csv", size=2_988_094,
                       sha256="0" * 64, media_type="text/csv", provenance={"etag": "x"},
                       quality_score=0.9, quality_reasons=["st_teff=415 flagged"]))
        s.add(Simulation(run_id="gen-0-00000", generator="exocube-builtin", version="1",
                         parameters=params, status="done", output_uri="file:///r.nc"))
        ds = Dataset(store_uri="s3://b/p", version_id="v1", schema_version="1",
                     code_version="0.1.0", n_runs=3)
        s.add(ds)
        s.flush()
        s.add(DatasetFile(dataset_id=ds.id, path="/r.nc", sha256="f" * 64, run_id="gen-0-00000"))
        s.add(RunQuality(dataset_id=ds.id, run_id="gen-0-00000", score=0.4,
                         reasons=["hus > q_sat at 3 points"], quarantined=True))
        s.add(Model(name="unet", mode="datacube", checkpoint_uri="file:///m.ckpt",
                    dataset_version="v1", metrics={"rmse_ta": 1.5}))
    with session_scope(catalog_url) as s:
        sim = s.scalars(sa.select(Simulation)).one()
        assert sim.parameters == params
        art = s.scalars(sa.select(Artifact)).one()
        assert (art.size, art.source.name, art.run.checkpoint) == (
            2_988_094, "nasa_exoplanet_archive", {"done": [1]})
        ds = s.scalars(sa.select(Dataset)).one()
        assert ds.files[0].sha256 == "f" * 64
        assert ds.run_quality[0].quarantined is True
        assert s.scalars(sa.select(Model)).one().metrics == {"rmse_ta": 1.5}


def test_failed_transaction_leaves_nothing(catalog_url: str) -> None:
    with pytest.raises(CatalogError, match="catalogue transaction failed"), \
            session_scope(catalog_url) as s:
        s.add(Source(name="dup", domain="astronomy"))
        s.add(Source(name="dup", domain="astronomy"))
    with session_scope(catalog_url) as s:
        assert s.scalars(sa.select(Source)).all() == []


def test_unmigrated_catalogue_error_says_how_to_fix(empty_db_url: str) -> None:
    with pytest.raises(CatalogError, match="run `exocube db upgrade`"), \
            session_scope(empty_db_url) as s:
        s.scalars(sa.select(Simulation)).all()
