"""The originality index: the longest run of a track copied from any training piece, in any key.

A piece's notes are read onset by onset (every grid step where notes start). Each onset becomes
transposition-invariant symbols: a *shape* (its pitches relative to its own top pitch, and their
lengths) preceded, for every onset but the first, by a *motion* (the steps since the previous
onset and the interval from its top pitch). Where the bar lines fall does not matter: a copy moved
by a beat is still a copy.

The training pieces' symbols, each piece closed by a separator of its own, make one array; its
suffixes that start at a shape are sorted once (a suffix array, built by prefix doubling in numpy)
and saved beside the model. A track's longest copy is then found for all its onsets at once: each
onset's symbols are binary-searched among the sorted suffixes, and the common prefix with the
neighbours found is the longest run starting there that also occurs, in the same rhythm, chords and
intervals, in some training piece (the first onset of a copy matches by shape alone). Loading is a
memory map, so a batch pays nothing for the size of the catalogue behind its model.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

import numpy as np

from db.files import atomic_path
from train.tokens import GridPiece, TokenizerConfig, decode

Symbol = Hashable
INDEX_FOLDER = "originality"
FORMAT = 1
LONGEST_REPORTED = 256  # onsets: a copy longer than this is reported as this long
_SYMBOL_MASK = (1 << 62) - 1
_BELOW_ALL = np.iinfo(np.int64).min  # what a track reads past its end: less than any symbol or separator


def invariant_symbols(piece: GridPiece) -> list[Symbol]:
    """One shape per onset, each but the first preceded by a motion: shapes at even places, motions at odd."""
    at: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for n in piece.notes:
        at[n.step].append((n.pitch, n.steps))
    symbols: list[Symbol] = []
    top, previous = 0, 0
    for number, step in enumerate(sorted(at)):
        notes = sorted(at[step], reverse=True)
        high = notes[0][0]
        if number:
            symbols.append(("move", step - previous, high - top))
        symbols.append((tuple(high - p for p, _ in notes), tuple(d for _, d in notes)))
        top, previous = high, step
    return symbols


def symbol_ids(piece: GridPiece, memo: dict[Symbol, int] | None = None) -> np.ndarray:
    """The piece's symbols as stable non-negative 62-bit ids (the same in every process): shapes at even places."""
    memo = {} if memo is None else memo
    ids = np.empty(len(symbols := invariant_symbols(piece)), np.int64)
    for i, symbol in enumerate(symbols):
        found = memo.get(symbol)
        if found is None:
            digest = hashlib.blake2b(repr(symbol).encode(), digest_size=8).digest()
            found = memo[symbol] = int.from_bytes(digest, "little") & _SYMBOL_MASK
        ids[i] = found
    return ids


def suffix_array(text: np.ndarray) -> np.ndarray:
    """The start positions of ``text``'s suffixes in sorted order (prefix doubling: O(n log^2 n), all in numpy).

    Every suffix must be unique (here each piece ends in a separator of its own), or equal ones keep no order.
    """
    n = len(text)
    if n == 0:
        return np.zeros(0, np.int64)
    rank = np.unique(text, return_inverse=True)[1].astype(np.int64).reshape(-1)
    order = np.argsort(rank, kind="stable")
    width = 1
    while True:
        if int(rank.max()) == n - 1:
            return order
        second = np.full(n, -1, np.int64)
        second[: n - width] = rank[width:]
        order = np.lexsort((second, rank))
        first_sorted, second_sorted = rank[order], second[order]
        new_group = np.ones(n, bool)
        new_group[1:] = (first_sorted[1:] != first_sorted[:-1]) | (second_sorted[1:] != second_sorted[:-1])
        rank = np.empty(n, np.int64)
        rank[order] = np.cumsum(new_group) - 1
        width *= 2


