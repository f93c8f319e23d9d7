"""Per-piece analysis (key, tempo, density, range, polyphony, repetition, silence, audio features) and the verdict."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from db.reasons import Reason
from transcribe.features import AudioFeatures
from transcribe.groove import Groove
from transcribe.notes import NoteEvent
from transcribe.repetition import piece_repetition


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


# music21's default key analysis (``Stream.analyze("key")``: Aarden-Essen weights on Krumhansl-Schmuckler's
# method), ported so a transcription worker need not import music21 (~0.3 s per process) or build the 24 Key
# objects music21 makes per call (~25 ms a piece). ``tests/transcribe/test_analysis.py`` checks it against
# music21 itself.
AARDEN_ESSEN = {
    "major": (17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494, 0.232998,
              4.95122),
    "minor": (18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186, 7.37619,
              1.75623),
}  # fmt: skip
TONIC_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B")  # music21's Pitch(pc).name
MAJOR_ENHARMONIC = {"G#": "A-"}  # music21 spells a G# major key A- major (its keysValidMajor); minor keys as named
DENOMINATOR_LIMIT = 65535  # music21's defaults.limitOffsetDenominator


def _quarter_length(value: float) -> float | Fraction:
    """A duration as music21 stores it (``common.opFrac``): a float, or a Fraction where the float would only
    approximate a fraction with a denominator up to 65535."""
    numerator, denominator = value.as_integer_ratio()
    if denominator <= DENOMINATOR_LIMIT:
        return value
    fraction = Fraction(numerator, denominator).limit_denominator(DENOMINATOR_LIMIT)
    power_of_two = fraction.denominator & (fraction.denominator - 1) == 0
    return fraction.numerator / fraction.denominator if power_of_two else fraction


def _key_correlations(distribution: list[float | Fraction | int], weights: Sequence[float]) -> list[float]:
    """The correlation of ``distribution`` with ``weights`` rotated to each tonic: music21's
    ``DiscreteAnalysis._getDifference``, term by term in its order (so the same floats and the same ties)."""
    profile_average = sum(weights) / len(weights)
    histogram_average = sum(distribution) / len(distribution)
    solution = [0.0] * 12
    for i in range(12):
        top = bottom_right = bottom_left = 0.0
        for j in range(12):
            top = top + ((weights[(j - i) % 12] - profile_average) * (distribution[j] - histogram_average))
            bottom_right = bottom_right + ((weights[(j - i) % 12] - profile_average) ** 2)
            bottom_left = bottom_left + ((distribution[j] - histogram_average) ** 2)
        solution[i] = (
            0.0 if bottom_right == 0 or bottom_left == 0 else float(top / ((bottom_right * bottom_left) ** 0.5))
        )
    return solution


def estimate_key(notes: Sequence[NoteEvent]) -> str | None:
    """music21's key estimate (``analyze("key")``) over duration-weighted notes, e.g. ``"G major"``.

    Each pitch class weighs its notes' total duration (at least 0.05 s a note), rounded to 0.01 as the
    quarter lengths music21 would be given; the tonic and mode best correlated with the Aarden-Essen
    profiles win, ties going to the higher pitch class and then to minor, as music21's sort has it.
    """
    if not notes:
        return None
    weights = np.zeros(12)
    for event in notes:
        weights[event.pitch % 12] += max(event.duration, 0.05)
    distribution: list[float | Fraction | int] = [  # an unused pitch class is music21's int 0, not 0.0
        _quarter_length(round(float(weight), 2)) if weight > 0 else 0 for weight in weights
    ]
    _, tonic, mode = max(
        (correlation, pitch_class, mode)
        for mode, profile in AARDEN_ESSEN.items()
        for pitch_class, correlation in enumerate(_key_correlations(distribution, profile))
    )
    name = TONIC_NAMES[tonic]
    return f"{MAJOR_ENHARMONIC.get(name, name) if mode == 'major' else name} {mode}"


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
