"""Shared fixtures: isolated settings, catalogue databases (SQLite and
PostgreSQL), a moto S3 server on loopback, and a Dask LocalCluster.

The session runs with its own ``HOME`` (and XDG, matplotlib, torch, dask cache
variables) from the moment this file is imported, and fails if anything was
written to the real home (``home_guard``). Each test then gets its own exocube
home (``exocube_home``).

Tests that need a service skip with the reason when it is unreachable, except
under ``EXOCUBE_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

from home_guard import HomeGuard

HOME_GUARD = HomeGuard.isolate()  # before any import below can read HOME

import os  # noqa: E402
import socket  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from exocube.catalog import db as catalog_db  # noqa: E402
from exocube.config import get_settings  # noqa: E402
from services import REQUIRE_SERVICES, service_unavailable  # noqa: E402, F401

pytest_plugins = ("pytester",)

PG_ADMIN_URL = os.environ.get(
    "EXOCUBE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(HOME_GUARD, "exocube-home-guard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def exocube_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own home directory and SQLite catalogue; nothing touches ~."""
    home = tmp_path / "exocube-home"
    for var in list(os.environ):
        if var.startswith("EXOCUBE_") and var not in ("EXOCUBE_REQUIRE_SERVICES",
                                                     "EXOCUBE_TEST_PG_URL"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("EXOCUBE_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[sa.engine.Engine]:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        service_unavailable("PostgreSQL", f"{PG_ADMIN_URL}: {exc.orig}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin_engine: sa.engine.Engine) -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema, dropped afterwards."""
    schema = f"exocube_test_{uuid.uuid4().hex[:12]}"
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    catalog_db.engine_for.cache_clear()
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """An empty catalogue database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def catalog_url(empty_db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated catalogue (SQLite and PostgreSQL), also set as the settings' database."""
    catalog_db.upgrade(empty_db_url)
    monkeypatch.setenv("EXOCUBE_DATABASE_URL", empty_db_url)
    get_settings.cache_clear()
    return empty_db_url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 for the whole session; its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_unavailable("moto S3 server", f"moto[server] not installed: {exc}")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the moto server, with settings and AWS env pointing at it."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("EXOCUBE_S3__ENDPOINT_URL", s3_endpoint)
    get_settings.cache_clear()
    name = f"exocube-test-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=name
    )
    return name


@pytest.fixture(scope="session")
def dask_client():
    """A real Dask LocalCluster with 2 worker processes, shared by the session."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()
