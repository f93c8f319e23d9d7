"""The work on one piece: transcribe, write the MIDI, analyse and judge. No database access, so it runs in
any worker process (``transcribe.parallel``); ``transcribe.catalogue`` records what it came to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from db.reasons import Reason
from transcribe.analysis import FilterSettings, PieceAnalysis, analyse, judge
from transcribe.basic_pitch import Reading, Transcriber, TranscriptionError
from transcribe.beats import BeatGrid
from transcribe.midi import write_midi


@dataclass(frozen=True)
class PieceJob:
    source_id: int
    audio_path: Path
    midi_path: Path


@dataclass(frozen=True)
class PieceResult:
    """What one piece came to: a MIDI file and its analysis and verdict, or the reason it failed."""

    source_id: int
    midi_path: Path | None = None
    analysis: PieceAnalysis | None = None
    grid: BeatGrid | None = None
    accepted: bool = False
    reason: Reason | None = None
    detail: str | None = None
    seconds: float = 0.0  # audio seconds transcribed
    reading: Reading | None = None  # the articulation that chose its note settings (see TranscriptionSettings)


def process_piece(job: PieceJob, transcriber: Transcriber, filter_settings: FilterSettings) -> PieceResult:
    """Transcribe, write the MIDI (atomically), analyse and judge one piece. No database access."""
    try:
        if not job.audio_path.is_file():
            raise TranscriptionError(f"audio file missing: {job.audio_path}", reason=Reason.AUDIO_MISSING)
        transcript = transcriber.transcribe(job.audio_path)
    except TranscriptionError as error:
        return PieceResult(job.source_id, reason=error.reason, detail=str(error))
    midi_path = write_midi(transcript.notes, transcript.tempo, job.midi_path)
    analysis = analyse(transcript.notes, transcript.tempo, transcript.duration, transcript.features, transcript.groove)
    verdict = judge(analysis, filter_settings)
    return PieceResult(
        job.source_id,
        midi_path=midi_path,
        analysis=analysis,
        grid=transcript.grid,
        accepted=verdict.accepted,
        reason=verdict.reason,
        detail=verdict.detail,
        seconds=transcript.duration,
        reading=transcript.reading,
    )
