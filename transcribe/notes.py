"""A named note record, instead of basic-pitch's anonymous 5-tuple."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class NoteEvent:
    start: float  # seconds
    end: float  # seconds
    pitch: int  # MIDI number
    velocity: int = 80

    @property
    def duration(self) -> float:
        return self.end - self.start
