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
    BOT_CHECK = "bot_check"  # YouTube's "Sign in to confirm you're not a bot", its captcha, or a blocked address
    SIGN_IN_REQUIRED = "sign_in_required"
    AGE_RESTRICTED = "age_restricted"
    MEMBERS_ONLY = "members_only"
    GEO_BLOCKED = "geo_blocked"
    PREMIERE = "premiere"  # a premiere or upcoming video: not out yet
    REMOVED = "removed"  # taken down by its uploader, its account closed, or for a claim
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    TRUNCATED_TRANSFER = "truncated_transfer"
    NETWORK = "network"
    UNRESOLVED = "unresolved"
    REFUSED = "refused"  # nothing listens at the address: not worth retrying for minutes
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

    @property
    def advice(self) -> str:
        """What a user can do about a source rejected for this reason (one line for ``status`` and ``sources``)."""
        return ADVICE.get(self, "")

    @classmethod
    def read(cls, text: str | None) -> Reason | None:
        """A stored reason as a member; None for none, or for a name no rule writes any more."""
        try:
            return cls(text) if text else None
        except ValueError:
            return None


_COOKIES = "pass your browser's cookies (`submit --cookies FILE` or `--cookies-from-browser firefox`) and submit again"
ADVICE = {
    Reason.BOT_CHECK: f"the site asked for proof this is not a bot: {_COOKIES}",
    Reason.SIGN_IN_REQUIRED: f"the video needs an account: {_COOKIES}",
    Reason.AGE_RESTRICTED: f"age-restricted: {_COOKIES} (an account that may watch it)",
    Reason.MEMBERS_ONLY: f"for the channel's members: {_COOKIES} (a member's account)",
    Reason.PRIVATE: "private: only with the cookies of an account it is shared with",
    Reason.GEO_BLOCKED: "not available in this country: nothing to do from here",
    Reason.PREMIERE: "not out yet: submit again after it premieres",
    Reason.LIVE_OR_UPCOMING: "a live stream: submit again once it has ended and been archived",
    Reason.REMOVED: "removed from the site: nothing to do",
    Reason.UNAVAILABLE: "not available: nothing to do",
    Reason.REFUSED: "nothing answered at the site's address: it is down or the URL is wrong; submit again later",
    Reason.UNRESOLVED: "the site's name did not resolve: check the network, then submit again",
    Reason.RATE_LIMITED: "the site limited this session: wait an hour, then submit again (`--host-pause 3600` waits "
    "it out within one run)",
}
