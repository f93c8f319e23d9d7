"""How much of a piece comes back: the share of its bars that recur.

A bar is read as the set of (grid position, pitch class) onsets in it. A bar *recurs* when an earlier
bar of the same piece has the same onset rhythm and pitch classes, allowing one changed note (one
onset added, dropped or moved to another pitch class: a symmetric difference of at most two).
Empty bars do not count either way. Real pieces with a form restate themes (Bach chorales' repeated
opening phrases, a fiddle tune's AABB); a stream sampled bar after bar almost never does, which is
what gives it away. Training records each style's value; generation plans its forms to match it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TypeVar

from train.tokens import GridNote, GridPiece, TokenizerConfig

T = TypeVar("T")
STYLE_SAMPLE = 200  # pieces a measure of a style (or a model's pieces) is taken on, at most


def drawn(items: Sequence[T], seed: int, limit: int = STYLE_SAMPLE) -> list[T]:
    """At most ``limit`` of the items, drawn with ``seed`` (all of them, in order, when there are no more):
    what a measure of many pieces is taken on, so it costs the same for 200 pieces or 10,000."""
    return list(items) if len(items) <= limit else random.Random(seed).sample(list(items), limit)


BarSet = frozenset[tuple[int, int]]


def bar_sets(piece: GridPiece, config: TokenizerConfig) -> list[BarSet]:
    """Each bar's (position, pitch class) onsets, in order; empty bars as empty sets."""
    bar = piece.bar_steps(config)
    found: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for n in piece.notes:
        found[n.step // bar].add((n.step % bar, n.pitch % 12))
    return [frozenset(found.get(k, ())) for k in range(piece.bars(config))]


def recurring_bar_share(piece: GridPiece, config: TokenizerConfig, *, changed: int = 1) -> float:
    """The share of the piece's sounding bars that restate an earlier bar (up to ``changed`` notes changed)."""
    sounding = [s for s in bar_sets(piece, config) if s]
    if not sounding:
        return 0.0
    recurring = 0
    for i, current in enumerate(sounding):
        if any(len(current ^ earlier) <= 2 * changed for earlier in sounding[:i]):
            recurring += 1
    return recurring / len(sounding)


def mean_recurrence(pieces: Iterable[GridPiece], config: TokenizerConfig) -> float:
    values = [recurring_bar_share(p, config) for p in pieces if p.notes]
    return sum(values) / len(values) if values else 0.0


def top_line(piece: GridPiece) -> list[GridNote]:
    """The highest note struck at each onset, in order: what a listener follows as the melody."""
    tops: dict[int, GridNote] = {}
    for n in piece.notes:
        if n.step not in tops or n.pitch > tops[n.step].pitch:
            tops[n.step] = n
    return [tops[step] for step in sorted(tops)]


def top_steps(piece: GridPiece) -> list[int]:
    """The size in semitones of each move of the top line, from one note to the next."""
    line = [n.pitch for n in top_line(piece)]
    return [abs(b - a) for a, b in zip(line, line[1:], strict=False)]


def repeat_share(piece: GridPiece) -> float:
    """The share of the top line's steps that repeat the note before (0 for a line of one note or none)."""
    steps = top_steps(piece)
    return sum(s == 0 for s in steps) / len(steps) if steps else 0.0


def wide_leap_share(piece: GridPiece, *, semitones: int = 12) -> float:
    """The share of the top line's steps that leap more than ``semitones``."""
    steps = top_steps(piece)
    return sum(s > semitones for s in steps) / len(steps) if steps else 0.0
