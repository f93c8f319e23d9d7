"""Long-playlist benchmark: 500 entries, 10% broken, ingested in a process of its own and killed mid-way.

The playlist is an RSS feed on 127.0.0.1 read by the real yt-dlp: 450 distinct little MP3 tones and
50 broken entries spread through it (15 deleted, 10 not audio, 10 cut short, 10 on a server that always
fails, 5 forbidden). Ingest runs in a child process, as a command or a worker runs it. Printed:

- the unbroken run: time, what it recorded, and the child's resident memory when 10%, 50% and 100% of
  the entries were done (target: flat, the last within 1.2x of the first);
- ``tunesmith status --json`` run beside it (a new process, as a user runs it) while it downloads: the
  slowest answer (target: under 2 s) and whether every answer came back;
- runs killed (SIGKILL) at 20%, 50% and 80% of the entries and started again each time: media requests
  of entries already downloaded (target: 0) and whether the catalogue and audio files end as the
  unbroken run's.

Run: ``.venv/bin/python bench/long_playlist.py [--good 450]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bench.ingest import snapshot, tone  # noqa: E402
from db.catalogue import open_catalogue  # noqa: E402
from db.home import Home  # noqa: E402
from db.models import Source, SourceState  # noqa: E402
from ingest.catalogue import ingest_urls  # noqa: E402
from sample.feed import LOOPBACK_INGEST, FeedItem  # noqa: E402
from tests.faults import Fault, FaultyServer, serve_with_faults  # noqa: E402

SECONDS = 6
BROKEN = {"deleted": 15, "page": 10, "cut": 10, "always500": 10, "forbidden": 5}
TUNESMITH = str(Path(sys.executable).parent / "tunesmith")


def build_playlist(server: FaultyServer, good: int) -> str:
    root = server.root
    items = [FeedItem(f"good{i:03}.mp3", f"Good {i}", f"good-{i}", SECONDS) for i in range(good)]
    for i in range(good):
        tone(root / f"good{i:03}.mp3", i % 97 + (i // 97) * 0.37, SECONDS)
    whole = (root / "good000.mp3").read_bytes()
    broken = []
    for kind, count in BROKEN.items():
        for n in range(count):
            name = f"{kind}{n:02}.mp3"
            if kind == "page":
                (root / name).write_text("<html><body>Video unavailable</body></html>\n" * 100)
            elif kind == "cut":
                (root / name).write_bytes(whole[: len(whole) // 3])
            elif kind != "deleted":
                (root / name).write_bytes(whole)
            if kind == "always500":
                server.fail(name, Fault(status=500))
            elif kind == "forbidden":
                server.fail(name, Fault(status=403))
            broken.append(FeedItem(name, f"{kind} {n}", f"bad-{kind}-{n}", SECONDS if kind == "cut" else None))
    step = len(items) // len(broken)
    for position, item in enumerate(broken):  # spread through the list
        items.insert(position * (step + 1) + step // 2, item)
    return server.write_feed("long.xml", f"{len(items)} entries, {len(broken)} broken", items)


def done_count(home: Home) -> int:
    catalogue = open_catalogue(home)
    try:
        with catalogue.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Source).where(
                Source.state != SourceState.PENDING)) or 0)  # fmt: skip
    finally:
        catalogue.engine.dispose()


def child(home: str, url: str) -> None:
    target = Home.at(Path(home)).ensure()
    ingest_urls(open_catalogue(target).sessions, [url], target.audio_dir, LOOPBACK_INGEST)


def run_child(home: Path, url: str, *, kill_at: int | None = None, status: bool = False) -> dict[str, object]:
    """Ingest in a child process, watched: its memory against entries done, ``status`` answers beside it, and
    a SIGKILL once ``kill_at`` entries are done."""
    Home.at(home).ensure()
    open_catalogue(Home.at(home)).engine.dispose()  # migrated before the child starts
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, __file__, "--child", str(home), url])
    watched = psutil.Process(process.pid)
    memory: list[tuple[int, float]] = []  # (entries done, resident MB)
    answers: list[float] = []
    failed = 0
    while process.poll() is None:
        time.sleep(0.5)
        try:
            done = done_count(Home.at(home))
            rss = watched.memory_info().rss / 1e6
            if rss > 0:  # not a process that has just ended
                memory.append((done, rss))
        except Exception:  # the child is just starting, or just ended
            continue
        if status and len(answers) < 20:
            asked = time.perf_counter()
            answer = subprocess.run([TUNESMITH, "status", "--json"], capture_output=True, text=True, timeout=60,
                                    env={**os.environ, "TUNESMITH_HOME": str(home)})  # fmt: skip
            answers.append(time.perf_counter() - asked)
            failed += answer.returncode != 0 or "states" not in json.loads(answer.stdout or "{}")
        if kill_at is not None and done >= kill_at:
            process.send_signal(signal.SIGKILL)
            process.wait()
            break
    return {"seconds": time.perf_counter() - started, "memory": memory, "answers": answers, "failed": failed}


def rss_at(memory: list[tuple[int, float]], share: float, total: int) -> float:
    """The resident memory when ``share`` of ``total`` entries were done (the last measured, for the end)."""
    return next((rss for done, rss in memory if done >= share * total and share < 1), memory[-1][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=450)
    parser.add_argument("--child", nargs=2, metavar=("HOME", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.ERROR)
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        with serve_with_faults(site) as server:
            url = build_playlist(server, args.good)
            total = args.good + sum(BROKEN.values())
            whole_home = Path(tmp) / "whole"
            whole = run_child(whole_home, url, status=True)
            unbroken = snapshot(Home.at(whole_home))
            rows = unbroken["sources"]
            assert isinstance(rows, dict)
            states = Counter(state for state, *_ in rows.values())
            reasons = Counter(reason for _, reason, *_ in rows.values() if reason)
            memory = whole["memory"]
            assert isinstance(memory, list)
            first, half, last = (rss_at(memory, share, total) for share in (0.1, 0.5, 1.0))
            answers = whole["answers"]
            assert isinstance(answers, list)
            print(f"unbroken run: {len(rows)} entries in {whole['seconds']:.0f} s: {dict(states)}, {dict(reasons)}")
            print(f"  child's memory at 10% / 50% / 100% done: {first:.0f} / {half:.0f} / {last:.0f} MB "
                  f"({last / first:.2f}x)")  # fmt: skip
            print(f"  `tunesmith status --json` beside it: {len(answers)} answers, slowest {max(answers):.2f} s, "
                  f"failed {whole['failed']}")  # fmt: skip
            for share in (0.2, 0.5, 0.8):
                home = Path(tmp) / f"killed-{share}"
                run_child(home, url, kill_at=int(share * total))
                before = snapshot(Home.at(home))
                kept = before["sources"]
                assert isinstance(kept, dict)
                fetched_already = {key.removeprefix("rss:good-") for key, (state, *_) in kept.items()
                                   if state == "downloaded" and key.startswith("rss:good-")}  # fmt: skip
                since = len(server.requests)
                run_child(home, url)
                again = Counter(r.rsplit("/", 1)[-1] for r in server.requests[since:] if r.endswith(".mp3"))
                twice = sum(n for name, n in again.items() if name.startswith("good")
                            and str(int(name[4:7])) in fetched_already)  # fmt: skip
                same = snapshot(Home.at(home)) == unbroken
                print(
                    f"killed at {share:.0%} ({len(fetched_already)} downloaded): restarted, {twice} media requests"
                    f" for entries already downloaded; same catalogue and files as the unbroken run: {same}"
                )


if __name__ == "__main__":
    main()
