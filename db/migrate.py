"""Alembic owns the schema; this brings any catalogue URL up to date."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision: a catalogue already there is opened without loading Alembic (half
# of a quick command's start-up). tests/db checks it against the migration scripts.
HEAD = "0005"


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def at_head(engine: Engine) -> bool:
    """True when the catalogue's schema is at ``HEAD`` (False for a new or older one).

    Raises:
        sqlalchemy.exc.DBAPIError: the database cannot be read (a file that is not one, a server that refuses).
    """
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):  # a new catalogue
            return False
        return bool(connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD)


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def check(url: str) -> None:
    """Raise if the models and the migrations have drifted apart."""
    from alembic import command

    command.check(alembic_config(url))
