"""Alembic environment: batch mode so SQLite can alter tables."""

from __future__ import annotations

from alembic import context

from db.home import Home
from db.models import Base
from db.session import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url") or Home.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
