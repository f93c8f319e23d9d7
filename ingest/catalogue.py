"""Ingest's rows: playlists, their entries and sources, and each download's outcome."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from db.claims import claim, release
from db.models import Playlist, PlaylistEntry, Reason, Source, SourceState, utcnow
from ingest.errors import IngestError
from ingest.pacing import HOST_WIDE, PACER, HostWatch, host_of, pace_for
from ingest.youtube import IngestSettings, PlaylistListing, check_entry, download_audio, list_playlist


@dataclass(frozen=True)
class DownloadOutcome:
    source_id: int
    state: SourceState
    reason: Reason | None = None
    downloaded: bool = False  # False when nothing was fetched (already there, or rejected)
    title: str | None = None
    url: str = ""


STYLE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"


def style_name(text: str | None) -> str | None:
    """A style name made from a playlist title: lower case, dashes, at most 40 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")[:40].strip("-")
    return slug or None


def record_listing(
    session: Session, listing: PlaylistListing, settings: IngestSettings, *, style: str | None = None
) -> Playlist:
    """Upsert the playlist and one source per entry; reject what the listing already rules out.

    Known sources (by key) are linked, never duplicated, so re-submitting a playlist adds nothing.
    A new playlist's style is ``style``, else its title made into a name, else ``playlist-ID``;
    an explicit ``style`` also renames a known playlist's.
    """
    playlist = session.scalar(select(Playlist).where(Playlist.url == listing.url))
    if playlist is None:
        playlist = Playlist(url=listing.url)
        session.add(playlist)
    playlist.title = listing.title or playlist.title
    playlist.expanded_at = utcnow()
    session.flush()
    if style:
        playlist.style = style
    elif playlist.style in (None, "", "default"):
        playlist.style = style_name(playlist.title) or f"playlist-{playlist.id}"
    linked = set(session.scalars(select(PlaylistEntry.source_id).where(PlaylistEntry.playlist_id == playlist.id)))
    keys = [entry.key for entry in listing.entries]
    known = known_sources(session, keys)
    new: dict[str, dict[str, Any]] = {}
    for entry in listing.entries:
        if entry.key in known or entry.key in new:
            continue
        reason = check_entry(entry, settings)
        new[entry.key] = {
            "key": entry.key,
            "url": entry.url,
            "webpage_url": entry.webpage_url,
            "title": entry.title,
            "uploader": entry.uploader,
            "upload_date": entry.upload_date,
            "license": entry.license,
            "duration": entry.duration,
            "state": SourceState.REJECTED if reason else SourceState.PENDING,
            "reason": reason,
        }
    # Plain multi-row inserts, then the new ids read back by key: the ORM would insert row by row on
    # SQLite (it cannot match RETURNING rows to parameters there), one round trip per entry.
    if new:
        session.execute(insert(Source), list(new.values()))
        known.update(known_sources(session, list(new)))
    rows = []
    for position, key in enumerate(keys):
        source_id = known[key]
        if source_id not in linked:
            rows.append({"playlist_id": playlist.id, "source_id": source_id, "position": position})
            linked.add(source_id)
    if rows:
        session.execute(insert(PlaylistEntry), rows)
    return playlist


KEYS_PER_QUERY = 500  # under SQLite's limit on bound parameters in one statement


