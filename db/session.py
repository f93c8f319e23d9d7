"""Engines and sessions. Sessions are passed in explicitly; nothing here is global."""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

STRICT_JSON = functools.partial(json.dumps, allow_nan=False)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    JSON columns refuse NaN and infinities on every backend, as PostgreSQL's JSON type does, so a figure that
    does not exist is written as ``null`` and SQLite catalogues cannot hold what PostgreSQL would refuse.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=STRICT_JSON)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            _write_ahead_log(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=STRICT_JSON)


def _write_ahead_log(cursor: Any, *, seconds: float = 30.0) -> None:
    """Put the database in WAL mode. SQLite refuses at once, without waiting out the busy timeout, while another
    connection writes to a database not yet in WAL mode (two runs opening a new catalogue together), so wait here."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
