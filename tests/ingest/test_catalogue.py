from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from db.catalogue import Catalogue
from db.models import PlaylistEntry, Source, SourceState
from ingest.catalogue import download_source, pending_source_ids, record_listing
from ingest.youtube import list_playlist
from sample.feed import LOOPBACK_INGEST, FeedItem, FeedServer

pytestmark = [pytest.mark.network, pytest.mark.both_databases]
SETTINGS = LOOPBACK_INGEST


def _ingest(catalogue: Catalogue, url: str) -> list[int]:
    listing = list_playlist(url, SETTINGS)
    with catalogue.sessions.begin() as session:
        record_listing(session, listing, SETTINGS)
        pending = pending_source_ids(session)
    return [download_source(catalogue.sessions, sid, catalogue.home.audio_dir, SETTINGS).downloaded for sid in pending]


def test_resubmitting_a_playlist_downloads_nothing(
    catalogue: Catalogue, server: FeedServer, feed_items: list[FeedItem]
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
    catalogue: Catalogue, server: FeedServer, feed_items: list[FeedItem]
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
    catalogue: Catalogue, server: FeedServer, feed_items: list[FeedItem]
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
    catalogue: Catalogue, server: FeedServer, feed_items: list[FeedItem]
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
