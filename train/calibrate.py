"""Calibrating a model's sampler to its styles: onsets, voices, notes off the scale, leaps, repeats and pitch
classes as its pieces.

A model fine-tuned on a few pieces keeps much of what the base model learned from the corpus's scores:
sampled freely, a style transcribed from recordings (eight onsets a bar, four voices) comes out as a
score would (five onsets, three voices), and a style of plain diatonic, stepwise tunes picks up the
corpus's chromatic notes and leaps; a listener (or a classifier) hears the difference first. Training
measures that gap and closes it with a ``Lift`` per style: logits added to pitch tokens (another voice),
taken from position tokens per beat they wait (nearer onsets), from pitches off the key's scale, from top
notes that leap and from top notes that repeat the one before (a sampled fiddle tune's top line repeated a
note twice as often as its pieces'), and the network's choice among pitches sharpened until its pitch
classes spread as unevenly as its pieces' (a fine-tuned fiddle model spread them over its scale as evenly
as it could, 2.78 bits of entropy where its pieces have 2.69, and a classifier heard that first). The six
are found in stages by a few rounds of sampling and Broyden's method (``calibrate``), bounded so a model
that cannot reach its style is not pushed into nonsense. Sampling here is as a batch samples: each stream
from one of the style's pieces' openings, kept to that piece's register, with a batch's nucleus (``TOP_P``:
a lift calibrated on the whole distribution moved a batch's truncated one past its style).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from train.model import SavedModel
from train.profile import PROFILE_FEATURES, StyleProfile, profile_features
from train.sampler import LIFT_KNOBS, TOP_P, Lift, right_aligned, sample
from train.structure import repeat_share
from train.tokens import BAR, GridPiece, decode
from train.vocab import SEP, style_token

# What LIFT_KNOBS move, in order: four of the style's profile features, the share of top-line repeats
# (StyleRecord.repeats; a style whose pieces were not measured, as the base model's, leaves that knob at 0) and
# the entropy of the pitch classes.
MEASURED = ("onsets_per_beat", "polyphony", "scale_share", "top_leap_share", "pitch_class_entropy")
ONSETS, VOICES, SCALE_SHARE, LEAP_SHARE, ENTROPY = (PROFILE_FEATURES.index(name) for name in MEASURED)
REPEATS, FOCUS = LIFT_KNOBS.index("repeats"), LIFT_KNOBS.index("focus")
# How far each knob may go either way (nats; focus: the log of the factor on the network's pitch logits)
BOUNDS = {"onsets": 3.0, "voices": 3.0, "scale": 3.0, "leaps": 3.0, "repeats": 3.0, "focus": 1.0}
# Change in (log onsets, log voices, log share of notes off the scale, log share of top-line leaps, log share
# of top-line repeats, log pitch-class entropy) per unit of each knob (LIFT_KNOBS: onsets, voices, scale,
# leaps, repeats, focus): nearer onsets add voices too; a nat taken from chromatic pitches, leaps or repeats
# takes most of a nat from their log share; sharper pitch choices (focus 0.3 on a fine-tuned fiddle model)
# took 5% off its entropy (2.79 to 2.65 bits), half its chromatic notes and a third of its leaps, and added a
# third to its repeated notes: the notes a network prefers in context are the scale's, near the one before. The
# first guess takes about half of that (the base model moved less: an eighth of its leaps at focus 0.3).
FIRST_JACOBIAN = (
    (0.2, 0.0, 0.0, 0.0, 0.0, 0.0),
    (0.3, 0.3, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, -0.8, 0.0, 0.0, -1.0),
    (0.0, 0.0, 0.0, -0.8, 0.0, -0.6),
    (0.0, 0.0, 0.0, 0.0, -0.8, 0.4),
    (0.0, 0.0, 0.0, 0.0, 0.0, -0.15),
)
LEAST_SHARE = 0.003  # a share of chromatic notes, leaps or repeats below this counts as this (its log stays finite)
# onsets per beat, voices sounding, scale share, top-line leap share, top-line repeat share, pitch-class entropy
Density = tuple[float, ...]
MEASURE_NAMES = {"onsets": "onsets/beat", "voices": "voices", "scale": "scale share", "leaps": "leaps",
                 "repeats": "repeats", "focus": "entropy"}  # what each knob aims at, by the knob's name  # fmt: skip


@dataclass(frozen=True)
class Calibration:
    lift: Lift
    before: Density  # sampled without a lift, what calibration moved (``knobs``, in LIFT_KNOBS' order)
    after: Density  # the same with the lift
    target: Density  # the style's pieces'
    knobs: tuple[str, ...] = LIFT_KNOBS  # the knobs calibration moved (a style with no measured pieces: not repeats)

    def summary(self) -> str:
        """One line: each measure sampled before, after, and its pieces', e.g. ``onsets/beat 1.21 -> 1.93 (2.02)``."""
        rows = zip(self.knobs, self.before, self.after, self.target, strict=True)
        return ", ".join(f"{MEASURE_NAMES[k]} {b:.2f} -> {a:.2f} ({t:.2f})" for k, b, a, t in rows)

    def to_dict(self) -> dict[str, object]:
        return {
            "lift": {name: round(value, 3) for name, value in self.lift.knobs().items()},
            "knobs": list(self.knobs),
            "before": [round(v, 3) for v in self.before],
            "after": [round(v, 3) for v in self.after],
            "target": [round(v, 3) for v in self.target],
        }


