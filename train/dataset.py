"""Training data: token sequences per piece, split by piece, streamed through a tf.data pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from train.tokens import TokenizerConfig, shift_key, transposition_range
from train.vocab import SEP, Vocabulary, style_token
from transcribe.third_party import import_tensorflow

DEFAULT_STYLE = "default"


@dataclass(frozen=True)
class Piece:
    source_id: int
    tokens: Sequence[str]  # a list, or train.token_store.StoredTokens: read from the store on each use
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


def piece_ids(style: str, tokens: Sequence[str], vocab: Vocabulary) -> np.ndarray:
    """A piece as ids: the separator, its style token, then its tokens."""
    opener = vocab.index.get(style_token(style), vocab.index[SEP])
    return np.concatenate([[vocab.index[SEP], opener], vocab.encode(tokens)]).astype(np.int32)


@dataclass(frozen=True)
class IdStream:
    """Pieces' ids in one stream held in memory, and for every id the transpositions its piece allows.

    Held compactly: ids as int16 while the vocabulary fits, shifts as int8 (they lie within ``max_shift``).
    For a few hundred pieces (validation, scoring); training reads its pieces from an :class:`IdFile`.
    """

    ids: np.ndarray
    low: np.ndarray  # lowest allowed shift (semitones) at each id
    high: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def windows(self, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, lowest shift, highest shift) of the windows of ``length`` ids at ``starts``, zero past the end."""
        at = np.asarray(starts, np.int64)[:, None] + np.arange(length)
        inside = at < len(self.ids)
        at = np.minimum(at, max(len(self.ids) - 1, 0))
        if not len(self.ids):
            zeros = np.zeros(at.shape, np.int32)
            return zeros, zeros[:, 0].copy(), zeros[:, 0].copy()
        ids = np.where(inside, self.ids[at], 0).astype(np.int32)
        low = np.where(inside, self.low[at], -128).max(axis=1).astype(np.int32)
        high = np.where(inside, self.high[at], 127).min(axis=1).astype(np.int32)
        return ids, low, high

    def counts(self, size: int) -> np.ndarray:
        """How often each of ``size`` ids occurs."""
        return np.bincount(self.ids.astype(np.int64), minlength=size)


def _id_type(vocab: Vocabulary) -> type[np.signedinteger[Any]]:
    return np.int16 if len(vocab) <= np.iinfo(np.int16).max else np.int32


def stream_ids(pieces: Iterable[Piece], vocab: Vocabulary, config: TokenizerConfig) -> IdStream:
    """The pieces' ids back to back, each opened by the separator and its style token."""
    id_type = _id_type(vocab)
    parts, lows, highs = [], [], []
    for piece in pieces:
        tokens = list(piece.tokens)
        ids = piece_ids(piece.style, tokens, vocab).astype(id_type)
        low, high = transposition_range(tokens, config)
        parts.append(ids)
        lows.append(np.full(len(ids), low, np.int8))
        highs.append(np.full(len(ids), high, np.int8))
    if not parts:
        return IdStream(np.zeros(0, id_type), np.zeros(0, np.int8), np.zeros(0, np.int8))
    return IdStream(np.concatenate(parts), np.concatenate(lows), np.concatenate(highs))


