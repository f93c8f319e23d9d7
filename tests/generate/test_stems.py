"""Stems: each part rendered alone by FluidSynth and finished as the mix is; summed, they are the mix."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
from music21 import corpus

from generate.arrange import PALETTES, arrange, played_twice, stem_midis, write_midi
from generate.audio import Stem, decoded_mono, finish_track, seam
from generate.drums import drum_hits
from generate.form import Form, Section
from generate.synth import render_wav
from tests.generate.test_drums import BACKBEAT, _groove
from train.scores import score_tokens
from train.tokens import TokenizerConfig, decode

CONFIG = TokenizerConfig()
BPM = 92.0
FELT_PIANO = next(p for p in PALETTES if p.name == "felt piano")  # every part on one instrument


def _residual_db(stems: list[Path], mix: Path) -> float:
    """How far the stems' sum lies from the mix, in dB under the mix (decoded, mono)."""
    reference, _ = decoded_mono(mix)
    total = np.zeros_like(reference)
    for path in stems:
        part, _ = decoded_mono(path)
        assert len(part) == len(reference), path  # every stem as long as the mix, to the sample
        total += part
    return float(20 * np.log10(np.sqrt(np.mean((total - reference) ** 2)) / np.sqrt(np.mean(reference**2))))


def _finish(midi: Path, folder: Path, **cut: float) -> tuple[Path, Path, list[Path], list[Path]]:
    """Render ``midi`` and its stems as a batch does; (mix MP3, mix WAV, stem MP3s, stem WAVs)."""
    parts = stem_midis(midi, folder, ".t")
    stems = [Stem(render_wav(path, folder / f".{name}.wav"), folder / f"{name}.mp3", folder / f"{name}.wav")
             for name, path in parts.items()]  # fmt: skip
    rendered = render_wav(midi, folder / ".mix.wav")
    finish_track(rendered, folder / "mix.mp3", wav_out=folder / "mix.wav", stems=stems, **cut)  # type: ignore[arg-type]
    return folder / "mix.mp3", folder / "mix.wav", [s.mp3 for s in stems], [s.wav for s in stems if s.wav]


@pytest.fixture(scope="module")
def chorale() -> tuple:
    piece = decode(score_tokens(corpus.parse("bach/bwv10.7"), CONFIG)[0], CONFIG)
    bars = piece.bars(CONFIG)
    form = Form(bars, (Section("A", 0, bars - 4), Section("B", bars - 4, 4)))
    return piece, bars, drum_hits(_groove(BACKBEAT).to_dict(), form, bar_steps=16, steps_per_beat=4)


def test_each_part_gets_its_own_track_and_channel_so_it_can_sound_alone(chorale: tuple, tmp_path: Path) -> None:
    piece, bars, hits = chorale
    midi = write_midi(arrange(piece, bpm=BPM, palette=FELT_PIANO, config=CONFIG, bars=bars, drums=hits),
                      tmp_path / "t.mid")  # fmt: skip
    tracks = mido.MidiFile(str(midi)).tracks[1:]
    channels = [{m.channel for m in t if hasattr(m, "channel")} for t in tracks]
    assert [t.name for t in tracks] == ["melody", "chords", "bass", "drums"]
    assert channels == [{0}, {1}, {2}, {9}]  # music21 put all three piano parts on channel 0
    parts = stem_midis(midi, tmp_path, "t")
    assert list(parts) == ["melody", "chords", "bass", "drums"]
    whole = mido.MidiFile(str(midi))
    for name, path in parts.items():  # the conductor track (tempo, meter) and the one part, on the same clock
        alone = mido.MidiFile(str(path))
        assert [t.name for t in alone.tracks[1:]] == [name] and alone.ticks_per_beat == whole.ticks_per_beat
        assert alone.tracks[0] == whole.tracks[0]


def test_a_track_s_stems_sum_to_its_mix_as_wav_and_as_decoded_mp3(chorale: tuple, tmp_path: Path) -> None:
    piece, bars, hits = chorale
    arrangement = arrange(piece, bpm=BPM, palette=FELT_PIANO, config=CONFIG, bars=bars, drums=hits)
    midi = write_midi(arrangement, tmp_path / "t.mid")
    mp3, wav, stem_mp3s, stem_wavs = _finish(midi, tmp_path, seconds=arrangement.seconds + 1.0, fade_seconds=3.0)
    assert len(stem_mp3s) == 4
    assert _residual_db(stem_wavs, wav) < -40
    assert _residual_db(stem_mp3s, mp3) < -20


def test_a_loop_s_stems_loop_as_its_mix_does(chorale: tuple, tmp_path: Path) -> None:
    piece, bars, _ = chorale
    bars = min(bars, 8)
    seconds = bars * 4 * 60 / BPM
    strings = next(p for p in PALETTES if p.name == "strings")  # rings on over the seam
    twice = arrange(played_twice(piece, CONFIG, bars=bars), bpm=BPM, palette=strings, config=CONFIG, bars=2 * bars)
    mp3, wav, stem_mp3s, stem_wavs = _finish(write_midi(twice, tmp_path / "twice.mid"), tmp_path, seconds=seconds,
                                             loop_from=seconds)  # fmt: skip
    assert len(stem_mp3s) == 3
    assert _residual_db(stem_wavs, wav) < -40
    assert _residual_db(stem_mp3s, mp3) < -20
    for path in [wav, *stem_wavs]:  # each, repeated, meets itself where the mix does
        samples, rate = decoded_mono(path)
        joint = seam(samples, rate, bar_seconds=4 * 60 / BPM)
        assert len(samples) == round(seconds * rate) and joint.click_ratio <= 1.0 and joint.gap_seconds == 0, path