class CopyIndex:
    """Sorted shape-start suffixes of the training pieces' symbols."""

    def __init__(self, text: np.ndarray, suffixes: np.ndarray, tokenizer: TokenizerConfig, pieces: int) -> None:
        self.tokenizer = tokenizer
        self.pieces = pieces
        self._text = text
        self._suffixes = suffixes

    @classmethod
    def build(cls, pieces: Iterable[Sequence[str]], tokenizer: TokenizerConfig) -> CopyIndex:
        """The index of ``pieces`` (token sequences in ``tokenizer``'s vocabulary)."""
        parts: list[np.ndarray] = []
        shapes: list[np.ndarray] = []
        memo: dict[Symbol, int] = {}
        at = count = 0
        for count, tokens in enumerate(pieces, start=1):  # noqa: B007 - count is read after the loop
            ids = symbol_ids(decode(tokens, tokenizer), memo)
            parts += [ids, np.array([-count], np.int64)]  # a separator no other piece has: no run crosses two
            shapes.append(at + np.arange(0, len(ids), 2))
            at += len(ids) + 1
        text = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        is_shape = np.zeros(len(text), bool)
        if shapes:
            is_shape[np.concatenate(shapes)] = True
        order = suffix_array(text)
        suffixes = order[is_shape[order]]
        return cls(text, suffixes.astype(np.int32 if len(text) < 2**31 else np.int64), tokenizer, count)

    def save(self, folder: Path) -> Path:
        """Write the index under ``folder/originality`` (each file appears only when complete)."""
        target = folder / INDEX_FOLDER
        target.mkdir(parents=True, exist_ok=True)
        for name, array in (("text.npy", self._text), ("suffixes.npy", self._suffixes)):
            with atomic_path(target / name) as tmp, tmp.open("wb") as out:
                np.save(out, np.asarray(array))
        about = {"format": FORMAT, "tokenizer": self.tokenizer.to_dict(), "pieces": self.pieces}
        with atomic_path(target / "index.json") as tmp:
            tmp.write_text(json.dumps(about), encoding="utf-8")
        return target

    @classmethod
    def load(cls, folder: Path, tokenizer: TokenizerConfig) -> CopyIndex | None:
        """The index saved under ``folder`` for ``tokenizer``, memory-mapped; None when there is none (or stale)."""
        target = folder / INDEX_FOLDER
        try:
            about = json.loads((target / "index.json").read_text(encoding="utf-8"))
            if about.get("format") != FORMAT or TokenizerConfig.from_dict(about["tokenizer"]) != tokenizer:
                return None
            text = np.load(target / "text.npy", mmap_mode="r")
            suffixes = np.load(target / "suffixes.npy", mmap_mode="r")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(text, suffixes, tokenizer, int(about["pieces"]))

    def longest_copy(self, piece: GridPiece) -> int:
        """Length, in onsets, of the longest run of ``piece`` found in a training piece (transposed or not)."""
        track = symbol_ids(piece)
        if not len(track) or not len(self._suffixes):
            return 0
        width = min(len(track), 2 * LONGEST_REPORTED - 1)
        starts = np.arange(0, len(track), 2)
        columns = np.arange(width)
        places = starts[:, None] + columns[None, :]
        query = np.where(places < len(track), track[np.minimum(places, len(track) - 1)], _BELOW_ALL)

        def common(rows: np.ndarray, suffix_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """(common prefix length, whether the suffix sorts before the query) for each row's suffix."""
            at = np.minimum(np.asarray(self._suffixes[suffix_rank], np.int64)[:, None] + columns, len(self._text) - 1)
            found = np.asarray(self._text[at])
            differ = found != query[rows]
            length = np.where(differ.any(axis=1), differ.argmax(axis=1), width)
            inside = np.minimum(length, width - 1)
            before = (length < width) & (found[np.arange(len(rows)), inside] < query[rows, inside])
            return length, before

        low = np.zeros(len(starts), np.int64)
        high = np.full(len(starts), len(self._suffixes), np.int64)
        while (open_ := low < high).any():
            rows = np.flatnonzero(open_)
            middle = (low[rows] + high[rows]) // 2
            _, before = common(rows, middle)
            low[rows] = np.where(before, middle + 1, low[rows])
            high[rows] = np.where(before, high[rows], middle)
        best = np.zeros(len(starts), np.int64)
        rows = np.arange(len(starts))
        for neighbour in (low - 1, low):  # the longest common prefix is with a neighbour of the insertion point
            inside = (neighbour >= 0) & (neighbour < len(self._suffixes))
            if inside.any():
                length, _ = common(rows[inside], neighbour[inside])
                best[inside] = np.maximum(best[inside], length)
        return int(((best + 1) // 2).max())  # shapes sit at even places: a run of L symbols holds (L+1)//2 onsets
