"""Note-level tokens on a metrical grid (REMI: bar, position, pitch, duration).

A piece is quantised against its own beat grid (``transcribe.beats.BeatGrid``: tracked beat times,
meter, bar phase), four steps to a beat, and written as::

    Meter_4 Key_7 Bar Pos_0 Pitch_67 Dur_4 Pitch_60 Dur_8 Pos_4 Pitch_69 Dur_2 ... Bar ...

the meter, the key (Krumhansl-Schmuckler over the notes' lengths: ``Key_0``-``Key_11`` major on C..B,
``Key_12``-``Key_23`` minor), one ``Bar`` per bar (an empty bar is a lone ``Bar``), one ``Pos_k`` per
grid step where notes start, then those notes highest first (the melody is predicted before what
sounds under it), each as its pitch and its length in steps.

Pitches are written relative to the key's reference pitch class (its tonic, or for a minor key the
tonic of its relative major, so keys that share a signature share a spelling): ``Pitch_67`` in
``Key_7`` (G major) is MIDI 74. The key token alone says where the music sits, so moving a piece to
another key changes that one token: training moves every window into a random key, and the model
learns harmony once, not once per key, and writes in every key. The vocabulary is fixed by
:class:`TokenizerConfig`, saved beside every model, so a model always finds the tokenizer it was
trained with.

Why not MidiTok's REMI: MidiTok quantises against the MIDI file's own ticks and tempo map, and a
basic-pitch transcription has one fixed tempo and no bars; its notes must be placed against the
tracked beats first, which is the part that matters. Encoding that grid takes a page, and round-trips
exactly (tests/train/test_tokens.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transcribe.beats import BeatGrid
from transcribe.notes import NoteEvent

BAR = "Bar"


class TokenizeError(ValueError):
    """A piece that cannot be put on the grid (no notes, or a meter the tokens cannot hold)."""


@dataclass(frozen=True)
class TokenizerConfig:
    """The token vocabulary and grid; saved as ``tokenizer.json`` beside every model."""

    version: str = "remi-3"
    steps_per_beat: int = 4
    meters: tuple[int, ...] = (3, 4)  # beats per bar
    durations: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)  # steps a note may last
    pitch_low: int = 21
    pitch_high: int = 108
    max_notes_per_position: int = 6  # the top voices and the bass are kept
    max_shift: int = 6  # training transposes each piece by up to this many semitones either way

    def __post_init__(self) -> None:
        if self.steps_per_beat < 1 or not self.meters or not self.durations:
            raise ValueError("a tokenizer needs steps per beat, meters and durations")
        if not 0 <= self.pitch_low < self.pitch_high <= 127:
            raise ValueError("pitch range must lie within MIDI's 0..127")

    @property
    def positions(self) -> int:
        return max(self.meters) * self.steps_per_beat

    def vocabulary(self) -> list[str]:
        """Every token this grid can write, in a fixed order."""
        return (
            [f"Meter_{m}" for m in self.meters]
            + [f"Key_{k}" for k in range(24)]
            + [BAR]
            + [f"Pos_{p}" for p in range(self.positions)]
            + [f"Pitch_{p}" for p in range(self.pitch_low - 11, self.pitch_high + 1)]
            + [f"Dur_{d}" for d in self.durations]
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerConfig:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TokenizerConfig:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True, order=True)
class GridNote:
    step: int  # grid steps from the first bar's downbeat
    pitch: int
    steps: int  # length in grid steps


@dataclass(frozen=True)
class GridPiece:
    """Notes on the grid, and the bar length in beats."""

    meter: int
    notes: tuple[GridNote, ...]

    def bar_steps(self, config: TokenizerConfig) -> int:
        return self.meter * config.steps_per_beat

    def bars(self, config: TokenizerConfig) -> int:
        return (max(n.step for n in self.notes) // self.bar_steps(config) + 1) if self.notes else 0

    def seconds(self, bpm: float, config: TokenizerConfig) -> list[NoteEvent]:
        """The notes timed in seconds at a steady ``bpm``."""
        step = 60.0 / bpm / config.steps_per_beat
        return [NoteEvent(n.step * step, (n.step + n.steps) * step, n.pitch) for n in sorted(self.notes)]


def nearest_duration(steps: float, config: TokenizerConfig) -> int:
    """The allowed length nearest to ``steps`` on a log scale (at least one step)."""
    steps = max(steps, 1.0)
    return min(config.durations, key=lambda d: abs(np.log2(d) - np.log2(steps)))


def fit_meter(meter: int, config: TokenizerConfig) -> int:
    """Beats per bar as the tokens hold them: 2 beats pair into 4, 6 and 8 split in half.

    Raises:
        TokenizeError: a meter that neither fits nor pairs or splits into one that does.
    """
    for candidate in (meter, meter * 2, meter // 2 if meter % 2 == 0 else 0):
        if candidate in config.meters:
            return candidate
    raise TokenizeError(f"a bar of {meter} beats does not fit the tokenizer's meters {config.meters}")


def quantise(notes: Sequence[NoteEvent], grid: BeatGrid, config: TokenizerConfig) -> GridPiece:
    """Place notes on the grid of their tracked beats; the bar holding the first note becomes bar 0.

    Raises:
        TokenizeError: no notes inside the tokenizer's pitch range.
    """
    kept = [n for n in notes if config.pitch_low <= n.pitch <= config.pitch_high]
    if not kept:
        raise TokenizeError("no notes in the tokenizer's pitch range")
    meter = fit_meter(grid.meter, config)
    spb = config.steps_per_beat
    starts = grid.beat_position(np.array([n.start for n in kept]))
    ends = grid.beat_position(np.array([n.end for n in kept]))
    start_steps = np.round(starts * spb).astype(int) - grid.phase * spb
    lengths = np.maximum(np.round((ends - starts) * spb), 1)
    return _on_grid(meter, zip(start_steps.tolist(), (n.pitch for n in kept), lengths.tolist(), strict=True), config)


def quantise_beats(notes: Iterable[tuple[float, int, float]], meter: int, config: TokenizerConfig) -> GridPiece:
    """Notes given as (start beat, pitch, length in beats) from the first downbeat, as in a score."""
    spb = config.steps_per_beat
    fitted = fit_meter(meter, config)
    triples = [(round(start * spb), pitch, max(round(length * spb), 1)) for start, pitch, length in notes]
    triples = [t for t in triples if config.pitch_low <= t[1] <= config.pitch_high]
    if not triples:
        raise TokenizeError("no notes in the tokenizer's pitch range")
    return _on_grid(fitted, triples, config)


def _on_grid(meter: int, triples: Iterable[tuple[int, int, float]], config: TokenizerConfig) -> GridPiece:
    """Shift so the first note's bar is bar 0, snap lengths to the allowed ones, drop doubled notes."""
    triples = list(triples)
    bar = meter * config.steps_per_beat
    first_bar = min(step for step, _, _ in triples) // bar
    seen: dict[tuple[int, int], int] = {}
    for step, pitch, length in triples:
        key = (step - first_bar * bar, pitch)
        seen[key] = max(seen.get(key, 0), nearest_duration(length, config))
    return GridPiece(meter, tuple(sorted(GridNote(s, p, d) for (s, p), d in seen.items())))


