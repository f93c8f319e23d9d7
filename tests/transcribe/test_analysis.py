"""The filter's settings and the key estimate."""

from __future__ import annotations

import numpy as np
import pytest

from transcribe.analysis import FilterSettings, estimate_key
from transcribe.notes import NoteEvent


def test_filter_settings_refuse_bounds_no_piece_could_meet() -> None:
    assert FilterSettings(max_repetition=1.0, max_silence_ratio=0.0).max_repetition == 1.0  # the edges are fine
    for wrong in ({"max_repetition": 1.5}, {"max_silence_ratio": -0.1}, {"max_spectral_flatness": 2.0},
                  {"min_notes": -1}, {"max_note_density": 0.0}):  # fmt: skip
        with pytest.raises(ValueError):
            FilterSettings(**wrong)


def music21_key(notes: list[NoteEvent]) -> str | None:
    """The key as music21 itself names it, given what ``estimate_key`` reads: each pitch class's total duration."""
    from music21 import note, stream

    weights = np.zeros(12)
    for event in notes:
        weights[event.pitch % 12] += max(event.duration, 0.05)
    piece: stream.Stream = stream.Stream()
    for pitch_class, weight in enumerate(weights):
        if weight > 0:
            piece.append(note.Note(60 + pitch_class, quarterLength=round(float(weight), 2)))
    key = piece.analyze("key")
    return f"{key.tonic.name} {key.mode}"


def test_key_estimate_is_music21s_on_corpus_pieces_in_every_key_and_on_awkward_weights() -> None:
    from music21 import corpus

    cases: list[list[NoteEvent]] = []
    for name in ("bach/bwv66.6", "bach/bwv57.8", "bach/bwv10.7", "palestrina/agnus_0", "schumann/opus41no1/movement2"):
        score = corpus.parse(name).flatten()
        notes = [(float(n.offset), float(n.quarterLength), p.midi) for n in score.notes for p in n.pitches]
        for shift in range(12):  # every tonic, so every spelling (a G# major key is named A- major)
            cases.append([NoteEvent(s * 0.5, (s + q) * 0.5, m + shift) for s, q, m in notes])
    rng = np.random.default_rng(7)
    for _ in range(600):  # durations that music21 keeps as fractions (0.33), sparse and dense profiles
        used = rng.choice(12, size=rng.integers(1, 13), replace=False)
        cases.append([NoteEvent(0.0, float(rng.choice([0.01, 0.33, 0.07, 1.0 / 3, rng.uniform(0, 9)])), 60 + int(pc))
                      for pc in used for _ in range(rng.integers(1, 4))])  # fmt: skip
    cases.append([NoteEvent(0.0, 1.0, 60 + pc) for pc in range(12)])  # every correlation 0: a tie, broken as music21's
    keys = [estimate_key(notes) for notes in cases]
    assert keys == [music21_key(notes) for notes in cases]
    assert len(set(keys[: 5 * 12])) >= 20 and "A- major" in keys and estimate_key([]) is None
