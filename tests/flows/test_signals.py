"""Ctrl-C and SIGTERM to a real `tunesmith submit` mid-download, as a terminal or a service manager sends them:
one line, exit 130 or 143, nothing left running, nothing half-recorded, and the same command resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from db.home import Home
from sample.feed import FeedItem
from tests.faults import Fault, FaultyServer
from tests.flows.test_end_to_end import TUNESMITH, _users_shell

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _group_left(pgid: int) -> list[str]:
    """The processes still running in the command's process group or session (its server's included); a child
    it left to be killed once it had exited is a zombie until init reaps it: not running, not counted."""
    left = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(proc.pid) == pgid or os.getsid(proc.pid) == pgid:
                left.append(" ".join(proc.info["cmdline"] or []))
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return left


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_a_stopped_submit_says_how_far_it_got_leaves_nothing_running_and_resumes(
    home: Home, server: FaultyServer, feed_items: list[FeedItem], signum: int, code: int, tmp_path: Path
) -> None:
    from db.catalogue import open_catalogue
    from db.models import Source

    name = f"stopped-{signum}.xml"
    url = server.write_feed(name, "Stopped", feed_items)
    for item in feed_items:  # slow media: the signal lands while downloads are in flight
        server.fail(item.filename, Fault(delay=2.0))
    command = [TUNESMITH, "submit", url, "--sleep", "0", "--backoff", "0.05", "--workers", "1"]
    before = len(server.requests)
    try:
        run = subprocess.Popen(command, env=_users_shell(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 240
        while not any(r.endswith(".mp3") for r in server.requests[before:]) and time.monotonic() < deadline:
            time.sleep(0.2)  # until the first media request: the flow is running, a download in flight
        assert run.poll() is None, run.communicate()
        time.sleep(1.0)
        signalled = time.monotonic()
        os.killpg(run.pid, signum)  # to the whole group, as a terminal's Ctrl-C or `systemctl stop` does
        _out, err = run.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        for item in feed_items:
            server.faults.pop(f"/{item.filename}", None)
    assert run.returncode == code, err[-3000:]
    assert took < 12, took
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped") and last.endswith("run the same command to resume"), err[-3000:]
    time.sleep(0.5)
    assert _group_left(run.pid) == []  # its Prefect server and workers went with it
    with open_catalogue(home).sessions() as session:
        assert all(s.claimed_by is None for s in session.query(Source))  # no claim outlives it
    with open_catalogue(home).sessions() as session:  # what the stopped run had fetched whole
        kept = {s.url.rsplit("/", 1)[-1] for s in session.query(Source) if s.audio_path}
        recorded = {Path(s.audio_path).name for s in session.query(Source) if s.audio_path}
    # no half-written file left as if it were whole: a download in flight stays in its hidden folder
    assert {p.name for p in home.audio_dir.iterdir() if not p.name.startswith(".")} == recorded
    resumed = len(server.requests)
    again = subprocess.run(command, env=_users_shell(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    with open_catalogue(home).sessions() as session:
        states = Counter(s.state.value for s in session.query(Source))
    assert states == {"accepted": len(feed_items) - 1, "rejected": 1}
    fetched = Counter(r for r in server.requests[resumed:] if r.endswith(".mp3") and not r.startswith("HEAD"))
    assert not kept & {name.lstrip("/") for name in fetched}, (kept, fetched)  # nothing fetched twice
    assert not list(home.audio_dir.glob(".download-*"))  # the stopped run's half-downloads swept


def _stop_when(
    command: list[str], ready: Callable[[], bool], signum: int
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``command`` in a group of its own, send ``signum`` to the group once ``ready()``; its result, and
    how long it took to exit after the signal."""
    run = subprocess.Popen(command, env=_users_shell(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not ready() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.1)
    assert run.poll() is None, run.communicate()
    signalled = time.monotonic()
    os.killpg(run.pid, signum)
    out, err = run.communicate(timeout=60)
    took = time.monotonic() - signalled
    time.sleep(0.5)
    assert _group_left(run.pid) == []  # its Prefect server and TensorFlow's threads went with it
    return subprocess.CompletedProcess(command, run.returncode, out, err), took


def test_a_stopped_train_and_generate_leave_no_half_model_or_batch_and_resume(
    home: Home, chorale_midis: list[Path]
) -> None:
    """SIGTERM to `tunesmith train` mid-epoch and Ctrl-C to `tunesmith generate` mid-render: one line each, exit
    143 and 130, no model or batch recorded or visible; training again reuses the tokens, and generate then finishes."""
    from db.catalogue import open_catalogue
    from db.models import Batch, ModelVersion
    from tests.train.test_training import SETTINGS, _accept
    from train.training import train_from_catalogue

    _accept(open_catalogue(home), chorale_midis[:4], "hymns")
    epochs = [TUNESMITH, "train", "--epochs", "12"]

    def training() -> bool:  # the pieces' tokens are written just before the first epoch
        return len(list(home.tokens_dir.rglob("*.tokens.gz"))) == 4

    stopped, took = _stop_when(epochs, training, signal.SIGTERM)
    assert stopped.returncode == 143 and took < 12, (took, stopped.stderr[-3000:])
    assert "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    assert stopped.stderr.startswith("stopped during training: ") and stopped.stderr.endswith(
        "run the same command to resume\n"
    ), stopped.stderr[-3000:]  # one line, nothing else: no finaliser's noise
    with open_catalogue(home).sessions() as session:
        assert session.query(ModelVersion).count() == 0
    assert [p.name for p in home.models_dir.iterdir()] == []  # no half-written model folder, hidden or not
    tokens = {p: p.stat().st_mtime_ns for p in home.tokens_dir.rglob("*.tokens.gz")}

    # The same training again, here in-process and small (the command's full chain takes minutes): it
    # reads the pieces' tokens the stopped run kept, and makes the model the batch below is drawn from.
    trained = train_from_catalogue(open_catalogue(home).sessions, home.models_dir, SETTINGS, tokens_dir=home.tokens_dir)
    assert trained.promoted, trained.message
    assert {p: p.stat().st_mtime_ns for p in home.tokens_dir.rglob("*.tokens.gz")} == tokens  # not tokenised again

    def rendering() -> bool:  # the first track's audio is on disk in the batch's work folder
        return any(home.batches_dir.glob(".batch-*/01.*"))

    make = [TUNESMITH, "generate", "--count", "6", "--minutes", "0.25", "--seed", "5"]
    stopped, took = _stop_when(make, rendering, signal.SIGINT)
    assert stopped.returncode == 130 and took < 12, (took, stopped.stderr[-3000:])
    assert "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    assert stopped.stderr.startswith("stopped during tracks: ") and stopped.stderr.count("\n") == 1, stopped.stderr
    with open_catalogue(home).sessions() as session:
        assert session.query(Batch).count() == 0
    assert list(home.batches_dir.iterdir()) == []  # no half batch, not even its work folder

    made = subprocess.run([*make[:3], "1", *make[4:]], env=_users_shell(), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    with open_catalogue(home).sessions() as session:
        assert session.query(Batch).count() == 1
