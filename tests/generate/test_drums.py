"""Drums: a groove measured on real renders (a chorale with and without a kit), and played back from one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from music21 import corpus

from generate.arrange import PALETTES, arrange, write_midi
from generate.audio import finish_track
from generate.drums import CLOSED_HAT, CRASH, KICK, SNARE, drum_hits, pattern
from generate.form import Form, Section
from generate.synth import render_wav
from train.scores import score_tokens
from train.tokens import TokenizerConfig, decode
from transcribe.basic_pitch import Transcriber
from transcribe.groove import Groove, style_groove

CONFIG = TokenizerConfig()
BPM = 88.0
BACKBEAT = {  # a rock groove as the measurement reports one: relative strength by sixteenth
    "kick": [2.5, 0, 0, 0, 0.5, 0, 0, 0, 2.5, 0, 0, 0, 0.5, 0, 0, 0],
    "snare": [0.3, 0, 0, 0, 3.0, 0, 0, 0, 0.3, 0, 0, 0, 3.0, 0, 0, 0],
    "hats": [2.0, 0, 2.0, 0, 2.0, 0, 2.0, 0, 2.0, 0, 2.0, 0, 2.0, 0, 2.0, 0],
}


def _groove(bands: dict[str, list[float]], flatness: float = 0.4, meter: int = 4) -> Groove:
    return Groove(meter=meter, bands=bands, percussive_share=0.5, flatness=flatness, bars=8)


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A chorale on the piano, without drums and with drums played from the backbeat groove."""
    folder = tmp_path_factory.mktemp("drums")
    piece = decode(score_tokens(corpus.parse("bach/bwv10.7"), CONFIG)[0], CONFIG)
    bars = piece.bars(CONFIG)
    form = Form(bars, (Section("A", 0, bars - 4), Section("B", bars - 4, 4)))
    hits = drum_hits(_groove(BACKBEAT).to_dict(), form, bar_steps=16, steps_per_beat=4)
    out = {}
    for name, drums in (("plain", []), ("drums", hits)):
        arrangement = arrange(piece, bpm=BPM, palette=PALETTES[0], config=CONFIG, bars=bars, drums=drums)
        midi = write_midi(arrangement, folder / f"{name}.mid")
        wav = render_wav(midi, folder / f"{name}.wav")
        finish_track(wav, folder / f"{name}.mp3", seconds=arrangement.seconds)
        out[name] = folder / f"{name}.mp3"
        out[f"{name}-midi"] = midi
    return out


def test_drums_are_written_on_channel_10_beside_the_pitched_parts(renders: dict[str, Path]) -> None:
    midi = pretty_midi.PrettyMIDI(str(renders["drums-midi"]))
    drums = [i for i in midi.instruments if i.is_drum]
    assert len(drums) == 1 and {n.pitch for n in drums[0].notes} == {KICK, SNARE, CLOSED_HAT, CRASH}
    plain = pretty_midi.PrettyMIDI(str(renders["plain-midi"]))
    pitched = [sorted((round(n.start, 3), n.pitch) for n in i.notes) for i in midi.instruments if not i.is_drum]
    assert pitched == [sorted((round(n.start, 3), n.pitch) for n in i.notes) for i in plain.instruments]
    beat = 60.0 / BPM
    snares = sorted(n.start for n in drums[0].notes if n.pitch == SNARE)
    assert snares[0] == pytest.approx(beat, abs=0.01)  # the backbeat: beat 2 of the first bar


def test_the_groove_measured_on_a_render_finds_the_kit_and_its_backbeat(renders: dict[str, Path]) -> None:
    transcriber = Transcriber()
    plain = transcriber.transcribe(renders["plain"]).groove
    drums = transcriber.transcribe(renders["drums"]).groove
    assert plain is not None and drums is not None
    assert not plain.has_percussion and drums.has_percussion, (plain.flatness, drums.flatness)
    assert drums.meter == 4
    snare, hats = np.array(drums.bands["snare"]), np.array(drums.bands["hats"])
    assert min(snare[4], snare[12]) > 2 * max(snare[[2, 6, 10, 14]])  # beats 2 and 4 over the off-beat eighths
    assert hats[::2].mean() > 3 * hats[1::2].mean()  # eighths, not sixteenths


def test_a_style_has_drums_only_when_most_of_its_pieces_do() -> None:
    drummed, quiet = _groove(BACKBEAT), _groove(BACKBEAT, flatness=0.05)
    assert style_groove([drummed, drummed, quiet]) is not None
    assert style_groove([drummed, quiet]) is None and style_groove([]) is None
    waltz = _groove({k: v[:12] for k, v in BACKBEAT.items()}, meter=3)
    mixed = style_groove([drummed, drummed, waltz])
    assert mixed is not None and mixed.meter == 4 and mixed.bands == drummed.bands


def test_the_drum_part_plays_the_groove_fills_before_each_section_and_stops_on_the_last_chord() -> None:
    assert sorted(pattern(_groove(BACKBEAT).to_dict())) == [0, 2, 4, 6, 8, 10, 12, 14]
    form = Form(4, (Section("A", 0, 4), Section("B", 4, 4), Section("A", 8, 4)))
    hits = drum_hits(_groove(BACKBEAT).to_dict(), form, bar_steps=16, steps_per_beat=4)
    by_bar: dict[int, list[tuple[int, int]]] = {}
    for hit in hits:
        by_bar.setdefault(hit.step // 16, []).append((hit.step % 16, hit.key))
    assert sorted(p for p, k in by_bar[0] if k == SNARE) == sorted(p for p, k in by_bar[1] if k == SNARE) == [4, 12]
    assert sorted(p for p, k in by_bar[3] if k == SNARE) == [4, 12, 13, 14, 15]  # the fill before B
    assert (0, CRASH) in by_bar[4] and (0, CRASH) in by_bar[8] and (0, CRASH) not in by_bar[2]
    assert sorted(by_bar[11]) == [(0, KICK), (0, CRASH)]  # the ending
    assert drum_hits(_groove({k: v[:12] for k, v in BACKBEAT.items()}, meter=3).to_dict(), form, bar_steps=16,
                     steps_per_beat=4) == []  # fmt: skip  # a waltz's groove does not fit a bar of four
