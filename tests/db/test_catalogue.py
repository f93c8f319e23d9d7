from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError

from db.catalogue import Catalogue, open_catalogue
from db.home import Home
from db.migrate import HEAD, at_head, check, head_revision, upgrade
from db.models import ModelVersion, Playlist, Reason, Source, SourceState
from db.session import make_engine
from tests.databases import empty_postgres_database

pytestmark = pytest.mark.both_databases


def test_migrations_match_models(catalogue: Catalogue) -> None:
    check(catalogue.home.database_url)  # raises if a model changed without a migration
    assert head_revision() == HEAD  # what open_catalogue trusts to skip Alembic for a catalogue already there
    assert at_head(catalogue.engine)


def test_sqlite_catalogue_is_a_wal_file_with_foreign_keys(catalogue: Catalogue) -> None:
    if not catalogue.home.database_url.startswith("sqlite"):
        pytest.skip("a SQLite property")
    with catalogue.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert Path(catalogue.home.root / "catalogue.sqlite").is_file()


def test_opening_twice_keeps_the_rows(home: Home) -> None:
    first = open_catalogue(home)
    with first.sessions.begin() as session:
        session.add(Playlist(url="https://example.org/list"))
    second = open_catalogue(home)
    with second.sessions() as session:
        assert [p.url for p in session.query(Playlist)] == ["https://example.org/list"]


def test_source_keys_are_unique(catalogue: Catalogue) -> None:
    with pytest.raises(IntegrityError), catalogue.sessions.begin() as session:
        session.add_all([Source(key="youtube:abc", url="u1"), Source(key="youtube:abc", url="u2")])
    with catalogue.sessions() as session:
        assert session.query(Source).count() == 0  # the failed transaction left nothing behind


def test_json_columns_refuse_nan_on_every_backend(catalogue: Catalogue) -> None:
    # PostgreSQL's JSON type has no NaN; SQLite's would take it, so a catalogue tried only on SQLite would hide it
    with pytest.raises((ValueError, StatementError), match="JSON compliant"), catalogue.sessions.begin() as session:
        session.add(ModelVersion(path="m", config={}, metrics={"val_accuracy": float("nan")}))
    with catalogue.sessions.begin() as session:
        session.add(ModelVersion(path="m", config={}, metrics={"val_accuracy": None}))
    with catalogue.sessions() as session:
        assert session.query(ModelVersion).one().metrics == {"val_accuracy": None}


def test_database_url_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("TUNESMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    cat = open_catalogue()
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "h" / "catalogue.sqlite").exists()
    cat.engine.dispose()


def test_a_claim_is_one_owners_until_it_is_released_or_its_owner_is_gone(catalogue: Catalogue) -> None:
    import os
    import socket
    from datetime import timedelta

    from db.claims import claim, owner, release
    from db.models import utcnow

    with catalogue.sessions.begin() as session:
        rows = [Source(key=f"claim-{i}", url=f"https://example.org/{i}") for i in range(4)]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
    host = socket.gethostname()[:80]
    alive_elsewhere = f"{host}:{os.getppid()}:another"  # our parent: a live process that is not us
    with catalogue.sessions.begin() as session:
        session.get_one(Source, ids[1]).claimed_by = alive_elsewhere
        session.get_one(Source, ids[1]).claimed_at = utcnow()
        session.get_one(Source, ids[2]).claimed_by = f"{host}:999999999:dead"  # no such process
        session.get_one(Source, ids[2]).claimed_at = utcnow()
        session.get_one(Source, ids[3]).claimed_by = "another-host:1:token"  # cannot tell: only its age counts
        session.get_one(Source, ids[3]).claimed_at = utcnow() - timedelta(hours=3)

    assert claim(catalogue.sessions, ids[0], SourceState.PENDING)
    assert claim(catalogue.sessions, ids[0], SourceState.PENDING)  # the same owner again
    assert not claim(catalogue.sessions, ids[0], SourceState.DOWNLOADED)  # not in that state
    assert not claim(catalogue.sessions, ids[1], SourceState.PENDING)  # a live owner holds it
    assert claim(catalogue.sessions, ids[2], SourceState.PENDING)  # its owner is gone: taken over
    assert claim(catalogue.sessions, ids[3], SourceState.PENDING)  # held past the bound: taken over
    with catalogue.sessions() as session:
        assert [session.get_one(Source, i).claimed_by for i in ids] == [owner(), alive_elsewhere, owner(), owner()]
    with catalogue.sessions.begin() as session:
        release(session.get_one(Source, ids[1]))
    assert claim(catalogue.sessions, ids[1], SourceState.PENDING)  # released: free again


