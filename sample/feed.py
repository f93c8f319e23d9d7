"""A podcast-style RSS feed of local audio files, served on 127.0.0.1 for yt-dlp to read as a playlist."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from ingest.youtube import IngestSettings

# Talking to our own loopback server: no polite pauses, short back-off, a short socket timeout.
LOOPBACK_INGEST = IngestSettings(
    sleep_between_requests=0.0, backoff=0.05, backoff_max=0.5, socket_timeout=3.0, retries=2
)

MIME = {".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg", ".m4a": "audio/mp4"}


@dataclass(frozen=True)
class FeedItem:
    filename: str  # relative to the served folder
    title: str
    guid: str
    duration: float | None = None


def feed_xml(base_url: str, title: str, items: Sequence[FeedItem]) -> str:
    """RSS 2.0 with one ``<enclosure>`` per item (what yt-dlp's generic extractor expands)."""
    rows = []
    for item in items:
        mime = MIME.get(Path(item.filename).suffix, "application/octet-stream")
        duration = f"<itunes:duration>{int(item.duration)}</itunes:duration>" if item.duration else ""
        rows.append(
            f'<item><title>{escape(item.title)}</title><guid isPermaLink="false">{escape(item.guid)}</guid>'
            f'<enclosure url="{escape(base_url)}/{escape(item.filename)}" type="{mime}" length="0"/>'
            f"{duration}</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>'
        f"<title>{escape(title)}</title><link>{escape(base_url)}</link><description>{escape(title)}</description>"
        + "".join(rows)
        + "</channel></rss>\n"
    )


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """yt-dlp probes a file and hangs up mid-transfer: that is not an error worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class Fault:
    """What the server does wrong for one path, ``times`` times (``None``: for ever).

    ``status``: answer with this HTTP error instead of the file. ``truncate``: promise the whole
    file, send half, hang up. ``delay``: wait this many seconds before answering. ``after``: answer
    the first ``after`` requests properly (a site that fails mid-way: the extractor's request works,
    the download's does not).
    """

    status: int | None = None
    truncate: bool = False
    delay: float = 0.0
    times: int | None = None
    after: int = 0
    seen: int = 0
    served: int = 0

    def active(self) -> bool:
        return self.seen > self.after and (self.times is None or self.served < self.times)


@dataclass
class FeedServer:
    """A running loopback server; ``url(name)`` gives a served file's URL.

    ``faults`` maps a path (``"/name.mp3"``) to a :class:`Fault`, so tests and benches can play
    the parts of a rate-limiting, failing, slow or flaky site with real HTTP.
    """

    root: Path
    port: int
    requests: list[str]
    faults: dict[str, Fault] = field(default_factory=dict)

    def fail(self, name: str, fault: Fault) -> None:
        self.faults[f"/{name}"] = fault

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def write_feed(self, name: str, title: str, items: Sequence[FeedItem]) -> str:
        """Write a feed file into the served folder and return its URL."""
        (self.root / name).write_text(feed_xml(self.base_url, title, items), encoding="utf-8")
        return self.url(name)


@contextmanager
def serve(root: Path) -> Iterator[FeedServer]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a background thread until the block ends."""
    requests: list[str] = []
    faults: dict[str, Fault] = {}
    lock = threading.Lock()

    class Handler(_QuietHandler):
        def _fault(self) -> Fault | None:
            with lock:
                fault = faults.get(self.path.split("?")[0])
                if fault is None:
                    return None
                fault.seen += 1
                if not fault.active():
                    return None
                fault.served += 1
                return fault

        def _misbehave(self, fault: Fault, *, body: bool) -> bool:
            """Play ``fault``; True when the request has been answered."""
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                self.send_response(fault.status)
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

        def do_GET(self) -> None:
            requests.append(self.path)
            fault = self._fault()
            if fault is None or not self._misbehave(fault, body=True):
                super().do_GET()

        def do_HEAD(self) -> None:
            requests.append(f"HEAD {self.path}")
            fault = self._fault()
            if fault is None or not self._misbehave(fault, body=False):
                super().do_HEAD()

    server = _Server(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="tunesmith-feed", daemon=True)
    thread.start()
    try:
        yield FeedServer(root=root, port=server.server_address[1], requests=requests, faults=faults)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
