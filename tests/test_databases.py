"""Two test runs on one machine share the PostgreSQL test database without touching each other's tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.databases import empty_postgres_database

ROOT = Path(__file__).resolve().parent.parent


def test_another_test_process_emptying_its_database_leaves_ours_alone() -> None:
    ours = empty_postgres_database()  # skipped without PostgreSQL (and failed in CI)
    engine = create_engine(ours)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE marker (id integer)"))
        other = subprocess.run(
            [sys.executable, "-c", "from tests.databases import empty_postgres_database as e; print(e())"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60,
            check=True,
        )  # fmt: skip
        assert other.stdout.strip() != ours  # a schema of its own
        with engine.connect() as connection:
            assert connection.execute(text("SELECT to_regclass('marker')")).scalar() is not None
    finally:
        engine.dispose()
