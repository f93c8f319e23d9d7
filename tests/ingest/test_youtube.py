from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import DownloadError, InvalidURLError
from ingest.youtube import IngestSettings, check_entry, classify, download_audio, list_playlist, validate_url
from sample.feed import LOOPBACK_INGEST, FeedItem
from tests.faults import FaultyServer

pytestmark = pytest.mark.network


@pytest.mark.parametrize(
    "url", ["/home/me/song.mp3", "file:///etc/passwd", "ftp://host/a.mp3", "javascript:alert(1)", "http://"]
)
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(InvalidURLError, match="not an http"):
        validate_url(url)


def test_feed_expands_to_entries_keyed_by_guid(server: FaultyServer, feed_items: list[FeedItem]) -> None:
    url = server.write_feed("expand.xml", "Expand me", feed_items)
    listing = list_playlist(url, LOOPBACK_INGEST)
    assert listing.title == "Expand me"
    assert [e.key for e in listing.entries] == [f"rss:{item.guid}" for item in feed_items]
    assert [e.url for e in listing.entries] == [server.url(item.filename) for item in feed_items]
    assert listing.entries[0].duration == int(feed_items[0].duration or 0)


def test_a_page_that_points_to_a_feed_lists_the_feeds_entries(server: FaultyServer, feed_items: list[FeedItem]) -> None:
    """The listing is read unprocessed (fast for long playlists), but a result that points elsewhere is followed."""
    url = server.write_feed("pointed.xml", "Pointed", feed_items[:2])
    (server.root / "moved.html").write_text(
        f'<html><head><meta http-equiv="refresh" content="0;url={url}"></head><body>moved</body></html>',
        encoding="utf-8",
    )
    listing = list_playlist(server.url("moved.html"), LOOPBACK_INGEST)
    assert listing.title == "Pointed"
    assert [e.key for e in listing.entries] == [f"rss:{item.guid}" for item in feed_items[:2]]


def test_lazily_listed_entries_are_read_to_their_end() -> None:
    """YouTube's playlists list their entries as a generator or a paged list (yt-dlp's own types): all are read."""
    from yt_dlp.utils import OnDemandPagedList

    from ingest.youtube import read_entries

    wanted = [{"_type": "url", "ie_key": "Youtube", "id": f"{i:011d}", "url": f"{i:011d}"} for i in range(7)]
    paged = OnDemandPagedList(lambda page: wanted[page * 3 : page * 3 + 3], 3)
    for entries in ((entry for entry in wanted), paged, list(wanted)):
        info = read_entries({"_type": "playlist", "title": "Lazy", "entries": entries})
        assert info is not None and info["entries"] == wanted
    assert read_entries(None) is None and read_entries({"id": "x"}) == {"id": "x"}


def test_download_is_atomic_and_complete(server: FaultyServer, feed_items: list[FeedItem], tmp_path: Path) -> None:
    item = feed_items[0]
    result = download_audio(server.url(item.filename), tmp_path / "7", LOOPBACK_INGEST)
    assert result.path == tmp_path / "7.mp3"
    assert result.path.read_bytes() == (server.root / item.filename).read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["7.mp3"]  # no temp folder or .part left


def test_missing_file_is_unavailable(server: FaultyServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        download_audio(server.url("no-such-file.mp3"), tmp_path / "1", LOOPBACK_INGEST)
    assert caught.value.reason == "unavailable"
    assert list(tmp_path.iterdir()) == []


def test_listing_rules_out_long_live_and_private_entries() -> None:
    from ingest.youtube import Entry

    settings = IngestSettings(max_duration=600)
    assert check_entry(Entry("k", "u", duration=3 * 3600), settings) == "too_long"
    assert check_entry(Entry("k", "u", live_status="is_live"), settings) == "live_or_upcoming"
    assert check_entry(Entry("k", "u", availability="private"), settings) == "private"
    assert check_entry(Entry("k", "u", duration=200), settings) is None
    assert classify("ERROR: [youtube] abc: Private video. Sign in if you've been granted access") == "private"
    assert classify("ERROR: Unable to download webpage: HTTP Error 404: Not Found") == "unavailable"


def test_a_host_that_does_not_resolve_fails_at_once_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from db.models import Reason
    from ingest.errors import IngestError

    asked: list[object] = []

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(IngestError, match=r"cannot reach www\.youtube\.com \(name not resolved\)") as raised:
        list_playlist("https://www.youtube.com/playlist?list=PL1", IngestSettings(retries=5, backoff=10))
    assert raised.value.reason == Reason.UNRESOLVED and raised.value.attempts == 1
    assert asked == ["www.youtube.com"]  # once: not yt-dlp's three per request, times ours


# What yt-dlp 2026.10's YouTube extractor raises, verbatim: YouTube's playability reason, then the hint the extractor
# appends (yt_dlp/extractor/youtube/_video.py, _base.py's _youtube_login_hint, common.py's _login_hint).
_HINT = (
    "Use --cookies-from-browser or --cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ"
    "#how-do-i-pass-cookies-to-yt-dlp  for how to manually pass cookies. Also see  https://github.com/yt-dlp/yt-dlp"
    "/wiki/Extractors#exporting-youtube-cookies  for tips on effectively exporting YouTube cookies"
)
_V = "ERROR: [youtube] dQw4w9WgXcQ: "
YOUTUBE_ERRORS = {
    f"{_V}Sign in to confirm you\u2019re not a bot. {_HINT}": "bot_check",
    f"{_V}Video unavailable. YouTube is requiring a captcha challenge before playback": "bot_check",
    f"{_V}All player responses are invalid. Your IP is likely being blocked by Youtube": "bot_check",
    f"{_V}Sign in to confirm your age. This video may be inappropriate for some users. {_HINT}": "age_restricted",
    f"{_V}Join this channel to get access to members-only content like this video, and "
    "other exclusive perks.": "members_only",
    f"{_V}This video is available to this channel's members on level: Fans (or any higher "
    "level). Join this channel to get access to members-only content and other exclusive perks.": "members_only",
    f"{_V}Private video. Sign in if you've been granted access to this video. {_HINT}": "private",
    f"{_V}The uploader has not made this video available in your country": "geo_blocked",
    f"{_V}Premieres in 2 hours": "premiere",
    f"{_V}This live event will begin in a few moments.": "live_or_upcoming",
    f"{_V}Video unavailable. This video has been removed by the uploader": "removed",
    f"{_V}Video unavailable. This video is no longer available because the YouTube account "
    "associated with this video has been terminated.": "removed",
    f"{_V}This content isn\u2019t available, try again later. The current session has been "
    "rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to add a delay between video "
    "requests to avoid exceeding the rate limit.": "rate_limited",
    f"{_V}Sign in to view this video. {_HINT}": "sign_in_required",
    f"{_V}Video unavailable": "unavailable",
}


@pytest.mark.parametrize(("message", "reason"), YOUTUBE_ERRORS.items(), ids=list(YOUTUBE_ERRORS.values()))
def test_each_youtube_failure_has_its_own_reason_and_advice(message: str, reason: str) -> None:
    from db.models import Reason

    assert classify(message) == reason
    if reason != "unavailable":
        assert Reason(reason).advice  # what to do, for status and sources
