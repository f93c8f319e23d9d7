from __future__ import annotations

import pretty_midi

from sample.corpus import RenderedPiece
from transcribe.notes import NoteEvent
from transcribe.repetition import onset_events, piece_repetition, repetition


def _notes(pitches: list[int], step: float = 0.25) -> list[NoteEvent]:
    return [NoteEvent(i * step, (i + 1) * step, p) for i, p in enumerate(pitches)]


def test_a_hammered_note_scores_near_one() -> None:
    assert repetition(onset_events(_notes([60] * 200), 120)).score > 0.95


def test_a_looped_four_note_figure_is_caught_at_its_length() -> None:
    result = repetition(onset_events(_notes([60, 64, 67, 72] * 50), 120))
    assert result.score > 0.95 and result.pattern_length in (4, 8)


def test_a_chorale_scores_low(pieces: list[RenderedPiece]) -> None:
    midi = pretty_midi.PrettyMIDI(str(pieces[0].midi_path))
    notes = [NoteEvent(n.start, n.end, n.pitch) for inst in midi.instruments for n in inst.notes]
    assert piece_repetition(notes, pieces[0].tempo).score < 0.3


def test_a_chorus_repeated_three_times_is_ordinary_music() -> None:
    verse_a, verse_b, chorus = (
        list(range(50, 82)),
        list(range(82, 50, -1)),
        [60, 62, 64, 65, 67, 69, 71, 72, 74, 72, 71, 69, 67, 65, 64, 62],
    )
    assert piece_repetition(_notes(verse_a + chorus + verse_b + chorus + verse_a + chorus), 120).score < 0.3


def test_a_two_bar_loop_is_caught_by_bar_similarity_where_short_patterns_miss_it() -> None:
    loop = [60, 62, 64, 65, 67, 69, 71, 72, 74, 76, 77, 79, 81, 83, 84, 86] + list(range(85, 69, -1))  # 2 bars
    result = piece_repetition(_notes(loop * 12, step=0.125), 120)  # sixteenths at 120 bpm
    assert result.pattern_share < 0.3
    assert result.bar_similarity > 0.95 and result.score == result.bar_similarity


def test_bar_similarity_of_a_hammered_note_is_one() -> None:
    assert piece_repetition(_notes([60] * 64, step=0.25), 120).bar_similarity == 1.0
