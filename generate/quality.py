"""A batch's quality report: Yang & Lerch's overlap areas between the batch and the training set.

For each feature (``train.reference``), the distances between training pieces (intra-set) and
between generated and training pieces (inter-set) are smoothed into two densities (Gaussian KDE),
and their **overlap area** (0..1) says how much the batch looks like the training set on that
feature. The training side is the reference its model saved when it was trained.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist, pdist

from train.reference import FEATURES, Reference, features_of
from train.tokens import GridPiece, TokenizerConfig


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


def quality_report(reference: Reference, generated: Sequence[GridPiece], config: TokenizerConfig) -> dict[str, Any]:
    """Per feature: the overlap area and the mean intra-set (training) and inter-set distances."""
    batch = features_of(generated, config)
    pieces = len(reference[FEATURES[0]])
    report: dict[str, Any] = {}
    for name in FEATURES:
        a, b = reference[name], batch[name]
        intra = pdist(a) if len(a) > 1 else np.zeros(0)
        inter = cdist(b, a).ravel() if len(a) and len(b) else np.zeros(0)
        report[name] = {
            "overlap": round(overlap_area(intra, inter), 3),
            "intra_mean": round(float(intra.mean()), 4) if intra.size else None,
            "inter_mean": round(float(inter.mean()), 4) if inter.size else None,
        }
    report["pieces"] = {"training": pieces, "generated": len(batch[FEATURES[0]])}
    return report
