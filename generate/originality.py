"""The originality guard: the longest run of a track copied from any training piece, in any key.

A piece's notes are read onset by onset (every grid step where notes start). Each onset becomes
transposition-invariant symbols: a *shape* (its pitches relative to its own top pitch, and their
lengths) preceded, for every onset but the first, by a *motion* (the steps since the previous
onset and the interval from its top pitch). Every training piece goes into one
suffix automaton. Walking a track's symbols through it gives, in linear time, the longest run that
also occurs, in the same rhythm, chords and intervals, in some training piece; the onsets copied
are the shapes inside that run (the first onset of a copy matches by shape alone). Where the bar
lines fall does not matter: a copy moved by a beat is still a copy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

from train.tokens import GridPiece, TokenizerConfig, decode

Symbol = Hashable


def invariant_symbols(piece: GridPiece) -> list[tuple[Symbol, bool]]:
    """(symbol, is_shape) pairs: one shape per onset, plus a motion before each onset but the first."""
    at: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for n in piece.notes:
        at[n.step].append((n.pitch, n.steps))
    symbols: list[tuple[Symbol, bool]] = []
    top, previous = 0, 0
    for number, step in enumerate(sorted(at)):
        notes = sorted(at[step], reverse=True)
        high = notes[0][0]
        if number:
            symbols.append((("move", step - previous, high - top), False))
        symbols.append(((tuple(high - p for p, _ in notes), tuple(d for _, d in notes)), True))
        top, previous = high, step
    return symbols


class CopyIndex:
    """A generalised suffix automaton over the training pieces' invariant symbols."""

    def __init__(self, pieces: Sequence[Sequence[str]], tokenizer: TokenizerConfig) -> None:
        self.tokenizer = tokenizer
        self.pieces = 0
        self._next: list[dict[Symbol, int]] = [{}]
        self._link: list[int] = [-1]
        self._len: list[int] = [0]
        self._last = 0
        for tokens in pieces:
            self.add(decode(tokens, tokenizer))

    def add(self, piece: GridPiece) -> None:
        for symbol, _ in invariant_symbols(piece):
            self._extend(symbol)
        self._extend(("<end>", self.pieces))  # a unique separator: no match crosses two pieces
        self.pieces += 1

    def _extend(self, symbol: Symbol) -> None:
        nxt, link, length = self._next, self._link, self._len
        current = len(length)
        nxt.append({})
        length.append(length[self._last] + 1)
        link.append(0)
        p = self._last
        while p != -1 and symbol not in nxt[p]:
            nxt[p][symbol] = current
            p = link[p]
        if p != -1:
            q = nxt[p][symbol]
            if length[p] + 1 == length[q]:
                link[current] = q
            else:
                clone = len(length)
                nxt.append(dict(nxt[q]))
                length.append(length[p] + 1)
                link.append(link[q])
                while p != -1 and nxt[p].get(symbol) == q:
                    nxt[p][symbol] = clone
                    p = link[p]
                link[q] = clone
                link[current] = clone
        self._last = current

    def longest_copy(self, piece: GridPiece) -> int:
        """Length, in onsets, of the longest run of ``piece`` found in a training piece (transposed or not)."""
        symbols = invariant_symbols(piece)
        shapes_before = [0]  # shapes_before[i]: shape symbols among the first i symbols
        for _, is_shape in symbols:
            shapes_before.append(shapes_before[-1] + is_shape)
        state, matched, best = 0, 0, 0
        for i, (symbol, _) in enumerate(symbols):
            while state and symbol not in self._next[state]:
                state = self._link[state]
                matched = self._len[state]
            if symbol in self._next[state]:
                state = self._next[state][symbol]
                matched += 1
            else:
                state, matched = 0, 0
            best = max(best, shapes_before[i + 1] - shapes_before[i + 1 - matched])
        return best
