"""A batch's quality report: Yang & Lerch's overlap areas between the batch and the training set.

After "On the evaluation of generative models in music" (Yang & Lerch, 2018; their mgeval code):
each piece is described by a few musical features; for each feature, the distances between
training pieces (intra-set) and between generated and training pieces (inter-set) are smoothed
into two densities (Gaussian KDE), and their **overlap area** (0..1) says how much the batch
looks like the training set on that feature. Both sides are read in the token domain (pieces
moved to C major / A minor, times in beats), so the comparison is like with like.

Features: pitch count (distinct pitches used), pitch-class histogram, pitch range, average
pitch interval (mean absolute step between successive onsets' top notes), average inter-onset
interval (beats), and the note-length histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from train.tokens import DURATIONS, STEPS_PER_BEAT, Slice

FEATURES = ("pitch_count", "pitch_class_histogram", "pitch_range", "avg_pitch_interval", "avg_ioi", "note_length")


@dataclass(frozen=True)
class PieceFeatures:
    values: dict[str, np.ndarray]  # feature -> a vector (scalars as length-1 vectors)


def piece_features(slices: Sequence[Slice]) -> PieceFeatures:
    """The six features of one piece given as chord/rest slices."""
    pitches = [p for s in slices for p in s.pitches]
    onsets, tops, lengths, step = [], [], [], 0
    for piece in slices:
        if piece.pitches:
            onsets.append(step)
            tops.append(max(piece.pitches))
            lengths += [piece.steps] * len(piece.pitches)
        step += piece.steps
    histogram = np.bincount(np.array(pitches, dtype=int) % 12, minlength=12).astype(float) if pitches else np.zeros(12)
    bins = sorted(DURATIONS)
    length_hist = np.zeros(len(bins))
    for length in lengths:
        length_hist[int(np.argmin([abs(length - b) for b in bins]))] += 1
    return PieceFeatures(
        {
            "pitch_count": np.array([len(set(pitches))], float),
            "pitch_class_histogram": histogram / max(histogram.sum(), 1.0),
            "pitch_range": np.array([max(pitches) - min(pitches) if pitches else 0], float),
            "avg_pitch_interval": np.array([np.mean(np.abs(np.diff(tops))) if len(tops) > 1 else 0.0]),
            "avg_ioi": np.array([np.mean(np.diff(onsets)) / STEPS_PER_BEAT if len(onsets) > 1 else 0.0]),
            "note_length": length_hist / max(length_hist.sum(), 1.0),
        }
    )


def _distances(a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, same: bool) -> np.ndarray:
    out = [float(np.linalg.norm(x - y)) for i, x in enumerate(a) for j, y in enumerate(b) if not (same and j <= i)]
    return np.array(out, float)


def overlap_area(intra: np.ndarray, inter: np.ndarray, *, points: int = 512) -> float:
    """Area under min(KDE(intra), KDE(inter)), the densities of two distance samples."""
    from scipy.stats import gaussian_kde

    if intra.size < 2 or inter.size < 2:
        return float("nan")
    rng = np.random.default_rng(0)
    scale = max(float(np.ptp(np.concatenate([intra, inter]))), 1e-6)
    densities: list[Callable[[np.ndarray], np.ndarray]] = []
    for sample in (intra, inter):
        if np.ptp(sample) < 1e-9:  # all equal: a KDE needs some spread
            sample = sample + rng.normal(0, scale * 1e-3, sample.size)
        densities.append(gaussian_kde(sample))
    low = min(intra.min(), inter.min()) - 0.2 * scale
    high = max(intra.max(), inter.max()) + 0.2 * scale
    grid = np.linspace(low, high, points)
    overlap = np.minimum(densities[0](grid), densities[1](grid))
    return float(np.clip(np.trapz(overlap, grid), 0.0, 1.0))


def quality_report(training: Sequence[Sequence[Slice]], generated: Sequence[Sequence[Slice]]) -> dict[str, Any]:
    """Per feature: the overlap area and the mean intra-set (training) and inter-set distances."""
    train_features = [piece_features(p) for p in training if p]
    batch_features = [piece_features(p) for p in generated if p]
    report: dict[str, Any] = {}
    for name in FEATURES:
        a = [f.values[name] for f in train_features]
        b = [f.values[name] for f in batch_features]
        intra, inter = _distances(a, a, same=True), _distances(b, a, same=False)
        report[name] = {
            "overlap": round(overlap_area(intra, inter), 3),
            "intra_mean": round(float(intra.mean()), 4) if intra.size else None,
            "inter_mean": round(float(inter.mean()), 4) if inter.size else None,
        }
    report["pieces"] = {"training": len(train_features), "generated": len(batch_features)}
    return report
