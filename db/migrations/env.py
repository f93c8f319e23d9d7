"""Alembic environment: batch mode so SQLite can alter tables; one migrator at a time per database."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine, event, text

from db.home import Home
from db.models import Base
from db.session import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url") or Home.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


MIGRATION_LOCK = 0x7475_6E65  # PostgreSQL advisory lock key ("tune"): taken by whoever migrates


def _write_locked(engine: Engine) -> None:
    """Make the engine's transactions SQLite's ``BEGIN IMMEDIATE``: the write lock is taken before anything is read.

    pysqlite opens a transaction only before its first data change, so two runs opening one new catalogue would
    both read "no tables yet" and both create them. SQLAlchemy's recipe: the driver leaves transactions alone and
    the engine's ``begin`` emits them.
    """

    @event.listens_for(engine, "connect")
    def _driver_leaves_transactions_alone(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def run_migrations_online() -> None:
    """Migrate in one transaction that first takes the database's migration lock, so runs started together
    (two `tunesmith submit` on a new catalogue) apply each migration once: the later one waits, then finds the
    schema at head. SQLite and PostgreSQL both roll DDL back with the transaction."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        _write_locked(engine)
    with engine.connect() as connection, connection.begin():
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():  # inside our transaction alembic opens none of its own
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
