"""Open the catalogue: make the folders, migrate, hand back a session factory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.home import Home
from db.migrate import at_head, upgrade
from db.session import make_engine, session_factory


@dataclass(frozen=True)
class Catalogue:
    home: Home
    engine: Engine
    sessions: sessionmaker[Session]


def open_catalogue(home: Home | None = None) -> Catalogue:
    """Open (and migrate) the catalogue of ``home`` (default: from the environment)."""
    home = (home or Home.from_env()).ensure()
    engine = make_engine(home.database_url)
    if not at_head(engine):
        upgrade(home.database_url)
    return Catalogue(home=home, engine=engine, sessions=session_factory(engine))
