"""Corpus pieces rendered on several General MIDI timbres: transcription's development set.

A real playlist is strings, pads, organs, guitars and bands, not only pianos. Each piece is written to
MIDI by music21, its voices are given the timbre's programs (top voice first), a band also gets a
General MIDI drum kit playing a groove on the piece's own beats, and FluidSynth renders it to MP3. The
reference for scoring is every pitched note of that MIDI (the drums are not notes to transcribe).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pretty_midi

from generate.audio import encode_mp3, normalise
from generate.drums import CLOSED_HAT, KICK, SNARE
from generate.synth import render_wav
from sample.corpus import SOURCE_BITRATE, TEMPOS, _with_tempo, corpus_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timbre:
    """General MIDI programs for the voices, top voice first (the last repeats for any further voice)."""

    name: str
    programs: tuple[int, ...]
    drums: bool = False


TIMBRES: tuple[Timbre, ...] = (
    Timbre("piano", (0,)),
    Timbre("electric_piano", (4,)),
    Timbre("organ", (19,)),
    Timbre("guitar", (24,)),
    Timbre("violin", (40,)),
    Timbre("strings", (48,)),
    Timbre("flute", (73,)),
    Timbre("band", (0, 24, 24, 32), drums=True),  # piano melody, guitars inside, bass below, a drum kit
)
TIMBRE_NAMES = tuple(t.name for t in TIMBRES)


@dataclass(frozen=True)
class TimbreRender:
    piece: str  # corpus name
    timbre: str
    audio_path: Path
    midi_path: Path  # what was rendered, drums included; reference notes are its pitched tracks
    duration: float


def timbre(name: str) -> Timbre:
    for t in TIMBRES:
        if t.name == name:
            return t
    raise ValueError(f"unknown timbre {name!r}: one of {', '.join(TIMBRE_NAMES)}")


def _drum_track(midi: pretty_midi.PrettyMIDI) -> pretty_midi.Instrument:
    """A kit on the piece's beats: kick on the bar's first beat (and the third of four), snare on the
    others, closed hats on every half beat."""
    kit = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    beats = list(midi.get_beats())
    end = midi.get_end_time()
    downbeats = set(round(float(t), 4) for t in midi.get_downbeats())
    signatures = midi.time_signature_changes
    per_bar = signatures[0].numerator if signatures else 4
    position = 0
    for i, start in enumerate(beats):
        if round(float(start), 4) in downbeats:
            position = 0
        nxt = beats[i + 1] if i + 1 < len(beats) else start + (start - beats[i - 1] if i else 0.5)
        if start >= end:
            break
        hit = KICK if position == 0 or (per_bar == 4 and position == 2) else SNARE
        kit.notes.append(pretty_midi.Note(100, hit, start, start + 0.1))
        for t in (start, (start + nxt) / 2):
            kit.notes.append(pretty_midi.Note(70, CLOSED_HAT, t, t + 0.05))
        position += 1
    return kit


def voiced_midi(score_midi: Path, spec: Timbre, out_path: Path) -> Path:
    """``score_midi`` with its pitched tracks on ``spec``'s programs (and a drum kit for a band)."""
    midi = pretty_midi.PrettyMIDI(str(score_midi))
    voices = [inst for inst in midi.instruments if not inst.is_drum and inst.notes]
    voices.sort(key=lambda inst: -sum(n.pitch for n in inst.notes) / len(inst.notes))  # top voice first
    for index, inst in enumerate(voices):
        inst.program = spec.programs[min(index, len(spec.programs) - 1)]
    midi.instruments = voices
    if spec.drums:
        midi.instruments.append(_drum_track(midi))
    midi.write(str(out_path))
    return out_path


def render_timbres(
    out_dir: Path,
    names: tuple[str, ...],
    timbres: tuple[str, ...] = TIMBRE_NAMES,
    *,
    tempos: tuple[float, ...] = TEMPOS,
    count: int | None = None,
) -> list[TimbreRender]:
    """Render up to ``count`` readable corpus pieces on every timbre, reusing renders already in ``out_dir``.

    The n-th piece plays at ``tempos[n % len(tempos)]`` bpm. A piece music21 cannot read or write is
    skipped with its reason logged (see ``sample.corpus``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    renders: list[TimbreRender] = []
    pieces = 0
    for index, name in enumerate(names):
        if count is not None and pieces >= count:
            break
        stem = name.replace("/", "-").replace("#", "-")
        score_midi = out_dir / f"{stem}.mid"
        try:
            if not score_midi.is_file():
                _with_tempo(corpus_score(name), float(tempos[index % len(tempos)])).write("midi", fp=str(score_midi))
            made = [_render(score_midi, timbre(t), out_dir, f"{stem}-{t}", name) for t in timbres]
        except Exception as error:  # music21 and pretty_midi raise many types for unreadable scores
            log.warning("skipping corpus piece %s: %s: %s", name, type(error).__name__, error)
            continue
        renders.extend(made)
        pieces += 1
    return renders


def _render(score_midi: Path, spec: Timbre, out_dir: Path, stem: str, name: str) -> TimbreRender:
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

    midi_path, audio_path = out_dir / f"{stem}.mid", out_dir / f"{stem}.mp3"  # names hold dots: bwv145.5
    if not (midi_path.is_file() and audio_path.is_file()):
        voiced_midi(score_midi, spec, midi_path)
        with tempfile.TemporaryDirectory() as tmp:
            wav = render_wav(midi_path, Path(tmp) / "render.wav")
            audio = normalise(AudioSegment.from_wav(wav))
            # Only the tail is trimmed: the reference's times start at the MIDI's zero.
            tail = detect_leading_silence(audio.reverse(), silence_threshold=-60.0)
            audio = audio[: len(audio) - tail + 1500]
            encode_mp3(audio, audio_path, tags={"title": f"{name} ({spec.name})"}, bitrate=SOURCE_BITRATE)
    from pydub.utils import mediainfo

    duration = float(mediainfo(str(audio_path)).get("duration", 0.0))
    return TimbreRender(name, spec.name, audio_path, midi_path, duration)
