"""The repetition metric, shared by ingestion's filter and generation's degeneracy guard.

A piece is read on a sixteenth-note grid of its own (estimated) tempo. Two measures, each 0..1:

**Pattern share.** Each onset event is the set of pitches struck at one grid onset plus the
gap to the next onset. For each pattern length n in ``PATTERN_LENGTHS``, find the most frequent
n-event pattern and the share of the piece's events its non-overlapping occurrences cover;
keep the largest share.

**Bar-to-bar similarity.** Cut the grid into bars of ``BEATS_PER_BAR`` beats; each bar is the
set of (sixteenth, pitch) onsets in it. Compare each bar with the bar ``lag`` bars earlier
(Jaccard index of the two sets) for lag in ``BAR_LAGS``; take the mean over bars that hold notes,
and keep the largest over the lags.

The **repetition score** is the larger of the two, so either kind of monotony rejects a piece:

- A note hammered for minutes: the 1-event pattern covers ~100%, and every bar equals the last (1.0).
- A one- or two-bar loop with nothing over it: bar similarity ~1.0 at lag 1 or 2.
- Ordinary music with a chorus repeats long stretches a few times, far apart: no single short
  pattern covers much of it and neighbouring bars differ. Corpus chorales score 0.05-0.15.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from transcribe.notes import NoteEvent

PATTERN_LENGTHS = (1, 2, 3, 4, 6, 8)
MAX_GAP_STEPS = 16
STEPS_PER_BEAT = 4
BEATS_PER_BAR = 4
BAR_LAGS = (1, 2)

Event = tuple[tuple[int, ...], int]  # (pitches struck, steps to the next onset)


@dataclass(frozen=True)
class Repetition:
    score: float  # max(pattern_share, bar_similarity)
    pattern_length: int  # the n at which the pattern share was reached
    pattern_share: float  # share of events covered by the most repeated short pattern
    bar_similarity: float  # mean Jaccard similarity of a bar to the one 1 or 2 bars before (the larger)


def onset_events(notes: Sequence[NoteEvent], tempo: float, *, steps_per_beat: int = STEPS_PER_BEAT) -> list[Event]:
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


def bar_similarity(notes: Sequence[NoteEvent], tempo: float, *, lags: Sequence[int] = BAR_LAGS) -> float:
    """Mean Jaccard similarity of each bar's onsets to those ``lag`` bars before; the largest over ``lags``."""
    if not notes:
        return 0.0
    step = 60.0 / tempo / STEPS_PER_BEAT
    steps_per_bar = STEPS_PER_BEAT * BEATS_PER_BAR
    bars: dict[int, set[tuple[int, int]]] = {}
    for note in notes:
        onset = round(note.start / step)
        bars.setdefault(onset // steps_per_bar, set()).add((onset % steps_per_bar, note.pitch))
    best = 0.0
    for lag in lags:
        scores = [
            len(bar & bars.get(index - lag, set())) / len(bar | bars.get(index - lag, set()))
            for index, bar in bars.items()
            if index - lag in bars
        ]
        if scores:
            best = max(best, sum(scores) / len(scores))
    return round(best, 4)


def repetition(events: Sequence[Event], *, bar_similarity: float = 0.0) -> Repetition:
    """The repetition score of an event sequence and its bar-to-bar similarity (see the module docstring)."""
    best, best_n = 0.0, 1
    for n in PATTERN_LENGTHS:
        if len(events) < 2 * n:
            break
        share = _coverage(events, n)
        if share > best:
            best, best_n = share, n
    return Repetition(
        score=round(max(best, bar_similarity), 4),
        pattern_length=best_n,
        pattern_share=round(best, 4),
        bar_similarity=bar_similarity,
    )


def piece_repetition(notes: Sequence[NoteEvent], tempo: float) -> Repetition:
    """Both measures for notes timed in seconds at ``tempo`` (use 60 for notes timed in beats)."""
    return repetition(onset_events(notes, tempo), bar_similarity=bar_similarity(notes, tempo))
