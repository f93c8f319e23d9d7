"""The harmony under a track's melody: chords recognised from the sampled notes, voiced again.

The model writes notes, not chords: its inner voices are a little of everything. Each half bar (a
bar of three beats is one span) is named as the triad that best explains the notes sounding in it
(the chord tones' weight by length, minus half of the rest, with a nudge towards the chord whose
root is in the bass and the chords of the key). Then, onset by onset, the melody (the top note) stays
as written, the bass plays the chord's root (or its fifth when the root has just sounded in the same
chord) nearest to where the model put it, and each inner note moves to the nearest tone of the chord
between the bass and the voice above it: as many voices as the model wrote, in its registers, so the
texture of the style stays as thick or as thin as it was and only the harmony changes. Rhythm and
texture are the model's, learned from the playlist; the harmony is cleaned up to chords a listener can
follow.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from generate.form import nearest_pitch
from train.tokens import MAJOR_SCALE, PITCH_NAMES, GridNote, GridPiece, TokenizerConfig, key_of, key_reference

QUALITIES = {"": (0, 4, 7), "m": (0, 3, 7), "dim": (0, 3, 6)}


@dataclass(frozen=True)
class Chord:
    start: int  # grid step
    end: int
    root: int  # pitch class
    quality: str  # "", "m" or "dim"

    @property
    def tones(self) -> tuple[int, ...]:
        return tuple((self.root + i) % 12 for i in QUALITIES[self.quality])

    @property
    def name(self) -> str:
        return PITCH_NAMES[self.root] + self.quality


def span_steps(piece: GridPiece, config: TokenizerConfig) -> int:
    """Chords change at most every half bar (a bar of four beats) or bar (three)."""
    bar = piece.bar_steps(config)
    return bar // 2 if piece.meter % 2 == 0 else bar


def recognise(piece: GridPiece, config: TokenizerConfig) -> list[Chord]:
    """One chord per span, for every span up to the piece's last bar (a span with no notes repeats the chord
    before it)."""
    span = span_steps(piece, config)
    total = piece.bars(config) * piece.bar_steps(config)
    key = key_of(piece)
    scale = {(key_reference(key) + i) % 12 for i in MAJOR_SCALE}  # a minor key: its relative major's
    chords: list[Chord] = []
    for start in range(0, total, span):
        end = start + span
        weights = np.zeros(12)
        lowest: GridNote | None = None
        for n in piece.notes:
            overlap = min(n.step + n.steps, end) - max(n.step, start)
            if overlap > 0:
                weights[n.pitch % 12] += overlap
                if lowest is None or n.pitch < lowest.pitch:
                    lowest = n
        if not weights.any():
            if chords:
                chords.append(Chord(start, end, chords[-1].root, chords[-1].quality))
            continue
        best, best_score = None, -np.inf
        for root in range(12):
            for quality, intervals in QUALITIES.items():
                tones = [(root + i) % 12 for i in intervals]
                inside = weights[tones].sum()
                score = inside - 0.5 * (weights.sum() - inside)
                score += 0.3 * span * (lowest is not None and lowest.pitch % 12 == root)
                score += 0.2 * span * (root in scale) - 0.2 * span * (quality == "dim")
                if score > best_score:
                    best, best_score = (root, quality), score
        assert best is not None
        chords.append(Chord(start, end, *best))
    return chords


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
        fifth = (chord.root + QUALITIES[chord.quality][2]) % 12
        use = fifth if last_bass is not None and last_bass == (chord, chord.root) else chord.root
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
