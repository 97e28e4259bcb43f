"""Fixtures shared by the IFU tests (defined in broker_fixtures.py)."""

from broker_fixtures import db_url, prefix, redis_url  # noqa: F401
