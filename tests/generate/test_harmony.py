"""Chords named from the sampled notes, of the style's own vocabulary, and the inner voices and bass moved onto them."""

from __future__ import annotations

from collections import Counter

from music21 import corpus

from generate.harmony import revoiced
from train.chords import QUALITIES, TRIADS, chord_vocabulary, in_use, recognise
from train.scores import score_tokens
from train.tokens import GridNote, GridPiece, TokenizerConfig, decode

CONFIG = TokenizerConfig()


def _piece(spans: list[list[int]], *, meter: int = 4) -> GridPiece:
    """Half bars of block chords (lowest first), each struck twice."""
    half = meter * CONFIG.steps_per_beat // 2
    notes = [
        GridNote(i * half + k * half // 2, p, half // 2) for i, chord in enumerate(spans) for k in (0, 1) for p in chord
    ]
    return GridPiece(meter, tuple(sorted(notes)))


def test_chords_are_named_from_the_notes_sounding_in_each_half_bar() -> None:
    piece = _piece([[48, 64, 67, 72], [45, 64, 69, 72], [41, 65, 69, 72], [43, 62, 67, 71], [48, 64, 67, 72]])
    assert [c.name for c in recognise(piece, CONFIG)] == ["C", "Am", "F", "G", "C", "C"]  # an empty span holds on
    passing = _piece([[48, 64, 66, 67, 72]])  # a chromatic passing tone does not change the chord
    assert [c.name for c in recognise(passing, CONFIG)][0] == "C"


def test_inner_voices_move_to_the_nearest_chord_tones_and_the_bass_to_roots_and_fifths() -> None:
    stray = _piece([[48, 61, 66, 76], [45, 63, 70, 76]])  # C and Am spans with inner voices off the chord
    chords = recognise(_piece([[48, 64, 67, 76], [45, 64, 69, 76]]), CONFIG)
    fixed = revoiced(stray, CONFIG, chords)
    by_onset: dict[int, list[int]] = {}
    for n in fixed.notes:
        by_onset.setdefault(n.step, []).append(n.pitch)
    assert sorted(by_onset) == sorted({n.step for n in stray.notes})  # the same rhythm
    for step, pitches in by_onset.items():
        chord = chords[step // 8]
        top, *inner, bass = sorted(pitches, reverse=True)
        assert top == 76 and len(inner) == 2  # melody kept, as many inner voices as were written
        assert all(p % 12 in chord.tones for p in inner) and max(inner) < top and min(inner) > bass
        written = sorted((n.pitch for n in stray.notes if n.step == step), reverse=True)[1:-1]
        assert all(abs(a - b) <= 2 for a, b in zip(inner, written, strict=True))  # where the model put them
        assert bass % 12 in (chord.root, chord.fifth)
    basses = [min(by_onset[s]) % 12 for s in sorted(by_onset)]
    assert basses == [0, 7, 9, 4]  # root, then the fifth while the chord lasts


def test_the_bass_takes_the_octave_above_where_the_nearest_root_or_fifth_lies_below_the_piece() -> None:
    written = _piece([[40, 60, 64, 67], [40, 60, 64, 69]])  # C over E, then Am over E: E2 is the lowest note
    chords = recognise(written, CONFIG)
    assert [c.name for c in chords][:2] == ["C", "Am"]
    fixed = revoiced(written, CONFIG, chords)
    basses = [min(n.pitch for n in fixed.notes if n.step == s) for s in sorted({n.step for n in fixed.notes})]
    # Nearest to E2, C's root is C2 (36) and A's A1 (33), both below the written register: each is taken an
    # octave up. Their fifths, G2 and E2, lie within it and stay where they are.
    assert basses == [48, 43, 45, 40] and min(n.pitch for n in fixed.notes) == 40


def test_a_chorale_keeps_its_melody_rhythm_and_texture_and_its_chords_explain_it() -> None:
    piece = decode(score_tokens(corpus.parse("bach/bwv10.7"), CONFIG)[0], CONFIG)
    chords = recognise(piece, CONFIG)
    assert len(chords) == piece.bars(CONFIG) * 2
    inside = sum(n.steps for n in piece.notes if n.pitch % 12 in chords[n.step // 8].tones)
    assert inside / sum(n.steps for n in piece.notes) > 0.75  # Bach's notes are mostly chord tones
    fixed = revoiced(piece, CONFIG, chords)

    def tops(p: GridPiece) -> dict[int, int]:
        out: dict[int, int] = {}
        for n in p.notes:
            out[n.step] = max(out.get(n.step, 0), n.pitch)
        return out

    assert tops(fixed) == tops(piece)
    assert Counter(n.step for n in fixed.notes) == Counter(n.step for n in piece.notes) or len(
        fixed.notes
    ) >= 0.95 * len(piece.notes)


def test_a_style_of_sevenths_keeps_them_and_a_style_of_bare_fifths_gets_no_thirds() -> None:
    sevenths = _piece([[43, 65, 71, 74], [48, 64, 67, 70], [41, 63, 69, 72], [46, 62, 65, 68]])  # G7 C7 F7 Bb7
    vocabulary = chord_vocabulary([sevenths], CONFIG)
    assert in_use(vocabulary) == ("7",) and set(QUALITIES) >= set(vocabulary)
    assert [c.name for c in recognise(sevenths, CONFIG, in_use(vocabulary))][:4] == ["G7", "C7", "F7", "Bb7"]
    fixed = revoiced(sevenths, CONFIG, recognise(sevenths, CONFIG, in_use(vocabulary)))
    assert {n.pitch % 12 for n in fixed.notes if n.step == 0} == {7, 11, 2, 5}  # the seventh stays
    assert [c.quality for c in recognise(sevenths, CONFIG)][:4] != ["7"] * 4  # named as triads, it would go

    fifths = _piece([[36, 43, 48, 55], [41, 48, 53, 60], [43, 50, 55, 62]])  # open fifths, no thirds anywhere
    used = in_use(chord_vocabulary([fifths], CONFIG))
    assert used == ("5",)
    drifted = _piece([[36, 44, 47, 55], [41, 49, 52, 60], [43, 51, 54, 62]])  # inner voices off the fifths
    fixed = revoiced(drifted, CONFIG, recognise(fifths, CONFIG, used))
    for chord, step in zip(recognise(fifths, CONFIG, used), (0, 8, 16), strict=False):
        assert {n.pitch % 12 for n in fixed.notes if n.step == step} <= set(chord.tones)  # no third is added


def test_a_style_without_pieces_is_named_with_the_common_triads() -> None:
    assert in_use({}) == TRIADS
    assert in_use({"m7": 0.02, "": 0.01}) == ("m7",)  # none at IN_USE: its commonest
