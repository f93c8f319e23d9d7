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
from typing import Any, Literal

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


def driving(
    bar_pattern: dict[int, list[tuple[int, int]]], *, bar_steps: int, steps_per_beat: int
) -> dict[int, list[tuple[int, int]]]:
    """A pattern driven harder: every stroke 15% louder, a closed hat on every eighth, a kick on each downbeat;
    a style without drums gets the plainest kit (kick on the downbeat and halfway, snare between)."""
    out = {at: [(key, min(127, round(v * 1.15))) for key, v in strokes] for at, strokes in bar_pattern.items()}
    if not out:
        half = bar_steps // 2 if bar_steps % (2 * steps_per_beat) == 0 else bar_steps
        for beat in range(0, bar_steps, steps_per_beat):
            out[beat] = [(KICK if beat % half == 0 else SNARE, 96)]
    eighth = max(1, steps_per_beat // 2)
    for position in range(0, bar_steps, eighth):
        strokes = out.setdefault(position, [])
        if all(key != CLOSED_HAT for key, _ in strokes):
            strokes.append((CLOSED_HAT, 70 if position % steps_per_beat else 84))
    if all(key != KICK for key, _ in out[0]):
        out[0].append((KICK, 100))
    return out


def drum_hits(
    groove: dict[str, Any] | None,
    form: Form,
    *,
    bar_steps: int,
    steps_per_beat: int,
    feel: Literal["none", "groove", "driving"] = "groove",
) -> list[Hit]:
    """The drums for a track of ``form``: the groove in every bar, fills at section ends, crashes after them.

    ``feel`` (the energy asked for: ``generate.controls``): none at all; the style's groove, where its sources
    have drums; or that groove driven harder (``driving``), where even a style without drums gets a kit.
    """
    usable = groove is not None and len(groove["bands"].get("kick", [])) == bar_steps
    bar_pattern = pattern(groove) if groove is not None and usable else {}
    if feel == "driving":
        bar_pattern = driving(bar_pattern, bar_steps=bar_steps, steps_per_beat=steps_per_beat)
    if feel == "none" or not bar_pattern:
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