def _migrate_at(barrier: Any, url: str, failures: Any) -> None:
    """One process's `open_catalogue` migration, started with the others at the barrier."""
    barrier.wait()
    try:
        upgrade(url)
    except Exception as error:  # noqa: BLE001 - the parent reports what any process raised
        failures.put(f"{type(error).__name__}: {str(error).splitlines()[0]}")


def test_runs_opening_a_new_catalogue_at_once_migrate_it_once(home: Home, backend: str, tmp_path: Path) -> None:
    """Two runs started together on a new catalogue both migrate it: one applies the migrations, the other waits."""
    context = multiprocessing.get_context("fork")
    for attempt in range(3):  # each attempt on a new, empty database
        if backend == "postgresql":
            url = empty_postgres_database()
        else:
            url = f"sqlite:///{tmp_path / f'together-{attempt}.sqlite'}"
        barrier, failures = context.Barrier(4), context.Queue()
        runs = [context.Process(target=_migrate_at, args=(barrier, url, failures)) for _ in range(4)]
        for run in runs:
            run.start()
        for run in runs:
            run.join(timeout=120)
        errors = [failures.get(timeout=5) for _ in range(failures.qsize())]
        assert not errors, errors
        assert [run.exitcode for run in runs] == [0] * 4
        engine = make_engine(url)
        with engine.connect() as connection:
            assert len(connection.execute(text("SELECT version_num FROM alembic_version")).all()) == 1
        engine.dispose()


def _write_for_a_second(path: str, started: Any) -> None:
    import sqlite3
    import time

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("CREATE TABLE first_writer (x)")
    started.set()
    time.sleep(1.0)
    connection.execute("COMMIT")


def test_a_new_sqlite_catalogue_waits_for_a_writer_before_turning_to_wal(tmp_path: Path, backend: str) -> None:
    """SQLite refuses the switch to WAL at once while another process writes a database not yet in WAL mode."""
    if backend != "sqlite":
        pytest.skip("a SQLite property")
    context = multiprocessing.get_context("fork")
    path, started = str(tmp_path / "new.sqlite"), context.Event()
    writer = context.Process(target=_write_for_a_second, args=(path, started))
    writer.start()
    assert started.wait(30)
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:  # waits for the writer instead of failing with "database is locked"
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("SELECT count(*) FROM first_writer")).scalar() == 0
    engine.dispose()
    writer.join(30)


def test_a_rejection_under_an_old_shared_name_is_renamed_by_its_rule(home: Home) -> None:
    """ "noise" named two filter rules and "too_short" two checks: each source gets its own rule's name back."""
    upgrade(home.database_url, "0004")
    old = [
        ("noise", "spectral flatness 0.41", Reason.NOISY_SPECTRUM),
        ("noise", "31.2 notes/s", Reason.TOO_DENSE),
        ("too_short", "a.mp3 holds less than half a second of audio", Reason.EMPTY_AUDIO),
        ("too_short", "http://x/a.mp3: the file holds 3.0 s, outside 20-900 s", Reason.TOO_SHORT),
        ("repetitive", "repetition score 0.93", Reason.REPETITIVE),
    ]
    engine = make_engine(home.database_url)
    with engine.begin() as connection:
        for number, (reason, detail, _) in enumerate(old):
            connection.execute(
                text("INSERT INTO sources (key, url, state, reason, reason_detail, created_at, updated_at) "
                     "VALUES (:key, :url, 'REJECTED', :reason, :detail, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"key": f"old:{number}", "url": f"http://x/{number}", "reason": reason, "detail": detail},
            )  # fmt: skip
    catalogue = open_catalogue(home)
    with catalogue.sessions() as session:
        renamed = {s.key: s.reason for s in session.query(Source)}
    assert renamed == {f"old:{number}": new for number, (_, _, new) in enumerate(old)}
    assert set(renamed.values()) <= set(Reason)
    engine.dispose()


def test_a_killed_process_not_yet_reaped_holds_no_claim(catalogue: Catalogue) -> None:
    """A zombie still answers signals; a claim by one must be taken over (not left for the two-hour bound)."""
    import socket
    import subprocess
    import time

    from db.claims import claim
    from db.files import pid_alive
    from db.models import utcnow

    child = subprocess.Popen(["sleep", "60"])
    try:
        assert pid_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while "Z" not in Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2][:3]:
            assert time.monotonic() < deadline, "the killed child never became a zombie"
            time.sleep(0.01)
        assert not pid_alive(child.pid)  # killed, not reaped (no wait yet): a zombie
        with catalogue.sessions.begin() as session:
            source = Source(key="zombie", url="https://example.org/zombie")
            source.claimed_by, source.claimed_at = f"{socket.gethostname()[:80]}:{child.pid}:token", utcnow()
            session.add(source)
            session.flush()
            source_id = source.id
        assert claim(catalogue.sessions, source_id, SourceState.PENDING)
    finally:
        child.kill()
        child.wait()
