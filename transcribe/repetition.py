"""The repetition metric, shared by ingestion's filter and generation's degeneracy guard.

A piece is read as a sequence of onset events on a sixteenth-note grid of its own tempo:
each event is the set of pitches struck at one grid onset plus the gap to the next onset.
For each pattern length n in ``PATTERN_LENGTHS``, find the most frequent n-event pattern
and the share of the piece's events its non-overlapping occurrences cover. The repetition
score is the largest such share.

- A note hammered for minutes is one event repeated: the 1-event pattern covers ~100%.
- A figure looped for the whole piece (an ostinato with nothing over it) covers ~100% at its length.
- Ordinary music with a chorus repeats long stretches a few times, but no *single* short
  pattern covers more than a small share: typical scores stay below 0.3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from transcribe.notes import NoteEvent

PATTERN_LENGTHS = (1, 2, 3, 4, 6, 8)
MAX_GAP_STEPS = 16

Event = tuple[tuple[int, ...], int]  # (pitches struck, steps to the next onset)


@dataclass(frozen=True)
class Repetition:
    score: float  # share of events covered by the most repeated short pattern, 0..1
    pattern_length: int  # the n at which that share was reached
    events: int


def onset_events(notes: Sequence[NoteEvent], tempo: float, *, steps_per_beat: int = 4) -> list[Event]:
    """Group notes by onset on the tempo's grid; each event carries its gap to the next onset."""
    if not notes:
        return []
    step = 60.0 / tempo / steps_per_beat
    by_onset: dict[int, set[int]] = {}
    for note in notes:
        by_onset.setdefault(round(note.start / step), set()).add(note.pitch)
    onsets = sorted(by_onset)
    gaps = [min(b - a, MAX_GAP_STEPS) for a, b in zip(onsets, onsets[1:], strict=False)] + [0]
    return [(tuple(sorted(by_onset[o])), gap) for o, gap in zip(onsets, gaps, strict=True)]


def _coverage(events: Sequence[Event], n: int) -> float:
    counts = Counter(tuple(events[i : i + n]) for i in range(len(events) - n + 1))
    if not counts:
        return 0.0
    pattern, _ = counts.most_common(1)[0]
    covered, i = 0, 0
    while i <= len(events) - n:  # non-overlapping occurrences, left to right
        if tuple(events[i : i + n]) == pattern:
            covered += n
            i += n
        else:
            i += 1
    return covered / len(events)


def repetition(events: Sequence[Event]) -> Repetition:
    """The repetition score of an event sequence (see the module docstring)."""
    best, best_n = 0.0, 1
    for n in PATTERN_LENGTHS:
        if len(events) < 2 * n:
            break
        share = _coverage(events, n)
        if share > best:
            best, best_n = share, n
    return Repetition(score=round(best, 4), pattern_length=best_n, events=len(events))
