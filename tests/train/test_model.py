from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sample.corpus import RenderedPiece
from train.dataset import Piece, split_pieces, stream_ids, streaming_dataset
from train.model import SavedModel, build_model, sample, warm_start_weights
from train.tokens import slice_tokens, slices_from_midi
from train.training import TrainSettings, fit
from train.vocab import Vocabulary, style_token

pytestmark = pytest.mark.slow


TINY = TrainSettings(epochs=3, units=32, embedding=16, seq_len=32, stride=8, min_count=1, prototype_epochs=1)


@pytest.fixture(scope="module")
def trained(pieces: list[RenderedPiece]) -> tuple[SavedModel, dict]:
    data = [
        Piece(i, slice_tokens(slices_from_midi(p.midi_path)), p.tempo, style="hymns" if i else "organ")
        for i, p in enumerate(pieces)
    ]
    return fit(data, TINY)


def test_split_is_by_whole_piece_and_stable_as_pieces_arrive() -> None:
    pieces = [Piece(i, ["60_4"], 100.0) for i in range(50)]
    train, val = split_pieces(pieces, validation_share=0.2, seed=1)
    assert 5 <= len(val) <= 15 and not {p.source_id for p in train} & {p.source_id for p in val}
    more = pieces + [Piece(i, ["60_4"], 100.0) for i in range(50, 150)]
    _, val_more = split_pieces(more, validation_share=0.2, seed=1)
    assert {p.source_id for p in val} <= {p.source_id for p in val_more}  # an old validation piece stays there
    assert len(split_pieces(pieces[:2], validation_share=0.2, seed=1)[1]) == 1


def test_windows_stream_from_the_id_stream() -> None:
    ids = np.arange(50, dtype=np.int32)
    batches = list(streaming_dataset(ids, seq_len=8, stride=4, batch_size=5, shuffle=False, seed=0))
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    assert x.shape == (11, 8) and (x[:, 0] == np.arange(0, 41, 4)).all()
    np.testing.assert_array_equal(y, x + 1)  # each target is the next id


def test_style_tokens_open_each_piece_and_are_never_sampled() -> None:
    vocab = Vocabulary.build([["60_4", "62_4"]], styles=["lofi", "organ"], min_count=1)
    assert vocab.styles == ["lofi", "organ"]
    ids = stream_ids([Piece(1, ["60_4", "62_4"], 90.0, style="organ")], vocab)
    assert vocab.decode(ids[:2]) == ["<sep>", style_token("organ")]
    assert vocab.index[style_token("lofi")] in vocab.special_ids()


def test_training_reports_metrics_and_both_baselines_on_the_same_targets(trained: tuple[SavedModel, dict]) -> None:
    saved, metrics = trained
    assert metrics["epochs"] == 3
    assert np.isfinite(metrics["val_loss"]) and metrics["perplexity"] > 1
    assert metrics["val_loss"] < np.log(metrics["vocab_size"]) * 1.5  # better than far off uniform
    unigram, prototype = metrics["baselines"]["unigram"], metrics["baselines"]["prototype"]
    assert unigram["targets"] == prototype["targets"] == metrics["targets"] == metrics["val_tokens"] - 1
    assert np.isfinite(prototype["val_loss"]) and prototype["epochs"] == 1
    assert saved.config.tempos and saved.config.steps_per_token > 0
    assert set(saved.config.styles) == {"hymns", "organ"} and saved.vocab.styles == ["hymns", "organ"]


def test_warm_start_carries_shared_tokens_over(trained: tuple[SavedModel, dict]) -> None:
    saved, _ = trained
    shared = saved.vocab.tokens[3:10]
    vocab = Vocabulary(["<pad>", "<unk>", "<sep>", "99_16", *reversed(shared)])
    model = build_model(dataclasses.replace(saved.config, vocab_size=len(vocab)))
    assert warm_start_weights(model, vocab, saved) == 3 + len(shared)  # the specials and the shared tokens
    old = saved.model.get_layer("embedding").get_weights()[0]
    new = model.get_layer("embedding").get_weights()[0]
    for token in shared:
        np.testing.assert_array_equal(new[vocab.index[token]], old[saved.vocab.index[token]])
    for a, b in zip(model.get_layer("lstm").get_weights(), saved.model.get_layer("lstm").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_saved_model_reloads_to_the_same_predictions(trained: tuple[SavedModel, dict], tmp_path: Path) -> None:
    saved, _ = trained
    folder = saved.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "vocab.json", "weights.h5"]
    again = SavedModel.load(folder)
    x = np.array([[2, 3, 4, 5]], dtype=np.int32) % len(saved.vocab)
    np.testing.assert_allclose(saved.model(x).numpy(), again.model(x).numpy(), atol=1e-5)


def test_batch_sampling_is_stateful_seeded_and_never_emits_specials(trained: tuple[SavedModel, dict]) -> None:
    saved, _ = trained
    a = sample(saved, batch=3, steps=40, temperature=1.0, top_p=0.9, seed=7)
    b = sample(saved, batch=3, steps=40, temperature=1.0, top_p=0.9, seed=7)
    assert a.shape == (3, 40)
    np.testing.assert_array_equal(a, b)
    assert not set(a.ravel().tolist()) & set(saved.vocab.special_ids())
    greedy = sample(saved, batch=1, steps=10, temperature=1.0, top_p=1e-6, seed=1)
    # top-p that small is greedy: the first token must be the model's argmax after <sep>
    sep = np.array([[saved.vocab.index["<sep>"]]], dtype=np.int32)
    logits = saved.model(sep).numpy()[0, -1]
    logits[saved.vocab.special_ids()] = -np.inf
    assert greedy[0, 0] == int(np.argmax(logits))
