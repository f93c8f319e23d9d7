"""Polite pauses shared by concurrent downloads, each host's pace, and what a run learns about its hosts.

yt-dlp pauses before each download within one ``YoutubeDL`` (``sleep_interval``), but a few downloads
running side by side would each pause on their own and reach the host together. The pacer hands out
start times per host, at least ``interval`` apart, to every thread of the process; a host that
rate-limits the session is held: no download to it starts until the hold ends.

YouTube gets the pace yt-dlp's wiki asks for (its ``-t sleep`` preset: 0.75 s before each request,
10-20 s before each download) and starts 12 s apart, about 300 videos an hour, the session ceiling
the wiki gives; other hosts (direct links, feeds, loopback) a 1 s pause unless the user sets one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from db.reasons import Reason

log = logging.getLogger(__name__)

YOUTUBE_HOSTS = ("youtube.com", "youtu.be", "youtube-nocookie.com")
DEFAULT_SLEEP = 1.0


@dataclass(frozen=True)
class Pace:
    """How politely to talk to one host: seconds before each request, before each download (yt-dlp draws one
    between the two bounds), and between two downloads' starts across every thread of the process."""

    request: float
    download: tuple[float, float]
    spacing: float

    def seconds_for(self, downloads: int) -> float:
        """About how long ``downloads`` entries take at this pace, waiting alone (the transfers not counted)."""
        return downloads * max(self.spacing, self.request)


YOUTUBE_PACE = Pace(request=0.75, download=(10.0, 20.0), spacing=12.0)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def is_youtube(url: str) -> bool:
    host = host_of(url)
    return any(host == name or host.endswith(f".{name}") for name in YOUTUBE_HOSTS)


def pace_for(url: str, sleep: float | None) -> Pace:
    """``url``'s host's pace: ``sleep`` seconds everywhere when the user set it, else YouTube's or 1 s."""
    if sleep is not None:
        return Pace(request=sleep, download=(sleep, sleep), spacing=sleep)
    return YOUTUBE_PACE if is_youtube(url) else Pace(DEFAULT_SLEEP, (DEFAULT_SLEEP, DEFAULT_SLEEP), DEFAULT_SLEEP)


def expected_wait(urls: list[str], sleep: float | None) -> float:
    """Seconds that downloading ``urls`` spends waiting on its hosts' pace (hosts side by side, not summed)."""
    per_host = Counter(host_of(url) for url in urls)
    first = {host_of(url): url for url in reversed(urls)}
    return max((pace_for(first[host], sleep).seconds_for(n) for host, n in per_host.items()), default=0.0)


class HostPacer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, url: str, interval: float) -> float:
        """Sleep until this download may start; returns the seconds slept."""
        host = host_of(url)
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, 0.0))
            if interval > 0 or start > now:
                self._next[host] = start + interval
        if start > now:
            time.sleep(start - now)
        return start - now

    def hold(self, url: str, seconds: float) -> None:
        """Start no download to ``url``'s host for ``seconds`` from now."""
        host = host_of(url)
        with self._lock:
            self._next[host] = max(self._next.get(host, 0.0), time.monotonic() + seconds)

    def held(self, url: str) -> bool:
        with self._lock:
            return self._next.get(host_of(url), 0.0) > time.monotonic() + 1.0


PACER = HostPacer()  # one per process: every download of the process shares it

# What a host says of the session, not of one video (or, refused or unresolved, what the network says of the host).
HOST_WIDE = frozenset({Reason.BOT_CHECK, Reason.RATE_LIMITED, Reason.REFUSED, Reason.UNRESOLVED})


@dataclass
class HostWatch:
    """What one run learns about its hosts from its downloads.

    A host that asks for a bot check answers every other entry the same way until the user passes cookies:
    it is left alone for the rest of the run and its entries stay pending. A host that rate-limits the
    session (past the per-request retries) is held for ``hold_seconds`` and the entry tried again, at most
    ``max_holds`` times a run; then it is left alone too. Either way nothing is rejected for it.
    """

    hold_seconds: float
    max_holds: int
    pacer: HostPacer = PACER
    stopped: dict[str, Reason] = field(default_factory=dict)
    holds: Counter[str] = field(default_factory=Counter)

    def stopped_for(self, url: str) -> Reason | None:
        """Why downloads from ``url``'s host are not started any more in this run, if they are not."""
        return self.stopped.get(host_of(url))

    def heard(self, url: str, reason: Reason | None) -> bool:
        """Learn from a download's outcome; True when its entry is to be tried again later in this run."""
        host = host_of(url)
        if reason is Reason.BOT_CHECK:
            self.stopped[host] = reason
            log.warning("%s asked for proof this is not a bot: its other entries wait for cookies", host)
            return False
        if reason in (Reason.REFUSED, Reason.UNRESOLVED) and host not in self.stopped:
            self.stopped[host] = reason
            log.warning("%s cannot be reached (%s): its other entries wait for the next run", host, reason.value)
            return False
        if reason is not Reason.RATE_LIMITED or host in self.stopped:
            return False
        if self.pacer.held(url):  # another entry's limit already paused it
            return True
        if self.holds[host] >= self.max_holds:
            self.stopped[host] = reason
            log.warning("%s still rate-limits after %d pauses: its other entries wait for the next run", host,
                        self.max_holds)  # fmt: skip
            return False
        self.holds[host] += 1
        self.pacer.hold(url, self.hold_seconds)
        log.warning("%s rate-limited this session: no download to it for %.0f s (pause %d of %d)", host,
                    self.hold_seconds, self.holds[host], self.max_holds)  # fmt: skip
        return True
