"""Tokens stored per transcription: computed once per tokenizer, read back after, re-derived when the piece changes."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from train.token_store import TokenStore
from train.tokens import TokenizeError, TokenizerConfig
from train.training import piece_tokens

CONFIG = TokenizerConfig()


class Counting:
    """``piece_tokens`` for one MIDI file, counting how often it really runs."""

    def __init__(self, midi: Path, config: TokenizerConfig = CONFIG) -> None:
        self.midi, self.config, self.calls = midi, config, 0

    def __call__(self) -> list[str]:
        self.calls += 1
        return piece_tokens(self.midi, None, self.config)


def test_a_pieces_tokens_are_computed_once_and_read_back_after(tmp_path: Path, chorale_midis: list[Path]) -> None:
    midi = tmp_path / "7.mid"
    shutil.copy(chorale_midis[0], midi)
    store, compute = TokenStore(tmp_path / "tokens", CONFIG), Counting(midi)
    first = store.tokens(7, midi, None, compute)
    assert first == piece_tokens(chorale_midis[0], None, CONFIG) and compute.calls == 1
    again = TokenStore(tmp_path / "tokens", CONFIG)  # a later training run
    assert again.tokens(7, midi, None, compute) == first and compute.calls == 1 and again.computed == 0
    assert len(list(store.folder.glob("7-*.tokens.gz"))) == 1

    # Re-transcribed (new notes in the same file): read afresh, the stale tokens gone.
    shutil.copy(chorale_midis[1], midi)
    assert again.tokens(7, midi, None, compute) == piece_tokens(chorale_midis[1], None, CONFIG)
    assert compute.calls == 2 and len(list(store.folder.glob("7-*.tokens.gz"))) == 1
    # The same notes on another beat grid are another transcription too.
    again.tokens(7, midi, {"tempo": 60.0, "beats": [0.0, 1.0, 2.0, 3.0]}, compute)
    assert compute.calls == 3 and len(list(store.folder.glob("7-*.tokens.gz"))) == 1
    # Another tokenizer keeps its own, beside the first's.
    other = TokenizerConfig(steps_per_beat=2)
    coarse = TokenStore(tmp_path / "tokens", other)
    assert coarse.folder != store.folder
    assert coarse.tokens(7, midi, None, Counting(midi, other)) == piece_tokens(midi, None, other)


def test_a_piece_that_cannot_be_tokenised_is_remembered_with_its_reason(
    tmp_path: Path, chorale_midis: list[Path]
) -> None:
    store, calls = TokenStore(tmp_path, CONFIG), []

    def hopeless() -> list[str]:
        calls.append(1)
        raise TokenizeError("no notes in the tokenizer's pitch range")

    for _ in range(2):
        with pytest.raises(TokenizeError, match="pitch range"):
            store.tokens(3, chorale_midis[0], None, hopeless)
    assert len(calls) == 1
    with pytest.raises(OSError):
        store.tokens(4, tmp_path / "gone.mid", None, hopeless)


def test_a_damaged_stored_file_is_computed_again(tmp_path: Path, chorale_midis: list[Path]) -> None:
    store, compute = TokenStore(tmp_path, CONFIG), Counting(chorale_midis[2])
    tokens = store.tokens(5, chorale_midis[2], None, compute)
    (stored,) = store.folder.glob("5-*.tokens.gz")
    stored.write_bytes(gzip.compress(b"Bar Pitch_60")[:10])  # cut off mid-write by a full disk, say
    assert store.tokens(5, chorale_midis[2], None, compute) == tokens and compute.calls == 2


def test_a_stored_handle_reads_the_tokens_each_time_and_holds_none(tmp_path: Path, chorale_midis: list[Path]) -> None:
    midi = tmp_path / "8.mid"
    shutil.copy(chorale_midis[0], midi)
    store, compute = TokenStore(tmp_path / "tokens", CONFIG), Counting(midi)
    handle = store.stored(8, midi, None, compute)
    expected = piece_tokens(chorale_midis[0], None, CONFIG)
    assert list(handle) == expected and handle[:2] == expected[:2] and len(handle) == len(expected)
    assert vars(handle) == {"path": handle.path} and compute.calls == 1  # a path, not the tokens
    assert store.stored(8, midi, None, compute) == handle and compute.calls == 1
    shutil.copy(chorale_midis[1], midi)  # re-transcribed while a training run holds the old handle
    store.stored(8, midi, None, compute)
    with pytest.raises(OSError, match="stored tokens"):
        list(handle)
