"""What a creator may ask of a batch: its tempo, key, meter, energy and instruments.

Tempo, key and meter are honoured exactly. The meter and key go into the tokens the network is
prompted with (pitches are written relative to the key, so the key token alone places the music);
a track whose notes still settle in another key is transposed to the asked one before its cadence,
which resolves to it. Where the style's own pieces never use the asked meter or mode, the batch
says so and does it anyway. Energy moves three things a listener hears: how often notes start (the
sampler's onset knob), how hard they are played (velocities and the mix's loudness) and the drums
(none, the style's groove, or the groove with every eighth struck).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from generate.arrange import PALETTES, Palette
from train.style import StyleRecord
from train.tokens import PITCH_NAMES, GridNote, GridPiece, TokenizerConfig, key_name, key_of, key_reference

Energy = Literal["low", "medium", "high"]
ENERGIES: tuple[Energy, ...] = get_args(Energy)
TEMPO_RANGE = (30.0, 240.0)  # beats a minute
METERS: tuple[int, ...] = TokenizerConfig.meters  # the beats a bar the tokens can hold


@dataclass(frozen=True)
class EnergyLevel:
    """What one energy level changes."""

    onsets: float  # nats per beat of waiting added to the sampler's onset knob: more of them, more notes start
    velocity: float  # every part's velocity multiplied by this
    loudness_dbfs: float  # the mix's average loudness (generate.audio.loudness_gain), its peaks still under -1 dBFS
    drums: Literal["none", "groove", "driving"]


LEVELS: dict[str, EnergyLevel] = {
    "low": EnergyLevel(onsets=-1.0, velocity=0.72, loudness_dbfs=-22.0, drums="none"),
    "medium": EnergyLevel(onsets=0.0, velocity=1.0, loudness_dbfs=-16.0, drums="groove"),
    "high": EnergyLevel(onsets=1.0, velocity=1.15, loudness_dbfs=-14.0, drums="driving"),
}

_FLATS = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb", "Cb": "B", "E#": "F", "Fb": "E", "B#": "C"}
VALID_KEYS = "a tonic (C, C#/Db, D, Eb/D#, E, F, F#/Gb, G, Ab/G#, A, Bb/A#, B) and major or minor, e.g. 'D minor'"


def parse_key(text: str) -> int:
    """A key as a person writes it (``"D minor"``, ``"f# major"``, ``"Bbm"``, ``"C"``) in ``key_of``'s numbering:
    0-11 major on C..B, 12-23 minor.

    Raises:
        ValueError: not a key, with the valid ones in its message.
    """
    found = re.fullmatch(r"\s*([A-Ga-g])([#b♯♭]?)\s*(major|minor|maj|min|m|)\s*", text, flags=re.IGNORECASE)
    if found is None:
        raise ValueError(f"no key {text!r}: a key is {VALID_KEYS}")
    accidental = found.group(2).replace("♯", "#").replace("♭", "b")
    tonic = found.group(1).upper() + accidental
    tonic = _FLATS.get(tonic, tonic)
    mode = found.group(3).lower()
    minor = mode in ("minor", "min", "m")
    return PITCH_NAMES.index(tonic) + (12 if minor else 0)


def palette_named(name: str) -> Palette:
    """The palette called ``name`` (any case).

    Raises:
        ValueError: no such palette, with the valid names in its message.
    """
    for palette in PALETTES:
        if palette.name.lower() == name.strip().lower():
            return palette
    raise ValueError(f"no palette {name!r}: the palettes are {', '.join(repr(p.name) for p in PALETTES)}")


@dataclass(frozen=True)
class Controls:
    """A creator's asks; None leaves a choice to the style (its pieces' tempos, keys and meters, its sound)."""

    tempo: float | None = None
    key: str | None = None  # as parse_key reads it
    meter: int | None = None  # beats a bar
    energy: Energy = "medium"
    instruments: str | None = None  # a palette's name (generate.arrange.PALETTES)

    def __post_init__(self) -> None:
        if self.tempo is not None and not TEMPO_RANGE[0] <= self.tempo <= TEMPO_RANGE[1]:
            low, high = TEMPO_RANGE
            raise ValueError(f"a tempo is {low:.0f} to {high:.0f} beats a minute, not {self.tempo:g}")
        if self.meter is not None and self.meter not in METERS:
            raise ValueError(f"no meter {self.meter}: the meters are {' and '.join(f'{m}/4' for m in METERS)}")
        if self.energy not in LEVELS:
            raise ValueError(f"no energy {self.energy!r}: the energies are {', '.join(ENERGIES)}")
        if self.key is not None:
            parse_key(self.key)
        if self.instruments is not None:
            palette_named(self.instruments)

    @property
    def key_number(self) -> int | None:
        return None if self.key is None else parse_key(self.key)

    @property
    def level(self) -> EnergyLevel:
        return LEVELS[self.energy]

    @property
    def palette(self) -> Palette | None:
        return None if self.instruments is None else palette_named(self.instruments)

    def head(self, head: list[str]) -> list[str]:
        """A track's meter and key tokens with the asked ones in their place."""
        out = list(head)
        for prefix, value in (("Meter_", self.meter), ("Key_", self.key_number)):
            if value is None:
                continue
            token = f"{prefix}{value}"
            at = next((i for i, t in enumerate(out) if t.startswith(prefix)), None)
            if at is None:
                out.insert(0 if prefix == "Meter_" else len(out), token)
            else:
                out[at] = token
        return out

    def unusual(self, record: StyleRecord) -> list[str]:
        """What the style's own pieces never do that was asked of it (it is done anyway)."""
        notes = []
        heads = [p.head for p in record.pieces]
        if self.meter is not None and heads and not any(f"Meter_{self.meter}" in h for h in heads):
            notes.append(f"style {record.name!r} has no piece in {self.meter}/4; its tracks are sampled in it anyway")
        key = self.key_number
        if key is not None and heads:
            minor = key >= 12
            modes = {int(t.partition("_")[2]) >= 12 for h in heads for t in h if t.startswith("Key_")}
            if modes and minor not in modes:
                mode = "minor" if minor else "major"
                notes.append(
                    f"style {record.name!r} has no piece in a {mode} key; its tracks are put in {key_name(key)} anyway"
                )
        return notes


AS_THE_STYLE = Controls()  # nothing asked: every choice left to the style


def to_key(piece: GridPiece, key: int, config: TokenizerConfig, *, before: int | None = None) -> GridPiece:
    """The piece moved (by at most a tritone) so that its notes, those before step ``before`` (all: None), settle
    in ``key`` as ``key_of`` hears them: its tonic on the asked tonic, or, where the modes differ, its relative
    key's (a piece heard in F major asked for D minor stays where it is). A note moved out of the tokenizer's
    range goes back an octave."""
    body = [n for n in piece.notes if before is None or n.step < before] or list(piece.notes)
    heard = key_of(GridPiece(piece.meter, tuple(body)))
    shift = (key_reference(key) - key_reference(heard)) % 12
    shift = shift - 12 if shift > 5 else shift
    if shift == 0:
        return piece

    def moved(pitch: int) -> int:
        pitch += shift
        while pitch > config.pitch_high:
            pitch -= 12
        while pitch < config.pitch_low:
            pitch += 12
        return pitch

    notes = {GridNote(n.step, moved(n.pitch), n.steps) for n in piece.notes}
    return GridPiece(piece.meter, tuple(sorted(notes)))
