"""One record per style: what training measured of a playlist's pieces and what the sampler uses for it.

A model keeps one :class:`StyleRecord` per style, saved in its ``config.json`` and loaded once with it.
The record holds, for at most ``STYLE_SAMPLE`` of the style's pieces, each piece's own measures
(:class:`PieceMeasures`: its opening meter and key, register, tempo, share of recurring bars and
profile features), so a track is drawn from one piece of its playlist and aims where that piece sits,
not at the style's mean; and the style's summaries (its profile, how often its top lines leap an
octave or repeat a note, its drums, its sound, the sampler's calibrated lift, its chord vocabulary).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from train.chords import chord_vocabulary
from train.profile import PROFILE_FEATURES, StyleProfile, profile_features, style_profile
from train.structure import STYLE_SAMPLE, drawn, recurring_bar_share, repeat_share, wide_leap_share
from train.tokens import GridPiece, TokenizerConfig, decode, token_register


@dataclass(frozen=True)
class PieceMeasures:
    """One of a style's pieces as a track drawn from it aims at."""

    head: tuple[str, ...]  # its meter and key tokens
    register: tuple[int, ...]  # its lowest and highest pitch token (empty: no notes)
    tempo: float  # beats a minute
    recurrence: float  # the share of its bars that recur (train.structure)
    features: tuple[float, ...]  # its profile features, in PROFILE_FEATURES' order

    def to_dict(self) -> dict[str, Any]:
        return {
            "head": list(self.head), "register": list(self.register), "tempo": self.tempo,
            "recurrence": self.recurrence, "features": list(self.features),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PieceMeasures:
        return cls(tuple(data["head"]), tuple(data["register"]), float(data["tempo"]), float(data["recurrence"]),
                   tuple(float(v) for v in data["features"]))  # fmt: skip


@dataclass(frozen=True)
class StyleRecord:
    """A style's pieces' measures and its sampler settings (see the module docstring)."""

    name: str
    count: int = 0  # the style's pieces in training (the record keeps at most STYLE_SAMPLE of them)
    pieces: tuple[PieceMeasures, ...] = ()
    profile: StyleProfile | None = None  # the mean and spread of its pieces' features
    wide_leaps: float = 0.0  # share of top-line steps over an octave
    repeats: float = 0.0  # share of top-line steps that repeat the note before
    groove: dict[str, Any] | None = None  # its drums (transcribe.groove), when its sources have percussion
    sound: dict[str, float] | None = None  # its sources' median spectral centroid and percussive share
    lift: dict[str, float] = field(default_factory=dict)  # the sampler's calibrated knobs (train.calibrate)
    chords: dict[str, float] = field(default_factory=dict)  # share of its spans per chord quality (train.chords)

    @property
    def tempos(self) -> list[float]:
        return [p.tempo for p in self.pieces]

    @property
    def recurrence(self) -> float:
        """The mean share of recurring bars over its pieces."""
        return sum(p.recurrence for p in self.pieces) / len(self.pieces) if self.pieces else 0.0

    def draw(self, rng: random.Random, *, meter: int | None = None) -> PieceMeasures | None:
        """One of its pieces, each as likely (those in ``meter`` beats a bar when it has any; None for a style
        that kept none)."""
        pieces = [p for p in self.pieces if f"Meter_{meter}" in p.head] or self.pieces
        return pieces[rng.randrange(len(pieces))] if pieces else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "pieces": [p.to_dict() for p in self.pieces],
            "profile": self.profile.to_dict() if self.profile else None,
            "wide_leaps": self.wide_leaps,
            "repeats": self.repeats,
            "groove": self.groove,
            "sound": self.sound,
            "lift": dict(self.lift),
            "chords": dict(self.chords),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StyleRecord:
        return cls(
            name=str(data["name"]),
            count=int(data.get("count", 0)),
            pieces=tuple(PieceMeasures.from_dict(p) for p in data.get("pieces") or ()),
            profile=StyleProfile.from_dict(data["profile"]) if data.get("profile") else None,
            wide_leaps=float(data.get("wide_leaps", 0.0)),
            repeats=float(data.get("repeats", 0.0)),
            groove=data.get("groove"),
            sound=data.get("sound"),
            lift={k: float(v) for k, v in (data.get("lift") or {}).items()},
            chords={k: float(v) for k, v in (data.get("chords") or {}).items()},
        )


def piece_measures(tokens: Sequence[str], tempo: float, config: TokenizerConfig) -> PieceMeasures:
    """A piece's measures, from its tokens (and its tempo, which the tokens do not hold)."""
    piece = decode(tokens, config)
    return PieceMeasures(
        head=tuple(tokens[:2]),
        register=tuple(token_register(tokens)),
        tempo=round(float(tempo), 2),
        recurrence=round(recurring_bar_share(piece, config), 4),
        features=tuple(round(float(v), 5) for v in profile_features(piece, config)),
    )


def measure_style(
    name: str,
    pieces: Sequence[tuple[Sequence[str], float]],
    config: TokenizerConfig,
    *,
    seed: int,
    groove: dict[str, Any] | None = None,
    sound: dict[str, float] | None = None,
) -> StyleRecord:
    """The record of a style from its pieces' (tokens, tempo), measured on at most ``STYLE_SAMPLE`` of them."""
    kept = drawn(list(pieces), seed, STYLE_SAMPLE)
    grids: list[GridPiece] = [decode(tokens, config) for tokens, _ in kept]
    measures = tuple(piece_measures(tokens, tempo, config) for tokens, tempo in kept)
    count = max(len(grids), 1)
    return StyleRecord(
        name=name,
        count=len(pieces),
        pieces=tuple(m for m in measures if m.register),
        profile=style_profile(grids, config),
        wide_leaps=round(sum(wide_leap_share(g) for g in grids) / count, 4),
        repeats=round(sum(repeat_share(g) for g in grids) / count, 4),
        groove=groove,
        sound=sound,
        chords=chord_vocabulary(grids, config),
    )


__all__ = ["PROFILE_FEATURES", "PieceMeasures", "StyleRecord", "measure_style", "piece_measures"]
