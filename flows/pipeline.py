"""The tunesmith flows. Each task is a thin wrapper over a stage function; each flow is a table of contents."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

from flows.env import configure_environment

configure_environment()

from prefect import flow, get_run_logger, task  # noqa: E402 - Prefect reads the environment at import
from pydantic import BaseModel, Field, field_validator  # noqa: E402

from db.catalogue import Catalogue, open_catalogue  # noqa: E402
from generate.batch import GenerateSettings, generate_batch  # noqa: E402
from ingest.catalogue import download_source, pending_source_ids, record_listing  # noqa: E402
from ingest.errors import IngestError  # noqa: E402
from ingest.youtube import IngestSettings, list_playlist, validate_url  # noqa: E402
from train.training import TrainSettings, train_from_catalogue  # noqa: E402
from transcribe.catalogue import TranscribeOutcome, downloaded_source_ids, transcribe_sources  # noqa: E402
from transcribe.parallel import default_workers  # noqa: E402


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """One catalogue (engine and sessions) per worker process."""
    return open_catalogue()


class SubmitRequest(BaseModel):
    """Playlist or video URLs to ingest (the Prefect UI renders this as a form)."""

    urls: list[str] = Field(min_length=1, description="YouTube playlist or video URLs (http or https)")
    settings: IngestSettings = Field(default_factory=IngestSettings, description="limits, retries and pauses")

    @field_validator("urls")
    @classmethod
    def _http_only(cls, urls: list[str]) -> list[str]:
        return [validate_url(url) for url in urls]


@task(name="expand-playlist")
def expand_playlist(url: str, settings: IngestSettings) -> dict[str, Any]:
    try:
        listing = list_playlist(url, settings)
    except IngestError as error:
        get_run_logger().error("could not expand %s: %s", url, error)
        return {"url": url, "error": str(error), "reason": error.reason}
    with catalogue().sessions.begin() as session:
        playlist = record_listing(session, listing, settings)
        return {"url": url, "playlist_id": playlist.id, "title": playlist.title, "entries": len(listing.entries)}


@task(name="download-source")
def download(source_id: int, settings: IngestSettings) -> dict[str, Any]:
    cat = catalogue()
    outcome = download_source(cat.sessions, source_id, cat.home.audio_dir, settings)
    return {
        "source_id": source_id,
        "state": outcome.state.value,
        "reason": outcome.reason,
        "downloaded": outcome.downloaded,
    }


@task(name="transcribe-pieces")
def transcribe(source_ids: list[int], workers: int) -> dict[str, Any]:
    """Transcribe, analyse and judge the pieces across ``workers`` processes (one model each)."""
    cat, logger = catalogue(), get_run_logger()

    def progress(done: int, total: int, outcome: TranscribeOutcome) -> None:
        logger.info("%d/%d source %d: %s %s", done, total, outcome.source_id, outcome.state.value, outcome.reason or "")

    summary = transcribe_sources(cat.sessions, source_ids, cat.home.midi_dir, workers=workers, progress=progress)
    return summary.counts()


def _tally(results: list[dict[str, Any]], done_key: str) -> dict[str, Any]:
    reasons = Counter(r["reason"] for r in results if r["state"] == "rejected")
    return {
        done_key: sum(1 for r in results if r.get(done_key)),
        "states": dict(Counter(r["state"] for r in results)),
        "rejected": dict(reasons),
    }


@flow(name="ingest", log_prints=True)
def ingest_flow(request: SubmitRequest) -> dict[str, Any]:
    """Expand each playlist and download every entry not catalogued before."""
    logger = get_run_logger()
    playlists = [expand_playlist(url, request.settings) for url in request.urls]
    with catalogue().sessions.begin() as session:
        pending = pending_source_ids(session)
    logger.info("%d sources to download", len(pending))
    results = [download(source_id, request.settings) for source_id in pending]
    summary = {"playlists": playlists, **_tally(results, "downloaded")}
    logger.info("ingest: %s", summary)
    return summary


@flow(name="transcribe", log_prints=True)
def transcribe_flow(workers: int = 0) -> dict[str, Any]:
    """Transcribe, analyse and judge every downloaded source without a verdict (``workers=0``: one per core)."""
    with catalogue().sessions.begin() as session:
        todo = downloaded_source_ids(session)
    get_run_logger().info("%d sources to transcribe", len(todo))
    summary = transcribe(todo, workers or default_workers()) if todo else {"transcribed": 0, "rejected": {}}
    get_run_logger().info("transcribe: %s", summary)
    return summary


@flow(name="submit", log_prints=True)
def submit_flow(request: SubmitRequest, workers: int = 0) -> dict[str, Any]:
    """Ingest the playlists, then transcribe what they brought (``workers=0``: one process per core)."""
    return {"ingest": ingest_flow(request), "transcribe": transcribe_flow(workers)}


@flow(name="retrain", log_prints=True)
def retrain_flow(force: bool = False, epochs: int = TrainSettings.epochs, licence: str | None = None) -> dict[str, Any]:
    """Retrain the LSTM on the accepted pieces if they changed since the current model.

    ``licence``: train only on sources whose licence contains this text (e.g. "Creative Commons").
    """
    cat = catalogue()
    settings = TrainSettings(epochs=epochs, licence=licence)
    outcome = train_from_catalogue(cat.sessions, cat.home.models_dir, settings, force=force)
    get_run_logger().info("%s %s", outcome.message, outcome.metrics or "")
    return {
        "trained": outcome.trained,
        "message": outcome.message,
        "model_id": outcome.model_id,
        "metrics": outcome.metrics,
    }


@flow(name="nightly-batch", log_prints=True)
def batch_flow(
    count: int = 4, minutes: float = 0.75, temperature: float = 1.0, seed: int | None = None
) -> dict[str, Any]:
    """Generate a batch of tracks with the current model."""
    cat = catalogue()
    settings = GenerateSettings(count=count, minutes=minutes, temperature=temperature, seed=seed)
    outcome = generate_batch(cat.sessions, cat.home.batches_dir, settings)
    get_run_logger().info(
        "batch %d: %d tracks in %s (rejected %s)", outcome.batch_id, outcome.tracks, outcome.folder, outcome.rejected
    )
    return {
        "batch_id": outcome.batch_id,
        "folder": str(outcome.folder),
        "tracks": outcome.tracks,
        "rejected": outcome.rejected,
    }
