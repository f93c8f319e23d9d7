"""The harmony under a track's melody: its inner voices and bass moved onto the chords named for it.

The model writes notes, not chords: its inner voices are a little of everything. Each span is named
with a chord of the style's own vocabulary (``train.chords``). Then, onset by onset, the melody (the
top note) stays as written, the bass plays the chord's root (or its fifth when the root has just
sounded in the same chord) nearest to where the model put it, and each inner note moves to the nearest
tone of the chord between the bass and the voice above it: as many voices as the model wrote, in its
registers, so the texture of the style stays as thick or as thin as it was and only the harmony
changes."""

from __future__ import annotations

from collections import defaultdict

from generate.form import nearest_pitch
from train.chords import Chord, span_steps
from train.tokens import GridNote, GridPiece, TokenizerConfig


def revoiced(piece: GridPiece, config: TokenizerConfig, chords: list[Chord]) -> GridPiece:
    """The piece with its inner voices and bass moved onto ``chords`` (melody, rhythm and lengths kept): the
    bass to the chord's root (its fifth when the root was just played), the nearest one that is not below the
    piece's lowest note, so the arrangement keeps the register it was written in."""
    if not chords:
        return piece
    span = span_steps(piece, config)
    by_start = {c.start: c for c in chords}
    at: dict[int, list[GridNote]] = defaultdict(list)
    for n in piece.notes:
        at[n.step].append(n)
    out: list[GridNote] = []
    floor = min(n.pitch for n in piece.notes)
    last_bass: tuple[Chord, int] | None = None  # the chord and pitch class the bass last played
    for step in sorted(at):
        notes = sorted(at[step], key=lambda n: -n.pitch)
        chord = by_start.get(step - step % span)
        if chord is None or len(notes) == 1:
            out += notes
            continue
        melody, inner, bass = notes[0], notes[1:-1], notes[-1]
        use = chord.fifth if last_bass is not None and last_bass == (chord, chord.root) else chord.root
        low = nearest_pitch(use, bass.pitch)
        if low < floor:  # not below the piece's register: the octave above, where it fits under the melody
            low = next((p for p in range(floor, melody.pitch) if p % 12 == use), low)
        while low >= melody.pitch:  # the bass stays under the melody
            low -= 12
        out += [melody, GridNote(bass.step, low, bass.steps)]
        ceiling = melody.pitch
        for n in inner:  # each inner note to the nearest chord tone, between the bass and the voice above it
            choices = [p for p in range(low + 1, ceiling) if p % 12 in chord.tones]
            pitch = min(choices, key=lambda p: (abs(p - n.pitch), p)) if choices else n.pitch
            if pitch < ceiling:
                out.append(GridNote(n.step, pitch, n.steps))
                ceiling = pitch
        last_bass = (chord, use)
    return GridPiece(piece.meter, tuple(sorted(set(out))))
