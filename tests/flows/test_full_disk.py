"""A real `tunesmith submit` whose audio folder sits on a full disk (a 6 MB tmpfs): refused before it starts, in one
line; past that check (``TUNESMITH_MIN_FREE_MB=0``), a disk that fills mid-way is one line and exit 1, no source given a
verdict it did not earn, and the same command finishes once there is room."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from db.home import Home
from sample.feed import FeedItem
from tests.faults import FaultyServer
from tests.flows.test_end_to_end import TUNESMITH, _users_shell

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _audio_on(home: Home, small_disk: Path, room: int) -> Path:
    """The home's audio folder moved onto ``small_disk``, filled to leave ``room`` bytes; returns the filler."""
    audio = small_disk / "audio"
    audio.mkdir()
    shutil.rmtree(home.audio_dir, ignore_errors=True)
    home.audio_dir.symlink_to(audio)  # the disk that holds the audio, and only it, is full
    filler = small_disk / "filler"
    with open(filler, "wb") as out:
        out.write(b"\0" * (shutil.disk_usage(small_disk).free - room))
    return filler


def test_too_little_free_space_is_refused_before_anything_starts(
    home: Home, server: FaultyServer, feed_items: list[FeedItem], small_disk: Path
) -> None:
    from db.catalogue import open_catalogue
    from db.models import Source

    _audio_on(home, small_disk, room=2_500_000)
    url = server.write_feed("no-room.xml", "No room", feed_items)
    run = subprocess.run([TUNESMITH, "submit", url], env=_users_shell(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr[-3000:]
    assert run.stderr.splitlines() == [
        f"error: no space left under {home.audio_dir} (2 MB free, about 100 MB needed): "
        "free some and run the same command again"
    ]
    with open_catalogue(home).sessions() as session:
        assert session.query(Source).count() == 0  # the playlist was not even read


def test_a_full_disk_is_one_line_and_the_rerun_finishes(
    home: Home, server: FaultyServer, feed_items: list[FeedItem], small_disk: Path
) -> None:
    from db.catalogue import open_catalogue
    from db.models import Source

    filler = _audio_on(home, small_disk, room=300_000)  # less than any one download
    audio = home.audio_dir.resolve()
    url = server.write_feed("full-disk.xml", "Full disk", feed_items)
    command = [TUNESMITH, "submit", url, "--sleep", "0", "--backoff", "0.05", "--workers", "1"]
    past_the_check = _users_shell() | {"TUNESMITH_MIN_FREE_MB": "0"}  # so that the disk fills mid-way
    run = subprocess.run(command, env=past_the_check, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr and "Logging error" not in run.stderr, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left" in errors[0] and "run the same command again" in errors[0], errors
    with open_catalogue(home).sessions() as session:  # nothing rejected for a fault of the machine's
        assert all(s.state.value != "rejected" for s in session.query(Source))
        assert all(s.claimed_by is None for s in session.query(Source))
    assert not [p for p in audio.iterdir() if p.name.startswith(".download-")]  # no half-download left

    filler.unlink()
    again = subprocess.run(command, env=past_the_check, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    with open_catalogue(home).sessions() as session:
        states = Counter(s.state.value for s in session.query(Source))
    assert states == {"accepted": len(feed_items) - 1, "rejected": 1}
