"""Training data: token sequences per piece, split by piece, streamed through a tf.data pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from train.tokens import TokenizerConfig, shift_key, transposition_range
from train.vocab import SEP, Vocabulary, style_token
from transcribe.third_party import import_tensorflow

DEFAULT_STYLE = "default"


@dataclass(frozen=True)
class Piece:
    source_id: int
    tokens: list[str]
    tempo: float
    style: str = DEFAULT_STYLE
    groove: dict[str, Any] | None = None  # transcribe.groove.Groove, measured on the source's audio
    centroid: float | None = None  # the source's mean spectral centroid (Hz)


def _side(source_id: int, seed: int) -> float:
    """A piece's fixed place in [0, 1): the same every run, so the validation set only grows."""
    digest = hashlib.sha256(f"{seed}:{source_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_pieces(
    pieces: Sequence[Piece], *, validation_share: float, seed: int, max_validation: int | None = None
) -> tuple[list[Piece], list[Piece]]:
    """Split by whole piece (no piece on both sides), each piece's side fixed by a hash of its id.

    Retraining on more pieces never moves a piece a model trained on into validation, so a new
    model and the current one are compared on pieces neither trained on. ``max_validation`` keeps
    the validation pieces with the lowest hashes: as pieces arrive that bound only tightens, so
    validation costs the same for any catalogue size. At least one piece lands on each side when
    there are two or more (for a handful of pieces that one may move once more arrive).
    """
    ordered = sorted(pieces, key=lambda p: _side(p.source_id, seed))
    if len(ordered) < 2:
        return list(ordered), []
    val = [p for p in ordered if _side(p.source_id, seed) < validation_share] or ordered[:1]
    val = val[:max_validation] if max_validation else val
    if len(val) == len(ordered):
        val = val[:-1]
    chosen = {p.source_id for p in val}
    return [p for p in ordered if p.source_id not in chosen], val


def piece_ids(piece: Piece, vocab: Vocabulary) -> np.ndarray:
    """A piece as ids: the separator, its style token, then its tokens."""
    style = vocab.index.get(style_token(piece.style), vocab.index[SEP])
    return np.concatenate([[vocab.index[SEP], style], vocab.encode(piece.tokens)]).astype(np.int32)


@dataclass(frozen=True)
class IdStream:
    """All pieces' ids in one stream, and for every id the transpositions its piece allows.

    Held compactly (the whole catalogue's training tokens sit in memory twice, here and in TensorFlow):
    ids as int16 while the vocabulary fits, shifts as int8 (they lie within ``max_shift``), so a
    10,000-piece catalogue's 6.6 million tokens take 26 MB instead of 79.
    """

    ids: np.ndarray
    low: np.ndarray  # lowest allowed shift (semitones) at each id
    high: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def stream_ids(pieces: Sequence[Piece], vocab: Vocabulary, config: TokenizerConfig) -> IdStream:
    """The pieces' ids back to back, each opened by the separator and its style token."""
    id_type = np.int16 if len(vocab) <= np.iinfo(np.int16).max else np.int32
    parts, lows, highs = [], [], []
    for piece in pieces:
        ids = piece_ids(piece, vocab).astype(id_type)
        low, high = transposition_range(piece.tokens, config)
        parts.append(ids)
        lows.append(np.full(len(ids), low, np.int8))
        highs.append(np.full(len(ids), high, np.int8))
    if not parts:
        return IdStream(np.zeros(0, id_type), np.zeros(0, np.int8), np.zeros(0, np.int8))
    return IdStream(np.concatenate(parts), np.concatenate(lows), np.concatenate(highs))


def shift_table(vocab: Vocabulary, config: TokenizerConfig) -> np.ndarray:
    """(2 * max_shift, vocabulary) ids: row ``s + max_shift`` maps every id to its id in the key ``s`` semitones
    away (the key token moves; pitches, written relative to the key, stay)."""
    shifts = range(-config.max_shift, config.max_shift)
    table = np.tile(np.arange(len(vocab), dtype=np.int32), (len(shifts), 1))
    for row, shift in enumerate(shifts):
        for token, i in vocab.index.items():
            table[row, i] = vocab.index.get(shift_key(token, shift), i)
    return table


def window_count(n_ids: int, seq_len: int, stride: int) -> int:
    return len(range(0, max(n_ids, seq_len + 1) - seq_len, stride))


def streaming_dataset(
    stream: IdStream,
    *,
    seq_len: int,
    stride: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    shifts: np.ndarray | None = None,
    shuffle_buffer: int = 4096,
) -> Any:
    """(inputs, next-token targets) windows cut from the id stream as they are read.

    Only the id stream itself is held (not ``seq_len`` copies of it): windows start every
    ``stride`` ids, are shuffled through a bounded buffer, batched and prefetched. With ``shifts``
    (see :func:`shift_table`) every window is moved to a random key that keeps all of its pieces in
    range, drawn anew each epoch: the model learns every key, not one normalised key.
    """
    import_tensorflow()  # once per process, without its known start-up errors
    import tensorflow as tf

    ids, low, high = stream.ids, stream.low, stream.high
    if len(ids) < seq_len + 1:
        pad = seq_len + 1 - len(ids)
        ids, low, high = (np.concatenate([a, np.zeros(pad, dtype=a.dtype)]) for a in (ids, low, high))
    ids_t, low_t, high_t = (tf.constant(a) for a in (ids, low, high))  # compact, as the stream holds them
    table = tf.constant(shifts, tf.int32) if shifts is not None else None
    offset = (shifts.shape[0] // 2) if shifts is not None else 0
    keys = tf.random.Generator.from_seed(seed)  # its state goes on from epoch to epoch: new keys each time
    starts = tf.data.Dataset.range(0, len(ids) - seq_len, stride)
    if shuffle:
        starts = starts.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def cut(start: Any) -> tuple[Any, Any]:
        window = tf.cast(tf.reshape(ids_t[start : start + seq_len + 1], [seq_len + 1]), tf.int32)  # static shape
        if table is not None:
            lo = tf.cast(tf.reduce_max(low_t[start : start + seq_len + 1]), tf.int32)
            hi = tf.cast(tf.reduce_min(high_t[start : start + seq_len + 1]), tf.int32)
            shift = keys.uniform([], minval=lo, maxval=tf.maximum(hi, lo) + 1, dtype=tf.int32)
            window = tf.gather(table[shift + offset], window)
        return window[:-1], window[1:]

    return starts.map(cut, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)
