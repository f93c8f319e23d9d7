"""Ingest benchmark: a 50-entry loopback playlist with 10 broken entries, run whole, re-run, and killed halfway.

The playlist is an RSS feed on 127.0.0.1 read by the real yt-dlp (its generic extractor). 40
entries are good audio (two of them fail once on the way: a 503 and a dropped connection, and
must be retried); 10 are broken in the ways real playlists are: deleted (404), cut short, not
audio, listed as three hours long, far too long once downloaded, too short, the same audio as
another entry, forbidden (403), a server that always fails (500) and one that always rate-limits
(429). Prints:

- the unbroken run: time, entries downloaded, the ten reasons recorded; the same run one download at a
  time (the default downloads three at once);
- a re-run of the same playlist: audio requests made (must be 0);
- a run killed (SIGKILL) halfway through the downloads and restarted: whether its catalogue
  and audio files end the same as the unbroken run's.

Run: ``.venv/bin/python bench/ingest.py``
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from db.catalogue import open_catalogue  # noqa: E402
from db.home import Home  # noqa: E402
from db.models import Source, SourceState  # noqa: E402
from ingest.catalogue import ingest_urls  # noqa: E402
from sample.feed import LOOPBACK_INGEST, FeedItem  # noqa: E402
from tests.faults import Fault, FaultyServer, serve_with_faults  # noqa: E402

GOOD = 40
SECONDS = 8


def tone(path: Path, index: int, seconds: float, *, rate: int = 22050) -> None:
    """A distinct little two-tone piece (real MP3 audio), different for every ``index``."""
    low, high = 220 * 2 ** (index / 12), 330 * 2 ** (index / 24)
    source = f"sine=f={low:.2f}:d={seconds}:r={rate},volume=0.5[a];sine=f={high:.2f}:d={seconds}:r={rate}[b];[a][b]amix"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-filter_complex", source, "-ac", "1", "-b:a", "48k", str(path)], check=True
    )


def build_playlist(server: FaultyServer) -> tuple[str, dict[str, str]]:
    """Write the 50 files and the feed; return its URL and the expected reason per broken guid."""
    root = server.root
    items = []
    for i in range(GOOD):
        tone(root / f"good{i:02}.mp3", i, SECONDS)
        items.append(FeedItem(f"good{i:02}.mp3", f"Good {i}", f"good-{i}", SECONDS))
    server.fail("good05.mp3", Fault(status=503, times=1))
    server.fail("good06.mp3", Fault(truncate=True, times=1))

    whole = (root / "good00.mp3").read_bytes()
    (root / "cut.mp3").write_bytes(whole[: len(whole) // 3])
    (root / "page.mp3").write_text("<html><body>Video unavailable</body></html>\n" * 100)
    (root / "twin.mp3").write_bytes((root / "good01.mp3").read_bytes())
    tone(root / "short.mp3", 99, 1.5)
    subprocess.run(  # 21 minutes of near-silence at a tiny bitrate: long, but a small file
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=a=0.001:r=8000:d=1260",
            "-ac",
            "1",
            "-b:a",
            "8k",
            str(root / "endless.mp3"),
        ],
        check=True,
    )
    for name in ("always500.mp3", "always429.mp3", "forbidden.mp3"):
        (root / name).write_bytes(whole)
    server.fail("always500.mp3", Fault(status=500))
    server.fail("always429.mp3", Fault(status=429))
    server.fail("forbidden.mp3", Fault(status=403))
    broken = [
        (FeedItem("deleted.mp3", "Deleted", "bad-404"), "unavailable"),
        (FeedItem("cut.mp3", "Cut short", "bad-cut", SECONDS), "truncated"),
        (FeedItem("page.mp3", "Not audio", "bad-page"), "not_audio"),
        (FeedItem("good02.mp3", "Three-hour mix", "bad-listed-long", 3 * 3600), "too_long"),
        (FeedItem("endless.mp3", "Unlisted 21 minutes", "bad-long"), "too_long"),
        (FeedItem("short.mp3", "A jingle", "bad-short"), "too_short"),
        (FeedItem("twin.mp3", "Same song, other URL", "bad-twin", SECONDS), "duplicate"),
        (FeedItem("forbidden.mp3", "Private", "bad-403"), "forbidden"),
        (FeedItem("always500.mp3", "Broken server", "bad-500"), "server_error"),
        (FeedItem("always429.mp3", "Rate limited", "bad-429"), "rate_limited"),
    ]
    for position, (item, _reason) in enumerate(broken):  # spread the broken ones through the list
        items.insert(position * 5 + 2, item)
    url = server.write_feed("playlist.xml", "Fifty entries, ten broken", items)
    return url, {f"rss:{item.guid}": reason for item, reason in broken}


def snapshot(home: Home) -> dict[str, object]:
    """The catalogue's sources and the audio folder, in a form two runs can be compared by."""
    catalogue = open_catalogue(home)
    with catalogue.sessions() as session:
        rows = {
            s.key: (s.state.value, s.reason, s.content_hash, Path(s.audio_path).name if s.audio_path else None)
            for s in session.scalars(select(Source))
        }
    files = sorted(p.name for p in home.audio_dir.iterdir())
    catalogue.engine.dispose()
    return {"sources": rows, "files": files}


