"""The token vocabulary, with rare tokens mapped to a near frequent one rather than deleted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from train.tokens import DURATIONS, parse_token

PAD, UNK, SEP = "<pad>", "<unk>", "<sep>"
SPECIALS = (PAD, UNK, SEP)


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


@dataclass
class Vocabulary:
    tokens: list[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, pieces: Iterable[Sequence[str]], *, min_count: int = 2, max_size: int = 2000) -> Vocabulary:
        counts = Counter(t for piece in pieces for t in piece)
        frequent = [t for t, c in counts.most_common(max_size - len(SPECIALS)) if c >= min_count]
        return cls(list(SPECIALS) + sorted(frequent))

    def __len__(self) -> int:
        return len(self.tokens)

    def map_token(self, token: str) -> int:
        """The id of ``token``, or of its nearest frequent stand-in, or ``<unk>``."""
        if token in self.index:
            return self.index[token]
        for candidate in _candidates(token):
            if candidate in self.index:
                return self.index[candidate]
        return self.index[UNK]

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array([self.map_token(t) for t in tokens], dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def special_ids(self) -> list[int]:
        return [self.index[t] for t in SPECIALS]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.tokens), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(json.loads(path.read_text(encoding="utf-8")))