# Krumhansl and Kessler's key profiles (major, minor), C first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def key_of(piece: GridPiece) -> int:
    """The piece's key as 0-11 (major, tonic C..B) or 12-23 (minor): the profile best correlated with its
    pitch classes weighted by length (Krumhansl-Schmuckler)."""
    weights = np.zeros(12)
    for n in piece.notes:
        weights[n.pitch % 12] += n.steps
    if not weights.any():
        return 0
    scores = [
        np.corrcoef(weights, np.roll(profile, tonic))[0, 1]
        for profile in (MAJOR_PROFILE, MINOR_PROFILE)
        for tonic in range(12)
    ]
    return int(np.nanargmax(scores))


PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)  # the major scale's pitch classes from its tonic: the one table of it


def key_name(key: int) -> str:
    """A key of ``key_of``'s numbering as a person reads it: ``"Eb major"``, ``"F# minor"``."""
    return f"{PITCH_NAMES[key % 12]} {'minor' if key >= 12 else 'major'}"


def key_reference(key: int) -> int:
    """The pitch class pitches are written relative to: the tonic, or a minor key's relative major's tonic."""
    return key % 12 if key < 12 else (key + 3) % 12


def encode(piece: GridPiece, config: TokenizerConfig) -> list[str]:
    """The piece's tokens: its meter and key, then bar by bar the positions and their notes, highest first."""
    bar = piece.bar_steps(config)
    at: dict[int, list[GridNote]] = defaultdict(list)
    for n in piece.notes:
        at[n.step].append(n)
    key = key_of(piece)
    reference = key_reference(key)
    tokens = [f"Meter_{piece.meter}", f"Key_{key}"]
    for number in range(piece.bars(config)):
        tokens.append(BAR)
        for step in range(number * bar, (number + 1) * bar):
            if step not in at:
                continue
            notes = sorted(at[step], key=lambda n: -n.pitch)
            if len(notes) > config.max_notes_per_position:  # keep the top voices and the bass
                notes = notes[: config.max_notes_per_position - 1] + notes[-1:]
            tokens.append(f"Pos_{step - number * bar}")
            for n in notes:
                tokens += [f"Pitch_{n.pitch - reference}", f"Dur_{nearest_duration(n.steps, config)}"]
    return tokens


