"""`tunesmith doctor` says what a real run lacks, one line each, and exits 1 when anything does."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from db.home import Home
from flows.doctor import YT_DLP_MAX_AGE_DAYS, yt_dlp_check
from tests.flows.test_end_to_end import TUNESMITH, _users_shell


def test_a_machine_with_every_part_passes_and_one_without_its_tools_fails_naming_each(home: Home) -> None:
    ok = subprocess.run([TUNESMITH, "doctor"], env=_users_shell(), capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout
    assert len(ok.stdout.splitlines()) == 9 and all(line.startswith("ok") for line in ok.stdout.splitlines())

    bare = {**_users_shell(), "PATH": str(Path(sys.executable).parent), "TUNESMITH_SOUNDFONT": "/nowhere/gm.sf2"}
    failed = subprocess.run([TUNESMITH, "doctor"], env=bare, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    lines = {line.split(":")[0]: line for line in failed.stdout.splitlines()}
    assert lines["FAIL ffmpeg"].endswith("apt-get install --no-install-recommends ffmpeg")
    assert lines["FAIL fluidsynth"].endswith("apt-get install --no-install-recommends fluidsynth")
    assert "/nowhere/gm.sf2" in lines["FAIL SoundFont"]
    assert lines["ok   JavaScript runtime"]  # deno comes with the environment


def test_an_old_yt_dlp_is_named_with_the_command_that_updates_it() -> None:
    import yt_dlp.version

    released = dt.date(*(int(p) for p in yt_dlp.version.__version__.split(".")[:3]))
    assert yt_dlp_check(released + dt.timedelta(days=YT_DLP_MAX_AGE_DAYS)).ok
    old = yt_dlp_check(released + dt.timedelta(days=YT_DLP_MAX_AGE_DAYS + 1))
    assert not old.ok and "install -U yt-dlp" in old.detail and f"{YT_DLP_MAX_AGE_DAYS + 1} days old" in old.detail
