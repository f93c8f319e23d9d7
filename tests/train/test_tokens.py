"""Note tokens on a tracked beat grid: exact round trips on real transcriptions, and a grid that follows the music."""

from __future__ import annotations

import numpy as np
import pytest
from music21 import corpus

from sample.corpus import RenderedPiece
from train.scores import score_meter, score_notes, score_tokens
from train.tokens import (
    BAR,
    GridNote,
    GridPiece,
    TokenizeError,
    TokenizerConfig,
    decode,
    encode,
    fit_meter,
    key_of,
    quantise,
    transpose,
    transposition_range,
)
from transcribe.basic_pitch import Transcriber
from transcribe.beats import BeatGrid, grid_from_notes
from transcribe.notes import NoteEvent

CONFIG = TokenizerConfig()


@pytest.fixture(scope="module")
def transcriptions(pieces: list[RenderedPiece]) -> list[tuple[RenderedPiece, list[NoteEvent], BeatGrid]]:
    transcriber = Transcriber()
    out = []
    for piece in pieces[:2]:
        transcript = transcriber.transcribe(piece.audio_path)
        out.append((piece, transcript.notes, transcript.grid))
    return out


def test_real_transcriptions_round_trip_through_tokens(transcriptions: list) -> None:
    for _piece, notes, grid in transcriptions:
        placed = quantise(notes, grid, CONFIG)
        tokens = encode(placed, CONFIG)
        assert tokens[0] == f"Meter_{placed.meter}" and tokens[1].startswith("Key_") and tokens[2] == BAR
        back = decode(tokens, CONFIG)
        assert back == placed  # every note, its step, pitch and length, exactly
        assert encode(back, CONFIG) == tokens
        assert len(placed.notes) > 0.9 * len(notes)  # only doubled notes merge


def test_tracked_beats_match_the_rendered_tempo_and_meter(transcriptions: list) -> None:
    for piece, notes, grid in transcriptions:
        assert abs(grid.tempo - piece.tempo) / piece.tempo < 0.03, (grid.tempo, piece.tempo)
        assert grid.meter == 4  # Bach chorales in common time
        # Onsets land on the grid: most notes within a sixteenth's tenth of a grid step.
        steps = grid.beat_position(np.array([n.start for n in notes])) * CONFIG.steps_per_beat
        assert np.mean(np.abs(steps - np.round(steps)) < 0.25) > 0.85


def _score_events(name: str) -> tuple[list[tuple[float, int, float]], int]:
    score = corpus.parse(name)
    meter, _ = score_meter(score)
    return score_notes(score), meter


def test_a_piece_that_speeds_up_and_starts_off_the_beat_still_lands_on_its_grid() -> None:
    """A chorale played from 72 to 100 bpm, starting 0.37 s in: its notes keep their place in the bar."""
    events, meter = _score_events("bach/bwv101.7")
    start_bpm, end_bpm, length = 72.0, 100.0, max(s + d for s, _, d in events)

    def seconds(beat: float) -> float:  # tempo rising linearly with the beat: integrate 60 / bpm(b)
        rate = (end_bpm - start_bpm) / length
        return 0.37 + 60.0 / rate * np.log((start_bpm + rate * beat) / start_bpm)

    notes = [NoteEvent(seconds(s), seconds(s + d), p, 80 + 20 * (s % meter == 0)) for s, p, d in events]
    grid = grid_from_notes(notes)
    placed = quantise(notes, grid, CONFIG)
    truth = {(round(s * 4), p) for s, p, _ in events}
    found = {(n.step, n.pitch) for n in placed.notes}
    bar = meter * CONFIG.steps_per_beat
    # The same notes at the same place in the bar, whichever bar the tracker called the first.
    best = max(len({(s + shift, p) for s, p in found} & truth) for shift in range(-bar, bar + 1, 1))
    assert best / len(truth) > 0.85
    assert grid.meter == fit_meter(meter, CONFIG)