def decode(tokens: Iterable[str], config: TokenizerConfig) -> GridPiece:
    """The notes a token sequence stands for; tokens out of order (a pitch with no position) are skipped."""
    meter, bar, position, pitch, reference = max(config.meters), -1, None, None, 0
    notes: list[GridNote] = []
    for token in tokens:
        kind, _, value = token.partition("_")
        if kind == "Meter" and bar < 0:
            meter = int(value)
        elif kind == "Key" and bar < 0:
            reference = key_reference(int(value))
        elif token == BAR:
            bar, position, pitch = bar + 1, None, None
        elif kind == "Pos" and bar >= 0:
            position, pitch = int(value), None
        elif kind == "Pitch" and position is not None:
            pitch = int(value) + reference
        elif kind == "Dur" and pitch is not None and position is not None:
            if 0 <= pitch <= 127:
                notes.append(GridNote(bar * meter * config.steps_per_beat + position, pitch, int(value)))
            pitch = None
    return GridPiece(meter, tuple(sorted(notes)))


def token_pitch(token: str) -> int | None:
    kind, _, value = token.partition("_")
    return int(value) if kind == "Pitch" else None


def token_register(tokens: Sequence[str]) -> list[int]:
    """The lowest and highest pitch tokens' values (relative to the key, so the same in every key); [] with no
    notes."""
    pitches = [p for p in (token_pitch(t) for t in tokens) if p is not None]
    return [min(pitches), max(pitches)] if pitches else []


def token_key(tokens: Sequence[str]) -> int:
    return next((int(t.partition("_")[2]) for t in tokens if t.startswith("Key_")), 0)


def transposition_range(tokens: Sequence[str], config: TokenizerConfig) -> tuple[int, int]:
    """The key shifts (low, high) within ``max_shift`` that keep every pitch in the tokenizer's range."""
    reference = key_reference(token_key(tokens))
    pitches = [p + reference for p in (token_pitch(t) for t in tokens) if p is not None]
    if not pitches:
        return 0, 0
    low, high = -config.max_shift, config.max_shift - 1
    allowed = [
        shift
        for shift in range(low, high + 1)
        if config.pitch_low <= min(pitches) + moved(reference, shift)
        and max(pitches) + moved(reference, shift) <= config.pitch_high
    ]
    return (min(allowed), max(allowed)) if allowed else (0, 0)


def moved(reference: int, shift: int) -> int:
    """How far the notes move when the key moves by ``shift``: to the new reference, within the octave."""
    return (reference + shift) % 12 - reference


def shift_key(token: str, semitones: int) -> str:
    """A ``Key_k`` token moved by ``semitones`` (its mode kept); any other token as it is."""
    kind, _, value = token.partition("_")
    if kind != "Key":
        return token
    key = int(value)
    return f"Key_{(key % 12 + semitones) % 12 + 12 * (key // 12)}"


def transpose(tokens: Sequence[str], semitones: int) -> list[str]:
    """The piece in the key ``semitones`` away: only its key token changes (pitches are relative to the key)."""
    return [shift_key(t, semitones) for t in tokens]
