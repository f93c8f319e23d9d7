"""Tokens -> a band arrangement as a music21 score: melody, chords and bass on General MIDI instruments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from music21 import instrument, note, stream, tempo

from db.files import atomic_path
from train.tokens import STEPS_PER_BEAT, Slice
from transcribe.notes import NoteEvent


@dataclass(frozen=True)
class Palette:
    name: str
    melody: int  # General MIDI program numbers (0-based)
    chords: int
    bass: int


PALETTES = (
    Palette("piano trio", melody=0, chords=4, bass=32),
    Palette("strings", melody=40, chords=48, bass=42),
    Palette("acoustic band", melody=73, chords=24, bass=33),
    Palette("warm keys", melody=11, chords=89, bass=35),
)


@dataclass(frozen=True)
class Arrangement:
    score: stream.Score
    notes: list[NoteEvent]  # every note in seconds, for analysis
    seconds: float


def _bass_register(pitch: int) -> int:
    while pitch > 52:
        pitch -= 12
    while pitch < 28:
        pitch += 12
    return pitch


def _lines(slices: Sequence[Slice], shift: int) -> dict[str, list[tuple[int, int, tuple[int, ...]]]]:
    """(start step, length, pitches) per line; repeated bass and chord notes are held, not re-struck."""
    lines: dict[str, list[tuple[int, int, tuple[int, ...]]]] = {"melody": [], "chords": [], "bass": []}
    step = 0
    for piece in slices:
        if piece.pitches:
            pitches = [p + shift for p in piece.pitches]
            parts = {
                "melody": (pitches[-1],),
                "chords": tuple(pitches[1:-1]) if len(pitches) > 2 else (),
                "bass": (_bass_register(pitches[0]),) if len(pitches) > 1 else (),
            }
            for line, notes in parts.items():
                if not notes:
                    continue
                held = lines[line][-1] if lines[line] else None
                if line != "melody" and held and held[0] + held[1] == step and held[2] == notes:
                    lines[line][-1] = (held[0], held[1] + piece.steps, notes)
                else:
                    lines[line].append((step, piece.steps, notes))
        step += piece.steps
    return lines


def arrange(slices: Sequence[Slice], *, bpm: float, shift: int, palette: Palette) -> Arrangement:
    """Build the score: tempo ``bpm``, every pitch moved by ``shift`` semitones, the palette's instruments."""
    score = stream.Score()
    events: list[NoteEvent] = []
    seconds_per_step = 60.0 / bpm / STEPS_PER_BEAT
    velocities = {"melody": 92, "chords": 58, "bass": 80}
    programs = {"melody": palette.melody, "chords": palette.chords, "bass": palette.bass}
    for line, notes in _lines(slices, shift).items():
        part = stream.Part(id=line)
        part.insert(0, tempo.MetronomeMark(number=bpm))
        part.insert(0, instrument.instrumentFromMidiProgram(programs[line]))
        for start, length, pitches in notes:
            for pitch in pitches:
                element = note.Note(pitch, quarterLength=length / STEPS_PER_BEAT)
                element.volume.velocity = velocities[line]
                part.insert(start / STEPS_PER_BEAT, element)
                events.append(
                    NoteEvent(start * seconds_per_step, (start + length) * seconds_per_step, pitch, velocities[line])
                )
        score.insert(0, part)
    total = sum(s.steps for s in slices) * seconds_per_step
    return Arrangement(score=score, notes=sorted(events), seconds=total)


def write_midi(arrangement: Arrangement, path: Path) -> Path:
    with atomic_path(path) as tmp:
        arrangement.score.write("midi", fp=str(tmp))
    return path
