from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from music21 import corpus

from train.dataset import IdFile, Piece, shift_table, split_pieces, stream_ids, streaming_dataset
from train.model import SavedModel, build_model, warm_start_weights
from train.sampler import Grammar, sample
from train.scores import score_tokens
from train.tokens import GridNote, GridPiece, TokenizerConfig, decode, encode, shift_key, transposition_range
from train.training import TrainSettings, fit
from train.vocab import Vocabulary, style_token

pytestmark = pytest.mark.slow

CONFIG = TokenizerConfig()
TINY = TrainSettings(
    epochs=8,
    units=(48, 48),
    embedding=24,
    seq_len=64,
    stride=4,
    prototype_epochs=1,
    learning_rate=1e-2,
    calibrate=False,  # nothing here reads the sampler's lift: calibrating (a minute) is the end-to-end test's
)


@pytest.fixture(scope="module")
def corpus_pieces() -> list[Piece]:
    names = ["bach/bwv10.7", "bach/bwv101.7", "bach/bwv102.7", "bach/bwv103.6", "bach/bwv104.6", "bach/bwv108.6"]
    pieces = []
    for i, name in enumerate(names):
        tokens, tempo = score_tokens(corpus.parse(name), CONFIG)
        pieces.append(Piece(i, tokens, tempo, style="hymns" if i % 2 else "organ"))
    return pieces


STEPS: list[tuple[str, int, int, str]] = []  # what the module's training reported, step by step


@pytest.fixture(scope="module")
def trained(corpus_pieces: list[Piece]) -> tuple[SavedModel, dict]:
    return fit(corpus_pieces, TINY, on_step=lambda *step: STEPS.append(step))


def test_training_reports_each_epochs_losses(trained: tuple[SavedModel, dict]) -> None:
    import re

    _, metrics = trained
    epochs = [step for step in STEPS if step[0] == "training"]
    ran = metrics["epochs"]
    assert [(done, total) for _, done, total, _ in epochs] == [(n, TINY.epochs) for n in range(1, ran + 1)]
    for *_, note in epochs:
        losses = re.fullmatch(r"training loss ([0-9.]+), validation loss ([0-9.]+)", note)
        assert losses and all(0 < float(v) < 20 for v in losses.groups()), note
    assert not [step for step in STEPS if step[0] == "calibration"]  # not asked for: not done, not reported


def test_split_is_by_whole_piece_and_stable_as_pieces_arrive() -> None:
    pieces = [Piece(i, ["Meter_4"], 100.0) for i in range(50)]
    train, val = split_pieces(pieces, validation_share=0.2, seed=1)
    assert 5 <= len(val) <= 15 and not {p.source_id for p in train} & {p.source_id for p in val}
    more = pieces + [Piece(i, ["Meter_4"], 100.0) for i in range(50, 150)]
    _, val_more = split_pieces(more, validation_share=0.2, seed=1)
    assert {p.source_id for p in val} <= {p.source_id for p in val_more}  # an old validation piece stays there
    assert len(split_pieces(pieces[:2], validation_share=0.2, seed=1)[1]) == 1
    # Capped, validation stays small as the catalogue grows, and no piece a model trained on enters it.
    trained_on = {p.source_id for p in split_pieces(more, validation_share=0.2, seed=1, max_validation=8)[0]}
    for size in (150, 400, 1000):
        grown = [Piece(i, ["Meter_4"], 100.0) for i in range(size)]
        train_grown, val_grown = split_pieces(grown, validation_share=0.2, seed=1, max_validation=8)
        assert len(val_grown) == 8 and not {p.source_id for p in val_grown} & trained_on
        assert len(train_grown) == size - 8
        trained_on = {p.source_id for p in train_grown}


