"""Symbolic scores (music21) on the token grid: the base model's corpus and the benches' pieces.

A score already knows its beats and bars, so nothing is tracked: notes are read in quarter notes
from the first downbeat (a pickup bar counts back from it) and the time signature gives the meter.
"""

from __future__ import annotations

from typing import Any

from train.tokens import TokenizeError, TokenizerConfig, encode, quantise_beats


def score_meter(score: Any) -> tuple[int, float]:
    """(beats per bar in quarter notes, the pickup's length in quarters) of a music21 score.

    Raises:
        TokenizeError: a bar that is not a whole number of quarter notes (9/8, 5/8, ...).
    """
    signatures = list(score.recurse().getElementsByClass("TimeSignature"))
    quarters = float(signatures[0].barDuration.quarterLength) if signatures else 4.0
    if abs(quarters - round(quarters)) > 1e-6:
        raise TokenizeError(f"a bar of {quarters} quarter notes is not on the beat grid")
    parts = list(score.parts) or [score]
    measures = list(parts[0].getElementsByClass("Measure"))
    pickup = 0.0
    if measures and measures[0].paddingLeft:
        pickup = quarters - float(measures[0].paddingLeft)
    return int(round(quarters)), pickup


def score_notes(score: Any) -> list[tuple[float, int, float]]:
    """(start in quarters from the first downbeat, MIDI pitch, length in quarters) of every note."""
    _, pickup = score_meter(score)
    flat = score.stripTies(inPlace=False).flatten()
    notes = []
    for element in flat.notes:
        start = float(element.offset) - pickup
        length = float(element.quarterLength)
        if length <= 0:
            continue  # grace notes
        for pitch in element.pitches:
            notes.append((start, int(pitch.midi), length))
    return notes


def score_tempo(score: Any, default: float = 96.0) -> float:
    marks = list(score.recurse().getElementsByClass("MetronomeMark"))
    number = getattr(marks[0], "number", None) if marks else None
    return float(number) if number else default


def score_tokens(score: Any, config: TokenizerConfig) -> tuple[list[str], float]:
    """A score's tokens and tempo (bpm).

    Raises:
        TokenizeError: the meter does not fit the grid, or no notes in range.
    """
    meter, _ = score_meter(score)
    piece = quantise_beats(score_notes(score), meter, config)
    return encode(piece, config), score_tempo(score)
