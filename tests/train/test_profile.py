"""Style profiles: features read off the grid, and distances that tell a style's own pieces from other music."""

from __future__ import annotations

import numpy as np
import pytest

from sample.corpus import corpus_score
from train.profile import PROFILE_FEATURES, StyleProfile, profile_features, style_profile
from train.scores import score_tokens
from train.structure import repeat_share
from train.tokens import GridNote, GridPiece, TokenizerConfig, decode

CONFIG = TokenizerConfig()


def _piece(name: str) -> GridPiece:
    return decode(score_tokens(corpus_score(name), CONFIG)[0], CONFIG)


def test_features_of_a_small_piece_worked_by_hand() -> None:
    # a top line C5 E5 C6 G5 on beats, over a held C3: steps of 4, 8 and 5 semitones
    notes = [GridNote(0, 48, 16), *(GridNote(4 * i, p, 4) for i, p in enumerate((72, 76, 84, 79)))]
    features = dict(zip(PROFILE_FEATURES, profile_features(GridPiece(4, tuple(notes)), CONFIG), strict=True))
    assert features["pitch_range"] == 36 and features["pitch_count"] == 5
    assert features["pitch_class_entropy"] == pytest.approx(-(0.6 * np.log2(0.6) + 0.4 * np.log2(0.2)))  # C, E, G
    assert features["scale_share"] == 1.0
    assert features["top_mean_step"] == pytest.approx((4 + 8 + 5) / 3)
    assert features["top_leap_share"] == pytest.approx(2 / 3)  # 8 and 5 are over a major third
    assert features["polyphony"] == 2.0 and features["onsets_per_beat"] == 1.0
    assert features["ioi_variation"] == 0.0 and features["median_note_beats"] == 1.0
    assert not profile_features(GridPiece(4, ()), CONFIG).any()


def test_the_top_line_s_repeats_are_counted_on_the_highest_note_of_each_onset() -> None:
    # a top line C5 C5 D5 C5 over a held C3, and a lower note repeated under it that is not the top line
    notes = [GridNote(0, 48, 16), *(GridNote(4 * i, p, 4) for i, p in enumerate((72, 72, 74, 72)))]
    notes += [GridNote(4 * i, 60, 4) for i in range(4)]
    assert repeat_share(GridPiece(4, tuple(notes))) == pytest.approx(1 / 3)
    assert repeat_share(GridPiece(4, (GridNote(0, 60, 4),))) == 0.0


def test_a_style_s_unseen_pieces_sit_nearer_its_profile_than_another_style_s() -> None:
    chorales = [_piece(f"bach/bwv{n}") for n in ("10.7", "101.7", "102.7", "103.6", "104.6", "108.6", "11.6")]
    fiddle = [_piece(f"oneills1850/0001-0050#{n}") for n in range(8)]
    profile = style_profile(chorales[:5], CONFIG)
    assert profile is not None and profile.pieces == 5
    unseen = [profile.distance(p, CONFIG) for p in chorales[5:]]
    other = [profile.distance(p, CONFIG) for p in fiddle]
    assert max(unseen) < min(other), (unseen, other)
    fiddle_profile = style_profile(fiddle[:6], CONFIG)
    assert fiddle_profile is not None
    assert all(fiddle_profile.distance(p, CONFIG) < fiddle_profile.distance(c, CONFIG)
               for p in fiddle[6:] for c in chorales)  # fmt: skip


def test_a_profile_round_trips_and_one_of_other_features_is_not_read() -> None:
    profile = style_profile([_piece("bach/bwv10.7"), _piece("bach/bwv101.7")], CONFIG)
    assert profile is not None
    again = StyleProfile.from_dict(profile.to_dict())
    assert again is not None and np.allclose(again.mean, profile.mean, atol=1e-5)
    assert StyleProfile.from_dict({**profile.to_dict(), "features": ["pitch_range"]}) is None
    assert style_profile([_piece("bach/bwv10.7")], CONFIG) is None  # one piece: no spread to measure