def test_windows_are_moved_into_keys_that_fit(corpus_pieces: list[Piece]) -> None:
    vocab = Vocabulary.build(CONFIG, styles=["hymns", "organ"])
    stream = stream_ids(corpus_pieces[:1], vocab, CONFIG)
    assert (stream.ids.dtype, stream.low.dtype, stream.high.dtype) == (np.int16, np.int8, np.int8)  # 4 bytes a token
    low, high = transposition_range(corpus_pieces[0].tokens, CONFIG)
    shifts = shift_table(vocab, CONFIG)
    plain = np.concatenate([b[0].numpy() for b in streaming_dataset(stream, seq_len=32, stride=32, batch_size=8,
                                                                    shuffle=False, seed=0)])  # fmt: skip
    is_key = np.array([t.startswith("Key_") for t in vocab.tokens])
    original = corpus_pieces[0].tokens[1]
    keys = set()
    data = streaming_dataset(stream, seq_len=32, stride=32, batch_size=8, shuffle=False, seed=0, shifts=shifts)
    for _ in range(12):  # a new key for each window each time the data is read (each epoch)
        moved = np.concatenate([b[0].numpy() for b in data])
        np.testing.assert_array_equal(moved[~is_key[moved]], plain[~is_key[plain]])  # only the key token changes
        (key,) = vocab.decode(moved[is_key[moved]])
        keys.add(key)
    assert len(keys) >= 4  # several keys, not one normalised key
    assert keys <= {shift_key(original, s) for s in range(low, high + 1)}  # only keys that keep it in range


def test_training_reads_its_windows_from_a_file_the_same_as_from_memory(
    corpus_pieces: list[Piece], tmp_path: Path
) -> None:
    vocab = Vocabulary.build(CONFIG, styles=["hymns", "organ"])
    high = GridPiece(4, (GridNote(0, CONFIG.pitch_high - 2, 4), GridNote(4, CONFIG.pitch_low + 1, 4)))  # no room
    pieces = [*corpus_pieces[:3], Piece(9, encode(high, CONFIG), 90.0, style="organ"), *corpus_pieces[3:]]
    memory = stream_ids(pieces, vocab, CONFIG)
    on_disk = IdFile(tmp_path / "train.ids", vocab, CONFIG)
    for piece in pieces:
        on_disk.add(piece.style, piece.tokens)
    on_disk.close()
    assert len(on_disk) == len(memory) and on_disk.pieces == len(pieces)
    assert (tmp_path / "train.ids").stat().st_size == 2 * len(memory)  # int16 ids: the pieces are on disk
    starts = np.array([0, 1, 17, len(memory) - 70, len(memory) - 3, *range(5, len(memory), 97)])
    for got, expected in zip(on_disk.windows(starts, 65), memory.windows(starts, 65), strict=True):
        np.testing.assert_array_equal(got, expected)  # ids (zero past the end) and each window's key range
    assert transposition_range(pieces[3].tokens, CONFIG)[1] < transposition_range(pieces[2].tokens, CONFIG)[1]
    across = on_disk.ends[2] - 10  # a window from the third piece into the high one takes the narrower range
    assert on_disk.windows(np.array([across]), 65)[2][0] == transposition_range(pieces[3].tokens, CONFIG)[1]
    np.testing.assert_array_equal(on_disk.counts(len(vocab)), np.bincount(memory.ids, minlength=len(vocab)))


def test_an_epoch_reads_a_new_sample_of_a_large_stream(corpus_pieces: list[Piece]) -> None:
    vocab = Vocabulary.build(CONFIG, styles=["hymns", "organ"])
    stream = stream_ids(corpus_pieces, vocab, CONFIG)
    data = streaming_dataset(stream, seq_len=32, stride=8, batch_size=16, shuffle=True, seed=3, max_windows=40)
    epochs = [np.concatenate([b[0].numpy() for b in data]) for _ in range(3)]
    assert [len(e) for e in epochs] == [40, 40, 40]  # the bound, every epoch
    firsts = [{tuple(w[:8]) for w in e} for e in epochs]
    assert firsts[0] != firsts[1] and len(firsts[0] | firsts[1] | firsts[2]) > 60  # not the same windows each time
    every = {tuple(stream.ids[s : s + 8]) for s in range(0, len(stream) - 32, 8)}
    assert firsts[0] <= every  # each a window of the stream, at the stride


def test_style_tokens_open_each_piece_and_are_never_sampled() -> None:
    vocab = Vocabulary.build(CONFIG, styles=["lofi", "organ"])
    assert vocab.styles == ["lofi", "organ"]
    ids = stream_ids([Piece(1, ["Meter_4", "Bar"], 90.0, style="organ")], vocab, CONFIG).ids
    assert vocab.decode(ids[:2]) == ["<sep>", style_token("organ")]
    assert vocab.index[style_token("lofi")] in vocab.special_ids()


