"""Note/chord tokens on a beat grid.

A piece is cut into vertical slices (music21's ``chordify``) on a sixteenth-note grid of the
piece's own tempo: each slice is the set of sounding pitches (or a rest) and its length in
grid steps. One slice is one token, ``"60.64.67_4"`` (C major triad for a beat) or ``"R_2"``
(an eighth rest). Slices longer than the largest duration are split, so tokenising and
de-tokenising a piece round-trips exactly on the grid.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from transcribe.notes import NoteEvent

STEPS_PER_BEAT = 4
DURATIONS = (16, 12, 8, 6, 4, 3, 2, 1)  # grid steps a token may last, largest first
MAX_VOICES = 4
REST = "R"
PITCH_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")


@dataclass(frozen=True)
class Slice:
    pitches: tuple[int, ...]  # empty for a rest
    steps: int

    @property
    def is_rest(self) -> bool:
        return not self.pitches


def split_steps(steps: int) -> list[int]:
    """Greedy split of a length into allowed durations: 5 -> [4, 1], 20 -> [16, 4]."""
    parts: list[int] = []
    while steps > 0:
        part = next(d for d in DURATIONS if d <= steps)
        parts.append(part)
        steps -= part
    return parts


def _voices(pitches: Iterable[int]) -> tuple[int, ...]:
    ordered = sorted(set(pitches))
    if len(ordered) > MAX_VOICES:  # keep the bass and the top voices
        ordered = ordered[:1] + ordered[-(MAX_VOICES - 1) :]
    return tuple(ordered)


def slices_from_midi(path: Path) -> list[Slice]:
    """Parse a MIDI file with music21 and chordify it into grid slices (leading/trailing rests dropped)."""
    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = converter.parse(str(path), quantizePost=True, quarterLengthDivisors=(STEPS_PER_BEAT,))
        chords = score.chordify().flatten().notes
    slices: list[Slice] = []
    cursor: int | None = None
    for element in chords:
        start = round(float(element.offset) * STEPS_PER_BEAT)
        steps = round(float(element.quarterLength) * STEPS_PER_BEAT)
        if steps <= 0:
            continue
        if cursor is not None and start > cursor:
            slices.append(Slice((), start - cursor))
        elif cursor is not None and start < cursor:  # overlap after quantisation: shorten the start
            start = cursor
            steps = max(1, steps - (cursor - start))
        slices.append(Slice(_voices(p.midi for p in element.pitches), steps))
        cursor = start + steps
    return merge_jitter(slices)


def merge_jitter(slices: Sequence[Slice]) -> list[Slice]:
    """Fold one-step slices that are only a chord's notes arriving a step apart into that chord.

    Transcribed chords rarely start on one grid step; without this, every chord becomes two or
    three one-step slices of its subsets and the vocabulary fills with fragments.
    """
    merged: list[Slice] = []
    for piece in slices:
        previous = merged[-1] if merged else None
        if previous and previous.steps == 1 and previous.pitches and set(previous.pitches) <= set(piece.pitches):
            merged[-1] = Slice(piece.pitches, piece.steps + 1)
        elif previous and piece.steps == 1 and piece.pitches and set(piece.pitches) <= set(previous.pitches):
            merged[-1] = Slice(previous.pitches, previous.steps + 1)
        else:
            merged.append(piece)
    return merged


def slice_tokens(slices: Sequence[Slice]) -> list[str]:
    tokens: list[str] = []
    for piece in slices:
        body = ".".join(str(p) for p in piece.pitches) if piece.pitches else REST
        tokens.extend(f"{body}_{part}" for part in split_steps(piece.steps))
    return tokens


def parse_token(token: str) -> Slice | None:
    """The slice a token stands for; ``None`` for special tokens such as ``<sep>``."""
    body, _, steps = token.rpartition("_")
    if not body or not steps.isdigit():
        return None
    pitches = () if body == REST else tuple(int(p) for p in body.split("."))
    return Slice(pitches, int(steps))


def token_slices(tokens: Iterable[str]) -> list[Slice]:
    return [s for s in (parse_token(t) for t in tokens) if s is not None]


def transpose_token(token: str, semitones: int) -> str:
    piece = parse_token(token)
    if piece is None or piece.is_rest or semitones == 0:
        return token
    shifted = [min(127, max(0, p + semitones)) for p in piece.pitches]
    return f"{'.'.join(str(p) for p in sorted(set(shifted)))}_{piece.steps}"


def key_shift(key: str | None) -> int:
    """Semitones that take a key (``"G major"``, ``"E minor"``) to C major or A minor, in -5..6."""
    if not key:
        return 0
    tonic, _, mode = key.partition(" ")
    names = {name: i for i, name in enumerate(PITCH_NAMES)} | {"D-": 1, "D#": 3, "G-": 6, "G#": 8, "A#": 10, "C-": 11}
    index = names.get(tonic.upper()[:1] + tonic[1:], 0)
    target = 9 if mode == "minor" else 0
    shift = (target - index) % 12
    return shift - 12 if shift > 6 else shift


def slice_notes(slices: Sequence[Slice]) -> list[NoteEvent]:
    """The slices as notes timed in beats (one note per pitch of each slice)."""
    notes, step = [], 0
    for piece in slices:
        notes += [NoteEvent(step / STEPS_PER_BEAT, (step + piece.steps) / STEPS_PER_BEAT, p) for p in piece.pitches]
        step += piece.steps
    return notes
