"""The originality guard: the longest run of a track copied from any training piece, in any key.

Each token becomes transposition-invariant symbols: a *shape* (its pitches relative to its own
top pitch, and its length) preceded, for a sounding slice after the first, by a *motion* (the
interval from the previous sounding slice's top pitch). Every training piece goes into one
suffix automaton. Walking a track's symbols through it gives, in linear time, the longest run
that also occurs, in the same rhythm and intervals, in some training piece; the tokens copied
are the shapes inside that run (the first token of a copy matches by shape alone).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from train.tokens import Slice, token_slices

Symbol = Hashable


def invariant_symbols(slices: Sequence[Slice]) -> list[tuple[Symbol, bool]]:
    """(symbol, is_shape) pairs: one shape per token, plus a motion before each sounding slice but the first."""
    symbols: list[tuple[Symbol, bool]] = []
    top: int | None = None
    for piece in slices:
        if piece.is_rest:
            symbols.append((("R", piece.steps), True))
            continue
        if top is not None:
            symbols.append((("move", piece.pitches[-1] - top), False))
        top = piece.pitches[-1]
        symbols.append(((tuple(p - top for p in piece.pitches), piece.steps), True))
    return symbols


class CopyIndex:
    """A generalised suffix automaton over the training pieces' invariant symbols."""

    def __init__(self, pieces: Sequence[Sequence[str]]) -> None:
        self._next: list[dict[Symbol, int]] = [{}]
        self._link: list[int] = [-1]
        self._len: list[int] = [0]
        self._last = 0
        for number, tokens in enumerate(pieces):
            for symbol, _ in invariant_symbols(token_slices(tokens)):
                self._extend(symbol)
            self._extend(("<end>", number))  # a unique separator: no match crosses two pieces

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

    def longest_copy(self, tokens: Sequence[str]) -> int:
        """Length, in tokens, of the longest run of ``tokens`` found in a training piece (transposed or not)."""
        symbols = invariant_symbols(token_slices(tokens))
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