def test_training_beats_the_unigram_baseline_per_note_on_the_same_targets(trained: tuple[SavedModel, dict]) -> None:
    saved, metrics = trained
    unigram, prototype = metrics["baselines"]["unigram"], metrics["baselines"]["prototype"]
    assert unigram["targets"] == prototype["targets"] == metrics["targets"] == metrics["val_tokens"] - 1
    assert unigram["notes"] == metrics["notes"] > 50
    assert metrics["nll_per_note"] < unigram["nll_per_note"] - 0.5  # the grid's grammar alone is worth that
    assert np.isfinite(prototype["nll_per_note"]) and prototype["epochs"] == 1
    assert (
        all(r.tempos for r in saved.config.styles.values())
        and saved.config.tokens_per_bar > 4
        and len(saved.config.units) == 2
    )
    assert set(saved.config.styles) == {"hymns", "organ"} and saved.vocab.styles == ["hymns", "organ"]


def test_warm_start_carries_shared_tokens_over(trained: tuple[SavedModel, dict]) -> None:
    saved, _ = trained
    vocab = Vocabulary.build(CONFIG, styles=["hymns", "lofi"])  # one style kept, one new
    model = build_model(dataclasses.replace(saved.config, vocab_size=len(vocab)))
    assert warm_start_weights(model, vocab, saved) == len(vocab) - 1  # all but the new style
    old = saved.model.get_layer("embedding").get_weights()[0]
    new = model.get_layer("embedding").get_weights()[0]
    for token in ("Bar", "Pitch_60", style_token("hymns")):
        np.testing.assert_array_equal(new[vocab.index[token]], old[saved.vocab.index[token]])
    for name in ("lstm_0", "lstm_1"):
        for a, b in zip(model.get_layer(name).get_weights(), saved.model.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    other = build_model(dataclasses.replace(saved.config, vocab_size=len(vocab), units=(32,)))
    assert warm_start_weights(other, vocab, saved) == 0  # different layers: nothing carried


def test_saved_model_reloads_to_the_same_predictions(trained: tuple[SavedModel, dict], tmp_path: Path) -> None:
    saved, _ = trained
    folder = saved.save(tmp_path / "m", extra={"train_settings.json": TINY.to_dict()})
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "tokenizer.json", "train_settings.json", "vocab.json", "weights.h5"
    ]  # fmt: skip
    again = SavedModel.load(folder)
    assert again.tokenizer == saved.tokenizer and again.config == saved.config
    x = np.array([[2, 3, 4, 5]], dtype=np.int32) % len(saved.vocab)
    np.testing.assert_allclose(saved.model(x).numpy(), again.model(x).numpy(), atol=1e-5)


def test_sampling_is_seeded_and_every_sequence_obeys_the_grammar(trained: tuple[SavedModel, dict]) -> None:
    saved, _ = trained
    a = sample(saved, batch=6, steps=300, temperature=1.5, top_p=1.0, seed=7)
    b = sample(saved, batch=6, steps=300, temperature=1.5, top_p=1.0, seed=7)
    np.testing.assert_array_equal(a, b)
    grammar = Grammar.of(saved.vocab)
    for row in a:  # hot and untruncated, so a model alone would break the grammar somewhere
        assert grammar.valid(row, CONFIG.steps_per_beat)
        tokens = saved.vocab.decode(row)
        assert tokens[0].startswith("Meter_") and tokens[1].startswith("Key_") and tokens[2] == "Bar"
        piece = decode(tokens, CONFIG)
        complete = sum(t.startswith("Pitch_") for t in tokens) - tokens[-1].startswith("Pitch_")  # cut mid-note
        assert complete == len({(n.step, n.pitch) for n in piece.notes}) > 0  # every note decodes, none doubled
    assert not set(a.ravel().tolist()) & set(saved.vocab.special_ids())
    # The grammar check itself catches a broken sequence: a pitch straight after a bar line.
    bad = saved.vocab.encode(["Meter_4", "Key_0", "Bar", "Pitch_60", "Dur_4"])
    assert not grammar.valid(bad, CONFIG.steps_per_beat)
    greedy = sample(saved, batch=1, steps=3, temperature=1.0, top_p=1e-6, seed=1)
    sep = np.array([[saved.vocab.index["<sep>"]]], dtype=np.int32)
    logits = saved.model(sep).numpy()[0, -1]
    meters = [saved.vocab.index[f"Meter_{m}"] for m in CONFIG.meters]
    assert greedy[0, 0] == meters[int(np.argmax(logits[meters]))]  # the likeliest token the grammar allows
