"""The originality guard: the longest run of a track copied from any training piece, in any key.

Tokens become transposition-invariant symbols (each slice's pitches relative to the previous
sounding slice's top pitch, plus its length), and every training piece goes into one suffix
automaton. Walking a track's symbols through it gives, in linear time, the longest run of
consecutive tokens that also occurs, in the same rhythm and intervals, in some training piece.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from train.tokens import Slice, token_slices

Symbol = Hashable


def invariant_symbols(slices: Sequence[Slice]) -> list[Symbol]:
    symbols: list[Symbol] = []
    ref: int | None = None
    for piece in slices:
        if piece.is_rest:
            symbols.append(("R", piece.steps))
            continue
        anchor = ref if ref is not None else piece.pitches[-1]
        symbols.append((tuple(p - anchor for p in piece.pitches), piece.steps))
        ref = piece.pitches[-1]
    return symbols


class CopyIndex:
    """A generalised suffix automaton over the training pieces' invariant symbols."""

    def __init__(self, pieces: Sequence[Sequence[str]]) -> None:
        self._next: list[dict[Symbol, int]] = [{}]
        self._link: list[int] = [-1]
        self._len: list[int] = [0]
        self._last = 0
        for number, tokens in enumerate(pieces):
            for symbol in invariant_symbols(token_slices(tokens)):
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
        state, matched, best = 0, 0, 0
        for symbol in invariant_symbols(token_slices(tokens)):
            while state and symbol not in self._next[state]:
                state = self._link[state]
                matched = self._len[state]
            if symbol in self._next[state]:
                state = self._next[state][symbol]
                matched += 1
            else:
                state, matched = 0, 0
            best = max(best, matched)
        return best
