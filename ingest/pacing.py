"""Polite pauses shared by concurrent downloads: starts to one host are spaced, however many run at once.

yt-dlp pauses before each download within one ``YoutubeDL`` (``sleep_interval``), but a few downloads
running side by side would each pause on their own and reach the host together. The pacer hands out
start times per host, at least ``interval`` apart, to every thread of the process.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit


class HostPacer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}

    def wait(self, url: str, interval: float) -> float:
        """Sleep until this download may start; returns the seconds slept."""
        if interval <= 0:
            return 0.0
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, 0.0))
            self._next[host] = start + interval
        if start > now:
            time.sleep(start - now)
        return start - now


PACER = HostPacer()  # one per process: every download of the process shares it
