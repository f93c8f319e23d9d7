"""Creator controls benchmark: what each energy level does to the tracks, and whether tempo, key and meter hold.

On the shipped base model (its corpus styles, no catalogue needed), for each energy level and seed,
``--drafts`` tracks are sampled and finished as a batch does it (``generate.draft``, ``generate.finish``)
and the first ``--renders`` of them rendered (``generate.render``, no stems). Per level it prints the
onsets and notes a second (the sampler's onset knob), the pitched notes' mean MIDI velocity, drum
hits a second and the rendered mixes' loudness (RMS dBFS: set by the level's target, under a -1 dBFS
peak). Then, for asked tempo, key and meter, the share of rendered tracks whose MIDI file holds the
tempo and meter and whose last chord is the asked key's tonic chord.

Run: ``.venv/bin/python bench/controls.py [--seeds 1 2 3] [--drafts 16] [--renders 3]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mido  # noqa: E402
from pydub import AudioSegment  # noqa: E402

from generate.controls import ENERGIES, Controls  # noqa: E402
from generate.draft import plan_draft, sample_material, styles_to_draw  # noqa: E402
from generate.finish import Finished, Finishing, finish  # noqa: E402
from generate.guards import GuardSettings  # noqa: E402
from generate.render import render_track  # noqa: E402
from train.model import SavedModel  # noqa: E402
from train.originality import CopyIndex  # noqa: E402
from train.sampler import TOP_P  # noqa: E402

BASE = Path(__file__).resolve().parent.parent / "train" / "base_model"
DRUM_CHANNEL = 9


def finished_tracks(saved: SavedModel, controls: Controls, *, drafts: int, seed: int) -> list[Finished]:
    rng = random.Random(seed)
    styles = styles_to_draw(saved, None)
    planned = [plan_draft(styles, minutes=0.5, loop=False, rng=rng, controls=controls) for _ in range(drafts)]
    sample_material(saved, planned, [], temperature=1.0, top_p=TOP_P, rng=rng, loop=False,
                    onsets=controls.level.onsets)  # fmt: skip
    index = CopyIndex.build([], saved.tokenizer)
    return [finish(d, saved, index, GuardSettings(), Finishing(), key=controls.key_number) for d in planned if d.form]


def midi_facts(path: Path) -> tuple[list[int], int, set[float], set[int]]:
    """(pitched velocities, drum hits, tempos, beats a bar) of a rendered track's MIDI file."""
    midi = mido.MidiFile(str(path))
    on = [m for t in midi.tracks for m in t if m.type == "note_on" and m.velocity]
    meta = [m for m in midi.tracks[0] if m.is_meta]
    return (
        [m.velocity for m in on if m.channel != DRUM_CHANNEL],
        sum(m.channel == DRUM_CHANNEL for m in on),
        {round(mido.tempo2bpm(m.tempo), 2) for m in meta if m.type == "set_tempo"},
        {m.numerator for m in meta if m.type == "time_signature"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--drafts", type=int, default=16)
    parser.add_argument("--renders", type=int, default=3)
    args = parser.parse_args()
    saved = SavedModel.load(BASE)
    print(f"base model, {args.drafts} drafts x seeds {args.seeds}; renders: {args.renders} a seed")
    print(f"{'energy':<7} {'onsets/s':>8} {'notes/s':>8} {'velocity':>8} {'drums/s':>8} {'loudness dBFS':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for energy in ENERGIES:
            controls = Controls(energy=energy)
            onsets, notes, velocity, drums, loudness = [], [], [], [], []
            for seed in args.seeds:
                tracks = finished_tracks(saved, controls, drafts=args.drafts, seed=seed)
                for track in tracks:
                    seconds = track.draft.bars * track.draft.bar_seconds
                    onsets.append(len({n.step for n in track.piece.notes}) / seconds)
                    notes.append(len(track.piece.notes) / seconds)
                for number, track in enumerate(tracks[: args.renders], start=1):
                    folder = Path(tmp) / f"{energy}-{seed}"
                    folder.mkdir(exist_ok=True)
                    entry = render_track(folder, number, track, saved, rng=random.Random(seed), model_id=0,
                                         stamp="bench", stems=False, controls=controls)  # fmt: skip
                    velocities, hits, _, _ = midi_facts(folder / entry["midi"])
                    velocity.append(statistics.mean(velocities))
                    drums.append(hits / entry["duration"])
                    loudness.append(AudioSegment.from_mp3(folder / entry["mp3"]).dBFS)
            means = [statistics.mean(v) for v in (onsets, notes, velocity, drums, loudness)]
            print(f"{energy:<7} {means[0]:8.2f} {means[1]:8.2f} {means[2]:8.1f} {means[3]:8.2f} {means[4]:13.1f}")
        print(f"{'asked':<28} {'tracks':>6} {'tempo':>6} {'meter':>6} {'key':>6}")
        for tempo, key, meter in ((72.0, "D minor", 3), (128.0, "Bb major", 4), (100.0, "F# minor", 4)):
            controls = Controls(tempo=tempo, key=key, meter=meter)
            held = [0, 0, 0]
            count = 0
            for seed in args.seeds:
                for number, track in enumerate(finished_tracks(saved, controls, drafts=args.renders, seed=seed), 1):
                    folder = Path(tmp) / f"asked-{tempo:g}-{seed}"
                    folder.mkdir(exist_ok=True)
                    entry = render_track(folder, number, track, saved, rng=random.Random(seed), model_id=0,
                                         stamp="bench", stems=False, controls=controls)  # fmt: skip
                    _, _, tempos, meters = midi_facts(folder / entry["midi"])
                    last = max(n.step for n in track.piece.notes)
                    classes = {n.pitch % 12 for n in track.piece.notes if n.step == last}
                    tonic = (controls.key_number or 0) % 12
                    third = (tonic + (3 if (controls.key_number or 0) >= 12 else 4)) % 12
                    count += 1
                    held[0] += tempos == {tempo}
                    held[1] += meters == {meter}
                    held[2] += entry["key"] == key and {tonic, third} <= classes
            asked = f"{tempo:g} bpm, {key}, {meter}/4"
            print(f"{asked:<28} {count:>6} " + " ".join(f"{h / count:6.0%}" for h in held))


if __name__ == "__main__":
    main()