class IdFile:
    """Pieces' ids back to back in a file, read a window at a time: training memory does not grow with the
    catalogue. Each piece's place and allowed transpositions are kept in memory (10 bytes a piece).

    Written piece by piece with :meth:`add` (each piece's tokens read once), then read with :meth:`windows`.
    """

    def __init__(self, path: Path, vocab: Vocabulary, config: TokenizerConfig) -> None:
        self.path, self.vocab, self.config = path, vocab, config
        self._type = np.dtype(_id_type(vocab))
        self._out: BinaryIO | None = path.open("wb")
        self._ends: list[int] = []
        self._low: list[int] = []
        self._high: list[int] = []
        self._length = 0

    def add(self, style: str, tokens: Sequence[str]) -> None:
        """Append a piece: the separator, its style token, its tokens."""
        if self._out is None:
            raise ValueError(f"{self.path} is closed for writing")
        ids = piece_ids(style, tokens, self.vocab).astype(self._type)
        low, high = transposition_range(tokens, self.config)
        self._out.write(ids.tobytes())
        self._length += len(ids)
        self._ends.append(self._length)
        self._low.append(low)
        self._high.append(high)

    def close(self) -> IdFile:
        """Finish writing; the file is read from now on."""
        if self._out is not None:
            self._out.close()
            self._out = None
            self.ends = np.array(self._ends, np.int64)
            self.low = np.array(self._low, np.int8)
            self.high = np.array(self._high, np.int8)
        return self

    @property
    def pieces(self) -> int:
        return len(self._ends)

    def __len__(self) -> int:
        return self._length

    def windows(self, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, lowest shift, highest shift) of the windows of ``length`` ids at ``starts``, zero past the end;
        a window's shifts keep every piece it touches in range."""
        self.close()
        starts = np.asarray(starts, np.int64)
        ids = np.zeros((len(starts), length), np.int32)
        size = self._type.itemsize
        with self.path.open("rb") as source:
            for row, start in enumerate(starts):
                source.seek(int(start) * size)
                got = np.frombuffer(source.read(length * size), self._type)
                ids[row, : len(got)] = got
        first = np.searchsorted(self.ends, starts, side="right")
        last = np.searchsorted(self.ends, np.minimum(starts + length, self._length) - 1, side="right")
        low = np.array([self.low[a : b + 1].max(initial=-128) for a, b in zip(first, last, strict=True)], np.int32)
        high = np.array([self.high[a : b + 1].min(initial=127) for a, b in zip(first, last, strict=True)], np.int32)
        return ids, low, high

    def counts(self, size: int, *, chunk: int = 1 << 20) -> np.ndarray:
        """How often each of ``size`` ids occurs (read in chunks)."""
        self.close()
        total = np.zeros(size, np.int64)
        with self.path.open("rb") as source:
            while block := source.read(chunk * self._type.itemsize):
                total += np.bincount(np.frombuffer(block, self._type).astype(np.int64), minlength=size)
        return total


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


class Windowed(Protocol):
    """An id stream that windows can be read from: :class:`IdStream` in memory or :class:`IdFile` on disk."""

    def __len__(self) -> int: ...

    def windows(self, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def streaming_dataset(
    stream: Windowed,
    *,
    seq_len: int,
    stride: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
    shifts: np.ndarray | None = None,
    max_windows: int | None = None,
) -> Any:
    """Batches of (inputs, next-token targets) windows, read from the stream as each batch is needed.

    Windows start every ``stride`` ids. Shuffled, each epoch reads up to ``max_windows`` of them in a new
    random order (a large catalogue's epoch is a new sample of it each time, and costs the same as a small
    one's); unshuffled, the first ``max_windows``. With ``shifts`` (see :func:`shift_table`) every window is
    moved to a random key that keeps all of its pieces in range, drawn anew each epoch: the model learns
    every key, not one normalised key. Only a batch's windows are in memory at a time.
    """
    import_tensorflow()  # once per process, without its known start-up errors
    import tensorflow as tf

    starts = np.arange(0, max(len(stream), seq_len + 1) - seq_len, stride, dtype=np.int64)
    limit = len(starts) if max_windows is None else min(max_windows, len(starts))
    offset = (shifts.shape[0] // 2) if shifts is not None else 0
    rng = np.random.default_rng(seed)  # its state goes on from epoch to epoch: new orders and keys each time

    def epoch() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        chosen = rng.permutation(starts)[:limit] if shuffle else starts[:limit]
        for at in range(0, len(chosen), batch_size):
            ids, low, high = stream.windows(chosen[at : at + batch_size], seq_len + 1)
            if shifts is not None:
                shift = rng.integers(low, np.maximum(high, low) + 1)
                ids = shifts[(shift + offset)[:, None], ids]
            yield ids[:, :-1], ids[:, 1:]

    spec = tf.TensorSpec(shape=(None, seq_len), dtype=tf.int32)
    return tf.data.Dataset.from_generator(epoch, output_signature=(spec, spec)).prefetch(2)
