"""The sampler's lift and its calibration, on the shipped base model (real weights, real sampling)."""

from __future__ import annotations

import dataclasses

import pytest

from train.base import base_model_folder
from train.calibrate import ONSETS, VOICES, calibrate, sampled_density
from train.model import Lift, SavedModel
from train.profile import StyleProfile


@pytest.fixture(scope="module")
def base() -> SavedModel:
    return SavedModel.load(base_model_folder())


def test_the_lift_moves_onsets_and_voices_the_way_it_says(base: SavedModel) -> None:
    def density(lift: Lift) -> tuple[float, float]:
        found = sampled_density(base, "bach-chorales", lift, rows=12, bars=6, seed=3)
        assert found is not None
        return found

    plain, hurried, thick = density(Lift()), density(Lift(onsets=1.5)), density(Lift(voices=1.5))
    assert hurried[0] > 1.1 * plain[0]  # nearer onsets: more of them per beat
    assert thick[1] > 1.1 * plain[1]  # more voices sounding at once


def test_calibration_brings_the_sampled_density_to_the_style_s(base: SavedModel) -> None:
    plain = sampled_density(base, "oneills-1850", Lift(), rows=24, bars=12, seed=0)
    assert plain is not None
    mean = [1.0] * 10
    mean[ONSETS], mean[VOICES] = 1.3 * plain[0], 1.15 * plain[1]  # a denser style than the model writes
    profile = StyleProfile(tuple(mean), (1.0,) * 10, pieces=20)
    found = calibrate(base, "oneills-1850", profile, seed=0)
    assert found is not None and found.before == pytest.approx(plain)
    assert found.lift.onsets > 0 and abs(found.after[0] / found.target[0] - 1) < 0.08, found
    assert abs(found.after[1] / found.target[1] - 1) < 0.08, found
    again = dataclasses.replace(
        base, config=dataclasses.replace(base.config, lifts={"oneills-1850": dataclasses.asdict(found.lift)})
    )
    assert Lift.of(again.config, "oneills-1850") == found.lift and Lift.of(again.config, "palestrina") == Lift()
