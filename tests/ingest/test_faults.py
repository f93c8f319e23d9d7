"""Every failure kind a real playlist throws at ingest, played by a real HTTP server on loopback."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from db.catalogue import Catalogue
from db.models import Source, SourceState
from ingest.catalogue import download_source, pending_source_ids, record_listing
from ingest.youtube import list_playlist
from sample.feed import LOOPBACK_INGEST, FeedItem
from tests.faults import Fault, FaultyServer

pytestmark = pytest.mark.network
SETTINGS = LOOPBACK_INGEST  # 2 retries, 0.05 s back-off doubling


def _copy(server: FaultyServer, item: FeedItem, name: str) -> str:
    """A fresh copy of a rendered piece under ``name`` (each test gets its own path and fault)."""
    shutil.copy(server.root / item.filename, server.root / name)
    return name


def _ingest_one(catalogue: Catalogue, server: FaultyServer, item: FeedItem) -> Source:
    listing = list_playlist(server.write_feed(f"{item.guid}.xml", item.title, [item]), SETTINGS)
    with catalogue.sessions.begin() as session:
        record_listing(session, listing, SETTINGS)
        pending = pending_source_ids(session)
    for source_id in pending:
        download_source(catalogue.sessions, source_id, catalogue.home.audio_dir, SETTINGS)
    with catalogue.sessions() as session:
        (source,) = session.scalars(select(Source).where(Source.key == f"rss:{item.guid}"))
        session.expunge(source)
    return source


def _gets(server: FaultyServer, name: str) -> int:
    return sum(1 for r in server.requests if r == f"/{name}")


def _assert_no_file(catalogue: Catalogue, source: Source) -> None:
    assert source.audio_path is None
    assert not list(catalogue.home.audio_dir.glob(f"{source.id}.*"))
    assert not list(catalogue.home.audio_dir.glob(".download-*"))


@pytest.mark.parametrize("status", [429, 503])
def test_transient_errors_are_retried_then_succeed(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem], status: int
) -> None:
    name = _copy(server, feed_items[0], f"flaky-{status}.mp3")
    server.fail(name, Fault(status=status, times=2))
    source = _ingest_one(catalogue, server, FeedItem(name, "flaky", f"flaky-{status}", feed_items[0].duration))
    assert source.state is SourceState.DOWNLOADED
    assert Path(source.audio_path or "").read_bytes() == (server.root / name).read_bytes()
    assert server.faults[f"/{name}"].served == 2


@pytest.mark.parametrize(
    ("status", "state", "reason"),
    [(429, SourceState.PENDING, "rate_limited"), (500, SourceState.REJECTED, "server_error")],
)  # a rate limit speaks of the session, not the video: the source waits for the host (``HostWatch``)
def test_persistent_transient_errors_give_up_after_bounded_retries(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem], status: int, state: SourceState,
    reason: str,
) -> None:  # fmt: skip
    name = _copy(server, feed_items[0], f"down-{status}.mp3")
    server.fail(name, Fault(status=status))
    source = _ingest_one(catalogue, server, FeedItem(name, "down", f"down-{status}", feed_items[0].duration))
    assert (source.state, source.reason) == (state, reason)
    assert f"after {SETTINGS.retries + 1} attempts" in (source.reason_detail or "")
    # Bounded: our retries times yt-dlp's own (it retries a download's 5xx itself).
    assert 1 < _gets(server, name) <= (SETTINGS.retries + 1) ** 2 + SETTINGS.retries + 1
    _assert_no_file(catalogue, source)


def test_permanent_errors_are_not_retried(catalogue: Catalogue, server: FaultyServer) -> None:
    source = _ingest_one(catalogue, server, FeedItem("gone.mp3", "Deleted video", "gone"))
    assert (source.state, source.reason) == (SourceState.REJECTED, "unavailable")
    assert "attempts" not in (source.reason_detail or "")
    assert _gets(server, "gone.mp3") == 1
    _assert_no_file(catalogue, source)


def test_forbidden_is_its_own_reason(catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]) -> None:
    name = _copy(server, feed_items[0], "forbidden.mp3")
    server.fail(name, Fault(status=403))
    source = _ingest_one(catalogue, server, FeedItem(name, "Private upload", "forbidden"))
    assert (source.state, source.reason) == (SourceState.REJECTED, "forbidden")


def test_a_file_that_is_not_audio_is_rejected(catalogue: Catalogue, server: FaultyServer) -> None:
    (server.root / "page.mp3").write_text("<html><body>This video is no longer available</body></html>" * 50)
    source = _ingest_one(catalogue, server, FeedItem("page.mp3", "Not audio", "not-audio"))
    assert (source.state, source.reason) == (SourceState.REJECTED, "not_audio")
    _assert_no_file(catalogue, source)


def test_a_truncated_file_is_rejected(catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]) -> None:
    whole = (server.root / feed_items[0].filename).read_bytes()
    (server.root / "cut.mp3").write_bytes(whole[: len(whole) // 3])
    source = _ingest_one(catalogue, server, FeedItem("cut.mp3", "Cut short", "cut", feed_items[0].duration))
    assert (source.state, source.reason) == (SourceState.REJECTED, "truncated")
    assert "listed" in (source.reason_detail or "")
    _assert_no_file(catalogue, source)


def test_a_transfer_cut_off_once_is_retried(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    name = _copy(server, feed_items[1], "hangup.mp3")
    server.fail(name, Fault(truncate=True, times=1))
    source = _ingest_one(catalogue, server, FeedItem(name, "Hang-up", "hangup", feed_items[1].duration))
    assert source.state is SourceState.DOWNLOADED
    assert Path(source.audio_path or "").stat().st_size == (server.root / name).stat().st_size


def test_a_slow_server_times_out_then_recovers(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    name = _copy(server, feed_items[2], "slow.mp3")
    server.fail(name, Fault(delay=SETTINGS.socket_timeout + 1, times=1))
    source = _ingest_one(catalogue, server, FeedItem(name, "Slow", "slow", feed_items[2].duration))
    assert source.state is SourceState.DOWNLOADED


def test_lengths_found_only_after_download_are_checked(
    catalogue: Catalogue, server: FaultyServer, hammered: Path
) -> None:
    """A listing without durations: the downloaded file's own length decides."""
    short = server.root / "short.mp3"
    from pydub import AudioSegment

    AudioSegment.from_file(hammered)[:2000].export(short, format="mp3")
    source = _ingest_one(catalogue, server, FeedItem("short.mp3", "Two seconds", "short"))
    assert (source.state, source.reason) == (SourceState.REJECTED, "too_short")
    _assert_no_file(catalogue, source)


