"""Checks every generated track must pass: original (no long copy) and not degenerate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from train.originality import CopyIndex
from train.tokens import GridPiece, TokenizerConfig
from transcribe.repetition import piece_repetition


@dataclass(frozen=True)
class GuardSettings:
    max_copy: int = 12  # onsets in a row shared with a training piece (any key): 12 or more is a copy
    max_repetition: float = 0.5  # the ingest filter's metric
    min_distinct_pitches: int = 5
    max_rest_share: float = 0.35

    def __post_init__(self) -> None:
        if self.max_copy < 2 or not 0 < self.max_repetition <= 1 or not 0 <= self.max_rest_share <= 1:
            raise ValueError("max_copy must be at least 2 and the shares lie in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class GuardReport:
    longest_copy: int
    repetition_score: float
    distinct_pitches: int
    rest_share: float
    reason: str | None  # None when the track passes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def rest_share(piece: GridPiece, config: TokenizerConfig) -> float:
    """The share of the piece's bars (grid steps) where no note sounds."""
    total = piece.bars(config) * piece.bar_steps(config)
    if total <= 0:
        return 1.0
    sounding = np.zeros(total, bool)
    for n in piece.notes:
        sounding[n.step : n.step + n.steps] = True
    return float(1.0 - sounding.mean())


def check_track(piece: GridPiece, index: CopyIndex, settings: GuardSettings) -> GuardReport:
    config = index.tokenizer
    silent = rest_share(piece, config)
    rep = piece_repetition(piece.seconds(60.0, config), 60.0)  # at 60 bpm, seconds are beats
    distinct = len({n.pitch for n in piece.notes})
    copy = index.longest_copy(piece)
    reason = None
    if copy >= settings.max_copy:
        reason = "copied"
    elif rep.score > settings.max_repetition:
        reason = "repetitive"
    elif distinct < settings.min_distinct_pitches:
        reason = "low_pitch_variety"
    elif silent > settings.max_rest_share:
        reason = "mostly_silent"
    return GuardReport(copy, rep.score, distinct, round(silent, 3), reason)
