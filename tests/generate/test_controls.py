"""A creator's controls on the shipped base model's own samples: tempo, key and meter honoured exactly, energy
heard in the notes, the drums and the loudness, and what cannot be asked refused in one line."""

from __future__ import annotations

import random
from pathlib import Path

import mido
import pytest
from pydub import AudioSegment

from generate.controls import LEVELS, Controls, palette_named, parse_key, to_key
from generate.draft import Draft, plan_draft, sample_material, styles_to_draw
from generate.drums import CLOSED_HAT, KICK, SNARE, driving, drum_hits
from generate.finish import Finished, Finishing, finish
from generate.form import Form, Section
from generate.guards import GuardSettings
from generate.render import render_track
from train.model import SavedModel
from train.originality import CopyIndex
from train.sampler import TOP_P
from train.style import PieceMeasures, StyleRecord
from train.tokens import GridNote, GridPiece, TokenizerConfig, key_of

BASE = Path(__file__).resolve().parents[2] / "train" / "base_model"


@pytest.mark.parametrize(
    ("text", "key"),
    [("C", 0), ("D minor", 14), ("d minor", 14), ("Dm", 14), ("F# major", 6), ("Gb", 6), ("Bbm", 22), ("A#min", 22),
     ("Eb major", 3), ("D#", 3), ("b minor", 23), ("Cb", 11)],
)  # fmt: skip
def test_keys_are_read_as_people_write_them(text: str, key: int) -> None:
    assert parse_key(text) == key


def test_what_cannot_be_asked_is_one_line_naming_what_can() -> None:
    with pytest.raises(ValueError, match=r"no key 'H minor': a key is a tonic \(C, C#/Db.*'D minor'"):
        parse_key("H minor")
    with pytest.raises(ValueError, match="no palette 'kazoo': the palettes are 'piano trio', 'strings'"):
        palette_named("kazoo")
    for asked, message in [
        ({"meter": 5}, "no meter 5: the meters are 3/4 and 4/4"),
        ({"energy": "loud"}, "no energy 'loud': the energies are low, medium, high"),
        ({"tempo": 400.0}, "a tempo is 30 to 240 beats a minute, not 400"),
        ({"key": "X"}, "no key 'X'"),
    ]:
        with pytest.raises(ValueError, match=message):
            Controls(**asked)  # type: ignore[arg-type]
    assert palette_named("Strings").name == "strings"


def test_a_piece_is_moved_to_the_asked_key_by_at_most_a_tritone() -> None:
    config = TokenizerConfig()
    scale = (0, 2, 3, 5, 7, 8, 11, 12)  # A harmonic minor, over and over, on a tonic-heavy bass
    notes = [GridNote(4 * i, 57 + scale[i % 8], 4) for i in range(32)] + [GridNote(16 * b, 45, 16) for b in range(8)]
    piece = GridPiece(4, tuple(sorted(notes)))
    assert key_of(piece) == 21  # A minor
    for asked in (14, 18, 9, 5):  # D minor; F# minor; A major, F major (other modes: by their relative keys)
        moved = to_key(piece, asked, config)
        shift = moved.notes[0].pitch - piece.notes[0].pitch
        assert -6 <= shift <= 5 and all(
            b.pitch - a.pitch == shift for a, b in zip(piece.notes, moved.notes, strict=True)
        )
        assert key_of(moved) in (asked, (asked + 9) % 12 + 12 if asked < 12 else asked)
    assert to_key(piece, 21, config) == piece


def test_what_a_style_never_does_is_said_and_done_anyway() -> None:
    major_fours = StyleRecord("hymns", count=2, pieces=(PieceMeasures(("Meter_4", "Key_2"), (50, 80), 90, 0.3, ()),))
    notes = Controls(meter=3, key="E minor").unusual(major_fours)
    assert notes == [
        "style 'hymns' has no piece in 3/4; its tracks are sampled in it anyway",
        "style 'hymns' has no piece in a minor key; its tracks are put in E minor anyway",
    ]
    assert Controls(meter=4, key="A major").unusual(major_fours) == []
    assert Controls(meter=3).head(["Meter_4", "Key_2"]) == ["Meter_3", "Key_2"]
    assert Controls(key="E minor").head(["Meter_4", "Key_2"]) == ["Meter_4", "Key_16"]


