"""Calibrating a model's sampler to its styles: onsets, voices, notes off the scale, leaps and repeats as its pieces.

A model fine-tuned on a few pieces keeps much of what the base model learned from the corpus's scores:
sampled freely, a style transcribed from recordings (eight onsets a bar, four voices) comes out as a
score would (five onsets, three voices), and a style of plain diatonic, stepwise tunes picks up the
corpus's chromatic notes and leaps; a listener (or a classifier) hears the difference first. Training
measures that gap and closes it with a ``Lift`` per style: logits added to pitch tokens (another voice),
taken from position tokens per beat they wait (nearer onsets), from pitches off the key's scale, from top
notes that leap and from top notes that repeat the one before (a sampled fiddle tune's top line repeated a
note twice as often as its pieces'), found by a few rounds of sampling and Broyden's method on the five
together, bounded so a model that cannot reach its style is not pushed into nonsense. Sampling here is as a
batch samples: each stream from one of the style's pieces' openings, kept to that piece's register, with a
batch's nucleus (``TOP_P``: a lift calibrated on the whole distribution moved a batch's truncated one past
its style).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from train.model import LIFT_KNOBS, TOP_P, Lift, SavedModel, right_aligned, sample
from train.profile import PROFILE_FEATURES, StyleProfile, profile_features
from train.structure import repeat_share
from train.tokens import BAR, GridPiece, decode
from train.vocab import SEP, style_token

# What LIFT_KNOBS move, in order: four of the style's profile features, and the share of top-line repeats
# (ModelConfig.repeats; a model trained before it was kept calibrates the first four alone).
MEASURED = ("onsets_per_beat", "polyphony", "scale_share", "top_leap_share")
ONSETS, VOICES, SCALE_SHARE, LEAP_SHARE = (PROFILE_FEATURES.index(name) for name in MEASURED)
BOUNDS = (-3.0, 3.0)  # nats: how far a lift may go either way
# Change in (log onsets, log voices, log share of notes off the scale, log share of top-line leaps, log share
# of top-line repeats) per nat of each knob (LIFT_KNOBS: onsets, voices, scale, leaps, repeats): nearer
# onsets add voices too; a nat taken from chromatic pitches, leaps or repeats takes most of a nat from their
# log share.
FIRST_JACOBIAN = (
    (0.2, 0.0, 0.0, 0.0, 0.0),
    (0.3, 0.3, 0.0, 0.0, 0.0),
    (0.0, 0.0, -0.8, 0.0, 0.0),
    (0.0, 0.0, 0.0, -0.8, 0.0),
    (0.0, 0.0, 0.0, 0.0, -0.8),
)
LEAST_SHARE = 0.003  # a share of chromatic notes, leaps or repeats below this counts as this (its log stays finite)
# onsets per beat, voices sounding, scale share, top-line leap share, top-line repeat share (the first four alone
# for a model that keeps no repeat share)
Density = tuple[float, ...]


@dataclass(frozen=True)
class Calibration:
    lift: Lift
    before: Density  # sampled without a lift
    after: Density  # the same with the lift
    target: Density  # the style's pieces'

    def to_dict(self) -> dict[str, object]:
        return {
            "lift": {name: round(value, 3) for name, value in self.lift.knobs().items()},
            "before": [round(v, 3) for v in self.before],
            "after": [round(v, 3) for v in self.after],
            "target": [round(v, 3) for v in self.target],
        }


def sampled_density(saved: SavedModel, style: str, lift: Lift, *, rows: int, bars: int, seed: int) -> Density | None:
    """Mean onsets per beat, voices, scale share, top-line leap share and top-line repeat share over ``rows``
    streams of about ``bars`` bars sampled for ``style``, each from one of its pieces' openings and kept to
    that piece's register; None when none of them has notes."""
    heads = saved.config.headers.get(style) or [[]]
    registers = saved.config.registers.get(style) or [[] for _ in heads]
    rng = random.Random(seed)
    chosen = [rng.randrange(len(heads)) for _ in range(rows)]  # each row as a track: a piece's head and register
    starts = [[SEP, style_token(style), *heads[i]] for i in chosen]
    vocab = saved.vocab
    prompt = right_aligned([[vocab.index.get(t, vocab.index[SEP]) for t in s] for s in starts], vocab.index[SEP])
    steps = int(bars * saved.config.tokens_per_bar * 1.3) + 16
    lifts = [lift.within(registers[i]) for i in chosen]
    ids = sample(saved, batch=rows, steps=steps, temperature=1.0, top_p=TOP_P, seed=seed, prompt=prompt,
                 prompt_lengths=[len(s) for s in starts], lifts=lifts)  # fmt: skip
    features = []
    for start, row in zip(starts, ids.tolist(), strict=True):
        tokens = [*start[2:], *vocab.decode(row)]
        last = max((i for i, t in enumerate(tokens) if t == BAR), default=0)
        piece: GridPiece = decode(tokens[:last], saved.tokenizer)  # whole bars only
        if piece.notes:
            measured = profile_features(piece, saved.tokenizer)[[ONSETS, VOICES, SCALE_SHARE, LEAP_SHARE]]
            features.append([*measured, repeat_share(piece)])
    if not features:
        return None
    return tuple(float(v) for v in np.mean(features, axis=0))


