"""A track's form: a plan of sections, the bars that fill them, and an ending on the tonic.

A track is not one sampled stream cut at a length. Its bars are planned first (``choose_form``): a
theme ``A`` of a few bars, a variation ``A'`` that keeps the theme's opening half and continues it
afresh, contrasting sections ``B`` sampled in the same key, and returns of the theme; the last bar
lands on the tonic chord on its downbeat (``with_cadence``). A loop (``loop=True``) ends on a
contrasting section instead, so its last bar leads back into the theme, and has no final chord; its
last notes sound up to the seam (``held_to_seam``).

How much comes back is taken from the style: training records the share of its pieces' bars that
recur (``train.structure``), and the plan (theme length, a variation or not, how many returns) whose
track comes nearest to that share is drawn, so a playlist of through-composed pieces gets a little
return and one of dance tunes its repeated strains.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from train.structure import recurring_bar_share
from train.tokens import BAR, GridNote, GridPiece, TokenizerConfig, decode, key_of

Bar = list[str]  # the tokens of one bar, after its ``Bar`` token
THEME_LENGTHS = (2, 3, 4, 6, 8)
MIN_FRESH_BARS = 2  # a contrasting section is at least this long


class FormError(ValueError):
    """A form that cannot be built: too few bars asked for, or too little material sampled."""


@dataclass(frozen=True)
class Section:
    label: str  # "A" (the theme), "A'" (its variation), "B", "B2", ... (contrasting sections)
    start: int  # first bar, counted from the track's first bar
    bars: int

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "start": self.start, "bars": self.bars}


@dataclass(frozen=True)
class Form:
    theme_bars: int
    sections: tuple[Section, ...]
    loop: bool = False

    @property
    def plan(self) -> str:
        return " ".join(s.label for s in self.sections)

    @property
    def total_bars(self) -> int:
        return sum(s.bars for s in self.sections)

    @property
    def fresh_bars(self) -> int:
        """Bars of contrasting material to sample."""
        return sum(s.bars for s in self.sections if s.label.startswith("B"))

    @property
    def varies(self) -> bool:
        return any(s.label == "A'" for s in self.sections)

    @property
    def opening_bars(self) -> int:
        """Bars of the theme a variation keeps before it continues afresh."""
        return max(1, self.theme_bars // 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "theme_bars": self.theme_bars,
            "loop": self.loop,
            "sections": [s.to_dict() for s in self.sections],
        }


def _labels(returns: int, varied: bool, loop: bool) -> list[str]:
    """A, [A'], then ``returns`` pairs of a contrasting section and a return (variation and theme
    alternating, the theme last); a loop ends on its last contrasting section instead."""
    labels = ["A", "A'"] if varied else ["A"]
    for k in range(returns):
        labels.append("B" if k == 0 else f"B{k + 1}")
        last = k == returns - 1
        if loop and last:
            break
        labels.append("A" if last or (returns - k) % 2 == 1 else "A'")
    return labels


def candidate_forms(total_bars: int, *, loop: bool = False) -> list[Form]:
    """Every plan that fills exactly ``total_bars``: theme lengths, a variation or not, one to three returns."""
    forms = []
    for theme in THEME_LENGTHS:
        for varied in (False, True):
            for returns in (1, 2, 3):
                labels = _labels(returns, varied, loop)
                themed = sum(not label.startswith("B") for label in labels)
                fresh_sections = sum(label.startswith("B") for label in labels)
                spare = total_bars - theme * themed
                if spare < MIN_FRESH_BARS * fresh_sections or spare > 4 * theme * fresh_sections:
                    continue
                sizes = [spare // fresh_sections + (i < spare % fresh_sections) for i in range(fresh_sections)]
                sections, start, sized = [], 0, iter(sizes)
                for label in labels:
                    bars = next(sized) if label.startswith("B") else theme
                    sections.append(Section(label, start, bars))
                    start += bars
                forms.append(Form(theme, tuple(sections), loop))
    return forms


def choose_form(
    total_bars: int,
    stream: list[Bar],
    head: list[str],
    config: TokenizerConfig,
    *,
    recurrence: float,
    rng: random.Random,
    loop: bool = False,
) -> Form:
    """The plan for ``total_bars`` whose track recurs most like the style (``recurrence``, its share of
    recurring bars), measured on the track it would make from ``stream`` (bars sampled one after the
    other, at least ``total_bars`` of them), since sampled bars also echo each other by themselves, and
    with its ending (a chorale track of 16 bars whose 3-bar theme returned once was planned at 0.19 and
    ended at 0.12: its last bar, the theme's, became the tonic chord).

    Themes of four bars or more are preferred where they come as near; among the plans within a small
    margin of the best one is drawn, so the tracks of a batch differ in form. A track too short for a
    theme, a contrast and a return is one section, the theme alone.
    """
    forms = candidate_forms(total_bars, loop=loop)
    if not forms:
        return Form(total_bars, (Section("A", 0, total_bars),), loop)

    def share(form: Form, variation: list[Bar]) -> float:
        theme, fresh = stream[: form.theme_bars], stream[form.theme_bars : form.theme_bars + form.fresh_bars]
        track = decode(assemble(form, head, theme=theme, variation=variation, fresh=fresh), config)
        if not loop:  # the last bar becomes the tonic chord: the theme's return ends on it, not on the theme's bar
            track = with_cadence(track, config, bars=form.total_bars)
        return recurring_bar_share(track, config)

    def cost(form: Form) -> float:
        # A variation's continuation is not sampled yet: a model that has just heard the theme's opening
        # again may continue it as it went the first time, or afresh; the share is taken halfway.
        end = form.theme_bars + form.fresh_bars
        fresh_variation = [*stream[: form.opening_bars], *stream[end : end + form.theme_bars - form.opening_bars]]
        expected = (share(form, stream[: form.theme_bars]) + share(form, fresh_variation)) / 2
        return abs(expected - recurrence) + (0.03 if form.theme_bars < 4 else 0.0)

    costs = [cost(f) for f in forms]
    best = min(costs)
    return rng.choice([f for f, c in zip(forms, costs, strict=True) if c <= best + 0.03])


def complete_bars(tokens: list[str]) -> list[Bar]:
    """The bars of a token stream (each bar's tokens after its ``Bar``); a last bar counts only once the
    next has begun, so a stream cut mid-bar loses that bar."""
    starts = [i for i, t in enumerate(tokens) if t == BAR]
    return [tokens[a + 1 : b] for a, b in zip(starts, starts[1:], strict=False)]


def sounding_from(bars: list[Bar]) -> list[Bar]:
    """The bars from the first one that holds a note."""
    first = next((i for i, bar in enumerate(bars) if any(t.startswith("Pitch_") for t in bar)), len(bars))
    return bars[first:]


def from_downbeat(bars: list[Bar]) -> list[Bar]:
    """The bars from the first one with a note on its downbeat; from the first with any note when none has.

    A stream sampled from a tune's opening often begins as the tune does, on a pickup: a bar of rests and
    an upbeat. A theme that began there opened the track on a beat or more of silence and, each time it
    came back after a contrasting section, left most of a bar silent before its upbeat (a fiddle batch's
    longest silences were 2.2-2.6 beats a track on average, its pieces' 1.6); taken from the first downbeat,
    it returns straight after the bar before it (1.3-1.4 beats). On the downbeat itself: a loop whose theme
    began a quaver late left a gap at its seam that none of its bar lines had."""
    for number, bar in enumerate(bars):
        if next((t for t in bar if t.startswith("Pos_")), None) == "Pos_0":
            return bars[number:]
    return sounding_from(bars)


def assemble(form: Form, head: list[str], *, theme: list[Bar], variation: list[Bar], fresh: list[Bar]) -> list[str]:
    """The track's tokens: ``head`` (meter, key), then each section's bars in the plan's order.

    Raises:
        FormError: the material is shorter than the plan needs.
    """
    if len(theme) < form.theme_bars or (form.varies and len(variation) < form.theme_bars):
        raise FormError("too little theme material for the plan")
    if len(fresh) < form.fresh_bars:
        raise FormError("too little contrasting material for the plan")
    tokens = list(head)
    used = 0
    for section in form.sections:
        if section.label == "A":
            bars = theme[: section.bars]
        elif section.label == "A'":
            bars = variation[: section.bars]
        else:
            bars = fresh[used : used + section.bars]
            used += section.bars
        for bar in bars:
            tokens += [BAR, *bar]
    return tokens


def with_cadence(
    piece: GridPiece, config: TokenizerConfig, *, bars: int, key: int | None = None, voices: int = 4
) -> GridPiece:
    """The piece cut to ``bars`` bars with its last bar replaced by the tonic chord, struck on the downbeat
    and held for the bar: the tonic on top near where the melody was, the third and fifth close under it,
    the tonic in the bass near where the bass was. Notes held into the last bar stop at its downbeat. ``key``
    (``train.tokens.key_of``'s numbering) is the track's; by default it is estimated on the notes before the last bar.

    A texture of fewer ``voices`` ends with fewer: one is the tonic alone, two add the bass's tonic, three
    the third (a fiddle tune ends on its tonic, not on a four-part chord)."""
    bar = piece.bar_steps(config)
    last = (bars - 1) * bar
    before = [n for n in piece.notes if n.step < last]
    if key is None:
        key = key_of(GridPiece(piece.meter, tuple(before)) if before else piece)
    tonic = key % 12
    third = (tonic + (3 if key >= 12 else 4)) % 12
    fifth = (tonic + 7) % 12
    melody_was = max((n.pitch for n in before if n.step >= last - bar), default=72)
    bass_was = min((n.pitch for n in before if n.step >= last - bar), default=48)
    top = nearest_pitch(tonic, melody_was)
    inner = [_below(pc, top) for pc in (third, fifth)]
    bass = nearest_pitch(tonic, bass_was)
    while bass >= min(inner) and bass - 12 >= config.pitch_low:
        bass -= 12
    held = [GridNote(n.step, n.pitch, min(n.steps, last - n.step)) for n in before]
    chosen = list(dict.fromkeys([top, bass, *inner]))[: max(1, voices)]  # the tonics first, then third and fifth
    chord = [GridNote(last, p, bar) for p in sorted(chosen) if config.pitch_low <= p <= config.pitch_high]
    return GridPiece(piece.meter, tuple(sorted(held + chord)))


def held_to_seam(piece: GridPiece, config: TokenizerConfig, *, bars: int) -> GridPiece:
    """A loop of ``bars`` bars with its last notes held to its last bar line when nothing sounds there: a
    loop whose last bar ends in rests (a breath before the theme's downbeat, a short last chord) goes
    silent before its seam, and every repeat has a gap. The notes struck at its last onset are held; a
    loop with a note sounding at its end (or ringing on past it, into the repeat) is unchanged."""
    span = bars * piece.bar_steps(config)
    inside = [n for n in piece.notes if n.step < span]
    if not inside or max(n.step + n.steps for n in inside) >= span:
        return piece
    last = max(n.step for n in inside)
    held = [GridNote(n.step, n.pitch, span - n.step) if n.step == last else n for n in piece.notes]
    return GridPiece(piece.meter, tuple(sorted(held)))


def nearest_pitch(pitch_class: int, pitch: int) -> int:
    """The pitch of ``pitch_class`` nearest to ``pitch`` (the lower on a tie)."""
    below = pitch - (pitch - pitch_class) % 12
    return below if pitch - below <= below + 12 - pitch else below + 12


def _below(pitch_class: int, pitch: int) -> int:
    """The highest pitch of ``pitch_class`` strictly below ``pitch``."""
    candidate = pitch - (pitch - pitch_class) % 12
    return candidate if candidate < pitch else candidate - 12
