"""Training data: token sequences per piece, split by piece, windowed into a tf.data pipeline."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from train.vocab import SEP, Vocabulary


@dataclass(frozen=True)
class Piece:
    source_id: int
    tokens: list[str]
    tempo: float


def split_pieces(pieces: Sequence[Piece], *, validation_share: float, seed: int) -> tuple[list[Piece], list[Piece]]:
    """Split by whole piece (no piece is on both sides); at least one piece on each side when there are two."""
    ordered = sorted(pieces, key=lambda p: p.source_id)
    random.Random(seed).shuffle(ordered)
    n_val = max(1, round(len(ordered) * validation_share)) if len(ordered) > 1 else 0
    return ordered[n_val:], ordered[:n_val]


def stream_ids(pieces: Sequence[Piece], vocab: Vocabulary) -> np.ndarray:
    """All pieces' ids in one stream, each piece preceded by the separator."""
    sep = vocab.index[SEP]
    parts = [np.concatenate([[sep], vocab.encode(p.tokens)]).astype(np.int32) for p in pieces]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def windows(ids: np.ndarray, seq_len: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, next-token targets), each (n, seq_len); a stream shorter than one window gives one padded window."""
    if len(ids) < seq_len + 1:
        ids = np.concatenate([ids, np.zeros(seq_len + 1 - len(ids), dtype=np.int32)])
    starts = range(0, len(ids) - seq_len, stride)
    x = np.stack([ids[s : s + seq_len] for s in starts])
    y = np.stack([ids[s + 1 : s + seq_len + 1] for s in starts])
    return x, y


def tf_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool, seed: int) -> Any:
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
