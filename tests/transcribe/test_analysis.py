"""The filter's settings."""

from __future__ import annotations

import pytest

from transcribe.analysis import FilterSettings


def test_filter_settings_refuse_bounds_no_piece_could_meet() -> None:
    assert FilterSettings(max_repetition=1.0, max_silence_ratio=0.0).max_repetition == 1.0  # the edges are fine
    for wrong in ({"max_repetition": 1.5}, {"max_silence_ratio": -0.1}, {"max_spectral_flatness": 2.0},
                  {"min_notes": -1}, {"max_note_density": 0.0}):  # fmt: skip
        with pytest.raises(ValueError):
            FilterSettings(**wrong)