def test_yt_dlp_finds_its_javascript_runtime_for_youtube() -> None:
    """A plain install carries deno and yt-dlp-ejs, which YouTube's player challenges need."""
    import subprocess
    import sys

    header = subprocess.run([sys.executable, "-m", "yt_dlp", "-v"], capture_output=True, text=True, timeout=60).stderr
    assert "JS runtimes: deno-" in header, header
    assert "yt_dlp_ejs-" in header, header


def test_yt_dlp_calls_every_retry_sleep_function_the_way_it_calls_them() -> None:
    """yt-dlp's RetryManager passes the retry index as a keyword (``sleep_func(n=...)``) on every path."""
    from yt_dlp.utils import RetryManager

    from ingest.youtube import _ydl_opts

    functions = _ydl_opts(SETTINGS, "https://example.org/a.mp3")["retry_sleep_functions"]
    assert set(functions) == {"http", "fragment", "extractor", "file_access"}
    warnings: list[str] = []
    for name, sleep_func in functions.items():
        attempts = 0
        for retry in RetryManager(
            SETTINGS.retries,
            functools.partial(
                RetryManager.report_retry, sleep_func=sleep_func, info=warnings.append, warn=warnings.append
            ),
        ):
            attempts += 1
            if attempts == 1:
                retry.error = OSError(f"{name} failed once")
        assert attempts == 2, name
    assert len([w for w in warnings if "Retrying" in w]) == 4


