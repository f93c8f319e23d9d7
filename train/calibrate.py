"""Calibrating a model's sampler to its styles' density: as many onsets and voices as the style's pieces have.

A model fine-tuned on a few pieces keeps much of what the base model learned from the corpus's scores:
sampled freely, a style transcribed from recordings (eight onsets a bar, four voices) comes out as a
score would (five onsets, three voices), and a listener (or a classifier) hears the difference first.
Training measures that gap and closes it with a ``Lift`` per style: logits added to pitch tokens (another
voice) and taken from position tokens per beat they wait (nearer onsets), found by a few rounds of
sampling and Broyden's method on the two together, bounded so a model that cannot reach its style is not pushed into
nonsense.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from train.model import Lift, SavedModel, right_aligned, sample
from train.profile import PROFILE_FEATURES, StyleProfile, profile_features
from train.tokens import BAR, GridPiece, decode
from train.vocab import SEP, style_token

ONSETS, VOICES = PROFILE_FEATURES.index("onsets_per_beat"), PROFILE_FEATURES.index("polyphony")
BOUNDS = (-3.0, 3.0)  # nats: how far a lift may go either way
# log change in (onsets, voices) per nat of (the onsets lift, the voices lift): nearer onsets add voices too
FIRST_JACOBIAN = ((0.2, 0.0), (0.3, 0.3))


@dataclass(frozen=True)
class Calibration:
    lift: Lift
    before: tuple[float, float]  # onsets per beat and voices sounding, sampled without a lift
    after: tuple[float, float]  # the same with the lift
    target: tuple[float, float]  # the style's pieces'

    def to_dict(self) -> dict[str, object]:
        return {
            "lift": {"voices": round(self.lift.voices, 3), "onsets": round(self.lift.onsets, 3)},
            "before": [round(v, 3) for v in self.before],
            "after": [round(v, 3) for v in self.after],
            "target": [round(v, 3) for v in self.target],
        }


def sampled_density(
    saved: SavedModel, style: str, lift: Lift, *, rows: int, bars: int, seed: int
) -> tuple[float, float] | None:
    """Mean onsets per beat and voices over ``rows`` streams of about ``bars`` bars sampled for ``style`` from its
    pieces' openings; None when none of them has notes."""
    heads = saved.config.headers.get(style) or [[]]
    rng = random.Random(seed)
    starts = [[SEP, style_token(style), *rng.choice(heads)] for _ in range(rows)]
    vocab = saved.vocab
    prompt = right_aligned([[vocab.index.get(t, vocab.index[SEP]) for t in s] for s in starts], vocab.index[SEP])
    steps = int(bars * saved.config.tokens_per_bar * 1.3) + 16
    ids = sample(saved, batch=rows, steps=steps, temperature=1.0, top_p=1.0, seed=seed, prompt=prompt,
                 prompt_lengths=[len(s) for s in starts], lifts=[lift] * rows)  # fmt: skip
    features = []
    for start, row in zip(starts, ids.tolist(), strict=True):
        tokens = [*start[2:], *vocab.decode(row)]
        last = max((i for i, t in enumerate(tokens) if t == BAR), default=0)
        piece: GridPiece = decode(tokens[:last], saved.tokenizer)  # whole bars only
        if piece.notes:
            features.append(profile_features(piece, saved.tokenizer)[[ONSETS, VOICES]])
    if not features:
        return None
    onsets, voices = np.mean(features, axis=0)
    return float(onsets), float(voices)


def calibrate(
    saved: SavedModel, style: str, profile: StyleProfile, *, rounds: int = 6, rows: int = 24, bars: int = 12,
    seed: int = 0,
) -> Calibration | None:  # fmt: skip
    """The lift that brings ``style``'s sampled onsets per beat and voices nearest its profile's; None when the
    model samples no notes for it."""
    target = np.log([profile.mean[ONSETS], profile.mean[VOICES]])

    def measure(k: np.ndarray) -> np.ndarray | None:
        found = sampled_density(saved, style, Lift(voices=float(k[1]), onsets=float(k[0])), rows=rows, bars=bars,
                                seed=seed)  # fmt: skip
        return None if found is None or min(found) <= 0 else np.log(found)

    start = measure(np.zeros(2))  # knobs: the onsets lift, the voices lift
    if start is None:
        return None
    jacobian, knobs, current = np.array(FIRST_JACOBIAN), np.zeros(2), start
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
    lift = Lift(voices=float(knobs[1]), onsets=float(knobs[0]))
    return Calibration(lift, _pair(start), _pair(current), _pair(target))


def _pair(logs: np.ndarray) -> tuple[float, float]:
    onsets, voices = np.exp(logs)
    return float(onsets), float(voices)
