"""Transcription's rows: one MIDI file and analysis per downloaded source, and its verdict.

The work on one piece (``transcribe.piece.process_piece``) touches no database, so it can run in any
worker process; :func:`record_piece` writes its outcome in the parent. Nothing is recorded until the
MIDI file is complete, so a killed run simply redoes the pieces it had not recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.claims import claim, release
from db.models import Reason, Source, SourceState, Transcription
from transcribe.analysis import FilterSettings
from transcribe.basic_pitch import TranscriptionError, TranscriptionSettings, audio_onset_envelope
from transcribe.beats import BeatGrid, grid_from_audio, grid_from_notes
from transcribe.midi import read_midi
from transcribe.parallel import run_pieces
from transcribe.piece import PieceJob, PieceResult


@dataclass(frozen=True)
class TranscribeOutcome:
    source_id: int
    state: SourceState
    reason: Reason | None = None
    transcribed: bool = False
    seconds: float = 0.0  # audio seconds transcribed


@dataclass
class TranscribeSummary:
    outcomes: list[TranscribeOutcome] = field(default_factory=list)

    @property
    def audio_seconds(self) -> float:
        return sum(o.seconds for o in self.outcomes)

    def counts(self) -> dict[str, Any]:
        rejected: dict[str, int] = {}
        for outcome in self.outcomes:
            if outcome.state is SourceState.REJECTED and outcome.reason:
                rejected[outcome.reason] = rejected.get(outcome.reason, 0) + 1
        return {
            "transcribed": sum(o.transcribed for o in self.outcomes),
            "accepted": sum(o.state is SourceState.ACCEPTED for o in self.outcomes),
            "rejected": rejected,
            "audio_seconds": round(self.audio_seconds, 1),
        }


WAITING = (SourceState.DOWNLOADED, SourceState.TRANSCRIBED)  # audio and no verdict yet


def downloaded_source_ids(session: Session) -> list[int]:
    """Sources with audio and no verdict yet (including those a killed run left transcribed)."""
    return list(session.scalars(select(Source.id).where(Source.state.in_(WAITING)).order_by(Source.id)))


def piece_jobs(session: Session, source_ids: Sequence[int], midi_dir: Path) -> list[PieceJob]:
    """The jobs for those of ``source_ids`` still waiting for a verdict."""
    rows = session.scalars(select(Source).where(Source.id.in_(source_ids), Source.state.in_(WAITING)))
    return [
        PieceJob(source.id, Path(source.audio_path or ""), midi_dir / f"{source.id}.mid")
        for source in sorted(rows, key=lambda s: s.id)
    ]


def record_piece(
    sessions: sessionmaker[Session],
    result: PieceResult,
    settings: TranscriptionSettings,
    filter_settings: FilterSettings,
) -> TranscribeOutcome:
    """Store one piece's MIDI path, settings, analysis and verdict in one transaction."""
    with sessions.begin() as session:
        source = session.get_one(Source, result.source_id)
        release(source)
        if result.analysis is None or result.midi_path is None:
            source.state, source.reason, source.reason_detail = SourceState.REJECTED, result.reason, result.detail
            return TranscribeOutcome(result.source_id, SourceState.REJECTED, result.reason, seconds=result.seconds)
        analysis = result.analysis
        row = session.scalar(select(Transcription).where(Transcription.source_id == result.source_id))
        if row is None:
            row = Transcription(source_id=result.source_id, midi_path=str(result.midi_path), settings={}, note_count=0)
            session.add(row)
        row.midi_path = str(result.midi_path)
        row.settings = {
            "basic_pitch": settings.to_dict(),
            "filter": filter_settings.to_dict(),
            "reading": result.reading.to_dict() if result.reading else None,
        }
        row.note_count = analysis.note_count
        row.tempo = analysis.tempo
        row.features = analysis.to_dict()
        row.grid = result.grid.to_dict() if result.grid else None
        source.duration = source.duration or analysis.duration
        if result.accepted:
            source.state, source.reason, source.reason_detail = SourceState.ACCEPTED, None, None
        else:
            source.state, source.reason, source.reason_detail = SourceState.REJECTED, result.reason, result.detail
        return TranscribeOutcome(
            result.source_id, source.state, Reason.read(source.reason), transcribed=True, seconds=result.seconds
        )


def transcribe_sources(
    sessions: sessionmaker[Session],
    source_ids: Sequence[int],
    midi_dir: Path,
    *,
    settings: TranscriptionSettings | None = None,
    filter_settings: FilterSettings | None = None,
    workers: int = 1,
    progress: Callable[[int, int, TranscribeOutcome], None] | None = None,
) -> TranscribeSummary:
    """Transcribe the given sources across ``workers`` processes, recording each as it finishes.

    Each piece is claimed first (``db.claims``): one another live run is transcribing is left to
    it. ``progress(done, total, outcome)`` is called after each piece is recorded.
    """
    settings = settings or TranscriptionSettings()
    filter_settings = filter_settings or FilterSettings()
    with sessions() as session:
        jobs = piece_jobs(session, source_ids, midi_dir)
    jobs = [job for job in jobs if claim(sessions, job.source_id, WAITING)]
    summary = TranscribeSummary()
    for result in run_pieces(jobs, settings, filter_settings, workers=workers):
        outcome = record_piece(sessions, result, settings, filter_settings)
        summary.outcomes.append(outcome)
        if progress is not None:
            progress(len(summary.outcomes), len(jobs), outcome)
    return summary


def derive_grid(audio_path: Path | None, midi_path: Path) -> BeatGrid:
    """A transcription's beat grid, derived again: beats from the audio when it is on disk, else from the MIDI."""
    notes = read_midi(midi_path)
    if audio_path is not None and audio_path.is_file():
        try:
            envelope, fps = audio_onset_envelope(audio_path)
            return grid_from_audio(envelope, fps, notes)
        except TranscriptionError:
            pass  # unreadable audio: the notes still have their onsets
    return grid_from_notes(notes)


def backfill_grids(sessions: sessionmaker[Session], *, limit: int | None = None) -> int:
    """Give every transcription made before beat grids were kept its grid (no download, no transcription).

    Returns how many rows were filled. Each row is written in its own transaction, so a killed run
    keeps what it did and a re-run goes on from there.
    """
    with sessions() as session:
        query = (
            select(Transcription.id, Transcription.midi_path, Source.audio_path)
            .join(Source, Source.id == Transcription.source_id)
            .where(Transcription.grid.is_(None))
            .order_by(Transcription.id)
        )
        rows = session.execute(query.limit(limit) if limit else query).all()
    filled = 0
    for row_id, midi_path, audio_path in rows:
        if not Path(midi_path).is_file():
            continue
        grid = derive_grid(Path(audio_path) if audio_path else None, Path(midi_path))
        with sessions.begin() as session:
            session.get_one(Transcription, row_id).grid = grid.to_dict()
        filled += 1
    return filled
