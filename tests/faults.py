"""A loopback server that misbehaves on request: the parts of a rate-limiting, failing, slow or flaky site,
played with real HTTP for the tests (and benches) of what tunesmith does when a site misbehaves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sample.feed import FeedServer, RequestLog, serve


@dataclass
class Fault:
    """What the server does wrong for one path, ``times`` times (``None``: for ever).

    ``status``: answer with this HTTP error instead of the file. ``truncate``: promise the whole
    file, send half, hang up. ``delay``: wait this many seconds before answering. ``after``: answer
    the first ``after`` requests properly (a site that fails mid-way: the extractor's request works,
    the download's does not). ``cookie``: answer 403 unless the request carries this cookie (``name=value``),
    as a site that wants its visitor signed in. ``message``: the status line's text (a site's own words, as
    yt-dlp passes them on). ``until``: only before this ``time.monotonic()`` moment (a limit that lifts).
    """

    status: int | None = None
    truncate: bool = False
    delay: float = 0.0
    times: int | None = None
    after: int = 0
    cookie: str | None = None
    message: str | None = None
    until: float | None = None
    seen: int = 0
    served: int = 0

    def active(self) -> bool:
        lifted = self.until is not None and time.monotonic() >= self.until
        return self.seen > self.after and (self.times is None or self.served < self.times) and not lifted


_LOCK = threading.Lock()  # faults are counted across the server's threads


class FaultyHandler(RequestLog):
    """:class:`RequestLog` that plays the fault set for the requested path, if any."""

    def _fault(self) -> Fault | None:
        with _LOCK:
            fault = getattr(self.server, "faults", {}).get(self.path.split("?")[0])
            if fault is None:
                return None
            fault.seen += 1
            if not fault.active():
                return None
            fault.served += 1
            return fault

    def _misbehave(self, fault: Fault, *, body: bool) -> bool:
        """Play ``fault``; True when the request has been answered."""
        if fault.cookie is not None:
            sent = [c.strip() for c in (self.headers.get("Cookie") or "").split(";")]
            if fault.cookie in sent:
                return False
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status:
            self.send_response(fault.status, fault.message)
            self.send_header("Content-Length", "0")
            if fault.status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            return True
        if fault.truncate:
            data = (Path(self.directory) / self.path.lstrip("/").split("?")[0]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return True
        return False

    def send_head(self) -> Any:
        """What GET and HEAD both answer with (after :class:`RequestLog` has noted the request): the fault, when
        one is set and still active, else the file."""
        with _LOCK:
            getattr(self.server, "stamps", []).append((time.monotonic(), self.path.split("?")[0]))
        fault = self._fault()
        if fault is not None and self._misbehave(fault, body=self.command == "GET"):
            return None  # answered: nothing left to copy
        return super().send_head()


@dataclass
class FaultyServer(FeedServer):
    """A :class:`FeedServer` whose ``fail(name, fault)`` makes one path misbehave."""

    faults: dict[str, Fault] = field(default_factory=dict)
    stamps: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), path) of every request

    def fail(self, name: str, fault: Fault) -> None:
        with _LOCK:
            self.faults[f"/{name}"] = fault


@contextmanager
def serve_with_faults(root: Path) -> Iterator[FaultyServer]:
    """:func:`sample.feed.serve` with faults on request."""
    with serve(root, handler=FaultyHandler) as running:
        server = FaultyServer(root=running.root, httpd=running.httpd)
        running.httpd.faults = server.faults  # type: ignore[attr-defined]  # what FaultyHandler reads
        running.httpd.stamps = server.stamps  # type: ignore[attr-defined]
        yield server
