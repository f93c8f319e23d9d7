"""Ctrl-C and SIGTERM to a real `tunesmith submit` mid-download, as a terminal or a service manager sends them:
one line, exit 130 or 143, nothing left running, nothing half-recorded, and the same command resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from db.home import Home
from sample.feed import FeedItem
from tests.faults import Fault, FaultyServer
from tests.flows.test_end_to_end import TUNESMITH, _users_shell

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _group_left(pgid: int) -> list[str]:
    """The processes still in the command's process group or session (its server's included)."""
    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
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
    assert not list(home.audio_dir.glob(".download-*"))  # no half-written file left as if it were whole

    with open_catalogue(home).sessions() as session:  # what the stopped run had fetched whole
        kept = {s.url.rsplit("/", 1)[-1] for s in session.query(Source) if s.audio_path}
    resumed = len(server.requests)
    again = subprocess.run(command, env=_users_shell(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    with open_catalogue(home).sessions() as session:
        states = Counter(s.state.value for s in session.query(Source))
    assert states == {"accepted": len(feed_items) - 1, "rejected": 1}
    fetched = Counter(r for r in server.requests[resumed:] if r.endswith(".mp3") and not r.startswith("HEAD"))
    assert not kept & {name.lstrip("/") for name in fetched}, (kept, fetched)  # nothing fetched twice
