"""Drafts: a track's style, the training piece it is drawn from, its tempo and length, then its material sampled.

Each track is drawn from one of its style's pieces (``train.style.PieceMeasures``): it opens in that
piece's meter and key, is sampled inside its register, plays near its tempo and plans a form that
recurs as much as it does, so a batch spreads as its playlist does rather than sitting on its mean.
The material of every draft of a batch is sampled at once (``train.sampler``).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path

from generate.controls import AS_THE_STYLE, Controls
from generate.form import Bar, Form, Section, choose_form, complete_bars, from_downbeat
from train.model import SavedModel
from train.sampler import Lift, right_aligned, sample
from train.style import PieceMeasures, StyleRecord
from train.tokens import BAR, TokenizeError, encode, quantise
from train.vocab import SEP, style_token
from transcribe.beats import grid_from_midi
from transcribe.midi import read_midi


class DraftError(Exception):
    """A prompt that cannot be read, or a style the model does not know."""


@dataclass
class Draft:
    """One track in the making: its style and the piece it is drawn from, meter and key, tempo and length, then
    its form and material."""

    style: str
    aim: PieceMeasures | None  # the training piece the track is drawn from (None: the style kept none)
    head: list[str]  # meter and key tokens
    register: list[int]  # the lowest and highest pitch token it is sampled within ([]: none)
    bpm: float
    bars: int
    recurrence: float  # the share of recurring bars its form aims at
    form: Form | None = None  # None until the material is sampled, and when the model stopped short
    theme: list[Bar] = field(default_factory=list)
    variation: list[Bar] = field(default_factory=list)
    fresh: list[Bar] = field(default_factory=list)

    @property
    def bar_seconds(self) -> float:
        return bar_seconds(self.bpm, self.head)

    def candidate(self) -> Draft:
        """Another draft of the same track (style, piece, meter, key, tempo, length), its material not sampled."""
        return Draft(self.style, self.aim, list(self.head), list(self.register), self.bpm, self.bars, self.recurrence)


def bar_seconds(bpm: float, head: list[str]) -> float:
    """Seconds a bar lasts at ``bpm`` in the meter ``head`` states (four beats if it states none)."""
    meter = next((int(t.partition("_")[2]) for t in head if t.startswith("Meter_")), 4)
    return 60.0 / bpm * meter


def ending_tail(bar_seconds: float) -> float:
    """Seconds a track runs past its last bar, for the final chord to fade: at most half a bar."""
    return min(1.0, bar_seconds / 2)


def styles_to_draw(saved: SavedModel, wanted: str | None) -> dict[str, StyleRecord]:
    """The styles a batch draws its tracks from (those the model trained on, or ``wanted`` alone).

    Raises:
        DraftError: ``wanted`` is not a style the model was trained on.
    """
    styles = {name: record for name, record in saved.config.styles.items() if record.count}
    if wanted is None:
        return styles
    if wanted not in styles:
        raise DraftError(f"the current model knows no style {wanted!r}; it knows {', '.join(sorted(styles))}")
    return {wanted: styles[wanted]}


def plan_draft(
    styles: dict[str, StyleRecord],
    *,
    minutes: float,
    loop: bool,
    rng: random.Random,
    prompt_head: list[str] | None = None,
    controls: Controls = AS_THE_STYLE,
) -> Draft:
    """A track's style (each as often as training had its pieces), the piece it is drawn from and what it takes
    from it, and the bars that fill ``minutes`` (its form comes later). A prompt brings its own meter and key;
    the ``controls`` asked for replace the piece's or the prompt's tempo, meter and key (a piece in the asked
    meter is drawn where the style has one)."""
    names = list(styles)
    style = rng.choices(names, weights=[styles[n].count for n in names])[0]
    record = styles[style]
    aim = record.draw(rng, meter=controls.meter)
    head = controls.head(list(prompt_head) if prompt_head else list(aim.head) if aim else [])
    bpm = controls.tempo or (aim.tempo if aim else 100.0) * rng.uniform(0.92, 1.08)
    seconds = bar_seconds(bpm, head)
    tail = 0.0 if loop else ending_tail(seconds)
    bars = max(1, round((minutes * 60.0 - tail) / seconds))
    recurrence = aim.recurrence if aim else record.recurrence
    return Draft(style, aim, head, list(aim.register) if aim else [], bpm, bars, recurrence)


def prompt_ids(saved: SavedModel, prompt_midi: str | None, controls: Controls = AS_THE_STYLE) -> list[int]:
    """A MIDI file's tokens on its own beat grid (its tempo map), its last whole bars that fit the model's window;
    in the key ``controls`` asks for, if any.

    Raises:
        DraftError: the file cannot be read or holds no notes, or it is in another meter than the one asked.
    """
    if not prompt_midi:
        return []
    path = Path(prompt_midi)
    try:
        notes = read_midi(path)
        tokens = encode(quantise(notes, grid_from_midi(str(path)), saved.tokenizer), saved.tokenizer)
    except TokenizeError as error:
        raise DraftError(f"the prompt {path} holds no usable notes: {error}") from error
    except Exception as error:  # pretty_midi and mido raise many types for unreadable files
        raise DraftError(f"cannot read the prompt {path}: {type(error).__name__}: {error}") from error
    bars = [i for i, t in enumerate(tokens) if t == BAR]
    if controls.meter is not None and f"Meter_{controls.meter}" not in tokens[: bars[0]]:
        raise DraftError(f"the prompt {path} is not in {controls.meter}/4: leave the meter to it, or ask for its own")
    tokens = [*controls.head(tokens[: bars[0]]), *tokens[bars[0] :]]
    bars = [i for i, t in enumerate(tokens) if t == BAR]
    room = saved.config.seq_len - 2 - bars[0]  # the separator, the style and the header come first
    first = next((i for i in bars if len(tokens) - i <= room), len(tokens))
    return [int(i) for i in saved.vocab.encode([*tokens[: bars[0]], *tokens[first:]])]


def prompt_head(saved: SavedModel, prompt: list[int]) -> list[str]:
    """The meter and key tokens a prompt opens with (none without a prompt)."""
    tokens = saved.vocab.decode(prompt)
    return tokens[: next((i for i, t in enumerate(tokens) if t == BAR), 0)]


def sample_material(
    saved: SavedModel,
    drafts: list[Draft],
    prompt: list[int],
    *,
    temperature: float,
    top_p: float,
    rng: random.Random,
    loop: bool,
    lifted: bool = True,
    registered: bool = True,
    planned: bool = True,
    onsets: float = 0.0,
) -> None:
    """Sample every draft's material at once: a stream as long as the track, from its first downbeat.

    With ``planned`` a form is chosen on that stream and its theme and contrasting sections are taken from it;
    then, for the forms with a variation, the theme's continuation after its opening is heard again. Without,
    the stream is the track, one section as long as it. ``lifted``: with the style's calibrated lift;
    ``registered``: inside the register of the piece each draft is drawn from. A draft whose stream ended
    before the bars it needs keeps ``form`` None. ``onsets`` is added to every lift's onset knob (the energy
    asked for: ``generate.controls``).
    """
    vocab, per_bar, config = saved.vocab, max(saved.config.tokens_per_bar, 4.0), saved.tokenizer
    sep = vocab.index[SEP]

    def steps(bars: int) -> int:
        return int((bars + 2) * per_bar * 1.6) + 32

    def lift(draft: Draft) -> Lift:
        chosen = Lift.of(saved.config, draft.style) if lifted else Lift()
        chosen = dataclasses.replace(chosen, onsets=chosen.onsets + onsets)
        return chosen.within(draft.register) if registered else chosen

    starts = [
        [sep, vocab.index.get(style_token(d.style), sep), *([] if prompt else vocab.encode(d.head)), *prompt]
        for d in drafts
    ]  # a prompt brings its own meter and key
    rows = sample(
        saved, batch=len(drafts), steps=steps(max(d.bars for d in drafts)), temperature=temperature, top_p=top_p,
        seed=rng.randrange(2**31), prompt=right_aligned(starts, sep), prompt_lengths=[len(s) for s in starts],
        lifts=[lift(d) for d in drafts],
    )  # fmt: skip
    for draft, row in zip(drafts, rows.tolist(), strict=True):
        stream = from_downbeat(complete_bars(vocab.decode(row)))
        if len(stream) < draft.bars:
            continue
        if planned:
            form = choose_form(draft.bars, stream, draft.head, config, recurrence=draft.recurrence, rng=rng, loop=loop)
        else:
            form = Form(draft.bars, (Section("A", 0, draft.bars),), loop)
        draft.form, draft.theme = form, stream[: form.theme_bars]
        draft.fresh = stream[form.theme_bars : form.theme_bars + form.fresh_bars]
    varied = [(d, s) for d, s in zip(drafts, starts, strict=True) if d.form is not None and d.form.varies]
    if not varied:
        return
    prompts = []
    for draft, start in varied:
        assert draft.form is not None
        heard = [*draft.theme, *draft.theme[: draft.form.opening_bars]]
        prompts.append([*start, *vocab.encode([t for bar in heard for t in (BAR, *bar)]), vocab.index[BAR]])
    longest = max(d.form.theme_bars - d.form.opening_bars for d, _ in varied if d.form is not None)
    rows = sample(
        saved, batch=len(varied), steps=steps(longest), temperature=temperature, top_p=top_p,
        seed=rng.randrange(2**31), prompt=right_aligned(prompts, sep), prompt_lengths=[len(p) for p in prompts],
        lifts=[lift(d) for d, _ in varied],
    )  # fmt: skip
    for (draft, _), row in zip(varied, rows.tolist(), strict=True):
        assert draft.form is not None
        opening, rest = draft.form.opening_bars, draft.form.theme_bars - draft.form.opening_bars
        continued = complete_bars([BAR, *vocab.decode(row)])
        if len(continued) < rest:
            draft.form = None
            continue
        draft.variation = [*draft.theme[:opening], *continued[:rest]]