def calibrate(
    saved: SavedModel, style: str, profile: StyleProfile, *, rounds: int = 6, rows: int = 24, bars: int = 12,
    seed: int = 0,
) -> Calibration | None:  # fmt: skip
    """The lift that brings ``style``'s sampled onsets per beat, voices, scale share, top-line leap share and
    top-line repeat share nearest its pieces'; None when the model samples no notes for it."""
    mean = profile.mean
    aims = [mean[ONSETS], mean[VOICES], mean[SCALE_SHARE], mean[LEAP_SHARE]]
    if style in saved.config.repeats:
        aims.append(saved.config.repeats[style])
    free = len(aims)  # the knobs calibration moves: all five, or the first four for a model with no repeat share
    target = _logs(tuple(aims))

    def lift(k: np.ndarray) -> Lift:
        return Lift.from_knobs(dict(zip(LIFT_KNOBS[:free], k[:free], strict=True)))

    def measure(k: np.ndarray) -> np.ndarray | None:
        found = sampled_density(saved, style, lift(k), rows=rows, bars=bars, seed=seed)
        return None if found is None or min(found[:2]) <= 0 else _logs(found[:free])

    start = measure(np.zeros(free))
    if start is None:
        return None
    first = np.array(FIRST_JACOBIAN)[:free, :free]
    jacobian, knobs, current = first, np.zeros(free), start
    tried = [(knobs, start)]
    for _ in range(rounds):
        error = target - current
        try:
            step = np.clip(np.linalg.solve(jacobian, error), -1.0, 1.0)
        except np.linalg.LinAlgError:
            step = np.clip(error / np.diag(first), -1.0, 1.0)
        moved = np.clip(knobs + step, *BOUNDS)
        found = measure(moved)
        if found is None:
            break
        change = moved - knobs
        if float(change @ change) > 1e-6:  # Broyden's update: the Jacobian that explains this step too
            jacobian = jacobian + np.outer(found - current - jacobian @ change, change) / float(change @ change)
        knobs, current = moved, found
        tried.append((knobs, current))
    knobs, current = min(tried, key=lambda t: float(np.abs(target - t[1]).sum()))  # the nearest lift sampled
    return Calibration(lift(knobs), _density(start), _density(current), _density(target))


def _logs(density: Density) -> np.ndarray:
    """What calibration moves linearly: the logs of onsets, voices, the share of chromatic notes, of leaps and
    of repeats (a share below LEAST_SHARE counts as that)."""
    onsets, voices, scale, *shares = density
    return np.log([onsets, voices, max(1.0 - scale, LEAST_SHARE), *(max(s, LEAST_SHARE) for s in shares)])


def _density(logs: np.ndarray) -> Density:
    values = [float(v) for v in np.exp(logs)]
    values[2] = 1.0 - values[2]
    return tuple(values)
