"""Stems benchmark: how near the stems' sum lies to the mix, as WAV and as decoded MP3, and what stems cost.

Corpus chorales arranged on every palette with a backbeat drum kit, rendered with FluidSynth as a
batch renders them (``generate.render``: each part alone from the track's own MIDI file, finished with
the mix's cut, fade and gain). For each bitrate it prints, per palette, the residual of the stems'
sum against the mix in dB under the mix (WAV, then decoded MP3), the mix MP3's own coding residual
against its WAV, and the time to finish the mix alone against the mix with its stems.

Run: ``.venv/bin/python bench/stems.py [--pieces 3] [--bitrates 192k 320k]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from music21 import corpus  # noqa: E402

from generate.arrange import PALETTES, arrange, stem_midis, write_midi  # noqa: E402
from generate.audio import Stem, decoded_mono, finish_track  # noqa: E402
from generate.drums import drum_hits  # noqa: E402
from generate.form import Form, Section  # noqa: E402
from generate.synth import render_wav  # noqa: E402
from sample.corpus import chorale_names  # noqa: E402
from train.scores import score_tokens  # noqa: E402
from train.tokens import TokenizerConfig, decode  # noqa: E402

CONFIG = TokenizerConfig()
BACKBEAT = {"kick": [2.5, 0, 0, 0, 0.5, 0, 0, 0] * 2, "snare": [0.3, 0, 0, 0, 3.0, 0, 0, 0] * 2,
            "hats": [2.0, 0] * 8}  # fmt: skip


def residual_db(parts: list[Path], mix: Path) -> float:
    reference, _ = decoded_mono(mix)
    total = sum((decoded_mono(p)[0] for p in parts), np.zeros_like(reference))
    return float(20 * np.log10(np.sqrt(np.mean((total - reference) ** 2)) / np.sqrt(np.mean(reference**2))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=3)
    parser.add_argument("--bitrates", nargs="+", default=["192k", "320k"])
    args = parser.parse_args()
    groove = {"meter": 4, "bands": BACKBEAT, "percussive_share": 0.5, "flatness": 0.4, "bars": 8}
    rows: dict[tuple[str, str], list[tuple[float, float, float, float, float]]] = {}
    for name in chorale_names(args.pieces):
        piece = decode(score_tokens(corpus.parse(name), CONFIG)[0], CONFIG)
        bars = piece.bars(CONFIG)
        form = Form(bars, (Section("A", 0, bars - 2), Section("B", bars - 2, 2)))
        hits = drum_hits(groove, form, bar_steps=16, steps_per_beat=4)
        for palette in PALETTES:
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                arrangement = arrange(piece, bpm=96.0, palette=palette, config=CONFIG, bars=bars, drums=hits)
                midi = write_midi(arrangement, folder / "t.mid")
                seconds = arrangement.seconds + 1.0
                for bitrate in args.bitrates:
                    began = time.perf_counter()
                    finish_track(render_wav(midi, folder / ".mix.wav"), folder / "alone.mp3", bitrate=bitrate,
                                 seconds=seconds, fade_seconds=3.0)  # fmt: skip
                    alone = time.perf_counter() - began
                    began = time.perf_counter()
                    parts = stem_midis(midi, folder, ".s")
                    stems = [Stem(render_wav(path, folder / f".{part}.wav"), folder / f"{part}.mp3",
                                  folder / f"{part}.wav") for part, path in parts.items()]  # fmt: skip
                    finish_track(render_wav(midi, folder / ".mix.wav"), folder / "mix.mp3", bitrate=bitrate,
                                 wav_out=folder / "mix.wav", stems=stems, seconds=seconds,
                                 fade_seconds=3.0)  # fmt: skip
                    both = time.perf_counter() - began
                    wav = residual_db([s.wav for s in stems if s.wav], folder / "mix.wav")
                    mp3 = residual_db([s.mp3 for s in stems], folder / "mix.mp3")
                    coding = residual_db([folder / "mix.mp3"], folder / "mix.wav")
                    rows.setdefault((bitrate, palette.name), []).append((wav, mp3, coding, alone, both))
    print(f"{args.pieces} chorales x {len(PALETTES)} palettes, with drums; dB under the mix (worst of the pieces)")
    print(f"{'bitrate':>7}  {'palette':<16} {'WAV sum':>8} {'MP3 sum':>8} {'MP3 own':>8} {'time x':>7}")
    for (bitrate, named), found in rows.items():
        wav, mp3, coding = (max(f[i] for f in found) for i in range(3))
        ratio = statistics.median(f[4] / f[3] for f in found)
        print(f"{bitrate:>7}  {named:<16} {wav:8.1f} {mp3:8.1f} {coding:8.1f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