def sampled_density(saved: SavedModel, style: str, lift: Lift, *, rows: int, bars: int, seed: int) -> Density | None:
    """Mean onsets per beat, voices, scale share, top-line leap share, top-line repeat share and pitch-class
    entropy over ``rows`` streams of about ``bars`` bars sampled for ``style``, each from one of its pieces'
    openings and kept to that piece's register; None when none of them has notes."""
    record = saved.config.style(style)
    rng = random.Random(seed)
    chosen = [record.draw(rng) for _ in range(rows)]  # each row as a track: one of its pieces' head and register
    starts = [[SEP, style_token(style), *(p.head if p else ())] for p in chosen]
    vocab = saved.vocab
    prompt = right_aligned([[vocab.index.get(t, vocab.index[SEP]) for t in s] for s in starts], vocab.index[SEP])
    steps = int(bars * saved.config.tokens_per_bar * 1.3) + 16
    lifts = [lift.within(p.register if p else ()) for p in chosen]
    ids = sample(saved, batch=rows, steps=steps, temperature=1.0, top_p=TOP_P, seed=seed, prompt=prompt,
                 prompt_lengths=[len(s) for s in starts], lifts=lifts)  # fmt: skip
    features = []
    for start, row in zip(starts, ids.tolist(), strict=True):
        tokens = [*start[2:], *vocab.decode(row)]
        last = max((i for i, t in enumerate(tokens) if t == BAR), default=0)
        piece: GridPiece = decode(tokens[:last], saved.tokenizer)  # whole bars only
        if piece.notes:
            measured = profile_features(piece, saved.tokenizer)
            density = measured[[ONSETS, VOICES, SCALE_SHARE, LEAP_SHARE]]
            features.append([*density, repeat_share(piece), measured[ENTROPY]])
    if not features:
        return None
    return tuple(float(v) for v in np.mean(features, axis=0))


def calibrate(
    saved: SavedModel, style: str, profile: StyleProfile, *, rounds: int = 6, rows: int = 24, bars: int = 12,
    seed: int = 0,
) -> Calibration | None:  # fmt: skip
    """The lift that brings ``style``'s sampled onsets per beat, voices, scale share, top-line leap share,
    top-line repeat share and pitch-class entropy nearest its pieces'; None when the model samples no notes
    for it. A style whose pieces were not measured (the base model's) leaves that knob at 0.

    In stages: the other knobs together (Broyden's method, ``rounds`` rounds), then the focus alone to the
    pieces' entropy, then the others again with the focus held, since sharper pitch choices take chromatic
    notes and leaps away and add repeats. The knobs stages keep the lift nearest the target on all six
    measures, each error in the style's own spread; the focus stage the one nearest the entropy. (Moved
    together from the start, the six knobs wandered from a first guess at their Jacobian: onsets and voices
    that the five found alone were missed by 20% and more.)"""
    mean = profile.mean
    record = saved.config.style(style)
    aims = [mean[ONSETS], mean[VOICES], mean[SCALE_SHARE], mean[LEAP_SHARE], record.repeats, mean[ENTROPY]]
    used = [i for i in range(len(LIFT_KNOBS)) if i != REPEATS or record.pieces]
    target = _logs(tuple(aims))
    weights = _weights(profile, tuple(aims))

    def lift(k: np.ndarray) -> Lift:
        return Lift.from_knobs({LIFT_KNOBS[i]: float(k[i]) for i in used})

    def measure(k: np.ndarray) -> np.ndarray | None:
        found = sampled_density(saved, style, lift(k), rows=rows, bars=bars, seed=seed)
        return None if found is None or min(found[:2]) <= 0 else _logs(found)

    knobs = np.zeros(len(LIFT_KNOBS))
    start = measure(knobs)
    if start is None:
        return None
    current = start
    focus, others = [FOCUS], [i for i in used if i != FOCUS]
    for moving, scored, stage_rounds in ((others, used, rounds), (focus, focus, 3), (others, used, 4)):
        knobs, current = _solve(measure, target, weights, knobs, current, moving, scored, rounds=stage_rounds)
    before, after, aimed = (tuple(_density(logs)[i] for i in used) for logs in (start, current, target))
    return Calibration(lift(knobs), before, after, aimed, tuple(LIFT_KNOBS[i] for i in used))


