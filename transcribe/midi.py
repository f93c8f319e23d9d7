"""MIDI files in and out, for every stage: a transcription's notes written at its tempo, any file's notes read."""

from __future__ import annotations

from pathlib import Path

from db.files import atomic_path
from transcribe.notes import NoteEvent


def write_midi(notes: list[NoteEvent], tempo: float, midi_path: Path) -> Path:
    """A one-track piano MIDI at ``tempo`` (so its beats are the piece's beats); written atomically."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    piano = pretty_midi.Instrument(program=0, name="transcription")
    piano.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in notes]
    midi.instruments.append(piano)
    with atomic_path(midi_path) as tmp:
        midi.write(str(tmp))
    return midi_path


def read_midi(midi_path: Path) -> list[NoteEvent]:
    """Every note of a MIDI file (all non-drum tracks), in seconds, sorted."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(midi_path))
    notes = [
        NoteEvent(float(n.start), float(n.end), int(n.pitch), int(n.velocity))
        for instrument in midi.instruments
        if not instrument.is_drum
        for n in instrument.notes
    ]
    return sorted(notes)
