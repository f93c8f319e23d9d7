"""The PostgreSQL catalogue for tests: its URL from TUNESMITH_TEST_POSTGRES_URL, emptied for each use.

Each test process works in a schema of its own in that database (``run_<pid>``, first on the connection's
search path), so two test runs on one machine never drop each other's tables: they shared the ``public``
schema before, and a second run's tests failed on foreign keys while the first run's were using it.
"""

from __future__ import annotations

import atexit
import os

import pytest

POSTGRES_ENV = "TUNESMITH_TEST_POSTGRES_URL"


def empty_postgres_database() -> str:
    """A URL to the test PostgreSQL database whose schema (this process's own) was dropped and created again;
    skips (fails in CI) when the database is not set."""
    from sqlalchemy import create_engine, make_url, text

    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = f"{POSTGRES_ENV} is not set (.ci/run starts a PostgreSQL server and sets it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    schema = f"run_{os.getpid()}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    if schema not in _made:
        _made.add(schema)
        atexit.register(_drop, url, schema)
    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


_made: set[str] = set()


def _drop(url: str, schema: str) -> None:
    """Drop a schema this process made, once its tests are over (a server already gone: nothing to drop)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    except OperationalError:
        pass
    finally:
        engine.dispose()
