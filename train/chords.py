"""Chords named from notes, and a style's chord vocabulary: the qualities its own pieces use.

Each half bar (a bar of three beats is one span) is named as the chord that best explains the notes
sounding in it: the chord tones' weight by length, minus half of the rest, with a nudge towards the
chord whose root is in the bass and the chords of the key, and a small cost per chord tone so that a
richer chord is named only where its extra tone really sounds. The qualities on offer are triads,
sevenths, a suspended fourth and the bare fifth; a style's vocabulary is the share of its pieces' spans
named with each, and a track of that style is named (and revoiced, ``generate.harmony``) only with the
qualities its playlist uses, so sevenths, suspensions and open fifths stay where the playlist has them
and nothing is rewritten onto a triad it does not use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from train.tokens import MAJOR_SCALE, PITCH_NAMES, GridNote, GridPiece, TokenizerConfig, key_of, key_reference

QUALITIES: dict[str, tuple[int, ...]] = {
    "": (0, 4, 7),
    "m": (0, 3, 7),
    "dim": (0, 3, 6),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "sus4": (0, 5, 7),
    "5": (0, 7),
}
TRIADS = ("", "m", "dim")  # a style with no measured pieces: the common triads
IN_USE = 0.08  # a quality naming at least this share of a style's spans is in its vocabulary


@dataclass(frozen=True)
class Chord:
    start: int  # grid step
    end: int
    root: int  # pitch class
    quality: str  # a key of QUALITIES

    @property
    def tones(self) -> tuple[int, ...]:
        return tuple((self.root + i) % 12 for i in QUALITIES[self.quality])

    @property
    def fifth(self) -> int:
        """The pitch class a bass takes after the root: the chord's fifth (diminished or perfect)."""
        return (self.root + next(i for i in QUALITIES[self.quality] if i in (6, 7))) % 12

    @property
    def name(self) -> str:
        return PITCH_NAMES[self.root] + self.quality


def span_steps(piece: GridPiece, config: TokenizerConfig) -> int:
    """Chords change at most every half bar (a bar of four beats) or bar (three)."""
    bar = piece.bar_steps(config)
    return bar // 2 if piece.meter % 2 == 0 else bar


def recognise(piece: GridPiece, config: TokenizerConfig, qualities: Iterable[str] = TRIADS) -> list[Chord]:
    """One chord of ``qualities`` per span, for every span up to the piece's last bar (a span with no notes
    repeats the chord before it)."""
    offered = [(q, QUALITIES[q]) for q in qualities]
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
            for quality, intervals in offered:
                tones = [(root + i) % 12 for i in intervals]
                inside = weights[tones].sum()
                score = inside - 0.5 * (weights.sum() - inside) - 0.3 * span * len(intervals)
                score += 0.3 * span * (lowest is not None and lowest.pitch % 12 == root)
                score += 0.2 * span * (root in scale) - 0.2 * span * (quality == "dim")
                if score > best_score:
                    best, best_score = (root, quality), score
        assert best is not None
        chords.append(Chord(start, end, *best))
    return chords


def chord_vocabulary(pieces: Sequence[GridPiece], config: TokenizerConfig) -> dict[str, float]:
    """The share of the pieces' spans named with each quality (every quality on offer), rounded."""
    counts = Counter(c.quality for p in pieces if p.notes for c in recognise(p, config, QUALITIES))
    total = sum(counts.values())
    return {q: round(n / total, 4) for q, n in counts.most_common()} if total else {}


def in_use(vocabulary: Mapping[str, float]) -> tuple[str, ...]:
    """The qualities a style's tracks are named with: those of its vocabulary naming at least ``IN_USE`` of its
    spans (its commonest at least); the common triads for a style with no vocabulary."""
    if not vocabulary:
        return TRIADS
    used = tuple(q for q, share in vocabulary.items() if share >= IN_USE and q in QUALITIES)
    return used or (max(vocabulary, key=lambda q: vocabulary[q]),)
