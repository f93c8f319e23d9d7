"""Why a source was rejected, as one enum without the database code: a transcription worker names a reason
without importing SQLAlchemy (``db.models`` re-exports it)."""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """Why a source was rejected (or a step on it failed): one name per rule, the same in the catalogue, the
    command line and the flows' results. Stored as its text, so a catalogue stays readable without this list."""

    # Read from the listing, before anything is downloaded.
    PRIVATE = "private"
    LIVE_OR_UPCOMING = "live_or_upcoming"
    TOO_LONG = "too_long"  # longer than IngestSettings.max_duration (listed, or measured on the file)
    TOO_SHORT = "too_short"  # shorter than IngestSettings.min_duration
    # Downloading: what yt-dlp or the site said (ingest.youtube.classify), and what the file turned out to be.
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    TRUNCATED_TRANSFER = "truncated_transfer"
    NETWORK = "network"
    UNRESOLVED = "unresolved"
    UNAVAILABLE = "unavailable"
    FORBIDDEN = "forbidden"
    UNSUPPORTED = "unsupported"
    DOWNLOAD_FAILED = "download_failed"  # any other download error
    INVALID_URL = "invalid_url"
    INGEST_FAILED = "ingest_failed"
    TRUNCATED = "truncated"  # the file holds less than the listing said
    NOT_AUDIO = "not_audio"
    DUPLICATE = "duplicate"  # the same audio as another source
    CLAIMED_ELSEWHERE = "claimed_elsewhere"  # not a rejection: another live run is downloading it
    MISSING = "missing"  # not a rejection: the source is not in the catalogue
    # Transcribing.
    CORRUPT_AUDIO = "corrupt_audio"
    AUDIO_MISSING = "audio_missing"
    EMPTY_AUDIO = "empty_audio"  # under half a second of audio
    # The filter's rules (transcribe.analysis.judge), in the order they are tried.
    MOSTLY_SILENT = "mostly_silent"
    NOISY_SPECTRUM = "noisy_spectrum"  # spectral flatness over FilterSettings.max_spectral_flatness
    TOO_FEW_NOTES = "too_few_notes"
    TOO_DENSE = "too_dense"  # more notes a second than FilterSettings.max_note_density
    REPETITIVE = "repetitive"
    LOW_PITCH_VARIETY = "low_pitch_variety"

    @classmethod
    def read(cls, text: str | None) -> Reason | None:
        """A stored reason as a member; None for none, or for a name no rule writes any more."""
        try:
            return cls(text) if text else None
        except ValueError:
            return None
