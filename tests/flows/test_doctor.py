"""`tunesmith doctor` says what a real run lacks, one line each, and exits 1 when anything does."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_full_disk_an_unreadable_catalogue_a_dead_server_and_a_damaged_model_each_fail_in_one_line(
    tmp_path: Path, small_disk: Path
) -> None:
    """(The JavaScript runtime's failure is not played: deno comes inside the environment doctor looks in.)"""
    home = small_disk / "home"  # a 6 MB disk: under the GB a real run wants
    (home / "run").mkdir(parents=True)
    (home / "catalogue.sqlite").write_bytes(b"this is not a database " * 100)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    (home / "run" / "api-url").write_text(dead)
    env = {**_users_shell(), "TUNESMITH_HOME": str(home)}
    run = subprocess.run([TUNESMITH, "doctor"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr + run.stdout, run.stderr[-3000:]
    lines = {line.split(":")[0]: line for line in run.stdout.splitlines()}
    assert len(lines) == 9, run.stdout
    assert lines["FAIL free disk"].endswith("(want 1024 MB): free some")
    assert "cannot open it" in lines["FAIL catalogue"]
    assert dead in lines["FAIL Prefect server"] and lines["FAIL Prefect server"].endswith("run `tunesmith up` again")
    assert "the catalogue cannot be read" in lines["FAIL model"]

    from db.catalogue import open_catalogue
    from db.models import ModelVersion

    damaged = tmp_path / "model"
    damaged.mkdir()
    (damaged / "config.json").write_text("{not json")
    elsewhere = Home.at(tmp_path / "second").ensure()
    with open_catalogue(elsewhere).sessions.begin() as session:
        session.add(ModelVersion(path=str(damaged), config={}, is_current=True))
    env = {**_users_shell(), "TUNESMITH_HOME": str(elsewhere.root)}
    run = subprocess.run([TUNESMITH, "doctor"], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr + run.stdout, run.stderr[-3000:]
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL model:") and str(damaged) in failed[0], run.stdout
    assert failed[0].endswith("retrain with `tunesmith train --force`")


def test_no_javascript_runtime_fails_its_line(tmp_path: Path) -> None:
    """The environment's Python outside it (its packages on PYTHONPATH, an empty PATH): no deno beside it."""
    import shutil

    base = Path(getattr(sys, "_base_executable", sys.executable))
    if base.parent == Path(sys.executable).parent or any(shutil.which(n, path=str(base.parent)) for n in
                                                         ("deno", "node", "bun")):  # fmt: skip
        pytest.skip("this Python's own folder holds a JavaScript runtime")
    packages = next(Path(sys.executable).parent.parent.glob("lib/python3*/site-packages"))
    root = Path(__file__).resolve().parents[2]
    env = {"HOME": str(tmp_path), "PATH": str(tmp_path / "nothing"), "PYTHONPATH": f"{packages}:{root}",
           "TUNESMITH_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    code = "import sys; sys.argv = ['tunesmith', 'doctor']; from flows.cli import main; main()"
    run = subprocess.run([str(base), "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = {line.split(":")[0]: line for line in run.stdout.splitlines()}
    assert lines["FAIL JavaScript runtime"].endswith("YouTube's challenges need deno (pip install deno)")