def test_scores_tokenise_with_their_meter_and_pickup() -> None:
    score = corpus.parse("bach/bwv1.6")  # a pickup of one beat in 4/4
    tokens, tempo = score_tokens(score, CONFIG)
    assert tokens[:4] == ["Meter_4", "Key_5", BAR, "Pos_12"] and tempo > 0  # F major
    assert decode(tokens, CONFIG).notes[0].step == 12
    jig = corpus.parse("oneills1850/0001-0050").scores[0]
    assert score_tokens(jig, CONFIG)[0][0] in {"Meter_3", "Meter_4"}


def test_notes_at_one_position_go_highest_first_and_lengths_snap() -> None:
    piece = GridPiece(4, (GridNote(0, 60, 4), GridNote(0, 67, 5), GridNote(0, 64, 4), GridNote(17, 62, 40)))
    tokens = encode(piece, CONFIG)
    assert tokens == [
        "Meter_4",
        "Key_2",
        BAR,
        "Pos_0",
        "Pitch_65",
        "Dur_6",
        "Pitch_62",
        "Dur_4",
        "Pitch_58",
        "Dur_4",
        BAR,
        "Pos_1",
        "Pitch_60",
        "Dur_32",
    ]  # fmt: skip  (D major: pitches written relative to D, two semitones down)
    assert decode(
        ["Pitch_60", "Dur_4", "Meter_3", "Key_21", BAR, "Dur_4", "Pos_2", "Pitch_60", "Dur_2"], CONFIG
    ).notes == (
        GridNote(2, 60, 2),
    )  # a pitch before any position, a duration with no pitch: skipped (A minor is spelt as C major)


def test_the_key_is_read_from_the_notes() -> None:
    c_major = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60]
    a_minor = [57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57, 57]
    assert key_of(GridPiece(4, tuple(GridNote(4 * i, p, 4) for i, p in enumerate(c_major)))) == 0
    assert key_of(GridPiece(4, tuple(GridNote(4 * i, p, 4) for i, p in enumerate(a_minor)))) == 12 + 9
    # The D held for two bars outweighs the C major triad above it: D major.
    assert key_of(GridPiece(4, (GridNote(0, 60, 4), GridNote(0, 67, 5), GridNote(0, 64, 4), GridNote(17, 62, 40)))) == 2


def test_moving_a_piece_to_another_key_moves_only_its_key_token() -> None:
    piece = GridPiece(4, (GridNote(0, 105, 4), GridNote(0, 40, 4), GridNote(4, 62, 4)))
    tokens = encode(piece, CONFIG)
    low, high = transposition_range(tokens, CONFIG)
    assert low >= -6 and high <= 5 and low < 0 < high
    for shift in range(low, high + 1):
        moved = transpose(tokens, shift)
        assert [t for t in moved if not t.startswith("Key_")] == [t for t in tokens if not t.startswith("Key_")]
        notes = decode(moved, CONFIG).notes
        assert len({n.pitch - o.pitch for n, o in zip(notes, sorted(piece.notes), strict=True)}) == 1  # all alike
        assert {(n.pitch - o.pitch) % 12 for n, o in zip(notes, sorted(piece.notes), strict=True)} == {shift % 12}
        assert all(CONFIG.pitch_low <= n.pitch <= CONFIG.pitch_high for n in notes)  # still in range
    assert transpose(["Key_14"], 3) == ["Key_17"] and transpose(["Key_14"], -3) == ["Key_23"]  # modes kept


def test_what_cannot_be_tokenised_says_why() -> None:
    with pytest.raises(TokenizeError, match="pitch range"):
        quantise([NoteEvent(0.0, 1.0, 5)], BeatGrid((0.0, 0.5, 1.0), 4, 0, "test"), CONFIG)
    with pytest.raises(TokenizeError, match="5 beats"):
        fit_meter(5, CONFIG)
    assert fit_meter(2, CONFIG) == 4 and fit_meter(6, CONFIG) == 3 and fit_meter(8, CONFIG) == 4
