"""Shared fixtures: a rendered sample of corpus pieces, a loopback feed server, a fresh tunesmith home."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from db.catalogue import Catalogue, open_catalogue  # noqa: E402
from db.home import Home  # noqa: E402
from sample.corpus import RenderedPiece, hammered_note, render_pieces, render_score  # noqa: E402
from sample.feed import FeedItem  # noqa: E402
from tests.databases import empty_postgres_database  # noqa: E402
from tests.faults import FaultyServer, serve_with_faults  # noqa: E402


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sample")


@pytest.fixture(scope="session")
def pieces(sample_dir: Path) -> list[RenderedPiece]:
    """Three Bach chorales rendered to MP3 with FluidSynth (with their reference MIDI)."""
    rendered = render_pieces(sample_dir, count=3)
    assert len(rendered) == 3
    return rendered


CHORALES = ("bach/bwv10.7", "bach/bwv101.7", "bach/bwv102.7", "bach/bwv103.6", "bach/bwv104.6", "bach/bwv108.6")


@pytest.fixture(scope="session")
def chorale_midis(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six corpus chorales written straight to MIDI by music21 (no audio: for the token-level stages)."""
    from music21 import corpus

    folder = tmp_path_factory.mktemp("chorale-midi")
    return [Path(corpus.parse(name).write("midi", fp=str(folder / f"{i}.mid"))) for i, name in enumerate(CHORALES)]


@pytest.fixture(scope="session")
def hammered(sample_dir: Path) -> Path:
    audio, _midi, _seconds = render_score(hammered_note(seconds=30), sample_dir, "hammered")
    return audio


@pytest.fixture(scope="session")
def server(sample_dir: Path) -> Iterator[FaultyServer]:
    with serve_with_faults(sample_dir) as running:
        yield running


@pytest.fixture(scope="session")
def feed_items(pieces: list[RenderedPiece], hammered: Path) -> list[FeedItem]:
    items = [FeedItem(p.audio_path.name, p.title, f"test:{p.name}", p.duration) for p in pieces]
    return items + [FeedItem(hammered.name, "hammered", "test:hammered", 30.0)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_databases`` run on SQLite and on PostgreSQL; the rest on SQLite."""
    if "backend" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_databases") is not None
        metafunc.parametrize("backend", ["sqlite", "postgresql"] if both else ["sqlite"], scope="function")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> Home:
    """A fresh tunesmith home; its catalogue a new SQLite file, or an emptied PostgreSQL database."""
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TUNESMITH_DATABASE_URL", raising=False)
    if backend == "postgresql":
        monkeypatch.setenv("TUNESMITH_DATABASE_URL", empty_postgres_database())
    return Home.from_env().ensure()


@pytest.fixture
def catalogue(home: Home) -> Catalogue:
    """The home's catalogue, opened (and migrated) the way every stage opens it."""
    return open_catalogue(home)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB file system (tmpfs), for what a full disk does; skipped where mounting needs a root this is not."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
                                                      capture_output=True).returncode:  # fmt: skip
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
