from __future__ import annotations

import json
import subprocess
from pathlib import Path

from generate.arrange import PALETTES, arrange, write_midi
from generate.audio import wav_to_mp3
from generate.guards import GuardSettings, check_track
from generate.originality import CopyIndex
from generate.synth import render_wav
from train.tokens import Slice, slice_tokens, token_slices, transpose_token

SCALE = [f"{p}_2" for p in (60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62)]


def test_copies_are_found_in_any_key() -> None:
    index = CopyIndex([SCALE * 2, ["48.52.55_4", "R_2", "50.53.57_4"]])
    assert index.longest_copy(SCALE[2:12]) == 10
    assert index.longest_copy([transpose_token(t, 3) for t in SCALE[:13]]) == 13
    assert index.longest_copy(["40.44.47_4", "R_2", "42.45.49_4"]) == 3
    assert index.longest_copy(["60_1", "61_1", "62_5"]) <= 1


def test_guards_reject_copies_and_hammering() -> None:
    index = CopyIndex([SCALE * 3])
    settings = GuardSettings()
    assert check_track(token_slices(SCALE * 2), index, settings).reason == "copied"
    assert check_track([Slice((60,), 2)] * 100, index, settings).reason == "repetitive"
    varied = [Slice((48 + (i * 7) % 24, 60 + (i * 5) % 12), 1 + i % 3) for i in range(60)]
    report = check_track(varied, index, settings)
    assert report.reason is None and report.longest_copy < settings.max_copy


def test_a_track_renders_to_a_tagged_44k_192k_mp3(tmp_path: Path) -> None:
    slices = token_slices(slice_tokens([Slice((48, 55, 64, 72), 4), Slice((50, 57, 65, 74), 4), Slice((), 2)] * 8))
    arrangement = arrange(slices, bpm=100, shift=2, palette=PALETTES[2])
    assert {n.pitch for n in arrangement.notes} >= {74, 76}  # moved up a tone
    assert any(n.pitch < 52 for n in arrangement.notes)  # a bass line
    midi = write_midi(arrangement, tmp_path / "t.mid")
    wav = render_wav(midi, tmp_path / "t.wav")
    seconds = wav_to_mp3(wav, tmp_path / "t.mp3", tags={"title": "Test", "artist": "tunesmith", "album": "b1"})
    assert abs(seconds - arrangement.seconds) < 3.0  # no minute of silence after the last note
    entries = "stream=sample_rate,bit_rate:format_tags"
    command = ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(tmp_path / "t.mp3")]
    probe = subprocess.run(command, capture_output=True, text=True, check=True)
    info = json.loads(probe.stdout)
    assert info["streams"][0]["sample_rate"] == "44100"
    assert int(info["streams"][0]["bit_rate"]) == 192000
    assert info["format"]["tags"]["artist"] == "tunesmith"
