from __future__ import annotations

from sample.corpus import RenderedPiece
from train.tokens import (
    Slice,
    key_shift,
    merge_jitter,
    slice_tokens,
    slices_from_midi,
    split_steps,
    token_slices,
    transpose_token,
)
from train.vocab import UNK, Vocabulary


def test_a_piece_round_trips_through_tokens_on_the_grid(pieces: list[RenderedPiece]) -> None:
    slices = slices_from_midi(pieces[0].midi_path)
    tokens = slice_tokens(slices)
    assert len(tokens) > 50
    back = token_slices(tokens)
    assert slice_tokens(back) == tokens
    assert sum(s.steps for s in back) == sum(s.steps for s in slices)
    assert any(len(s.pitches) >= 3 for s in back)  # chords survive


def test_long_slices_split_into_allowed_lengths() -> None:
    assert split_steps(5) == [4, 1]
    assert split_steps(20) == [16, 4]
    assert slice_tokens([Slice((60, 64), 20), Slice((), 2)]) == ["60.64_16", "60.64_4", "R_2"]


def test_jittered_chord_onsets_merge() -> None:
    assert merge_jitter([Slice((64,), 1), Slice((60, 64, 67), 4)]) == [Slice((60, 64, 67), 5)]
    assert merge_jitter([Slice((60, 64), 4), Slice((62,), 1)]) == [Slice((60, 64), 4), Slice((62,), 1)]


def test_keys_move_to_c_major_or_a_minor() -> None:
    assert key_shift("G major") == 5
    assert key_shift("E minor") == 5
    assert key_shift("B- major") == 2
    assert key_shift("A minor") == 0
    assert transpose_token("55.59.62_4", 5) == "60.64.67_4"
    assert transpose_token("R_4", 5) == "R_4"


def test_rare_tokens_map_to_a_near_frequent_token() -> None:
    vocab = Vocabulary.build([["60.64.67_4", "60.67_4", "67_4", "R_2"]] * 2, min_count=2)
    assert vocab.decode([vocab.map_token("60.64.67_4")]) == ["60.64.67_4"]
    assert vocab.decode([vocab.map_token("60.62.64.67_4")]) == ["60.64.67_4"]  # an inner voice dropped
    assert vocab.decode([vocab.map_token("67_3")]) == ["67_4"]  # nearest length
    assert vocab.decode([vocab.map_token("<junk>")]) == [UNK]
    # No stand-in by dropping voices: the nearest chord by bass, top, voices, pitch classes and length.
    assert vocab.decode([vocab.map_token("59.62.65_4")]) == ["60.64.67_4"]
    assert vocab.decode([vocab.map_token("R_16")]) == ["R_2"]  # a rest stays a rest
