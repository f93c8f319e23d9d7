"""Per-piece analysis (key, tempo, density, range, polyphony, repetition, silence, audio features) and the verdict."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from db.models import Reason
from transcribe.features import AudioFeatures
from transcribe.groove import Groove
from transcribe.notes import NoteEvent
from transcribe.repetition import piece_repetition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilterSettings:
    """What makes a piece unusable for training. Every rule yields a named reason."""

    min_notes: int = 24
    min_distinct_pitches: int = 4
    max_repetition: float = 0.5
    max_silence_ratio: float = 0.6
    max_spectral_flatness: float = 0.3
    max_note_density: float = 40.0  # notes per second; above it a transcription is noise

    def __post_init__(self) -> None:
        if self.min_notes < 0 or self.min_distinct_pitches < 0 or self.max_note_density <= 0:
            raise ValueError("note counts must not be negative and the note density bound must be positive")
        for name in ("max_repetition", "max_silence_ratio", "max_spectral_flatness"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a share: it must lie in [0, 1], not {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PieceAnalysis:
    duration: float
    tempo: float
    key: str | None
    note_count: int
    note_density: float
    pitch_low: int | None
    pitch_high: int | None
    distinct_pitches: int
    polyphony: float
    repetition_score: float  # max(pattern_share, bar_similarity): see transcribe.repetition
    repetition_pattern: int
    pattern_share: float
    bar_similarity: float
    silence_ratio: float
    spectral_flatness: float
    audio: dict[str, Any]  # transcribe.features.AudioFeatures
    groove: dict[str, Any] | None = None  # transcribe.groove.Groove

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: Reason | None = None
    detail: str | None = None


def estimate_key(notes: Sequence[NoteEvent]) -> str | None:
    """music21's Krumhansl-Schmuckler key estimate over duration-weighted notes, e.g. ``"G major"``.

    The analysis reads only each pitch class's total duration, so it is given one note per pitch
    class with that total (the same answer as the whole piece, without building a long stream).
    """
    if not notes:
        return None
    from music21 import note as m21note
    from music21 import stream
    from music21.exceptions21 import Music21Exception

    weights = np.zeros(12)
    for event in notes:
        weights[event.pitch % 12] += max(event.duration, 0.05)
    piece: stream.Stream = stream.Stream()
    for pitch_class, weight in enumerate(weights):
        if weight > 0:
            piece.append(m21note.Note(60 + pitch_class, quarterLength=round(float(weight), 2)))
    try:
        key = piece.analyze("key")
    except Music21Exception as error:  # the key analysis found nothing to go on: the piece has no key
        log.warning("no key for a piece of %d notes: %s", len(notes), error)
        return None
    return f"{key.tonic.name} {key.mode}"


def polyphony(notes: Sequence[NoteEvent], resolution: float = 0.05) -> float:
    """Mean number of notes sounding, over the frames where any note sounds."""
    if not notes:
        return 0.0
    end = max(n.end for n in notes)
    counts = np.zeros(int(end / resolution) + 1, dtype=np.int32)
    for n in notes:
        counts[int(n.start / resolution) : max(int(n.end / resolution), int(n.start / resolution) + 1)] += 1
    sounding = counts[counts > 0]
    return float(sounding.mean()) if sounding.size else 0.0


def analyse(
    notes: Sequence[NoteEvent],
    tempo: float,
    duration: float,
    features: AudioFeatures,
    groove: Groove | None = None,
) -> PieceAnalysis:
    """Everything the filter and the similarity search read about one piece."""
    pitches = [n.pitch for n in notes]
    rep = piece_repetition(notes, tempo)
    return PieceAnalysis(
        duration=round(duration, 3),
        tempo=tempo,
        key=estimate_key(notes),
        note_count=len(notes),
        note_density=round(len(notes) / duration, 3) if duration > 0 else 0.0,
        pitch_low=min(pitches) if pitches else None,
        pitch_high=max(pitches) if pitches else None,
        distinct_pitches=len(set(pitches)),
        polyphony=round(polyphony(notes), 3),
        repetition_score=rep.score,
        repetition_pattern=rep.pattern_length,
        pattern_share=rep.pattern_share,
        bar_similarity=rep.bar_similarity,
        silence_ratio=features.silence_ratio,
        spectral_flatness=features.spectral_flatness,
        audio=features.to_dict(),
        groove=groove.to_dict() if groove else None,
    )


def judge(analysis: PieceAnalysis, settings: FilterSettings) -> Verdict:
    """Keep or reject a piece, with the first failed rule as the reason and its figure as the detail."""
    a, s = analysis, settings
    rules = [
        (a.silence_ratio > s.max_silence_ratio, Reason.MOSTLY_SILENT, f"silence ratio {a.silence_ratio:.2f}"),
        (
            a.spectral_flatness > s.max_spectral_flatness,
            Reason.NOISY_SPECTRUM,
            f"spectral flatness {a.spectral_flatness:.2f}",
        ),
        (a.note_count < s.min_notes, Reason.TOO_FEW_NOTES, f"{a.note_count} notes"),
        (a.note_density > s.max_note_density, Reason.TOO_DENSE, f"{a.note_density:.1f} notes/s"),
        (
            a.repetition_score > s.max_repetition,
            Reason.REPETITIVE,
            f"repetition score {a.repetition_score:.2f} (one {a.repetition_pattern}-event pattern covers "
            f"{a.pattern_share:.0%}; mean bar-to-bar similarity {a.bar_similarity:.2f})",
        ),
        (
            a.distinct_pitches < s.min_distinct_pitches,
            Reason.LOW_PITCH_VARIETY,
            f"{a.distinct_pitches} distinct pitches",
        ),
    ]
    for failed, reason, detail in rules:
        if failed:
            return Verdict(False, reason, detail)
    return Verdict(True)
