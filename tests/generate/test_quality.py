"""The batch quality report: Yang & Lerch overlap areas on real chorales and on degenerate music."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from music21 import corpus

from generate.quality import overlap_area, quality_report
from tests.conftest import CHORALES
from train.reference import (
    FEATURES,
    features_of,
    load_reference,
    piece_features,
    reference_features,
    save_reference,
)
from train.scores import score_tokens
from train.tokens import GridNote, GridPiece, TokenizerConfig, decode

CONFIG = TokenizerConfig()


def test_features_of_a_known_piece() -> None:
    piece = GridPiece(4, (GridNote(0, 67, 4), GridNote(0, 64, 4), GridNote(0, 60, 4), GridNote(6, 62, 2),
                          GridNote(8, 64, 8)))  # fmt: skip
    f = piece_features(piece, CONFIG)
    assert f["pitch_count"][0] == 5 - 1 and f["pitch_range"][0] == 7  # 64 twice
    assert f["pitch_class_histogram"][0] == 0.2 and f["pitch_class_histogram"][4] == 0.4
    assert f["avg_pitch_interval"][0] == np.mean([5, 2])  # tops 67 -> 62 -> 64
    assert np.isclose(f["avg_ioi"][0], np.mean([6, 2]) / 4)  # onsets at steps 0, 6, 8
    assert f["note_length"][list(CONFIG.durations).index(4)] == 0.6


def test_overlap_is_one_for_the_same_distribution_and_small_for_disjoint_ones() -> None:
    rng = np.random.default_rng(1)
    same = overlap_area(rng.normal(0, 1, 300), rng.normal(0, 1, 300))
    apart = overlap_area(rng.normal(0, 1, 300), rng.normal(8, 1, 300))
    assert same > 0.85 and apart < 0.05


def test_held_out_chorales_overlap_the_training_chorales_and_a_hammered_note_does_not() -> None:
    chorales = [decode(score_tokens(corpus.parse(name), CONFIG)[0], CONFIG) for name in CHORALES]
    training, held_out = chorales[:4], chorales[4:]
    report = quality_report(features_of(training, CONFIG), held_out, CONFIG)
    assert set(FEATURES) <= set(report) and report["pieces"] == {"training": 4, "generated": 2}
    assert np.mean([report[name]["overlap"] for name in FEATURES]) > 0.5
    hammered = [GridPiece(4, tuple(GridNote(2 * i, p, 2) for i in range(200))) for p in (60, 62)]
    bad = quality_report(features_of(training, CONFIG), hammered, CONFIG)
    assert bad["pitch_count"]["overlap"] < report["pitch_count"]["overlap"]
    assert bad["pitch_range"]["overlap"] < 0.2 and bad["avg_pitch_interval"]["overlap"] < 0.2


def test_a_models_reference_is_a_fixed_size_sample_that_survives_a_save(tmp_path: Path) -> None:
    """However many pieces a model trained on, its batches are measured against at most ``limit`` of them."""
    tokens = [score_tokens(corpus.parse(name), CONFIG)[0] for name in CHORALES]
    reference = reference_features(tokens, CONFIG, limit=4, seed=3)
    assert all(reference[name].shape[0] == 4 for name in FEATURES)
    assert (
        reference_features(tokens, CONFIG, limit=4, seed=3)["pitch_range"].tolist() == reference["pitch_range"].tolist()
    )  # the same draw for the same seed
    everything = features_of([decode(t, CONFIG) for t in tokens], CONFIG)
    rows = {tuple(r) for r in everything["pitch_class_histogram"].round(6)}
    assert {tuple(r) for r in reference["pitch_class_histogram"].round(6)} <= rows  # real pieces' rows
    loaded = load_reference(save_reference(tmp_path / "reference.npz", reference))
    assert loaded is not None and all(np.array_equal(loaded[n], reference[n]) for n in FEATURES)
    assert load_reference(tmp_path / "missing.npz") is None
    assert quality_report(loaded, [decode(tokens[0], CONFIG)], CONFIG)["pieces"] == {"training": 4, "generated": 1}