def known_sources(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """The ids of the catalogued sources among ``keys``, by key: one query per ``KEYS_PER_QUERY`` keys, not one
    per key, reading plain rows (not ORM objects: a 10,000-entry re-submit spent a fifth of its time on them)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), KEYS_PER_QUERY):
        chunk = wanted[start : start + KEYS_PER_QUERY]
        found.update(
            (key, id_) for key, id_ in session.execute(select(Source.key, Source.id).where(Source.key.in_(chunk)))
        )
    return found


@dataclass(frozen=True)
class SavedPlaylist:
    id: int
    title: str | None
    style: str


def save_listing(
    sessions: sessionmaker[Session],
    listing: PlaylistListing,
    settings: IngestSettings,
    *,
    style: str | None = None,
    attempts: int = 3,
) -> SavedPlaylist:
    """:func:`record_listing` in its own transaction, retried when another run inserted the same rows first.

    Two runs listing overlapping playlists at once both try to insert the new sources (or the same
    playlist); the database's unique keys let one win and the other fail with an integrity error.
    The loser simply runs again and finds the winner's rows.
    """
    for attempt in range(attempts):
        try:
            with sessions.begin() as session:
                playlist = record_listing(session, listing, settings, style=style)
                return SavedPlaylist(playlist.id, playlist.title, playlist.style)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def pending_source_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Source.id).where(Source.state == SourceState.PENDING).order_by(Source.id)))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _finished_download(audio_dir: Path, source_id: int) -> Path | None:
    """A file a killed run finished (renamed into place) but never recorded."""
    found = sorted(audio_dir.glob(f"{source_id}.*"))
    return found[0] if found else None


def download_source(
    sessions: sessionmaker[Session], source_id: int, audio_dir: Path, settings: IngestSettings
) -> DownloadOutcome:
    """Download one pending source and record the outcome; safe to re-run after a kill.

    The download itself happens outside any transaction, under a claim (``db.claims``): a source
    another live run is downloading is left to it (``claimed_elsewhere``, state unchanged). The same
    audio reached through two URLs is kept once: the later source is rejected as a duplicate.
    """
    claimed = claim(sessions, source_id, SourceState.PENDING)
    with sessions.begin() as session:
        source = session.get(Source, source_id)
        if source is None or source.state != SourceState.PENDING:
            state = source.state if source else SourceState.REJECTED
            reason = Reason.read(source.reason) if source else Reason.MISSING
            return DownloadOutcome(source_id, state, reason, title=source.title if source else None)
        url, listed_duration, title = source.url, source.duration, source.title
        if not claimed:
            return DownloadOutcome(source_id, SourceState.PENDING, Reason.CLAIMED_ELSEWHERE, title=title, url=url)

    fetched = False
    path = _finished_download(audio_dir, source_id)
    info: dict[str, object] = {}
    if path is None:
        try:
            PACER.wait(url, pace_for(url, settings.sleep_between_requests).spacing)
            download = download_audio(url, audio_dir / str(source_id), settings, expected_duration=listed_duration)
        except IngestError as error:
            detail = str(error) if error.attempts == 1 else f"{error} (gave up after {error.attempts} attempts)"
            state = SourceState.PENDING if error.reason in HOST_WIDE else SourceState.REJECTED
            with sessions.begin() as session:
                source = session.get_one(Source, source_id)
                source.state, source.reason, source.reason_detail = state, error.reason, detail
                release(source)
            return DownloadOutcome(source_id, state, error.reason, title=title, url=url)
        path, info, fetched = download.path, download.info, True

    content_hash = file_sha256(path)
    with sessions.begin() as session:
        source = session.get_one(Source, source_id)
        twin = session.scalar(
            select(Source).where(
                Source.content_hash == content_hash, Source.id != source_id, Source.audio_path.is_not(None)
            )
        )
        source.content_hash = content_hash
        release(source)
        if twin is not None:
            source.state, source.reason = SourceState.REJECTED, Reason.DUPLICATE
            source.reason_detail = f"same audio as source {twin.id}"
            path.unlink(missing_ok=True)
            return DownloadOutcome(source_id, SourceState.REJECTED, Reason.DUPLICATE, fetched, title=title, url=url)
        source.audio_path = str(path)
        source.state, source.reason, source.reason_detail = SourceState.DOWNLOADED, None, None
        source.title = source.title or _str(info.get("title"))
        source.uploader = source.uploader or _str(info.get("uploader") or info.get("channel"))
        source.upload_date = source.upload_date or _str(info.get("upload_date"))
        source.webpage_url = source.webpage_url or _str(info.get("webpage_url"))
        source.license = source.license or _str(info.get("license"))
        duration = info.get("duration")
        if isinstance(duration, (int, float)):
            source.duration = float(duration)
    return DownloadOutcome(source_id, SourceState.DOWNLOADED, None, fetched, title=source.title, url=url)


def _str(value: object) -> str | None:
    return str(value) if value else None


def download_counts(outcomes: Iterable[DownloadOutcome]) -> tuple[int, dict[str, int], dict[str, int]]:
    """(sources downloaded, sources per state, rejections per reason): the one tally of a run's downloads."""
    downloaded, states, rejected = 0, Counter[str](), Counter[str]()
    for outcome in outcomes:
        downloaded += outcome.downloaded
        states[outcome.state.value] += 1
        if outcome.state is SourceState.REJECTED and outcome.reason:
            rejected[outcome.reason] += 1
    return downloaded, dict(states), dict(rejected)


@dataclass
class IngestSummary:
    playlists: int = 0
    downloaded: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class _Running(Protocol):
    def result(self) -> DownloadOutcome: ...


F = TypeVar("F", bound=_Running)


def schedule_downloads(
    source_ids: Sequence[int],
    urls: Mapping[int, str],
    settings: IngestSettings,
    start: Callable[[int], F],
    first_done: Callable[[list[F]], F],
) -> Iterator[DownloadOutcome]:
    """Run ``start(source_id)`` for every source, ``settings.parallel_downloads`` at a time, yielding each final
    outcome as it comes (``first_done`` waits for one of the running ones: a thread pool's or Prefect's).

    Each outcome tells a ``HostWatch`` about its host: a source whose host rate-limited the session is started
    again once the host's pause is over; a source whose host is left alone for this run is not started and
    comes back pending, with the host's reason."""
    watch = HostWatch(settings.host_pause, settings.host_pauses)
    queue = deque(source_ids)
    running: list[F] = []

    def fill() -> Iterator[DownloadOutcome]:
        while queue and len(running) < settings.parallel_downloads:
            source_id = queue.popleft()
            if reason := watch.stopped_for(urls.get(source_id, "")):
                yield DownloadOutcome(source_id, SourceState.PENDING, reason, url=urls.get(source_id, ""))
            else:
                running.append(start(source_id))

    yield from fill()
    while running:
        finished = first_done(running)
        running.remove(finished)
        outcome = finished.result()
        if watch.heard(outcome.url, outcome.reason):
            queue.append(outcome.source_id)  # tried again once the host's pause is over
        else:
            yield outcome
        yield from fill()


def held_hosts(outcomes: Iterable[DownloadOutcome]) -> dict[str, dict[str, int]]:
    """The hosts that left sources pending for a reason of the session's (host -> reason -> sources)."""
    held: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        if outcome.state is SourceState.PENDING and outcome.reason in HOST_WIDE:
            held.setdefault(host_of(outcome.url), Counter())[outcome.reason.value] += 1
    return {host: dict(reasons) for host, reasons in held.items()}


def source_urls(session: Session, source_ids: Sequence[int]) -> dict[int, str]:
    urls: dict[int, str] = {}
    for first in range(0, len(source_ids), 500):  # bounded IN lists, however long the playlist
        query = select(Source.id, Source.url).where(Source.id.in_(source_ids[first : first + 500]))
        urls.update((source_id, url) for source_id, url in session.execute(query))
    return urls


def download_sources(
    sessions: sessionmaker[Session], source_ids: Sequence[int], audio_dir: Path, settings: IngestSettings
) -> Iterator[DownloadOutcome]:
    """Download the sources ``settings.parallel_downloads`` at a time (threads: the work is waiting on the
    network), yielding each outcome as it is recorded."""
    with sessions() as session:
        urls = source_urls(session, source_ids)
    with ThreadPoolExecutor(max_workers=settings.parallel_downloads, thread_name_prefix="download") as pool:

        def start(source_id: int) -> Future[DownloadOutcome]:
            return pool.submit(download_source, sessions, source_id, audio_dir, settings)

        def first_done(running: list[Future[DownloadOutcome]]) -> Future[DownloadOutcome]:
            return next(as_completed(running))

        yield from schedule_downloads(source_ids, urls, settings, start, first_done)


def ingest_urls(
    sessions: sessionmaker[Session], urls: list[str], audio_dir: Path, settings: IngestSettings
) -> IngestSummary:
    """Expand every URL, then download every pending source, a few at once (the flows' steps, unwired).

    A URL that cannot be expanded is reported in ``errors`` and the others go on.
    """
    summary = IngestSummary()
    for url in urls:
        try:
            listing = list_playlist(url, settings)
        except IngestError as error:
            summary.errors.append(f"{url}: {error}")
            continue
        save_listing(sessions, listing, settings)
        summary.playlists += 1
    with sessions() as session:
        pending = pending_source_ids(session)
    summary.downloaded, _, summary.rejected = download_counts(download_sources(sessions, pending, audio_dir, settings))
    return summary
