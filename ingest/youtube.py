"""Everything tunesmith asks of yt-dlp, behind one module.

All ``ydl_opts`` are built here. Playlists are expanded flat (one request for the listing,
none per entry) so known entries are skipped before any download; audio is downloaded into
a private temporary folder and moved into place only when complete.
"""

from __future__ import annotations

import errno
import functools
import logging
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import yt_dlp
from pydantic import BaseModel, ConfigDict, Field, model_validator
from yt_dlp.utils import DownloadError as YtDlpDownloadError
from yt_dlp.utils import ExtractorError, PagedList, unsmuggle_url

from db.environment import environment
from db.models import Reason
from ingest.errors import DownloadError, IngestError, InvalidURLError
from ingest.pacing import pace_for
from ingest.probe import probe_audio

log = logging.getLogger(__name__)
T = TypeVar("T")

# yt-dlp's warnings that are notices about how it works, not about the user's media: logged at INFO.
NOTICES = re.compile(r"^\[generic\] Falling back on generic information extractor")


class _YtDlpLogger:
    """yt-dlp's logger interface over ours, with its known notices moved from WARNING to INFO, and its errors too."""

    def debug(self, message: str) -> None:
        log.debug(message)

    def info(self, message: str) -> None:
        log.info(message)

    def warning(self, message: str) -> None:
        (log.info if NOTICES.match(message) else log.warning)(message)

    def error(self, message: str) -> None:
        # Each error reaches us as an exception too and ends as one line of ours (a reason, a retry, the command's
        # error): yt-dlp's own account of it stays in the log file.
        log.info(message)


# Failures worth another try after a pause; every other reason is permanent.
TRANSIENT_REASONS = frozenset(
    {Reason.RATE_LIMITED, Reason.SERVER_ERROR, Reason.TIMEOUT, Reason.NETWORK, Reason.TRUNCATED_TRANSFER}
)  # fmt: skip
# A name that does not resolve, or an address where nothing listens, is not worth minutes of retries (yt-dlp's three
# per request, times ours): it fails at once, and listing a playlist resolves its host first (``check_resolves``).
RESOLVE_SECONDS = 10.0


