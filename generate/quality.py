"""A batch's quality report: Yang & Lerch's overlap areas between the batch and the training set.

After "On the evaluation of generative models in music" (Yang & Lerch, 2018; their mgeval code):
each piece is described by a few musical features; for each feature, the distances between
training pieces (intra-set) and between generated and training pieces (inter-set) are smoothed
into two densities (Gaussian KDE), and their **overlap area** (0..1) says how much the batch
looks like the training set on that feature. Both sides are read in the token domain (notes on
the beat grid, times in beats), so the comparison is like with like.

Features: pitch count (distinct pitches used), pitch-class histogram, pitch range, average
pitch interval (mean absolute step between successive onsets' top notes), average inter-onset
interval (beats), and the note-length histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from train.tokens import GridPiece, TokenizerConfig

FEATURES = ("pitch_count", "pitch_class_histogram", "pitch_range", "avg_pitch_interval", "avg_ioi", "note_length")


@dataclass(frozen=True)
class PieceFeatures:
    values: dict[str, np.ndarray]  # feature -> a vector (scalars as length-1 vectors)


def piece_features(piece: GridPiece, config: TokenizerConfig) -> PieceFeatures:
    """The six features of one piece on the grid."""
    pitches = [n.pitch for n in piece.notes]
    tops: dict[int, int] = {}
    for n in piece.notes:
        tops[n.step] = max(tops.get(n.step, 0), n.pitch)
    onsets = sorted(tops)
    top_line = [tops[s] for s in onsets]
    histogram = np.bincount(np.array(pitches, dtype=int) % 12, minlength=12).astype(float) if pitches else np.zeros(12)
    bins = np.array(sorted(config.durations), float)
    length_hist = np.zeros(len(bins))
    for n in piece.notes:
        length_hist[int(np.argmin(np.abs(np.log2(bins) - np.log2(n.steps))))] += 1
    spb = config.steps_per_beat
    return PieceFeatures(
        {
            "pitch_count": np.array([len(set(pitches))], float),
            "pitch_class_histogram": histogram / max(histogram.sum(), 1.0),
            "pitch_range": np.array([max(pitches) - min(pitches) if pitches else 0], float),
            "avg_pitch_interval": np.array([np.mean(np.abs(np.diff(top_line))) if len(top_line) > 1 else 0.0]),
            "avg_ioi": np.array([np.mean(np.diff(onsets)) / spb if len(onsets) > 1 else 0.0]),
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


def quality_report(
    training: Sequence[GridPiece], generated: Sequence[GridPiece], config: TokenizerConfig
) -> dict[str, Any]:
    """Per feature: the overlap area and the mean intra-set (training) and inter-set distances."""
    train_features = [piece_features(p, config) for p in training if p.notes]
    batch_features = [piece_features(p, config) for p in generated if p.notes]
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
