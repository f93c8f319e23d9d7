"""Drums from a style's groove: the playlist's own accents, played on the General MIDI kit.

A style's groove (``transcribe.groove``) says how strongly its kick, snare and hats bands strike at
each sixteenth of the bar, relative to each band's mean. A pattern takes the positions that stand out
(at least the band's mean and half its strongest position), with velocities following their strength.
Every bar plays it, but the last bar of each section ends on a snare fill (sixteenths over its last
beat, getting louder) and the next section opens with a crash. A track with an ending stops on the
downbeat of its last bar: kick and crash under the final chord.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generate.form import Form

KICK, SNARE, CLOSED_HAT, CRASH = 36, 38, 42, 49  # General MIDI percussion keys (channel 10)
KEYS = {"kick": KICK, "snare": SNARE, "hats": CLOSED_HAT}


@dataclass(frozen=True, order=True)
class Hit:
    step: int  # grid steps from the track's first downbeat
    key: int  # General MIDI percussion key
    velocity: int


def pattern(groove: dict[str, Any]) -> dict[int, list[tuple[int, int]]]:
    """Position in the bar -> the (key, velocity) struck there, from the groove's histogram."""
    out: dict[int, list[tuple[int, int]]] = {}
    for band, key in KEYS.items():
        row = groove["bands"].get(band) or []
        strongest = max(row, default=0.0)
        if strongest <= 0:
            continue
        for position, strength in enumerate(row):
            if strength >= max(1.0, 0.5 * strongest):
                velocity = round(50 + 60 * min(strength / strongest, 1.0))
                out.setdefault(position, []).append((key, velocity))
    return out


def drum_hits(groove: dict[str, Any], form: Form, *, bar_steps: int, steps_per_beat: int) -> list[Hit]:
    """The drums for a track of ``form``: the groove in every bar, fills at section ends, crashes after them."""
    bar_pattern = pattern(groove)
    if len(groove["bands"].get("kick", [])) != bar_steps or not bar_pattern:
        return []
    hits: list[Hit] = []
    section_ends = {s.start + s.bars - 1 for s in form.sections[:-1]}
    section_starts = {s.start for s in form.sections[1:]}
    last = form.total_bars - 1
    for bar in range(form.total_bars):
        start = bar * bar_steps
        if bar == last and not form.loop:  # the ending: one stroke under the final chord
            hits += [Hit(start, KICK, 100), Hit(start, CRASH, 90)]
            break
        fill_from = bar_steps - steps_per_beat if bar in section_ends else bar_steps
        for position, strokes in sorted(bar_pattern.items()):
            if position < fill_from:
                hits += [Hit(start + position, key, velocity) for key, velocity in strokes]
        for k, position in enumerate(range(fill_from, bar_steps)):
            hits.append(Hit(start + position, SNARE, 60 + 40 * (k + 1) // steps_per_beat))
        if bar in section_starts:
            hits.append(Hit(start, CRASH, 90))
    return sorted(hits)