class IngestSettings(BaseModel):
    """Limits and manners for talking to a video site (a flow parameter, so the Prefect UI shows a form).

    ``retries`` transient failures (HTTP 429 and 5xx, timeouts, dropped connections) are retried
    after ``backoff`` seconds, doubling each time up to ``backoff_max``; permanent ones (404,
    private, too long, not audio) never are. ``sleep_between_requests`` is a polite pause before
    each request and download, as yt-dlp's own ``--sleep-requests``/``--sleep-interval`` do; unset,
    each host gets its own pace (``ingest.pacing``: YouTube's, about 300 videos an hour). A host that
    rate-limits the session past the retries is left alone ``host_pause`` seconds, then tried again.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_duration: float = Field(5.0, ge=0, description="reject audio shorter than this (seconds)")
    max_duration: float = Field(20 * 60.0, gt=0, description="reject audio longer than this (seconds)")
    socket_timeout: float = Field(20.0, gt=0, description="seconds to wait on a silent connection")
    retries: int = Field(3, ge=0, le=10, description="retries of a transient failure")
    backoff: float = Field(2.0, ge=0, description="seconds before the first retry; doubles each time")
    backoff_max: float = Field(60.0, ge=0, description="longest wait between retries (seconds)")
    sleep_between_requests: float | None = Field(
        None,
        ge=0,
        description="polite pause before each request and download (seconds); unset: 1 s, and on "
        "YouTube its own pace (0.75 s a request, 10-20 s before a download, about 300 videos an hour)",
    )
    host_pause: float = Field(900.0, ge=0, description="seconds a host that rate-limits the session is left alone "
                              "before its entries are tried again")  # fmt: skip
    host_pauses: int = Field(3, ge=0, le=48, description="pauses a run waits out per host before leaving the rest "
                             "of its entries for the next run")  # fmt: skip
    parallel_downloads: int = Field(3, ge=1, le=16, description="entries downloaded at once (starts to one host "
                                    "still spaced by the polite pause)")  # fmt: skip
    audio_format: str = Field("bestaudio/best", description="yt-dlp format selector")
    cookies: str | None = Field(
        default_factory=lambda: environment().cookies,
        description="a cookies.txt file (Netscape format, readable by you alone) for sites that ask you to sign in "
        "or prove you are not a bot: a path, never the cookies themselves",
    )
    cookies_from_browser: str | None = Field(
        None,
        description="read cookies from this browser: firefox, chrome, chromium, edge, brave... (BROWSER[:PROFILE])",
    )
    extractor_args: list[str] = Field(
        default_factory=list,
        description="yt-dlp --extractor-args, e.g. youtube:player_client=default,mweb (PO-token plugins read theirs "
        "here too)",
    )

    @model_validator(mode="after")
    def _bounds(self) -> IngestSettings:
        if self.min_duration >= self.max_duration:
            raise ValueError(f"min_duration {self.min_duration} must be below max_duration {self.max_duration}")
        if self.cookies:
            check_cookies_file(Path(self.cookies))
        for arg in self.extractor_args:
            parse_extractor_args(arg)
        return self

    def backoff_delay(self, n: int) -> float:
        """Seconds to wait before retry number ``n`` (0-based): exponential, capped.

        Also yt-dlp's ``retry_sleep_functions``, which it calls with a keyword: ``backoff_delay(n=0)``.
        """
        return float(min(self.backoff_max, self.backoff * 2**n))


@dataclass(frozen=True)
class Entry:
    """One playlist entry as the flat listing shows it (no request per entry)."""

    key: str
    url: str
    title: str | None = None
    webpage_url: str | None = None
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


def _ydl_opts(settings: IngestSettings, url: str, **extra: Any) -> dict[str, Any]:
    pace = pace_for(url, settings.sleep_between_requests)
    opts: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "ignoreerrors": False,  # explicit (the API default): each entry's failure is handled by us
        "socket_timeout": settings.socket_timeout,
        # yt-dlp retries a download's 5xx and short reads itself; with_retries() covers the rest.
        "retries": settings.retries,
        "fragment_retries": settings.retries,
        "extractor_retries": settings.retries,
        "retry_sleep_functions": {
            "http": settings.backoff_delay,
            "fragment": settings.backoff_delay,
            "extractor": settings.backoff_delay,
            "file_access": settings.backoff_delay,
        },
        "sleep_interval_requests": pace.request,
        "sleep_interval": pace.download[0],
        "max_sleep_interval": pace.download[1],
        "format": settings.audio_format,
        "allowed_extractors": ["default"],
        "logger": _YtDlpLogger(),
    }
    if settings.cookies:
        opts["cookiefile"] = settings.cookies
    if settings.cookies_from_browser:
        browser, _, profile = settings.cookies_from_browser.partition(":")
        opts["cookiesfrombrowser"] = (browser.lower(), profile or None, None, None)
    if settings.extractor_args:
        opts["extractor_args"] = {}
        for arg in settings.extractor_args:
            key, values = parse_extractor_args(arg)
            opts["extractor_args"].setdefault(key, {}).update(values)
    opts.update(extra)
    return opts


def check_cookies_file(path: Path) -> None:
    """A cookies file must exist and be readable by its owner alone: it holds the keys to an account.

    Raises:
        ValueError: it is missing, or others may read it.
    """
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise ValueError(f"cannot read the cookies file {path}: {error.strerror}") from error
    if mode & 0o077:
        raise ValueError(f"the cookies file {path} can be read by others (mode {mode & 0o777:o}): chmod 600 {path}")


def parse_extractor_args(arg: str) -> tuple[str, dict[str, list[str]]]:
    """``IE:KEY=V1,V2;KEY2=V`` (yt-dlp's ``--extractor-args``) as (ie, {key: [values]}).

    Raises:
        ValueError: not of that form.
    """
    ie, sep, rest = arg.partition(":")
    pairs = [p.partition("=") for p in rest.split(";") if p]
    if not sep or not ie or not pairs or any(not k or not eq for k, eq, _ in pairs):
        raise ValueError(f"extractor args take the form IE:KEY=VALUE[,VALUE][;KEY=VALUE], not {arg!r}")
    return ie.lower(), {k.strip().replace("-", "_"): v.split(",") for k, _, v in pairs}


def entry_key(entry: dict[str, Any]) -> str:
    """A stable identity for an entry, known before downloading it.

    ``youtube:VIDEO_ID`` where the listing gives an extractor and an id, ``rss:GUID`` for a feed
    item with a guid, otherwise the media URL itself (direct links).
    """
    ie_key, video_id = entry.get("ie_key") or entry.get("extractor_key"), entry.get("id")
    url, smuggled = _unsmuggled(entry.get("url") or entry.get("webpage_url") or "")
    if ie_key and video_id and ie_key.lower() != "generic":
        return f"{ie_key.lower()}:{video_id}"
    if smuggled and smuggled.get("force_videoid"):  # an RSS item's <guid>: the feed's permanent id for it
        return f"rss:{smuggled['force_videoid']}"
    return f"url:{url}" if url else f"id:{video_id}"


@functools.lru_cache(maxsize=64)
def _unsmuggled(url: str) -> tuple[str, dict[str, Any] | None]:
    """yt-dlp's ``unsmuggle_url``, read once per URL (an entry's key and fields read the same URL thrice)."""
    return unsmuggle_url(url)  # type: ignore[no-any-return]


def _entry(raw: dict[str, Any]) -> Entry:
    url = _unsmuggled(raw.get("webpage_url") or raw.get("url") or "")[0]
    return Entry(
        key=entry_key(raw),
        url=url,
        title=raw.get("title"),
        webpage_url=_unsmuggled(raw.get("webpage_url") or "")[0] or None,
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
    check_resolves(url)

    def expand() -> Any:
        # Unprocessed: yt-dlp's processing of a flat listing only fills in, per entry, fields nobody reads
        # (output names for --print among them): 0.5 ms an entry, 5 s of a 10,000-entry playlist's re-submit.
        # A result that points elsewhere (a redirect, a video URL naming its playlist) is followed as usual.
        with yt_dlp.YoutubeDL(_ydl_opts(settings, url, extract_flat="in_playlist")) as ydl:
            try:
                info = ydl.extract_info(url, download=False, process=False)
                if info is not None and info.get("_type") in ("url", "url_transparent"):
                    info = ydl.process_ie_result(info, download=False)
                return sanitized(ydl, read_entries(info))
            except (YtDlpDownloadError, ExtractorError) as error:
                reason = classify(str(error))
                if reason == Reason.REFUSED:  # the cause, not yt-dlp's account of every layer it went through
                    host = urlparse(url).hostname
                    said = f"cannot reach {host} (connection refused): the site is down or the address is wrong"
                else:
                    said = _clean(error)
                raise IngestError(f"could not read {url}: {said}", reason=reason) from error

    info = with_retries(expand, settings, what=url)
    if info is None:
        raise IngestError(f"yt-dlp found nothing at {url}", reason=Reason.UNAVAILABLE)
    if info.get("_type") == "playlist" or "entries" in info:
        entries = [_entry(raw) for raw in info.get("entries") or [] if raw]
        return PlaylistListing(url=url, title=info.get("title"), entries=entries)
    single = _entry({**info, "url": info.get("webpage_url") or url})
    return PlaylistListing(url=url, title=info.get("title"), entries=[single])


def check_resolves(url: str, timeout: float = RESOLVE_SECONDS) -> None:
    """Resolve ``url``'s host once, before yt-dlp and the retries do it many times.

    Raises:
        IngestError: (``unresolved``) the name does not resolve, or not within ``timeout`` seconds.
    """
    host = urlparse(url).hostname or ""
    outcome: list[BaseException | None] = []

    def resolve() -> None:
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            outcome.append(None)
        except OSError as error:
            outcome.append(error)

    worker = threading.Thread(target=resolve, daemon=True)  # getaddrinfo itself has no timeout
    worker.start()
    worker.join(timeout)
    if not outcome or outcome[0] is not None:
        why = "name not resolved" if outcome else f"no answer from the resolver in {timeout:.0f} s"
        raise IngestError(f"could not read {url}: cannot reach {host} ({why}): check the network",
                          reason=Reason.UNRESOLVED)  # fmt: skip


def read_entries(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """``info`` with its entries as a list: an unprocessed listing may hold a generator or a paged list (YouTube's
    playlists do), which this reads to its end (yt-dlp's ``sanitize_info`` would write it as its repr)."""
    entries = (info or {}).get("entries")
    if info is None or entries is None or isinstance(entries, list):
        return info
    return {**info, "entries": entries.getslice() if isinstance(entries, PagedList) else list(entries)}


def sanitized(ydl: yt_dlp.YoutubeDL, info: dict[str, Any] | None) -> dict[str, Any] | None:
    """yt-dlp's ``sanitize_info`` for the listing itself; its entries are left as they are (``_entry`` reads each
    one's few fields into a typed record), which spares a 10,000-entry playlist a walk over every field."""
    if info is None or not isinstance(info.get("entries"), list):
        return ydl.sanitize_info(info)  # type: ignore[no-any-return]
    top = ydl.sanitize_info({key: value for key, value in info.items() if key != "entries"})
    return {**top, "entries": info["entries"]}


SECRET_FIELDS = frozenset({"cookies", "http_headers"})  # yt-dlp copies the request's cookies into every format


def without_secrets(info: Any) -> Any:
    """``info`` without the fields that carry the user's cookies, at any depth."""
    if isinstance(info, dict):
        return {k: without_secrets(v) for k, v in info.items() if k not in SECRET_FIELDS}
    if isinstance(info, list):
        return [without_secrets(v) for v in info]
    return info


def check_entry(entry: Entry, settings: IngestSettings) -> Reason | None:
    """The reason to reject an entry before downloading it, if the listing already tells."""
    if entry.live_status in ("is_live", "is_upcoming", "post_live"):
        return Reason.LIVE_OR_UPCOMING
    if entry.availability == "private":
        return Reason.PRIVATE
    if entry.availability in ("premium_only", "subscriber_only"):
        return Reason.MEMBERS_ONLY
    if entry.availability == "needs_auth":
        return Reason.SIGN_IN_REQUIRED
    return length_reason(entry.duration, settings) if entry.duration is not None else None


def length_reason(seconds: float, settings: IngestSettings) -> Reason | None:
    """``too_long`` or ``too_short`` when ``seconds`` is outside the settings' bounds."""
    if seconds > settings.max_duration:
        return Reason.TOO_LONG
    if seconds < settings.min_duration:
        return Reason.TOO_SHORT
    return None


def with_retries(action: Callable[[], T], settings: IngestSettings, *, what: str) -> T:
    """Run ``action``, retrying transient :class:`IngestError` s with exponential back-off.

    Raises:
        IngestError: the last error, with ``attempts`` set, once retries are spent or at once
            when the failure is permanent.
    """
    for attempt in range(settings.retries + 1):
        try:
            return action()
        except IngestError as error:
            error.attempts = attempt + 1
            if error.reason not in TRANSIENT_REASONS or attempt == settings.retries:
                raise
            delay = settings.backoff_delay(attempt)
            log.warning(
                "%s: %s (%s); retry %d of %d in %.1f s", what, error.reason, error, attempt + 1, settings.retries, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


def download_audio(
    url: str, dest_stem: Path, settings: IngestSettings, *, expected_duration: float | None = None
) -> Download:
    """Download one entry's audio to ``dest_stem`` + its extension, atomically, retrying transient failures.

    yt-dlp writes into a private temporary folder next to the destination; the file is probed
    (it must hold an audio stream of an allowed length, and not be much shorter than the listing
    said) and only then moved into place with one rename, so a killed run never leaves a file
    that looks done.

    Raises:
        DownloadError: with a ``reason`` (private, unavailable, live_or_upcoming, too_long,
            not_audio, truncated, rate_limited, server_error, ...).
    """
    return with_retries(lambda: _download_once(url, dest_stem, settings, expected_duration), settings, what=url)


def _download_once(url: str, dest_stem: Path, settings: IngestSettings, expected_duration: float | None) -> Download:
    dest_stem.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest_stem.parent.glob(f".download-{dest_stem.name}-*"):  # a killed run's half-download
        shutil.rmtree(stale, ignore_errors=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".download-{dest_stem.name}-", dir=dest_stem.parent))
    try:
        opts = _ydl_opts(settings, url, outtmpl=str(workdir / "audio.%(ext)s"), noplaylist=True)
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False)
            if info is None:
                raise DownloadError(f"yt-dlp found nothing at {url}", reason=Reason.UNAVAILABLE)
            reason = check_entry(_entry(ydl.sanitize_info(info)), settings)
            if reason:
                raise DownloadError(f"{url}: rejected before download ({reason})", reason=reason)
            info = ydl.process_ie_result(info, download=True)
        files = [p for p in workdir.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
        if len(files) != 1:
            raise DownloadError(f"{url}: expected one audio file, yt-dlp left {len(files)}")
        _check_file(files[0], url, settings, expected_duration or _number(info.get("duration")))
        final = dest_stem.with_suffix(files[0].suffix or ".audio")
        files[0].replace(final)
        return Download(path=final, info=without_secrets(ydl.sanitize_info(info)))
    except Exception as error:
        if "[Errno 28]" in str(error):  # yt-dlp reports a full disk as its own error (or as an unavailable video)
            raise OSError(errno.ENOSPC, "No space left on device", str(dest_stem.parent)) from error
        if isinstance(error, YtDlpDownloadError):
            raise DownloadError(f"{url}: {_clean(error)}", reason=classify(str(error))) from error
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _check_file(path: Path, url: str, settings: IngestSettings, expected: float | None) -> None:
    """Reject a downloaded file that is not audio, is much shorter than listed, or is out of bounds."""
    probe = probe_audio(path)  # raises DownloadError(not_audio)
    if expected and probe.duration < 0.9 * expected - 1.0:
        raise DownloadError(
            f"{url}: the file holds {probe.duration:.1f} s of the {expected:.1f} s listed", reason=Reason.TRUNCATED
        )
    if reason := length_reason(probe.duration, settings):
        bounds = f"{settings.min_duration:.0f}-{settings.max_duration:.0f} s"
        raise DownloadError(f"{url}: the file holds {probe.duration:.1f} s, outside {bounds}", reason=reason)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


# yt-dlp's YouTube extractor passes YouTube's own playability texts through (yt_dlp/extractor/youtube/_video.py):
# the first pattern that matches names the reason, so the specific ones come before "sign in".
_REASONS = [
    (r"confirm you.re not a bot|captcha challenge|ip is likely being blocked", Reason.BOT_CHECK),
    (r"rate-limited by youtube|content isn.t available, try again later", Reason.RATE_LIMITED),
    (r"confirm your age|age-restricted|inappropriate for some users", Reason.AGE_RESTRICTED),
    (r"members[- ]only|available to this channel.s members|join this channel", Reason.MEMBERS_ONLY),
    (r"private video", Reason.PRIVATE),
    (
        r"not made this video available in your country|geo restriction|not available from your location",
        Reason.GEO_BLOCKED,
    ),
    (r"premieres in|premiere will begin|this video is not available yet", Reason.PREMIERE),
    (
        r"removed by the uploader|account associated with this video has been terminated|has been removed|"
        r"copyright claim",
        Reason.REMOVED,
    ),
    (r"sign in|login required|http error 401|registered users", Reason.SIGN_IN_REQUIRED),
    (r"live event|is live|upcoming", Reason.LIVE_OR_UPCOMING),
    (r"http error 429|too many requests", Reason.RATE_LIMITED),
    (r"http error 5\d\d|internal server error|service unavailable|bad gateway|gateway time", Reason.SERVER_ERROR),
    (r"timed out|timeout", Reason.TIMEOUT),
    (
        r"content too short|incomplete read|did not get any data|downloaded \d+ bytes, expected",
        Reason.TRUNCATED_TRANSFER,
    ),
    (r"connection refused|errno 111\b", Reason.REFUSED),
    (r"connection (reset|aborted)|remote end closed|broken pipe|network is unreachable", Reason.NETWORK),
    (
        r"name or service not known|name resolution|nodename nor servname|getaddrinfo failed|failed to resolve",
        Reason.UNRESOLVED,
    ),
    (
        r"http error 404|video unavailable|not available|has been removed|does not exist|http error 410",
        Reason.UNAVAILABLE,
    ),
    (r"http error 403|forbidden", Reason.FORBIDDEN),
    (r"unsupported url", Reason.UNSUPPORTED),
]


def classify(message: str) -> Reason:
    """Map a yt-dlp error message to a short catalogue reason."""
    lowered = message.lower()
    for pattern, reason in _REASONS:
        if re.search(pattern, lowered):
            return reason
    return Reason.DOWNLOAD_FAILED


def _clean(error: Exception) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", str(error)).removeprefix("ERROR: ").strip()
