from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from db.catalogue import Catalogue
from db.models import PlaylistEntry, Source, SourceState
from ingest.catalogue import download_source, pending_source_ids, record_listing
from ingest.youtube import list_playlist
from sample.feed import LOOPBACK_INGEST, FeedItem
from tests.faults import Fault, FaultyServer

pytestmark = [pytest.mark.network, pytest.mark.both_databases]
SETTINGS = LOOPBACK_INGEST


def _ingest(catalogue: Catalogue, url: str) -> list[int]:
    listing = list_playlist(url, SETTINGS)
    with catalogue.sessions.begin() as session:
        record_listing(session, listing, SETTINGS)
        pending = pending_source_ids(session)
    return [download_source(catalogue.sessions, sid, catalogue.home.audio_dir, SETTINGS).downloaded for sid in pending]


def test_resubmitting_a_playlist_downloads_nothing(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    url = server.write_feed("twice.xml", "Twice", feed_items[:2])
    assert _ingest(catalogue, url) == [True, True]
    before = len(server.requests)
    assert _ingest(catalogue, url) == []
    assert all(not r.endswith(".mp3") for r in server.requests[before:])  # only the feed was read again
    with catalogue.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 2
        assert session.scalar(select(func.count()).select_from(PlaylistEntry)) == 2
        assert {s.state for s in session.scalars(select(Source))} == {SourceState.DOWNLOADED}


def test_same_audio_under_two_urls_is_kept_once(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    original = feed_items[0]
    shutil.copy(server.root / original.filename, server.root / "copy-of-first.mp3")
    twin = FeedItem("copy-of-first.mp3", "Same song, other URL", "test:twin", original.duration)
    _ingest(catalogue, server.write_feed("twins.xml", "Twins", [original, twin]))
    with catalogue.sessions() as session:
        first, second = session.scalars(select(Source).order_by(Source.id))
        assert first.state is SourceState.DOWNLOADED
        assert (second.state, second.reason) == (SourceState.REJECTED, "duplicate")
        assert second.audio_path is None and first.content_hash == second.content_hash


def test_broken_entries_get_reasons_and_the_rest_goes_on(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    broken = [
        FeedItem("missing.mp3", "Deleted video", "test:404"),
        FeedItem(feed_items[1].filename, "A three-hour mix", "test:long", duration=3 * 3600),
    ]
    _ingest(catalogue, server.write_feed("broken.xml", "Broken", [feed_items[0], *broken]))
    with catalogue.sessions() as session:
        states = {s.key: (s.state, s.reason) for s in session.scalars(select(Source))}
    assert states == {
        f"rss:{feed_items[0].guid}": (SourceState.DOWNLOADED, None),
        "rss:test:404": (SourceState.REJECTED, "unavailable"),
        "rss:test:long": (SourceState.REJECTED, "too_long"),
    }


def test_a_download_finished_by_a_killed_run_is_adopted_not_fetched_again(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    listing = list_playlist(server.write_feed("killed.xml", "Killed", feed_items[:1]), SETTINGS)
    with catalogue.sessions.begin() as session:
        record_listing(session, listing, SETTINGS)
        (source_id,) = pending_source_ids(session)
    # The killed run had renamed the finished file into place but not yet recorded it.
    shutil.copy(server.root / feed_items[0].filename, catalogue.home.audio_dir / f"{source_id}.mp3")
    before = len(server.requests)
    outcome = download_source(catalogue.sessions, source_id, catalogue.home.audio_dir, SETTINGS)
    assert (outcome.state, outcome.downloaded) == (SourceState.DOWNLOADED, False)
    assert server.requests[before:] == []


def test_a_few_downloads_run_at_once_each_fetched_once(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    import time

    from ingest.catalogue import ingest_urls

    items = feed_items[:4]
    for item in items:  # every request for the media waits 1 s at the server
        server.fail(item.filename, Fault(delay=1.0))
    settings = SETTINGS.model_copy(update={"parallel_downloads": 3})
    try:
        started = time.perf_counter()
        solo = ingest_urls(catalogue.sessions, [server.write_feed("solo.xml", "Solo", items[:1])],
                           catalogue.home.audio_dir, settings)  # fmt: skip
        one = time.perf_counter() - started
        before = len(server.requests)
        started = time.perf_counter()
        summary = ingest_urls(catalogue.sessions, [server.write_feed("three.xml", "Three", items[1:])],
                              catalogue.home.audio_dir, settings)  # fmt: skip
        three = time.perf_counter() - started
    finally:
        for item in items:
            server.faults.pop(f"/{item.filename}", None)
    assert solo.downloaded == 1 and summary.downloaded == 3
    assert three < 2 * one, (one, three)  # one after another, three would take three times as long
    fetched = [r for r in server.requests[before:] if r.endswith(".mp3") and not r.startswith("HEAD")]
    assert sorted(set(fetched)) == sorted(f"/{i.filename}" for i in items[1:])
    assert len(fetched) <= 2 * 3  # the extractor's read and the download's, once per entry


def test_download_starts_to_one_host_are_spaced_by_the_polite_pause() -> None:
    import threading
    import time

    from ingest.pacing import HostPacer

    pacer, starts = HostPacer(), []

    def start(url: str) -> None:
        pacer.wait(url, 0.3)
        starts.append((url, time.monotonic()))

    threads = [threading.Thread(target=start, args=(f"http://{host}/a.mp3",)) for host in ("a", "a", "a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    same = sorted(t for u, t in starts if u.startswith("http://a/"))
    assert all(b - a >= 0.29 for a, b in zip(same, same[1:], strict=False))
    other = next(t for u, t in starts if u.startswith("http://b/"))
    assert other - same[0] < 0.2  # another host does not wait for this one


def test_a_long_playlist_is_recorded_in_a_few_statements_not_one_per_entry(catalogue: Catalogue) -> None:
    """1,200 entries (some already known from another playlist, one listed twice): a handful of round trips."""
    from sqlalchemy import event

    from ingest.youtube import Entry, PlaylistListing

    entries = [Entry(key=f"youtube:{i:011d}", url=f"https://www.youtube.com/watch?v={i:011d}") for i in range(1200)]
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(catalogue.engine, "before_cursor_execute", count)
    try:
        with catalogue.sessions.begin() as session:
            record_listing(session, PlaylistListing("https://example.org/a", "A", entries[:300]), SETTINGS)
        statements.clear()
        listing = PlaylistListing("https://example.org/b", "B", [*entries, entries[5]])
        with catalogue.sessions.begin() as session:
            record_listing(session, listing, SETTINGS)
        first = len(statements)
        statements.clear()
        with catalogue.sessions.begin() as session:  # submitted again: nothing new
            record_listing(session, listing, SETTINGS)
        again = len(statements)
    finally:
        event.remove(catalogue.engine, "before_cursor_execute", count)
    assert first <= 15 and again <= 8, (first, again)  # a select per 500 keys, multi-row inserts: not 2,107 and 6
    with catalogue.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Source)) == 1200
        assert session.scalar(select(func.count()).select_from(PlaylistEntry)) == 300 + 1200