def audio_requests(server: FaultyServer, since: int) -> int:
    return sum(1 for r in server.requests[since:] if r.endswith(".mp3"))


def child(home: str, url: str) -> None:
    target = Home.at(Path(home)).ensure()
    catalogue = open_catalogue(target)
    ingest_urls(catalogue.sessions, [url], target.audio_dir, LOOPBACK_INGEST)


def killed_run(home: Path, url: str, after: int) -> int:
    """Start ingesting in a child process; SIGKILL it once ``after`` sources are downloaded."""
    Home.at(home).ensure()
    open_catalogue(Home.at(home)).engine.dispose()  # migrated before the child starts
    process = subprocess.Popen([sys.executable, __file__, "--child", str(home), url])
    done = 0
    while process.poll() is None:
        time.sleep(0.05)
        try:
            catalogue = open_catalogue(Home.at(home))
            with catalogue.sessions() as session:
                done = (
                    session.scalar(
                        select(func.count()).select_from(Source).where(Source.state == SourceState.DOWNLOADED)
                    )
                    or 0
                )
            catalogue.engine.dispose()
        except Exception:  # the child may still be creating the catalogue
            continue
        if done >= after:
            process.send_signal(signal.SIGKILL)
            process.wait()
            break
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("HOME", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # yt-dlp's per-entry errors are the point here; the catalogue records them
    if args.child:
        child(*args.child)
        return

    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        with serve_with_faults(site) as server:
            url, expected = build_playlist(server)

            home = Home.at(Path(tmp) / "whole").ensure()
            catalogue = open_catalogue(home)
            started, before = time.perf_counter(), len(server.requests)
            ingest_urls(catalogue.sessions, [url], home.audio_dir, LOOPBACK_INGEST)
            seconds = time.perf_counter() - started
            whole = snapshot(home)
            rows = whole["sources"]
            assert isinstance(rows, dict)
            states = Counter(state for state, *_ in rows.values())
            reasons = {key: rows[key][1] for key in expected}
            print(
                f"unbroken run: {len(rows)} entries in {seconds:.1f} s "
                f"({audio_requests(server, before)} audio requests): {dict(states)}"
            )
            print("  reasons recorded:", json.dumps(dict(Counter(reasons.values()))))
            wrong = {key: (reasons[key], want) for key, want in expected.items() if reasons[key] != want}
            print(
                f"  broken entries with the expected reason: {len(expected) - len(wrong)} of {len(expected)}"
                + (f"; unexpected: {wrong}" if wrong else "")
            )

            for fault in ("/good05.mp3", "/good06.mp3"):
                server.faults[fault].served = 0  # the next run meets the same transient failures
            alone = Home.at(Path(tmp) / "one-at-a-time").ensure()
            started = time.perf_counter()
            serial = LOOPBACK_INGEST.model_copy(update={"parallel_downloads": 1})
            ingest_urls(open_catalogue(alone).sessions, [url], alone.audio_dir, serial)
            one_at_a_time = time.perf_counter() - started
            print(
                f"  the same run one download at a time: {one_at_a_time:.1f} s "
                f"({LOOPBACK_INGEST.parallel_downloads} at once: {one_at_a_time / seconds:.1f}x faster); "
                f"same catalogue: {snapshot(alone)['sources'] == rows}"
            )
            for fault in ("/good05.mp3", "/good06.mp3"):
                server.faults[fault].served = 0
            before = len(server.requests)
            ingest_urls(catalogue.sessions, [url], home.audio_dir, LOOPBACK_INGEST)
            print(
                f"re-run: {audio_requests(server, before)} audio requests, "
                f"catalogue unchanged: {snapshot(home) == whole}"
            )

            killed_home = Path(tmp) / "killed"
            done = killed_run(killed_home, url, after=GOOD // 2)
            half = snapshot(Home.at(killed_home))
            half_rows = half["sources"]
            assert isinstance(half_rows, dict)
            pending = sum(1 for state, *_ in half_rows.values() if state == "pending")
            files = half["files"]
            assert isinstance(files, list)
            leftovers = [name for name in files if name.startswith(".")]
            print(
                f"killed run: SIGKILL after {done} downloads; {pending} entries still pending, "
                f"{len(leftovers)} half-done download folder(s) left for the restart to clear"
            )
            resumed = Home.at(killed_home)
            ingest_urls(open_catalogue(resumed).sessions, [url], resumed.audio_dir, LOOPBACK_INGEST)
            final = snapshot(resumed)
            same = final == whole
            print(f"  restarted: ends in the same catalogue and audio files as the unbroken run: {same}")


if __name__ == "__main__":
    main()
