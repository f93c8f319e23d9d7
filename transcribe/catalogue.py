"""Transcription's rows: one MIDI file and analysis per downloaded source, and its verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Source, SourceState, Transcription
from transcribe.analysis import FilterSettings, analyse, judge
from transcribe.basic_pitch import SAMPLE_RATE, Transcriber, TranscriptionError, write_midi


@dataclass(frozen=True)
class TranscribeOutcome:
    source_id: int
    state: SourceState
    reason: str | None = None
    transcribed: bool = False


def downloaded_source_ids(session: Session) -> list[int]:
    """Sources with audio and no verdict yet (including those a killed run left transcribed)."""
    states = (SourceState.DOWNLOADED, SourceState.TRANSCRIBED)
    return list(session.scalars(select(Source.id).where(Source.state.in_(states)).order_by(Source.id)))


def transcribe_source(
    sessions: sessionmaker[Session],
    source_id: int,
    transcriber: Transcriber,
    midi_dir: Path,
    filter_settings: FilterSettings,
) -> TranscribeOutcome:
    """Transcribe, analyse and judge one downloaded source; the verdict and the MIDI land together.

    Nothing is recorded until the MIDI file is complete, so a killed run simply redoes this source.
    """
    with sessions.begin() as session:
        source = session.get(Source, source_id)
        if source is None or source.state not in (SourceState.DOWNLOADED, SourceState.TRANSCRIBED):
            return TranscribeOutcome(source_id, source.state if source else SourceState.REJECTED)
        audio_path = Path(source.audio_path or "")

    try:
        if not audio_path.is_file():
            raise TranscriptionError(f"audio file missing: {audio_path}", reason="audio_missing")
        transcript = transcriber.transcribe(audio_path)
    except TranscriptionError as error:
        with sessions.begin() as session:
            source = session.get_one(Source, source_id)
            source.state, source.reason, source.reason_detail = SourceState.REJECTED, error.reason, str(error)
        return TranscribeOutcome(source_id, SourceState.REJECTED, error.reason)

    midi_path = write_midi(transcript.notes, transcript.tempo, midi_dir / f"{source_id}.mid")
    analysis = analyse(transcript.notes, transcript.tempo, transcript.duration, transcript.audio, SAMPLE_RATE)
    verdict = judge(analysis, filter_settings)
    with sessions.begin() as session:
        source = session.get_one(Source, source_id)
        row = session.scalar(select(Transcription).where(Transcription.source_id == source_id))
        if row is None:
            row = Transcription(source_id=source_id, midi_path=str(midi_path), settings={}, note_count=0)
            session.add(row)
        row.midi_path = str(midi_path)
        row.settings = {"basic_pitch": transcriber.settings.to_dict(), "filter": filter_settings.to_dict()}
        row.note_count = analysis.note_count
        row.tempo = analysis.tempo
        row.features = analysis.to_dict()
        source.duration = source.duration or analysis.duration
        if verdict.accepted:
            source.state, source.reason, source.reason_detail = SourceState.ACCEPTED, None, None
        else:
            source.state, source.reason, source.reason_detail = SourceState.REJECTED, verdict.reason, verdict.detail
    return TranscribeOutcome(source_id, source.state, verdict.reason, transcribed=True)
