"""The token vocabulary, with rare tokens mapped to a near frequent one rather than deleted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from train.tokens import DURATIONS, Slice, parse_token

PAD, UNK, SEP = "<pad>", "<unk>", "<sep>"
SPECIALS = (PAD, UNK, SEP)


def style_token(style: str) -> str:
    """The token that opens every piece of a playlist's style (input only: never sampled)."""
    return f"<style:{style}>"


def _candidates(token: str) -> list[str]:
    """Nearer-to-farther stand-ins for a token: fewer inner voices, then the top or bass voice, then other lengths."""
    piece = parse_token(token)
    if piece is None:
        return []
    body_options: list[tuple[int, ...]] = []
    pitches = piece.pitches
    while len(pitches) > 2:  # drop inner voices one at a time
        pitches = pitches[:1] + pitches[2:]
        body_options.append(pitches)
    if piece.pitches:
        body_options += [(piece.pitches[-1],), (piece.pitches[0],)]
    bodies = [".".join(map(str, p)) for p in body_options] or ["R"]
    lengths = [piece.steps] + sorted(DURATIONS, key=lambda d: abs(d - piece.steps))
    return [f"{b}_{n}" for n in lengths for b in bodies]


def token_distance(a: Slice, b: Slice) -> float:
    """How far apart two slices sound: a rest is far from any chord; lengths count on a log scale."""
    length = abs(np.log2(a.steps) - np.log2(b.steps))
    if a.is_rest or b.is_rest:
        return length + (0.0 if a.is_rest == b.is_rest else 100.0)
    shared = len({p % 12 for p in a.pitches} ^ {p % 12 for p in b.pitches})
    return (
        abs(a.pitches[0] - b.pitches[0]) / 2  # bass
        + abs(a.pitches[-1] - b.pitches[-1]) / 2  # top
        + abs(len(a.pitches) - len(b.pitches))
        + shared
        + 3 * length
    )


@dataclass
class Vocabulary:
    tokens: list[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self._mapped: dict[str, int] = {}

    @classmethod
    def build(
        cls,
        pieces: Iterable[Sequence[str]],
        *,
        styles: Iterable[str] = (),
        min_count: int = 2,
        max_size: int = 2000,
    ) -> Vocabulary:
        """Specials, one token per style, then the tokens seen ``min_count`` times (most frequent first)."""
        counts = Counter(t for piece in pieces for t in piece if not t.startswith("<"))
        frequent = [t for t, c in counts.most_common(max_size - len(SPECIALS)) if c >= min_count]
        return cls(list(SPECIALS) + sorted({style_token(s) for s in styles}) + sorted(frequent))

    @property
    def styles(self) -> list[str]:
        return [t[len("<style:") : -1] for t in self.tokens if t.startswith("<style:")]

    def __len__(self) -> int:
        return len(self.tokens)

    def map_token(self, token: str) -> int:
        """The id of ``token``, or of its nearest frequent stand-in; ``<unk>`` only for what is no token at all.

        A stand-in is first looked for by dropping inner voices, then keeping the top or bass
        voice, then other lengths; failing those, the nearest token in the vocabulary by bass,
        top note, voices, pitch classes and length (see :func:`token_distance`).
        """
        if token in self.index:
            return self.index[token]
        if token in self._mapped:
            return self._mapped[token]
        found = next((self.index[c] for c in _candidates(token) if c in self.index), None)
        if found is None:
            piece = parse_token(token)
            pool = [(i, parse_token(t)) for i, t in enumerate(self.tokens) if not t.startswith("<")]
            scored = [(token_distance(piece, other), i) for i, other in pool if piece is not None and other is not None]
            found = min(scored)[1] if scored else self.index[UNK]
        self._mapped[token] = found
        return found

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array([self.map_token(t) for t in tokens], dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def special_ids(self) -> list[int]:
        """Ids that are never sampled: the specials and the style tokens."""
        return [i for i, t in enumerate(self.tokens) if t.startswith("<")]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.tokens), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(json.loads(path.read_text(encoding="utf-8")))
