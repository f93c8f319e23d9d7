"""Checks every generated track must pass: original (no long copy) and not degenerate."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generate.originality import CopyIndex
from train.tokens import Slice, slice_notes, slice_tokens
from transcribe.repetition import piece_repetition


@dataclass(frozen=True)
class GuardSettings:
    max_copy: int = 12  # tokens in a row shared with a training piece (any key): 12 or more is a copy
    max_repetition: float = 0.5  # the ingest filter's metric
    min_distinct_pitches: int = 5
    max_rest_share: float = 0.35

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


def check_track(slices: Sequence[Slice], index: CopyIndex, settings: GuardSettings) -> GuardReport:
    tokens = slice_tokens(slices)
    total = sum(s.steps for s in slices) or 1
    rest_share = sum(s.steps for s in slices if s.is_rest) / total
    notes = slice_notes(slices)
    rep = piece_repetition(notes, 60.0)  # times are in beats: 60 bpm makes seconds == beats
    distinct = len({n.pitch for n in notes})
    copy = index.longest_copy(tokens)
    reason = None
    if copy >= settings.max_copy:
        reason = "copied"
    elif rep.score > settings.max_repetition:
        reason = "repetitive"
    elif distinct < settings.min_distinct_pitches:
        reason = "low_pitch_variety"
    elif rest_share > settings.max_rest_share:
        reason = "mostly_silent"
    return GuardReport(copy, rep.score, distinct, round(rest_share, 3), reason)
