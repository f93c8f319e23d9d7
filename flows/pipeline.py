"""The tunesmith flows. Each task is a thin wrapper over a stage function; each flow is a table of contents."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import as_completed
from pydantic import BaseModel, Field, field_validator

from db.catalogue import Catalogue, open_catalogue
from db.environment import environment
from db.models import Reason
from flows.progress import report
from generate.batch import GenerateSettings, generate_batch
from generate.controls import Controls, Energy
from ingest.catalogue import (
    STYLE_PATTERN,
    DownloadOutcome,
    download_counts,
    download_source,
    held_hosts,
    pending_source_ids,
    save_listing,
    schedule_downloads,
    source_urls,
)
from ingest.errors import IngestError
from ingest.pacing import expected_wait
from ingest.youtube import IngestSettings, list_playlist, validate_url
from train.reference import FEATURES
from train.training import TrainSettings, train_from_catalogue
from transcribe.catalogue import (
    TranscribeOutcome,
    TranscribeSummary,
    backfill_grids,
    downloaded_source_ids,
    transcribe_sources,
)
from transcribe.parallel import default_workers, warm_up


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """One catalogue (engine and sessions) per worker process."""
    return open_catalogue()


class SubmitRequest(BaseModel):
    """Playlist or video URLs to ingest (the Prefect UI renders this as a form)."""

    urls: list[str] = Field(min_length=1, description="YouTube playlist or video URLs (http or https)")
    style: str | None = Field(
        None, pattern=STYLE_PATTERN, description="style name for these playlists (default: from each title)"
    )
    settings: IngestSettings = Field(default_factory=IngestSettings, description="limits, retries and pauses")

    @field_validator("urls")
    @classmethod
    def _http_only(cls, urls: list[str]) -> list[str]:
        return [validate_url(url) for url in urls]


class PlaylistResult(BaseModel):
    """One submitted URL: the playlist it was catalogued as, or why it could not be read."""

    url: str
    playlist_id: int | None = None
    title: str | None = None
    style: str | None = None
    entries: int = 0
    error: str | None = None
    reason: Reason | None = None


class IngestResult(BaseModel):
    """What ingesting came to: the playlists, how many sources were downloaded, every source's state, and the
    hosts that left sources pending for the session's sake (host -> reason -> sources: a bot check, a rate
    limit that outlasted its pauses)."""

    playlists: list[PlaylistResult]
    downloaded: int = 0
    states: dict[str, int] = Field(default_factory=dict)
    rejected: dict[str, int] = Field(default_factory=dict)
    held: dict[str, dict[str, int]] = Field(default_factory=dict)

    @classmethod
    def of(cls, playlists: list[PlaylistResult], outcomes: list[DownloadOutcome]) -> IngestResult:
        downloaded, states, rejected = download_counts(outcomes)
        return cls(playlists=playlists, downloaded=downloaded, states=states, rejected=rejected,
                   held=held_hosts(outcomes))  # fmt: skip


class TranscribeResult(BaseModel):
    """What transcribing came to (``transcribe.catalogue.TranscribeSummary.counts``), however it ran."""

    transcribed: int = 0
    accepted: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    audio_seconds: float = 0.0

    @classmethod
    def of(cls, summary: TranscribeSummary) -> TranscribeResult:
        return cls(**summary.counts())


class SubmitResult(BaseModel):
    """A submit's outcome: ingest, then transcription (None when not asked for)."""

    ingest: IngestResult
    transcribe: TranscribeResult | None = None


@task(name="expand-playlist")
def expand_playlist(url: str, settings: IngestSettings, style: str | None = None) -> PlaylistResult:
    try:
        listing = list_playlist(url, settings)
    except IngestError as error:
        get_run_logger().info("could not expand %s: %s (the command reports it)", url, error)
        return PlaylistResult(url=url, error=str(error), reason=error.reason)
    playlist = save_listing(catalogue().sessions, listing, settings, style=style)
    return PlaylistResult(
        url=url, playlist_id=playlist.id, title=playlist.title, style=playlist.style, entries=len(listing.entries)
    )


@task(name="download-source")
def download(source_id: int, settings: IngestSettings) -> DownloadOutcome:
    cat = catalogue()
    return download_source(cat.sessions, source_id, cat.home.audio_dir, settings)


