"""Open the catalogue: make the folders, migrate, hand back a session factory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from db.home import Home
from db.migrate import at_head, upgrade
from db.session import make_engine, session_factory


class CatalogueError(RuntimeError):
    """The catalogue cannot be opened: a file that is not a database, a server that refuses or is not there."""


@dataclass(frozen=True)
class Catalogue:
    home: Home
    engine: Engine
    sessions: sessionmaker[Session]


def open_catalogue(home: Home | None = None) -> Catalogue:
    """Open (and migrate) the catalogue of ``home`` (default: from the environment).

    Raises:
        CatalogueError: it cannot be read; the message is one line saying which and what to do.
    """
    home = (home or Home.from_env()).ensure()
    engine = make_engine(home.database_url)
    try:
        if not at_head(engine):
            upgrade(home.database_url)
    except DBAPIError as error:
        engine.dispose()
        cause = str(error.orig).splitlines()[0] if error.orig is not None else type(error).__name__
        if engine.url.get_backend_name() == "sqlite":
            raise CatalogueError(f"the catalogue {engine.url.database} cannot be read ({cause}): restore it from a "
                                 "backup, or move it aside and submit the playlists again") from error  # fmt: skip
        raise CatalogueError(f"the catalogue at {engine.url.render_as_string()} cannot be reached ({cause}): check "
                             "that its server is up and TUNESMITH_DATABASE_URL") from error  # fmt: skip
    return Catalogue(home=home, engine=engine, sessions=session_factory(engine))