def test_a_download_that_fails_after_the_extractor_read_it_is_retried_by_yt_dlp(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    """The extractor's request works, the download's answers 503 once: yt-dlp's own http retry path."""
    name = _copy(server, feed_items[0], "midway.mp3")
    server.fail(name, Fault(status=503, times=1, after=1))
    source = _ingest_one(catalogue, server, FeedItem(name, "midway", "midway", feed_items[0].duration))
    assert source.state is SourceState.DOWNLOADED, source.reason_detail
    assert server.faults[f"/{name}"].served == 1
    assert Path(source.audio_path or "").read_bytes() == (server.root / name).read_bytes()


def test_a_playlist_feed_that_answers_503_once_is_read_on_the_retry(
    server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    feed = server.write_feed("flaky-feed.xml", "Flaky feed", feed_items[:2])
    server.fail("flaky-feed.xml", Fault(status=503, times=1))
    listing = list_playlist(feed, SETTINGS)
    assert [e.key for e in listing.entries] == [f"rss:{item.guid}" for item in feed_items[:2]]
    assert _gets(server, "flaky-feed.xml") == 2


def test_a_site_that_wants_its_visitor_signed_in_is_reached_with_the_users_cookies(
    server: FaultyServer, feed_items: list[FeedItem], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ingest.errors import DownloadError
    from ingest.youtube import IngestSettings, download_audio

    name = _copy(server, feed_items[0], "members.mp3")
    secret = "SID=s3cr3t-session-value"
    server.fail(name, Fault(cookie=secret))
    with pytest.raises(DownloadError) as refused:
        download_audio(server.url(name), tmp_path / "without", SETTINGS)
    assert refused.value.reason == "forbidden"  # 403 without the cookie

    jar = tmp_path / "cookies.txt"
    jar.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\t{secret.split('=')[1]}\n")
    jar.chmod(0o644)
    with pytest.raises(ValueError, match=r"can be read by others \(mode 644\): chmod 600"):
        IngestSettings(cookies=str(jar))
    jar.chmod(0o600)
    settings = SETTINGS.model_copy(update={"cookies": str(jar)})
    with caplog.at_level("DEBUG"):
        done = download_audio(server.url(name), tmp_path / "with", settings)
    assert done.path.is_file() and done.path.stat().st_size > 10_000
    value = secret.split("=")[1]
    assert value not in caplog.text and value not in str(settings.model_dump())  # a path, never the cookie
    assert value not in str(done.info)


def _feed_of_three(server: FaultyServer, feed_items: list[FeedItem], tag: str) -> list[FeedItem]:
    return [FeedItem(_copy(server, item, f"{tag}-{i}.mp3"), f"{tag} {i}", f"{tag}-{i}", item.duration)
            for i, item in enumerate(feed_items[:3])]  # fmt: skip


def _download_all(catalogue: Catalogue, server: FaultyServer, items: list[FeedItem], settings: object) -> list:
    from ingest.catalogue import download_sources

    listing = list_playlist(server.write_feed(f"{items[0].guid}.xml", "three", items), SETTINGS)
    with catalogue.sessions.begin() as session:
        record_listing(session, listing, SETTINGS)
        pending = pending_source_ids(session)
    return list(download_sources(catalogue.sessions, pending, catalogue.home.audio_dir, settings))  # type: ignore[arg-type]


def test_a_rate_limit_pauses_the_whole_host_then_every_entry_is_fetched(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:

    items = _feed_of_three(server, feed_items, "limited")
    pause = 2.0
    # 429 to the first try and both retries, then the limit lifts: a count, not a clock (a loaded machine took
    # longer than a second to list the feed, and the limit had lifted before the first request)
    server.fail(items[0].filename, Fault(status=429, times=SETTINGS.retries + 1))
    settings = SETTINGS.model_copy(update={"host_pause": pause, "parallel_downloads": 1})
    outcomes = _download_all(catalogue, server, items, settings)
    assert sorted(o.state for o in outcomes) == [SourceState.DOWNLOADED] * 3  # nothing rejected for the limit
    limited = [t for t, path in server.stamps if path == f"/{items[0].filename}"]
    fault = server.faults[f"/{items[0].filename}"]
    assert fault.served == SETTINGS.retries + 1  # the limit was met, every try
    last_429 = sorted(limited)[fault.served - 1]
    others = [t for t, path in server.stamps if path in {f"/{i.filename}" for i in items[1:]}]
    assert others and min(others) >= last_429 + pause - 0.1  # the host was left alone while it was paused


def test_a_bot_check_leaves_the_rest_of_the_host_pending_until_a_run_that_passes(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    from ingest.catalogue import held_hosts

    items = _feed_of_three(server, feed_items, "bot")
    server.fail(items[0].filename, Fault(status=403, message="Sign in to confirm you're not a bot"))
    settings = SETTINGS.model_copy(update={"parallel_downloads": 1})
    outcomes = _download_all(catalogue, server, items, settings)
    assert {(o.state, o.reason) for o in outcomes} == {(SourceState.PENDING, "bot_check")}
    assert held_hosts(outcomes) == {"127.0.0.1": {"bot_check": 3}}
    assert all(_gets(server, item.filename) == 0 for item in items[1:])  # not one more request to that host
    del server.faults[f"/{items[0].filename}"]  # the user passed cookies: the next run fetches every one
    again = _download_all(catalogue, server, items, settings)
    assert sorted(o.state for o in again) == [SourceState.DOWNLOADED] * 3


def test_a_host_where_nothing_listens_is_tried_once_and_its_entries_wait_for_the_next_run(
    catalogue: Catalogue, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    """Connection refused is not transient: no retries (they multiply with yt-dlp's), and the host's other entries
    are not tried in this run; all stay pending, none is rejected for the host being down."""
    import socket

    from ingest.catalogue import download_sources, held_hosts
    from sample.feed import feed_xml

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{closed.getsockname()[1]}"
    items = [FeedItem(f"gone-{i}.mp3", f"Gone {i}", f"gone-{i}", 60.0) for i in range(3)]
    (server.root / "gone.xml").write_text(feed_xml(gone, "Gone", items), encoding="utf-8")
    listing = list_playlist(server.url("gone.xml"), SETTINGS)
    with catalogue.sessions.begin() as session:
        record_listing(session, listing, SETTINGS)
        pending = pending_source_ids(session)
    settings = SETTINGS.model_copy(update={"parallel_downloads": 1, "retries": 3, "backoff": 5.0})
    outcomes = list(download_sources(catalogue.sessions, pending, catalogue.home.audio_dir, settings))
    assert {(o.state, o.reason) for o in outcomes} == {(SourceState.PENDING, "refused")}
    assert held_hosts(outcomes) == {"127.0.0.1": {"refused": 3}}  # one line for the host, exit 1 (flows.cli)


def test_a_playlist_where_nothing_listens_fails_at_once_naming_the_host() -> None:
    import socket

    from ingest.errors import IngestError

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/playlist.xml"
    with pytest.raises(IngestError) as refused:
        list_playlist(url, SETTINGS.model_copy(update={"retries": 3, "backoff": 5.0}))
    assert refused.value.reason == "refused" and refused.value.attempts == 1  # not 35 s of retries at that back-off
    assert str(refused.value) == (f"could not read {url}: cannot reach 127.0.0.1 (connection refused): the site is "
                                  "down or the address is wrong")  # fmt: skip


def test_youtube_gets_the_pace_its_wiki_asks_for_and_other_hosts_keep_theirs() -> None:
    from ingest.pacing import YOUTUBE_PACE, expected_wait, pace_for
    from ingest.youtube import _ydl_opts

    video = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert pace_for(video, None) == pace_for("https://youtu.be/dQw4w9WgXcQ", None) == YOUTUBE_PACE
    youtube, other = _ydl_opts(SETTINGS.model_copy(update={"sleep_between_requests": None}), video), _ydl_opts(
        SETTINGS.model_copy(update={"sleep_between_requests": None}), "https://example.org/a.mp3")  # fmt: skip
    assert (youtube["sleep_interval_requests"], youtube["sleep_interval"], youtube["max_sleep_interval"]) == (
        0.75, 10.0, 20.0)  # fmt: skip
    assert (other["sleep_interval_requests"], other["sleep_interval"]) == (1.0, 1.0)
    assert _ydl_opts(SETTINGS, video)["sleep_interval"] == 0.0  # a pause the user set is kept, on YouTube too
    hour = expected_wait([video] * 300, None)
    assert 3300 <= hour <= 3700  # about 300 videos an hour
    assert expected_wait([video] * 300 + ["https://example.org/a.mp3"] * 10, None) == hour  # hosts side by side