@task(name="transcribe-pieces")
def transcribe(source_ids: list[int], workers: int) -> TranscribeResult:
    """Transcribe, analyse and judge the pieces across ``workers`` processes (one model each)."""
    cat, logger = catalogue(), get_run_logger()
    tracker = Progress(
        "transcribe-pieces",
        f"Transcribing {len(source_ids)} pieces with {workers} worker(s)",
        stage="transcription",
        total=len(source_ids),
    )
    started, heard = time.monotonic(), [0.0]  # audio seconds recorded so far, for the speed shown

    def progress(done: int, total: int, outcome: TranscribeOutcome) -> None:
        logger.info("%d/%d source %d: %s %s", done, total, outcome.source_id, outcome.state.value, outcome.reason or "")
        heard[0] += outcome.seconds
        speed = heard[0] / max(time.monotonic() - started, 1e-9)
        verdict = outcome.reason or outcome.state.value
        tracker.update(done, total, f"{speed:.0f}x real time; source {outcome.source_id}: {verdict}")

    summary = transcribe_sources(cat.sessions, source_ids, cat.home.midi_dir, workers=workers, progress=progress)
    return TranscribeResult.of(summary)


class Progress:
    """A Prefect progress artifact (shown on the run's page in the UI), updated as work completes, and reported
    to this process's listeners (``flows.progress``: a live display when a person runs the command)."""

    def __init__(self, key: str, description: str, *, stage: str, total: int) -> None:
        artifact_id = create_progress_artifact(progress=0.0, key=key, description=description)
        assert isinstance(artifact_id, UUID)  # the sync API in a sync flow
        self.artifact_id = artifact_id
        self.stage = stage
        self._last = -1.0
        report(stage, 0, total)  # the stage has begun: a command stopped now says so

    def update(self, done: int, total: int, note: str = "") -> None:
        report(self.stage, done, total, note)
        percent = round(100.0 * done / total, 1) if total else 100.0
        if percent - self._last >= 1.0 or done == total:  # at most ~100 updates however long the list
            update_progress_artifact(artifact_id=self.artifact_id, progress=percent)
            self._last = percent


