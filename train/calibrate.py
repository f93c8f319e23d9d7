"""Calibrating a model's sampler to its styles: as many onsets, voices, notes off the scale and leaps as its pieces.

A model fine-tuned on a few pieces keeps much of what the base model learned from the corpus's scores:
sampled freely, a style transcribed from recordings (eight onsets a bar, four voices) comes out as a
score would (five onsets, three voices), and a style of plain diatonic, stepwise tunes picks up the
corpus's chromatic notes and leaps; a listener (or a classifier) hears the difference first. Training
measures that gap and closes it with a ``Lift`` per style: logits added to pitch tokens (another voice),
taken from position tokens per beat they wait (nearer onsets), from pitches off the key's scale and from
top notes that leap, found by a few rounds of sampling and Broyden's method on the four together, bounded
so a model that cannot reach its style is not pushed into nonsense. Sampling here is as a batch samples:
each stream from one of the style's pieces' openings, kept to that piece's register, with a batch's nucleus
(``TOP_P``: a lift calibrated on the whole distribution moved a batch's truncated one past its style).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from train.model import LIFT_KNOBS, TOP_P, Lift, SavedModel, right_aligned, sample
from train.profile import PROFILE_FEATURES, StyleProfile, profile_features
from train.tokens import BAR, GridPiece, decode
from train.vocab import SEP, style_token

MEASURED = ("onsets_per_beat", "polyphony", "scale_share", "top_leap_share")  # what LIFT_KNOBS move, in order
ONSETS, VOICES, SCALE_SHARE, LEAP_SHARE = (PROFILE_FEATURES.index(name) for name in MEASURED)
BOUNDS = (-3.0, 3.0)  # nats: how far a lift may go either way
# Change in (log onsets, log voices, log share of notes off the scale, log share of top-line leaps) per nat
# of each knob (LIFT_KNOBS: onsets, voices, scale, leaps): nearer onsets add voices too; a nat taken from
# chromatic pitches or from leaps takes most of a nat from their log share.
FIRST_JACOBIAN = ((0.2, 0.0, 0.0, 0.0), (0.3, 0.3, 0.0, 0.0), (0.0, 0.0, -0.8, 0.0), (0.0, 0.0, 0.0, -0.8))
LEAST_SHARE = 0.003  # a share of chromatic notes or leaps below this counts as this (its log stays finite)
Density = tuple[float, float, float, float]  # onsets per beat, voices sounding, scale share, top-line leap share


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
    """Mean onsets per beat, voices, scale share and top-line leap share over ``rows`` streams of about ``bars``
    bars sampled for ``style``, each from one of its pieces' openings and kept to that piece's register; None
    when none of them has notes."""
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
            features.append(profile_features(piece, saved.tokenizer)[[ONSETS, VOICES, SCALE_SHARE, LEAP_SHARE]])
    if not features:
        return None
    onsets, voices, scale, leaps = (float(v) for v in np.mean(features, axis=0))
    return onsets, voices, scale, leaps


def calibrate(
    saved: SavedModel, style: str, profile: StyleProfile, *, rounds: int = 6, rows: int = 24, bars: int = 12,
    seed: int = 0,
) -> Calibration | None:  # fmt: skip
    """The lift that brings ``style``'s sampled onsets per beat, voices, scale share and top-line leap share
    nearest its profile's; None when the model samples no notes for it."""
    mean = profile.mean
    target = _logs((mean[ONSETS], mean[VOICES], mean[SCALE_SHARE], mean[LEAP_SHARE]))

    def measure(k: np.ndarray) -> np.ndarray | None:
        found = sampled_density(saved, style, Lift.from_knobs(dict(zip(LIFT_KNOBS, k, strict=True))), rows=rows,
                                bars=bars, seed=seed)  # fmt: skip
        return None if found is None or min(found[:2]) <= 0 else _logs(found)

    start = measure(np.zeros(len(LIFT_KNOBS)))
    if start is None:
        return None
    jacobian, knobs, current = np.array(FIRST_JACOBIAN), np.zeros(len(LIFT_KNOBS)), start
    tried = [(knobs, start)]
    for _ in range(rounds):
        error = target - current
        try:
            step = np.clip(np.linalg.solve(jacobian, error), -1.0, 1.0)
        except np.linalg.LinAlgError:
            step = np.clip(error / np.diag(FIRST_JACOBIAN), -1.0, 1.0)
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
    lift = Lift.from_knobs(dict(zip(LIFT_KNOBS, knobs, strict=True)))
    return Calibration(lift, _density(start), _density(current), _density(target))


def _logs(density: Density) -> np.ndarray:
    """What calibration moves linearly: the logs of onsets, voices, the share of chromatic notes and of leaps."""
    onsets, voices, scale, leaps = density
    return np.log([onsets, voices, max(1.0 - scale, LEAST_SHARE), max(leaps, LEAST_SHARE)])


def _density(logs: np.ndarray) -> Density:
    onsets, voices, chromatic, leaps = (float(v) for v in np.exp(logs))
    return onsets, voices, 1.0 - chromatic, leaps
