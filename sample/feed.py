"""A podcast-style RSS feed of local audio files, served on 127.0.0.1 for yt-dlp to read as a playlist."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


class RequestLog(SimpleHTTPRequestHandler):
    """Serves the folder quietly, noting each request's path in the server's ``requests``."""

    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        super().do_GET()

    def do_HEAD(self) -> None:
        self.server.requests.append(f"HEAD {self.path}")
        super().do_HEAD()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, handler: type[RequestLog]) -> None:
        super().__init__(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        self.requests: list[str] = []

    def handle_error(self, request: object, client_address: object) -> None:
        """yt-dlp probes a file and hangs up mid-transfer: that is not an error worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class FeedServer:
    """A running loopback server; ``url(name)`` gives a served file's URL, ``requests`` every path asked for."""

    root: Path
    httpd: _Server

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

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
def serve(root: Path, *, handler: type[RequestLog] = RequestLog) -> Iterator[FeedServer]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a background thread until the block ends."""
    server = _Server(root, handler)
    thread = threading.Thread(target=server.serve_forever, name="tunesmith-feed", daemon=True)
    thread.start()
    try:
        yield FeedServer(root=root, httpd=server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
