"""Ingest's domain errors: expected failures, kept apart from bugs."""

from __future__ import annotations

from db.models import Reason


class IngestError(Exception):
    """An expected ingest failure; ``reason`` is the short code stored in the catalogue."""

    reason = Reason.INGEST_FAILED
    attempts = 1  # how many tries it took to give up (set by ingest.youtube.with_retries)

    def __init__(self, message: str, *, reason: Reason | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class InvalidURLError(IngestError):
    reason = Reason.INVALID_URL


class DownloadError(IngestError):
    reason = Reason.DOWNLOAD_FAILED
