"""Fixtures of the broker and campaign tests: the real Redis server, a queue prefix of
its own per test (deleted afterwards), and a migrated catalogue on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from exocube.catalog import db as catalog_db
from exocube.ifu.broker import WorkQueue
from services import service_unavailable

REDIS_URL = os.environ.get("EXOCUBE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_unavailable("Redis", f"{REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def prefix(redis_url):
    name = f"exocube-test:{uuid.uuid4().hex[:12]}"
    yield name
    WorkQueue(redis_url, name).delete()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    catalog_db.upgrade(url)
    return url
