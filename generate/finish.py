"""The finishing chain: what happens between the network's samples and a track, as named steps, each switchable.

``Finishing`` names every step; a batch records which were on in its manifest, and ``bench/quality.py``
measures the plain model (every step off) and then each step added, on judges that none of them aims at.

- ``register``: sample each track inside the register of the training piece it is drawn from;
- ``lift``: sample with the style's calibrated lift (onsets, voices, notes off the scale, leaps, repeats,
  focus: ``train.calibrate``);
- ``select``: sample ``GenerateSettings.candidates`` drafts of each track and keep the one whose profile
  features lie nearest the piece it is drawn from (off: one draft, the first that passes the guards);
- ``form``: plan a form (theme, variation, contrasts, returns) recurring as much as that piece does
  (``generate.form``); off: the sampled stream as it came, cut to the track's bars;
- ``fold``: in a style whose top lines almost never leap an octave, fold the melody's wider leaps by octaves;
- ``harmony``: name a chord per half bar, of the qualities the style's own pieces use (``train.chords``), and
  move the inner voices and bass onto it (``generate.harmony``);
- ``cadence``: end on the tonic chord of the track's key; a loop: its last notes held to its seam.

The track's key is estimated once (``train.tokens.key_of``, on its notes before the last bar): the cadence
resolves to it and the manifest and page name it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from generate.arrange import singable
from generate.controls import to_key
from generate.draft import Draft
from generate.form import assemble, held_to_seam, with_cadence
from generate.guards import GuardReport, GuardSettings, check_track
from generate.harmony import revoiced
from train.chords import Chord, in_use, recognise
from train.model import SavedModel
from train.originality import CopyIndex
from train.profile import PROFILE_FEATURES, StyleProfile, profile_features
from train.tokens import GridPiece, decode, key_of

WIDE_LEAPS = 0.02  # a style whose top lines leap over an octave less often than this keeps its tracks' within one


@dataclass(frozen=True)
class Finishing:
    """Which finishing steps run (see the module docstring). By default every step but ``select`` and ``fold``:
    on ``bench/quality.py``'s ablation (three styles, three seeds) keeping the draft nearest its aim made the
    discriminator or the batch's spread worse in two styles of three, and folding changed no judge in any."""

    register: bool = True
    lift: bool = True
    select: bool = False
    form: bool = True
    fold: bool = False
    harmony: bool = True
    cadence: bool = True

    @classmethod
    def steps(cls) -> tuple[str, ...]:
        """The steps' names, in the order the chain applies them."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def plain(cls) -> Finishing:
        """No step at all: the network's own samples, one draft a track."""
        return cls(**dict.fromkeys(cls.steps(), False))

    @classmethod
    def of(cls, steps: list[str] | tuple[str, ...]) -> Finishing:
        """Exactly ``steps`` on.

        Raises:
            ValueError: a name that is not a step.
        """
        unknown = set(steps) - set(cls.steps())
        if unknown:
            raise ValueError(f"no finishing step {', '.join(sorted(unknown))}; the steps are {', '.join(cls.steps())}")
        return cls(**{name: name in steps for name in cls.steps()})

    def on(self) -> list[str]:
        return [name for name in self.steps() if getattr(self, name)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Finished:
    """A draft made into a track's notes: its key, its chords, the guards' report and its distance from its aim."""

    draft: Draft
    piece: GridPiece
    key: int  # 0-11 major on C..B, 12-23 minor (train.tokens.key_of): what its cadence resolves to
    chords: list[Chord]
    report: GuardReport
    distance: float  # from the piece it is drawn from, in its style's spread; infinite when it has no aim


def aim_distance(piece: GridPiece, draft: Draft, profile: StyleProfile | None, saved: SavedModel) -> float:
    """The root mean square of the piece's profile features' distances from those of the training piece the
    draft is drawn from, each in its style's spread (from its style's mean when it has no piece)."""
    if profile is None:
        return np.inf
    aim = np.array(draft.aim.features if draft.aim is not None else profile.mean)
    z = (profile_features(piece, saved.tokenizer) - aim) / np.array(profile.spread)
    return float(np.sqrt(np.mean(z**2)))


def finish(
    draft: Draft,
    saved: SavedModel,
    index: CopyIndex,
    guards: GuardSettings,
    steps: Finishing,
    *,
    key: int | None = None,
) -> Finished:
    """The draft's form assembled and decoded, then the steps that are on, then the guards and its distance.

    ``key`` (``key_of``'s numbering), when a creator asked for one: the notes are moved to it where they settle
    in another (``generate.controls.to_key``), and the track is named in it and resolves to it.
    """
    tokenizer, form = saved.tokenizer, draft.form
    assert form is not None, "a draft is finished once its material is sampled"
    record = saved.config.style(draft.style)
    piece = decode(assemble(form, draft.head, theme=draft.theme, variation=draft.variation, fresh=draft.fresh),
                   tokenizer)  # fmt: skip
    last = (form.total_bars - 1) * piece.bar_steps(tokenizer)
    if key is not None:
        piece = to_key(piece, key, tokenizer, before=None if form.loop else last)
    if steps.fold and record.wide_leaps < WIDE_LEAPS:
        piece = singable(piece, tokenizer)
    chords: list[Chord] = []
    if steps.harmony:
        chords = recognise(piece, tokenizer, in_use(record.chords))
        piece = revoiced(piece, tokenizer, chords)
    if key is None:
        body = GridPiece(piece.meter, tuple(n for n in piece.notes if n.step < last))
        key = key_of(body if body.notes and not form.loop else piece)
    if steps.cadence and not form.loop:  # the last chord as full as the style's texture
        profile = record.profile
        voices = math.ceil(profile.mean[PROFILE_FEATURES.index("polyphony")]) if profile is not None else 4
        piece = with_cadence(piece, tokenizer, bars=form.total_bars, key=key, voices=voices)
    elif steps.cadence:  # no silence before the seam
        piece = held_to_seam(piece, tokenizer, bars=form.total_bars)
    report = check_track(piece, index, guards)
    return Finished(draft, piece, key, chords, report, aim_distance(piece, draft, record.profile, saved))