def publish_batch(folder: Path) -> None:
    """A table artifact of the batch's tracks and a markdown artifact with its location and pictures."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows = [
        {
            "track": t["title"],
            "style": t.get("style"),
            "duration (s)": t["duration"],
            "tempo (bpm)": t["tempo"],
            "key": t["key"],
            "form": (t.get("form") or {}).get("plan"),
            "instruments": (t.get("instruments") or {}).get("name"),
            "drums": t.get("drums", False),
            "longest copied span (onsets)": t["guards"]["longest_copy"],
            "repetition": t["guards"]["repetition_score"],
            "mp3": str(folder / t["mp3"]),
        }
        for t in manifest["tracks"]
    ]
    create_table_artifact(table=rows, key="batch-tracks", description=f"Tracks of {folder.name}")
    quality = manifest.get("quality", {})
    overlaps = ", ".join(f"{name} {quality[name]['overlap']:.2f}" for name in FEATURES if name in quality)
    lines = [
        f"# {folder.name}",
        f"**Folder:** `{folder}` (copy it out with `tunesmith pull --batch latest --to DIR`)",
        f"**Page:** [{folder.name}/index.html]({(folder / 'index.html').as_uri()}) (players, piano rolls, keys)",
        f"**Licence:** {manifest['licence']}",
        f"**Longest span copied from any training piece:** {manifest['longest_copy']} onsets",
        f"**Overlap with the training set (Yang & Lerch):** {overlaps}",
        f"**Rejected and resampled:** {manifest['rejected'] or 'none'}",
        "",
        "| track | piano roll | audio |",
        "| --- | --- | --- |",
        *(f"| {t['title']} | `{folder / t['pianoroll']}` | `{folder / t['mp3']}` |" for t in manifest["tracks"]),
    ]
    create_markdown_artifact(markdown="\n".join(lines), key="batch-summary", description=f"Batch {folder.name}")


def _duration(seconds: float) -> str:
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min" if minutes else f"{round(seconds)} s"


@flow(name="ingest", log_prints=True)
def ingest_flow(request: SubmitRequest, transcribe: bool = True, workers: int = 0) -> SubmitResult:
    """Expand each playlist, download every entry not catalogued before (``settings.parallel_downloads`` at
    once), then (``transcribe``) transcribe them.

    A progress artifact follows the downloads; ``workers=0`` transcribes with one process per core.
    """
    logger = get_run_logger()
    if transcribe and not environment().dask_address:
        warm_up(workers or default_workers())  # the transcription workers' imports run while the playlists download
    playlists = [expand_playlist(url, request.settings, request.style) for url in request.urls]
    with catalogue().sessions.begin() as session:
        pending = pending_source_ids(session)
        urls = source_urls(session, pending)
    wait = expected_wait([urls[sid] for sid in pending], request.settings.sleep_between_requests)
    logger.info("%d sources to download; at the hosts' pace, at least %s", len(pending), _duration(wait))
    progress = Progress(
        "ingest-downloads", f"Downloading {len(pending)} new entries of {len(request.urls)} playlist(s) "
        f"(at least {_duration(wait)} at the hosts' pace)", stage="downloads", total=len(pending),
    )  # fmt: skip
    results = []
    outcomes = schedule_downloads(  # a few at once: each finished one makes room for the next
        pending, urls, request.settings, start=lambda sid: download.submit(sid, request.settings),
        first_done=lambda running: next(as_completed(running)),
    )  # fmt: skip
    for outcome in outcomes:
        results.append(outcome)
        what = outcome.title or f"source {outcome.source_id}"
        progress.update(len(results), len(pending), f"{what}: {outcome.reason or outcome.state.value}")
    summary = IngestResult.of(playlists, results)
    logger.info("ingest: %s", summary)
    return SubmitResult(ingest=summary, transcribe=transcribe_flow(workers) if transcribe else None)


@flow(name="transcribe", log_prints=True)
def transcribe_flow(workers: int = 0) -> TranscribeResult:
    """Transcribe, analyse and judge every downloaded source without a verdict (``workers=0``: one per core)."""
    with catalogue().sessions.begin() as session:
        todo = downloaded_source_ids(session)
    get_run_logger().info("%d sources to transcribe", len(todo))
    address = environment().dask_address  # e.g. tcp://scheduler:8786: transcription fans out over that cluster
    if not todo:
        summary = TranscribeResult()
    elif address:  # one task per piece, fanned out over a Dask cluster's workers (on any machine)
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(address=address)
        summary = fan_out_flow.with_options(task_runner=runner)(todo)  # type: ignore[arg-type]  # its futures subclass

    else:
        summary = transcribe(todo, workers or default_workers())
    get_run_logger().info("transcribe: %s", summary)
    return summary


@flow(name="transcribe-fan-out", log_prints=True)
def fan_out_flow(source_ids: list[int]) -> TranscribeResult:
    """One ``transcribe-source`` task per piece on the flow's task runner (Dask when configured)."""
    futures = transcribe_one.map(source_ids)
    progress = Progress(
        "transcribe-pieces",
        f"Transcribing {len(source_ids)} pieces on the task runner",
        stage="transcription",
        total=len(source_ids),
    )
    results = []
    for done, future in enumerate(futures, start=1):
        results.append(future.result())
        progress.update(done, len(source_ids))
    return TranscribeResult.of(TranscribeSummary(outcomes=[o for summary in results for o in summary.outcomes]))


@task(name="transcribe-source")
def transcribe_one(source_id: int) -> TranscribeSummary:
    """One piece, in whichever process runs the task (the model is loaded once per process)."""
    cat = catalogue()
    return transcribe_sources(cat.sessions, [source_id], cat.home.midi_dir, workers=1)


@task(name="beat-grids")
def beat_grids() -> int:
    """Give older transcriptions their beat grid (from the audio on disk, or the MIDI): no download."""
    return backfill_grids(catalogue().sessions)


@flow(name="retrain", log_prints=True)
def retrain_flow(
    force: bool = False,
    epochs: int = TrainSettings.epochs,
    licence: str | None = None,
    baseline_epochs: int = TrainSettings.prototype_epochs,
) -> dict[str, Any]:
    """Retrain the LSTM on the accepted pieces if they changed since the last training run.

    The new model is promoted only if it is not worse than the current one on the same validation
    pieces. ``licence``: train only on sources whose licence contains this text (e.g. "Creative
    Commons"). ``baseline_epochs``: epochs for the earlier prototype's architecture, the baseline
    it must beat (0 skips it).
    """
    cat = catalogue()
    filled = beat_grids()
    if filled:
        get_run_logger().info("derived the beat grid of %d pieces transcribed before grids were kept", filled)
    settings = TrainSettings(epochs=epochs, licence=licence, prototype_epochs=baseline_epochs)
    logger = get_run_logger()
    stages = {"training": Progress("training-epochs", "Training: epochs and their losses", stage="training",
                                   total=settings.epochs)}  # begun: a command stopped now says so  # fmt: skip

    def step(stage: str, done: int, total: int, note: str) -> None:
        """Each epoch and each style calibrated: a log line (the UI's and the log file's) and a progress step."""
        logger.info("%s %d of %d: %s", stage, done, total, note)
        if stage not in stages:
            stages[stage] = Progress(f"training-{stage}", f"Training: {stage}", stage=stage, total=total)
        stages[stage].update(done, total, note)

    outcome = train_from_catalogue(
        cat.sessions, cat.home.models_dir, settings, force=force, tokens_dir=cat.home.tokens_dir, on_step=step,
    )  # fmt: skip
    ran = (outcome.metrics or {}).get("epochs", 0)
    if not outcome.trained:  # nothing to train: the bar ends full, saying why
        stages["training"].update(settings.epochs, settings.epochs, outcome.message)
    elif ran < settings.epochs:  # stopped early: the bar ends full, saying so
        stages["training"].update(settings.epochs, settings.epochs, f"stopped early after {ran} epochs")
    logger.info("%s %s", outcome.message, outcome.metrics or "")
    return {
        "trained": outcome.trained,
        "promoted": outcome.promoted,
        "message": outcome.message,
        "model_id": outcome.model_id,
        "metrics": outcome.metrics,
    }


