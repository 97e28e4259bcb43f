"""Engines, transactional sessions and migrations for the catalogue.

A SQLite catalogue inside the exocube home (the default,
``sqlite:///<home>/catalog.sqlite``) is created and migrated on its first use in a
process, so a fresh home works without ``exocube db upgrade``. Any other database
(PostgreSQL, a SQLite file elsewhere) is migrated only on request: a reader of an
unmigrated one gets a :class:`CatalogError` saying to run ``exocube db upgrade``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from exocube.config import get_settings
from exocube.errors import CatalogError

MIGRATIONS = files("exocube.catalog") / "migrations"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their parent directory and foreign keys on.

    For PostgreSQL a schema can be chosen in the URL with
    ``?options=-csearch_path%3Dmyschema``.
    """
    try:
        sa_url = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise CatalogError(
            f"database URL {url!r} is not a valid SQLAlchemy URL; "
            "expected e.g. sqlite:///path/catalog.sqlite or postgresql+psycopg://user@host/db"
        ) from exc
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(sa_url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """A cached engine per URL (one pool per process)."""
    return make_engine(url)


def in_exocube_home(url: str) -> bool:
    """Whether ``url`` is a SQLite file inside the exocube home (migrated on first use)."""
    try:
        sa_url = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return False
    if sa_url.get_backend_name() != "sqlite" or sa_url.database in (None, "", ":memory:"):
        return False
    home = get_settings().home.resolve()
    return Path(sa_url.database).resolve().is_relative_to(home)


_MIGRATED: set[str] = set()


def migrate_on_first_use(url: str) -> None:
    """Create and migrate the exocube home's SQLite catalogue once per process."""
    if url in _MIGRATED or not in_exocube_home(url):
        return
    upgrade(url)
    _MIGRATED.add(url)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error.

    The exocube home's SQLite catalogue is created and migrated first if needed.
    """
    migrate_on_first_use(url)
    factory = sessionmaker(engine_for(url), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise CatalogError(
            f"catalogue transaction failed on {redacted_url(url)}: {exc}{_missing_table_hint(exc)}"
        ) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _missing_table_hint(exc: SQLAlchemyError) -> str:
    """A fix to suggest when the error says a table is missing (an unmigrated catalogue)."""
    text = str(exc)
    if "no such table" in text or "UndefinedTable" in text:
        return ". The catalogue has not been created or migrated: run `exocube db upgrade`"
    return ""


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the packaged migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (creating the database file if needed)."""
    try:
        command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as exc:
        raise CatalogError(
            f"could not migrate the catalogue at {redacted_url(url)}: {exc}. "
            "Check that the database is reachable and the URL is right (EXOCUBE_DATABASE_URL)."
        ) from exc


def downgrade(url: str, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` for an empty schema)."""
    _MIGRATED.discard(url)
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The migration revision the database is at, or ``None`` if unmigrated."""
    from alembic.runtime.migration import MigrationContext

    with engine_for(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def redacted_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid url>"