def _solve(
    measure: Callable[[np.ndarray], np.ndarray | None], target: np.ndarray, weights: np.ndarray, knobs: np.ndarray,
    current: np.ndarray, moving: list[int], scored: list[int], *, rounds: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Broyden's method on the knobs ``moving`` (each aimed at its own measure, the rest held) from ``knobs``,
    measured ``current``; the lift sampled nearest the target on the measures ``scored`` (each error in the
    style's own spread, ``weights``), with what it measured (the starting one too: a stage never leaves
    calibration worse than it found it)."""
    first = np.array(FIRST_JACOBIAN)[np.ix_(moving, moving)]
    bounds = np.array([BOUNDS[LIFT_KNOBS[i]] for i in moving])
    jacobian = first
    tried = [(knobs, current)]
    for _ in range(rounds):
        error = (target - current)[moving]
        try:
            step = np.clip(np.linalg.solve(jacobian, error), -1.0, 1.0)
        except np.linalg.LinAlgError:
            step = np.clip(error / np.diag(first), -1.0, 1.0)
        moved = knobs.copy()
        moved[moving] = np.clip(knobs[moving] + step, -bounds, bounds)
        found = measure(moved)
        if found is None:
            break
        change = (moved - knobs)[moving]
        if float(change @ change) > 1e-6:  # Broyden's update: the Jacobian that explains this step too
            seen = (found - current)[moving]
            jacobian = jacobian + np.outer(seen - jacobian @ change, change) / float(change @ change)
        knobs, current = moved, found
        tried.append((knobs, current))
    return min(tried, key=lambda t: float((weights * np.abs(target - t[1]))[scored].sum()))


def _logs(density: Density) -> np.ndarray:
    """What calibration moves linearly: the logs of onsets, voices, the share of chromatic notes, of leaps and
    of repeats (a share below LEAST_SHARE counts as that) and of the pitch-class entropy."""
    onsets, voices, scale, leaps, repeats, entropy = density
    shares = (max(1.0 - scale, LEAST_SHARE), max(leaps, LEAST_SHARE), max(repeats, LEAST_SHARE))
    return np.log([onsets, voices, *shares, max(entropy, LEAST_SHARE)])


def _weights(profile: StyleProfile, aims: Density) -> np.ndarray:
    """One over the spread of each measure's log among the style's pieces (a relative spread: the spread over
    the mean, and for the scale share over the share of chromatic notes), so an error in entropy, which
    moves 5% from piece to piece, counts as much as one in leaps, which move by half; repeats, whose spread
    training does not keep, as 30%."""
    spread = profile.spread
    relative = [
        spread[ONSETS] / aims[0], spread[VOICES] / aims[1], spread[SCALE_SHARE] / max(1.0 - aims[2], LEAST_SHARE),
        spread[LEAP_SHARE] / max(aims[3], LEAST_SHARE), 0.3, spread[ENTROPY] / aims[5],
    ]  # fmt: skip
    return 1.0 / np.maximum(relative, 0.02)


def _density(logs: np.ndarray) -> Density:
    """The measures behind ``_logs``, as ``sampled_density`` gives them."""
    values = [float(v) for v in np.exp(logs)]
    values[2] = 1.0 - values[2]
    return tuple(values)
