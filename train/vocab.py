"""The model's vocabulary: the specials, one token per style, then the tokenizer's fixed tokens."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from train.tokens import TokenizerConfig

PAD, UNK, SEP = "<pad>", "<unk>", "<sep>"
SPECIALS = (PAD, UNK, SEP)


def style_token(style: str) -> str:
    """The token that opens every piece of a playlist's style (input only: never sampled)."""
    return f"<style:{style}>"


@dataclass
class Vocabulary:
    tokens: list[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, config: TokenizerConfig, *, styles: Iterable[str] = ()) -> Vocabulary:
        return cls(list(SPECIALS) + sorted({style_token(s) for s in styles}) + config.vocabulary())

    @property
    def styles(self) -> list[str]:
        return [t[len("<style:") : -1] for t in self.tokens if t.startswith("<style:")]

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        unknown = self.index[UNK]
        return np.array([self.index.get(t, unknown) for t in tokens], dtype=np.int32)

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
