from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

from music21 import corpus

from generate.arrange import PALETTES, arrange, write_midi
from generate.audio import finish_track
from generate.guards import GuardSettings, check_track
from generate.synth import render_wav
from train.originality import CopyIndex, invariant_symbols
from train.scores import score_tokens
from train.tokens import GridNote, GridPiece, TokenizerConfig, decode, encode, transpose

CONFIG = TokenizerConfig()


def _chorale(name: str) -> list[str]:
    return score_tokens(corpus.parse(name), CONFIG)[0]


def _cut(piece: GridPiece, start: int, stop: int) -> GridPiece:
    """The notes starting in steps [start, stop), moved to start at step 0 (a copy off its bar lines)."""
    return GridPiece(piece.meter, tuple(GridNote(n.step - start, n.pitch, n.steps) for n in piece.notes
                                        if start <= n.step < stop))  # fmt: skip


def test_copies_are_found_in_any_key_and_off_the_bar_lines() -> None:
    training = [_chorale("bach/bwv10.7"), _chorale("bach/bwv101.7")]
    index = CopyIndex.build(training, CONFIG)
    source = decode(training[1], CONFIG)
    onsets = sorted({n.step for n in source.notes})
    excerpt = _cut(source, onsets[5], onsets[25])  # 20 onsets, starting mid-bar
    assert index.longest_copy(excerpt) == 20
    moved = decode(transpose(encode(excerpt, CONFIG), 5), CONFIG)
    assert index.longest_copy(moved) == 20
    other = decode(_chorale("bach/bwv102.7"), CONFIG)
    assert index.longest_copy(other) < 8  # another chorale shares only short turns of phrase


def _longest_by_hand(piece: GridPiece, training: list[GridPiece]) -> int:
    """Every start in the piece against every start in every training piece: the longest run, in onsets."""
    track = invariant_symbols(piece)
    best = 0
    for other in training:
        theirs = invariant_symbols(other)
        for i in range(0, len(track), 2):  # runs start at an onset's shape
            for j in range(len(theirs)):
                run = 0
                while i + run < len(track) and j + run < len(theirs) and track[i + run] == theirs[j + run]:
                    run += 1
                best = max(best, (run + 1) // 2)
    return best


def test_the_saved_index_finds_what_a_search_by_hand_finds(tmp_path: Path) -> None:
    """The suffix-array index, saved and memory-mapped back, against an exhaustive search on real chorales."""
    training = [_chorale("bach/bwv10.7"), _chorale("bach/bwv101.7")]
    decoded = [decode(t, CONFIG) for t in training]
    CopyIndex.build(training, CONFIG).save(tmp_path)
    index = CopyIndex.load(tmp_path, CONFIG)
    assert index is not None and index.pieces == 2
    assert CopyIndex.load(tmp_path, TokenizerConfig(steps_per_beat=2)) is None  # another tokenizer's pieces
    source, other = decoded[1], decode(_chorale("bach/bwv102.7"), CONFIG)
    onsets = sorted({n.step for n in source.notes})
    rng = random.Random(7)
    for _ in range(6):
        start = rng.randrange(len(onsets) - 12)
        excerpt = _cut(source, onsets[start], onsets[start + rng.randrange(2, 12)])
        mixed = GridPiece(4, excerpt.notes + tuple(GridNote(n.step + 400, n.pitch, n.steps) for n in other.notes))
        for piece in (excerpt, mixed):
            assert index.longest_copy(piece) == _longest_by_hand(piece, decoded) >= 2
    assert index.longest_copy(other) == _longest_by_hand(other, decoded)
    assert index.longest_copy(GridPiece(4, ())) == 0


def test_guards_reject_copies_and_hammering() -> None:
    training = [_chorale("bach/bwv10.7")]
    index = CopyIndex.build(training, CONFIG)
    settings = GuardSettings()
    assert check_track(decode(training[0], CONFIG), index, settings).reason == "copied"
    hammered = GridPiece(4, tuple(GridNote(2 * i, 60, 2) for i in range(200)))
    assert check_track(hammered, index, settings).reason == "repetitive"
    varied = GridPiece(4, tuple(GridNote(3 * i, 48 + (i * 7) % 24, 1 + i % 3) for i in range(80)))
    report = check_track(varied, index, settings)
    assert report.reason is None and report.longest_copy < settings.max_copy


def test_a_track_renders_to_a_tagged_44k_320k_mp3_of_its_bars(tmp_path: Path) -> None:
    chord = [(0, 72, 4), (0, 64, 4), (0, 55, 4), (0, 36, 4), (4, 74, 4), (4, 65, 4), (4, 50, 4), (8, 76, 8)]
    piece = GridPiece(4, tuple(GridNote(bar * 16 + s, p, d) for bar in range(8) for s, p, d in chord))
    arrangement = arrange(piece, bpm=100, palette=PALETTES[2], config=CONFIG)
    assert abs(arrangement.seconds - 8 * 4 * 60 / 100) < 1e-6
    assert sorted((n.start, n.pitch) for n in arrangement.notes) == sorted(
        (n.step * 0.15, n.pitch) for n in piece.notes
    )  # the notes as sampled: 100 bpm is 0.15 s a step
    midi = write_midi(arrangement, tmp_path / "t.mid")
    wav = render_wav(midi, tmp_path / "t.wav")
    tags = {"title": "Test", "artist": "tunesmith", "album": "b1"}
    seconds = finish_track(wav, tmp_path / "t.mp3", seconds=arrangement.seconds, fade_seconds=1.0, tags=tags)
    assert abs(seconds - arrangement.seconds) < 0.01  # exactly its bars: no silence after the last note
    entries = "stream=sample_rate,bit_rate:format_tags"
    command = ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(tmp_path / "t.mp3")]
    probe = subprocess.run(command, capture_output=True, text=True, check=True)
    info = json.loads(probe.stdout)
    assert info["streams"][0]["sample_rate"] == "44100"
    assert int(info["streams"][0]["bit_rate"]) == 320000
    assert info["format"]["tags"]["artist"] == "tunesmith"


def test_every_sound_a_style_can_have_gets_palettes_of_its_character() -> None:
    from generate.arrange import PALETTES, StyleSound, palettes_for

    assert palettes_for(None) == list(PALETTES)
    for centroid in (1200.0, 2400.0):
        for share in (0.05, 0.5):
            sound = StyleSound(centroid=centroid, percussive_share=share)
            chosen = palettes_for(sound)
            assert len(chosen) >= 2, sound
            assert all(p.bright == (centroid > 1800) and p.sustained == (share < 0.15) for p in chosen)


def test_batch_settings_refuse_what_cannot_make_a_batch() -> None:
    import pytest

    from generate.batch import GenerateSettings

    for wrong in ({"count": 0}, {"minutes": 0}, {"temperature": 0}, {"top_p": 1.5}, {"max_rounds": 0}):
        with pytest.raises(ValueError):
            GenerateSettings(**wrong)  # type: ignore[arg-type]
    assert GenerateSettings(minutes=2, loop=True).loop
