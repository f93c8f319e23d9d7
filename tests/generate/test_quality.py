"""The batch quality report: Yang & Lerch overlap areas on real chorales and on degenerate music."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generate.quality import FEATURES, overlap_area, piece_features, quality_report
from train.tokens import Slice, slices_from_midi


def test_features_of_a_known_piece() -> None:
    slices = [Slice((60, 64, 67), 4), Slice((), 2), Slice((62,), 2), Slice((64,), 8)]
    f = piece_features(slices).values
    assert f["pitch_count"][0] == 4 and f["pitch_range"][0] == 7
    assert f["pitch_class_histogram"][0] == 0.2 and f["pitch_class_histogram"][4] == 0.4
    assert f["avg_pitch_interval"][0] == np.mean([5, 2])  # tops 67 -> 62 -> 64
    assert np.isclose(f["avg_ioi"][0], np.mean([6, 2]) / 4)  # onsets at steps 0, 6, 8


def test_overlap_is_one_for_the_same_distribution_and_small_for_disjoint_ones() -> None:
    rng = np.random.default_rng(1)
    same = overlap_area(rng.normal(0, 1, 300), rng.normal(0, 1, 300))
    apart = overlap_area(rng.normal(0, 1, 300), rng.normal(8, 1, 300))
    assert same > 0.85 and apart < 0.05


def test_held_out_chorales_overlap_the_training_chorales_and_a_hammered_note_does_not(
    chorale_midis: list[Path],
) -> None:
    chorales = [slices_from_midi(path) for path in chorale_midis]
    training, held_out = chorales[:4], chorales[4:]
    report = quality_report(training, held_out)
    assert set(FEATURES) <= set(report) and report["pieces"] == {"training": 4, "generated": 2}
    assert all(0.0 <= report[name]["overlap"] <= 1.0 for name in FEATURES)
    assert np.mean([report[name]["overlap"] for name in FEATURES]) > 0.5
    hammered = [[Slice((60,), 2)] * 200, [Slice((62,), 2)] * 200]
    bad = quality_report(training, hammered)
    assert bad["pitch_count"]["overlap"] < report["pitch_count"]["overlap"]
    assert bad["pitch_range"]["overlap"] < 0.2 and bad["avg_pitch_interval"]["overlap"] < 0.2
