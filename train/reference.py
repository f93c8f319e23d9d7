"""What a model's batches are compared with, measured once at training: Yang & Lerch's features of its pieces.

After "On the evaluation of generative models in music" (Yang & Lerch, 2018; their mgeval code): each
piece is described by a few musical features, read in the token domain (notes on the beat grid, times
in beats), so generated and training pieces compare like with like. A model keeps the features of an
evenly drawn sample of the pieces it trained on (``REFERENCE_PIECES`` at most, the set size the paper
works with), so a batch's quality report costs the same for a catalogue of 100 pieces or 10,000.

Features: pitch count (distinct pitches used), pitch-class histogram, pitch range, average pitch
interval (mean absolute step between successive onsets' top notes), average inter-onset interval
(beats), and the note-length histogram.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from db.files import atomic_path
from train.structure import drawn
from train.tokens import GridPiece, TokenizerConfig, decode

FEATURES = ("pitch_count", "pitch_class_histogram", "pitch_range", "avg_pitch_interval", "avg_ioi", "note_length")
REFERENCE_FILE = "reference.npz"
REFERENCE_PIECES = 200

Reference = Mapping[str, np.ndarray]  # feature -> one row per piece


def piece_features(piece: GridPiece, config: TokenizerConfig) -> dict[str, np.ndarray]:
    """The six features of one piece on the grid (scalars as length-1 vectors)."""
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
    return {
        "pitch_count": np.array([len(set(pitches))], float),
        "pitch_class_histogram": histogram / max(histogram.sum(), 1.0),
        "pitch_range": np.array([max(pitches) - min(pitches) if pitches else 0], float),
        "avg_pitch_interval": np.array([np.mean(np.abs(np.diff(top_line))) if len(top_line) > 1 else 0.0]),
        "avg_ioi": np.array([np.mean(np.diff(onsets)) / spb if len(onsets) > 1 else 0.0]),
        "note_length": length_hist / max(length_hist.sum(), 1.0),
    }


def features_of(pieces: Sequence[GridPiece], config: TokenizerConfig) -> dict[str, np.ndarray]:
    """The features of the pieces that have notes, stacked: feature -> (pieces, dimensions)."""
    rows = [piece_features(p, config) for p in pieces if p.notes]
    widths = piece_features(GridPiece(4, ()), config)
    return {name: np.array([r[name] for r in rows], float).reshape(len(rows), len(widths[name])) for name in FEATURES}


def reference_features(
    pieces: Sequence[Sequence[str]], config: TokenizerConfig, *, limit: int = REFERENCE_PIECES, seed: int = 0
) -> dict[str, np.ndarray]:
    """The features of at most ``limit`` of the pieces (token sequences), drawn with ``seed``; only those decoded."""
    return features_of([decode(tokens, config) for tokens in drawn(pieces, seed, limit)], config)


def save_reference(path: Path, reference: Reference) -> Path:
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        np.savez(out, **{name: np.asarray(reference[name]) for name in FEATURES})
    return path


def load_reference(path: Path) -> dict[str, np.ndarray] | None:
    """The reference saved at ``path``; None when there is none (a model trained before it was saved)."""
    try:
        with np.load(path) as data:
            return {name: np.asarray(data[name]) for name in FEATURES}
    except (OSError, KeyError, ValueError):
        return None
