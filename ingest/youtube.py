"""Everything tunesmith asks of yt-dlp, behind one module.

All ``ydl_opts`` are built here. Playlists are expanded flat (one request for the listing,
none per entry) so known entries are skipped before any download; audio is downloaded into
a private temporary folder and moved into place only when complete.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yt_dlp
from yt_dlp.utils import DownloadError as YtDlpDownloadError
from yt_dlp.utils import unsmuggle_url

from ingest.errors import DownloadError, IngestError, InvalidURLError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestSettings:
    """Limits and manners for talking to a video site."""

    min_duration: float = 5.0
    max_duration: float = 20 * 60.0
    socket_timeout: float = 20.0
    retries: int = 3
    sleep_between_requests: float = 0.0
    audio_format: str = "bestaudio/best"


@dataclass(frozen=True)
class Entry:
    """One playlist entry as the flat listing shows it (no request per entry)."""

    key: str
    url: str
    title: str | None = None
    duration: float | None = None
    uploader: str | None = None
    upload_date: str | None = None
    license: str | None = None
    live_status: str | None = None
    availability: str | None = None


@dataclass(frozen=True)
class PlaylistListing:
    url: str
    title: str | None
    entries: list[Entry]


@dataclass(frozen=True)
class Download:
    path: Path
    info: dict[str, Any] = field(default_factory=dict)


def validate_url(url: str) -> str:
    """Accept only http(s) URLs with a host: no local paths, ``file://`` or other schemes."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidURLError(f"not an http(s) URL: {url!r} (tunesmith only fetches from the web)")
    return url.strip()


def _ydl_opts(settings: IngestSettings, **extra: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "ignoreerrors": False,  # explicit (the API default): each entry's failure is handled by us
        "socket_timeout": settings.socket_timeout,
        "retries": settings.retries,
        "fragment_retries": settings.retries,
        "extractor_retries": settings.retries,
        "sleep_interval_requests": settings.sleep_between_requests,
        "format": settings.audio_format,
        "allowed_extractors": ["default"],
        "logger": log,
    }
    opts.update(extra)
    return opts


def entry_key(entry: dict[str, Any]) -> str:
    """A stable identity for an entry, known before downloading it.

    ``youtube:VIDEO_ID`` where the listing gives an extractor and an id, ``rss:GUID`` for a feed
    item with a guid, otherwise the media URL itself (direct links).
    """
    ie_key, video_id = entry.get("ie_key") or entry.get("extractor_key"), entry.get("id")
    url, smuggled = unsmuggle_url(entry.get("url") or entry.get("webpage_url") or "")
    if ie_key and video_id and ie_key.lower() != "generic":
        return f"{ie_key.lower()}:{video_id}"
    if smuggled and smuggled.get("force_videoid"):  # an RSS item's <guid>: the feed's permanent id for it
        return f"rss:{smuggled['force_videoid']}"
    return f"url:{url}" if url else f"id:{video_id}"


def _entry(raw: dict[str, Any]) -> Entry:
    url = unsmuggle_url(raw.get("webpage_url") or raw.get("url") or "")[0]
    return Entry(
        key=entry_key(raw),
        url=url,
        title=raw.get("title"),
        duration=float(raw["duration"]) if raw.get("duration") else None,
        uploader=raw.get("uploader") or raw.get("channel"),
        upload_date=raw.get("upload_date"),
        license=raw.get("license"),
        live_status=raw.get("live_status"),
        availability=raw.get("availability"),
    )


def list_playlist(url: str, settings: IngestSettings) -> PlaylistListing:
    """Expand a playlist (or a single video) URL into entries without downloading anything."""
    url = validate_url(url)
    with yt_dlp.YoutubeDL(_ydl_opts(settings, extract_flat="in_playlist")) as ydl:
        try:
            info = ydl.sanitize_info(ydl.extract_info(url, download=False))
        except YtDlpDownloadError as error:
            raise IngestError(f"could not read {url}: {_clean(error)}", reason=classify(str(error))) from error
    if info is None:
        raise IngestError(f"yt-dlp found nothing at {url}", reason="unavailable")
    if info.get("_type") == "playlist" or "entries" in info:
        entries = [_entry(raw) for raw in info.get("entries") or [] if raw]
        return PlaylistListing(url=url, title=info.get("title"), entries=entries)
    single = _entry({**info, "url": info.get("webpage_url") or url})
    return PlaylistListing(url=url, title=info.get("title"), entries=[single])


def check_entry(entry: Entry, settings: IngestSettings) -> str | None:
    """The reason to reject an entry before downloading it, if the listing already tells."""
    if entry.live_status in ("is_live", "is_upcoming", "post_live"):
        return "live_or_upcoming"
    if entry.availability in ("private", "premium_only", "subscriber_only", "needs_auth"):
        return "private"
    if entry.duration is not None and entry.duration > settings.max_duration:
        return "too_long"
    if entry.duration is not None and entry.duration < settings.min_duration:
        return "too_short"
    return None


def download_audio(url: str, dest_stem: Path, settings: IngestSettings) -> Download:
    """Download one entry's audio to ``dest_stem`` + its extension, atomically.

    yt-dlp writes into a private temporary folder next to the destination; the finished
    file is moved into place with one rename, so a killed run never leaves a file that looks done.

    Raises:
        DownloadError: with a ``reason`` (private, unavailable, live_or_upcoming, too_long, ...).
    """
    dest_stem.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".download-", dir=dest_stem.parent))
    try:
        opts = _ydl_opts(settings, outtmpl=str(workdir / "audio.%(ext)s"), noplaylist=True)
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False)
            if info is None:
                raise DownloadError(f"yt-dlp found nothing at {url}", reason="unavailable")
            reason = check_entry(_entry(ydl.sanitize_info(info)), settings)
            if reason:
                raise DownloadError(f"{url}: rejected before download ({reason})", reason=reason)
            info = ydl.process_ie_result(info, download=True)
        files = [p for p in workdir.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
        if len(files) != 1:
            raise DownloadError(f"{url}: expected one audio file, yt-dlp left {len(files)}")
        final = dest_stem.with_suffix(files[0].suffix or ".audio")
        files[0].replace(final)
        return Download(path=final, info=ydl.sanitize_info(info))
    except YtDlpDownloadError as error:
        raise DownloadError(f"{url}: {_clean(error)}", reason=classify(str(error))) from error
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


_REASONS = [
    (r"private video|sign in|members[- ]only|login required", "private"),
    (r"live event|is live|premieres in|upcoming", "live_or_upcoming"),
    (r"http error 404|video unavailable|not available|has been removed|does not exist|410", "unavailable"),
    (r"unsupported url", "unsupported"),
    (r"http error 429|too many requests", "rate_limited"),
]


def classify(message: str) -> str:
    """Map a yt-dlp error message to a short catalogue reason."""
    lowered = message.lower()
    for pattern, reason in _REASONS:
        if re.search(pattern, lowered):
            return reason
    return "download_failed"


def _clean(error: Exception) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", str(error)).removeprefix("ERROR: ").strip()