def test_energy_drives_the_drums_even_of_a_style_without_them() -> None:
    form = Form(4, (Section("A", 0, 4),), loop=True)
    assert drum_hits(None, form, bar_steps=16, steps_per_beat=4) == []
    assert drum_hits(None, form, bar_steps=16, steps_per_beat=4, feel="none") == []
    kit = drum_hits(None, form, bar_steps=16, steps_per_beat=4, feel="driving")
    first = {(h.step, h.key) for h in kit if h.step < 16}
    assert {(0, KICK), (8, KICK), (4, SNARE), (12, SNARE)} <= first
    assert {s for s, k in first if k == CLOSED_HAT} == set(range(0, 16, 2))  # every eighth
    waltz = driving({}, bar_steps=12, steps_per_beat=4)
    assert [k for k, _ in waltz[0]][:1] == [KICK] and waltz[4][0][0] == SNARE and waltz[8][0][0] == SNARE


@pytest.fixture(scope="module")
def base() -> SavedModel:
    return SavedModel.load(BASE)


def _drafts(saved: SavedModel, controls: Controls, count: int, seed: int = 3) -> list[Draft]:
    rng = random.Random(seed)
    drafts = [
        plan_draft(styles_to_draw(saved, None), minutes=0.4, loop=False, rng=rng, controls=controls)
        for _ in range(count)
    ]
    sample_material(saved, drafts, [], temperature=1.0, top_p=TOP_P, rng=rng, loop=False, onsets=controls.level.onsets)
    return [d for d in drafts if d.form is not None]


def _finished(saved: SavedModel, draft: Draft, controls: Controls) -> Finished:
    return finish(draft, saved, CopyIndex.build([], saved.tokenizer), GuardSettings(), Finishing(),
                  key=controls.key_number)  # fmt: skip


def test_tempo_key_and_meter_are_honoured_exactly(base: SavedModel, tmp_path: Path) -> None:
    asked = Controls(tempo=100, key="D minor", meter=3, energy="high", instruments="strings")
    drafts = _drafts(base, asked, 4)
    assert drafts, "the base model wrote no draft long enough"
    for number, draft in enumerate(drafts, start=1):
        assert draft.bpm == 100 and draft.head[:2] == ["Meter_3", "Key_14"]
        finished = _finished(base, draft, asked)
        assert finished.key == 14 and finished.piece.meter == 3
        last = max(n.step for n in finished.piece.notes)
        classes = {n.pitch % 12 for n in finished.piece.notes if n.step == last}
        assert 2 in classes and 5 in classes and 6 not in classes  # it ends on D minor's tonic chord
        entry = render_track(tmp_path, number, finished, base, rng=random.Random(1), model_id=1, stamp="t",
                             stems=False, controls=asked)  # fmt: skip
        assert (entry["tempo"], entry["key"], entry["meter"], entry["energy"]) == (100.0, "D minor", 3, "high")
        assert entry["instruments"]["name"] == "strings" and entry["instruments_why"] == "asked for"
        midi = mido.MidiFile(str(tmp_path / entry["midi"]))
        meta = [m for m in midi.tracks[0] if m.is_meta]
        assert {round(mido.tempo2bpm(m.tempo), 3) for m in meta if m.type == "set_tempo"} == {100.0}
        assert {(m.numerator, m.denominator) for m in meta if m.type == "time_signature"} == {(3, 4)}
        assert entry["drums"]  # high energy drives even a style without drums


def _velocities(path: Path) -> list[int]:
    return [m.velocity for t in mido.MidiFile(str(path)).tracks for m in t if m.type == "note_on" and m.velocity]


def test_energy_is_heard_in_onsets_velocities_drums_and_loudness(base: SavedModel, tmp_path: Path) -> None:
    onsets, entries = {}, {}
    for energy in ("low", "high"):
        controls = Controls(tempo=100, energy=energy)  # type: ignore[arg-type]
        drafts = _drafts(base, controls, 12)  # the same seed: the same styles, pieces and random draws
        pieces = [_finished(base, d, controls) for d in drafts]
        onsets[energy] = sum(len({n.step for n in f.piece.notes}) for f in pieces) / sum(d.bars for d in drafts)
        folder = tmp_path / energy
        folder.mkdir()
        entries[energy] = render_track(folder, 1, pieces[0], base, rng=random.Random(1), model_id=1, stamp="t",
                                       stems=False, controls=controls)  # fmt: skip
    assert onsets["high"] > 1.25 * onsets["low"], onsets  # onsets a bar
    low, high = (_velocities(tmp_path / e / entries[e]["midi"]) for e in ("low", "high"))
    assert max(low) < min(high) or sum(low) / len(low) < 0.8 * sum(high) / len(high)
    assert not entries["low"]["drums"] and entries["high"]["drums"]
    loudness = {e: AudioSegment.from_mp3(tmp_path / e / entries[e]["mp3"]).dBFS for e in ("low", "high")}
    assert loudness["low"] < LEVELS["low"].loudness_dbfs + 1 and loudness["high"] > loudness["low"] + 3, loudness
