"""The PostgreSQL catalogue for tests: its URL from TUNESMITH_TEST_POSTGRES_URL, emptied for each use."""

from __future__ import annotations

import os

import pytest

POSTGRES_ENV = "TUNESMITH_TEST_POSTGRES_URL"


def empty_postgres_database() -> str:
    """The test PostgreSQL URL with its schema dropped and recreated; skips (fails in CI) when it is not set."""
    from sqlalchemy import create_engine, text

    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = f"{POSTGRES_ENV} is not set (.ci/run starts a PostgreSQL server and sets it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url
