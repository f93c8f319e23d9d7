"""Training data: token sequences per piece, split by piece, streamed through a tf.data pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from train.vocab import SEP, Vocabulary, style_token

DEFAULT_STYLE = "default"


@dataclass(frozen=True)
class Piece:
    source_id: int
    tokens: list[str]
    tempo: float
    style: str = DEFAULT_STYLE


def _side(source_id: int, seed: int) -> float:
    """A piece's fixed place in [0, 1): the same every run, so the validation set only grows."""
    digest = hashlib.sha256(f"{seed}:{source_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_pieces(pieces: Sequence[Piece], *, validation_share: float, seed: int) -> tuple[list[Piece], list[Piece]]:
    """Split by whole piece (no piece on both sides), each piece's side fixed by a hash of its id.

    Retraining on more pieces keeps every old validation piece in validation, so a new model and
    the current one can be compared on the same pieces. At least one piece lands on each side
    when there are two or more (for a handful of pieces that one may move once more arrive).
    """
    ordered = sorted(pieces, key=lambda p: _side(p.source_id, seed))
    if len(ordered) < 2:
        return list(ordered), []
    val = [p for p in ordered if _side(p.source_id, seed) < validation_share] or ordered[:1]
    if len(val) == len(ordered):
        val = val[:-1]
    chosen = {p.source_id for p in val}
    return [p for p in ordered if p.source_id not in chosen], val


def piece_ids(piece: Piece, vocab: Vocabulary) -> np.ndarray:
    """A piece as ids: the separator, its style token, then its tokens."""
    style = vocab.index.get(style_token(piece.style), vocab.index[SEP])
    return np.concatenate([[vocab.index[SEP], style], vocab.encode(piece.tokens)]).astype(np.int32)


def stream_ids(pieces: Sequence[Piece], vocab: Vocabulary) -> np.ndarray:
    """All pieces' ids in one stream, each opened by the separator and its style token."""
    parts = [piece_ids(p, vocab) for p in pieces]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def window_count(n_ids: int, seq_len: int, stride: int) -> int:
    return len(range(0, max(n_ids, seq_len + 1) - seq_len, stride))


def streaming_dataset(
    ids: np.ndarray, *, seq_len: int, stride: int, batch_size: int, shuffle: bool, seed: int, shuffle_buffer: int = 4096
) -> Any:
    """(inputs, next-token targets) windows cut from the id stream as they are read.

    Only the id stream itself is held (not ``seq_len`` copies of it): windows start every
    ``stride`` ids, are shuffled through a bounded buffer, batched and prefetched.
    """
    import tensorflow as tf

    if len(ids) < seq_len + 1:
        ids = np.concatenate([ids, np.zeros(seq_len + 1 - len(ids), dtype=np.int32)])
    ids_t = tf.constant(ids, tf.int32)
    starts = tf.data.Dataset.range(0, len(ids) - seq_len, stride)
    if shuffle:
        starts = starts.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def cut(start: Any) -> tuple[Any, Any]:
        window = tf.reshape(ids_t[start : start + seq_len + 1], [seq_len + 1])  # a static shape for Keras
        return window[:-1], window[1:]

    return starts.map(cut, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)