@flow(name="nightly-batch", log_prints=True)
def batch_flow(
    count: int = GenerateSettings.count,
    minutes: float = GenerateSettings.minutes,
    temperature: float = GenerateSettings.temperature,
    seed: int | None = None,
    style: str | None = None,
    prompt_midi: str | None = None,
    loop: bool = False,
    stems: bool = GenerateSettings.stems,
    wav: bool = GenerateSettings.wav,
    tempo: float | None = None,
    key: str | None = None,
    meter: int | None = None,
    energy: Energy = "medium",
    instruments: str | None = None,
) -> dict[str, Any]:
    """Generate a batch of tracks with the current model (``style``: one playlist's style; default: all;
    ``loop``: tracks that repeat without a seam instead of ending; ``stems``: each part also alone, summing to
    the mix; ``wav``: every track and stem also as a WAV). ``tempo`` (beats a minute), ``key`` ("D minor"),
    ``meter`` (3 or 4 beats a bar) and ``instruments`` (a palette's name) are honoured exactly where given;
    ``energy`` moves how many notes start, how hard they are played and the drums."""
    cat = catalogue()
    controls = Controls(tempo=tempo, key=key, meter=meter, energy=energy, instruments=instruments)
    settings = GenerateSettings(
        count=count, minutes=minutes, temperature=temperature, seed=seed, style=style, prompt_midi=prompt_midi,
        loop=loop, stems=stems, wav=wav, controls=controls,
    )  # fmt: skip
    report("tracks", 0, settings.count)  # begun: a command stopped now says so
    outcome = generate_batch(
        cat.sessions,
        cat.home.batches_dir,
        settings,
        on_track=lambda done, total, note: report("tracks", done, total, note),
    )
    get_run_logger().info(
        "batch %d: %d tracks in %s (rejected %s)", outcome.batch_id, outcome.tracks, outcome.folder, outcome.rejected
    )
    publish_batch(outcome.folder)
    return {
        "batch_id": outcome.batch_id,
        "folder": str(outcome.folder),
        "tracks": outcome.tracks,
        "rejected": outcome.rejected,
        "notes": outcome.notes,
    }


@flow(name="export-dataset", log_prints=True)
def export_flow(
    folder: str | None = None,
    licence: str | None = None,
    style: str | None = None,
    min_duration: float | None = None,
    rejected: bool = False,
) -> dict[str, Any]:
    """Export the catalogue as a dataset (``db.export``: MIDI, metadata.parquet and .jsonl, splits, a card) into
    ``folder`` (default: ``dataset/`` in the home); an export already there is updated, writing only what changed.
    The dataset card is the run's markdown artifact."""
    from db.export import ExportFilter, export_dataset

    cat = catalogue()
    target = Path(folder).expanduser().resolve() if folder else cat.home.root / "dataset"
    only = ExportFilter(licence=licence, style=style, min_duration=min_duration, rejected=rejected)
    summary = export_dataset(cat.sessions, target, only)
    get_run_logger().info("exported %d pieces (%.2f h) to %s; %d files written", summary.pieces, summary.hours,
                          target, len(summary.written))  # fmt: skip
    if summary.missing:
        get_run_logger().warning("%d catalogued MIDI files are gone, left out: %s", len(summary.missing),
                                 ", ".join(summary.missing[:5]))  # fmt: skip
    card = (target / "README.md").read_text(encoding="utf-8")
    create_markdown_artifact(markdown=card, key="dataset-card", description=f"Dataset in {target}")
    return summary.to_dict()
