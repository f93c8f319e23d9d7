"""A style's profile: a few numbers that tell its pieces from other music, and how far a track is from them.

Each piece is described by ten features read in the token domain (notes on the beat grid, times in
beats, so a track's tempo, drawn separately, does not enter): its pitch range and number of distinct
pitches, the entropy of its pitch classes and how much of it one major scale holds, its top line's
mean step and share of leaps (over a major third), how many notes sound at once, onsets per beat, the
spread of the inter-onset intervals and the median note length. Training records, for each style, the
mean and spread of each feature over (at most ``STYLE_SAMPLE`` of) its pieces.

A sampled draft can be right note by note and still wrong as a whole: a register wider than the
style's, a top line that leaps where the style's steps, sparser rhythm. A batch samples several drafts
per track and keeps the one nearest its style's profile (the root mean square of its features' z-scores),
so the tracks sit where the playlist's pieces sit on what a listener notices first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from train.structure import top_line
from train.tokens import MAJOR_SCALE, GridPiece, TokenizerConfig

PROFILE_FEATURES = (
    "pitch_range",
    "pitch_count",
    "pitch_class_entropy",
    "scale_share",
    "top_mean_step",
    "top_leap_share",
    "polyphony",
    "onsets_per_beat",
    "ioi_variation",
    "median_note_beats",
)
MAJOR = np.array(MAJOR_SCALE)
LEAP = 4  # semitones: a top-line step wider than a major third is a leap
MIN_SPREAD = 0.05  # of a feature's mean: a style whose pieces agree on a feature still allows a little


def profile_features(piece: GridPiece, config: TokenizerConfig) -> np.ndarray:
    """The piece's ten features, in ``PROFILE_FEATURES`` order (zeros for a piece with no notes)."""
    if not piece.notes:
        return np.zeros(len(PROFILE_FEATURES))
    pitches = np.array([n.pitch for n in piece.notes])
    histogram = np.bincount(pitches % 12, minlength=12) / len(pitches)
    nonzero = histogram[histogram > 0]
    line = top_line(piece)
    steps = np.abs(np.diff([n.pitch for n in line])) if len(line) > 1 else np.zeros(1)
    onsets = np.array([n.step for n in line])
    iois = np.diff(onsets) if len(onsets) > 1 else np.ones(1)
    end = max(n.step + n.steps for n in piece.notes)
    sounding = np.zeros(end)
    for n in piece.notes:
        sounding[n.step : n.step + n.steps] += 1
    spb = config.steps_per_beat
    return np.array(
        [
            pitches.max() - pitches.min(),
            len(set(pitches.tolist())),
            float(-(nonzero * np.log2(nonzero)).sum()),
            max(histogram[(MAJOR + tonic) % 12].sum() for tonic in range(12)),
            float(steps.mean()),
            float((steps > LEAP).mean()),
            float(sounding[sounding > 0].mean()),
            len(onsets) / (end / spb),
            float(iois.std() / iois.mean()),
            float(np.median([n.steps for n in piece.notes])) / spb,
        ],
        float,
    )


@dataclass(frozen=True)
class StyleProfile:
    """The mean and spread of each feature over a style's pieces."""

    mean: tuple[float, ...]
    spread: tuple[float, ...]
    pieces: int

    def distance(self, piece: GridPiece, config: TokenizerConfig) -> float:
        """The root mean square of the piece's features' z-scores against the style (0: its average piece)."""
        z = (profile_features(piece, config) - np.array(self.mean)) / np.array(self.spread)
        return float(np.sqrt(np.mean(z**2)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(PROFILE_FEATURES),
            "mean": list(self.mean),
            "spread": list(self.spread),
            "pieces": self.pieces,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StyleProfile | None:
        """The profile saved by ``to_dict``; None for one saved with other features (an older model)."""
        if tuple(data.get("features", ())) != PROFILE_FEATURES:
            return None
        return cls(tuple(data["mean"]), tuple(data["spread"]), int(data["pieces"]))


def style_profile(pieces: Sequence[GridPiece], config: TokenizerConfig) -> StyleProfile | None:
    """The profile of the pieces that have notes; None when fewer than two have (no spread to measure)."""
    rows = np.array([profile_features(p, config) for p in pieces if p.notes])
    if len(rows) < 2:
        return None
    mean = rows.mean(axis=0)
    spread = np.maximum(rows.std(axis=0), np.maximum(MIN_SPREAD * np.abs(mean), 1e-3))
    return StyleProfile(tuple(np.round(mean, 5).tolist()), tuple(np.round(spread, 5).tolist()), len(rows))
