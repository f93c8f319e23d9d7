"""Validation scores on one set of targets: the pipeline's model and the two baselines it must beat.

Every score is the negative log-likelihood of the validation stream's next tokens, positions 1 to
the end, so all three are read on exactly the same targets; it is given per token and per note
(all nats over the notes the stream holds: a measure two models can share even when their
tokenizers differ, since they encode the same pieces' notes):

- the pipeline's LSTM, reading the stream in windows of its training length;
- a unigram model: add-one-smoothed token frequencies of the training stream;
- a 4-gram model with interpolated Kneser-Ney smoothing over the training stream's ids (``ngram_score``),
  the classic count-based model the network has to beat to show it learned more than local habits;
- the earlier prototype's architecture: token indices scaled to [0, 1] as a single float input,
  100-token windows, LSTM 512 -> dropout -> LSTM 256 -> dense -> softmax, one prediction per window.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from train.dataset import IdStream, Windowed
from transcribe.third_party import import_tensorflow

PROTOTYPE_WINDOW = 100


@dataclass(frozen=True)
class Score:
    nll: float  # nats per token
    accuracy: float
    targets: int
    notes: int  # notes among the targets

    @property
    def nll_per_note(self) -> float:
        return self.nll * self.targets / self.notes if self.notes else float("nan")

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready: a figure that does not exist (NaN) is ``None``, as PostgreSQL's JSON has no NaN."""
        return {
            "val_loss": _finite(self.nll),
            "nll_per_note": _finite(self.nll_per_note),
            "val_accuracy": _finite(self.accuracy),
            "targets": self.targets,
            "notes": self.notes,
        }


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def count_notes(ids: np.ndarray, note_ids: np.ndarray) -> int:
    """Notes among ``ids[1:]`` (the targets): one per pitch token."""
    return int(np.isin(ids[1:], note_ids).sum())


def model_score(model: Any, ids: np.ndarray, seq_len: int, note_ids: np.ndarray, *, batch_size: int = 64) -> Score:
    """NLL and accuracy of a next-token model on ``ids[1:]``, read in consecutive windows of ``seq_len``.

    Each window starts from a fresh state, as in training; the last window may be shorter.
    """
    import_tensorflow()  # once per process, without its known start-up errors
    import tensorflow as tf

    starts = list(range(0, max(len(ids) - 1, 0), seq_len))
    if not starts:
        return Score(float("nan"), 0.0, 0, 0)
    x = np.zeros((len(starts), seq_len), np.int32)
    y = np.zeros((len(starts), seq_len), np.int32)
    mask = np.zeros((len(starts), seq_len), bool)
    for row, start in enumerate(starts):
        window = ids[start : start + seq_len + 1]
        n = len(window) - 1
        x[row, :n], y[row, :n], mask[row, :n] = window[:-1], window[1:], True
    total, correct = 0.0, 0
    for i in range(0, len(starts), batch_size):
        logits = model(x[i : i + batch_size], training=False)
        log_probs = tf.nn.log_softmax(logits).numpy()
        rows_y, rows_m = y[i : i + batch_size], mask[i : i + batch_size]
        picked = np.take_along_axis(log_probs, rows_y[..., None], axis=-1)[..., 0]
        total += float(-picked[rows_m].sum())
        correct += int((log_probs.argmax(-1) == rows_y)[rows_m].sum())
    n = int(mask.sum())
    return Score(total / n, correct / n, n, count_notes(ids, note_ids))


def unigram_score(train_counts: np.ndarray, val_ids: np.ndarray, note_ids: np.ndarray) -> Score:
    """Add-one-smoothed training token frequencies (``train_counts``, one per id), scored on ``val_ids[1:]``."""
    counts = np.asarray(train_counts, np.float64) + 1.0
    log_probs = np.log(counts / counts.sum())
    targets = val_ids[1:]
    accuracy = float((targets == counts.argmax()).mean())
    return Score(float(-log_probs[targets].mean()), accuracy, len(targets), count_notes(val_ids, note_ids))


def build_prototype(vocab_size: int, *, window: int = PROTOTYPE_WINDOW, seed: int = 0) -> Any:
    """The earlier prototype's network: a float per token in, LSTM 512 -> dropout -> LSTM 256 -> dense softmax."""
    import_tensorflow()  # once per process, without its known start-up errors
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(window, 1)),
            tf.keras.layers.LSTM(512, return_sequences=True),
            tf.keras.layers.Dropout(0.3),
            tf.keras.layers.LSTM(256),
            tf.keras.layers.Dense(vocab_size, activation="softmax"),
        ],
        name="prototype",
    )
    model.compile(optimizer=tf.keras.optimizers.RMSprop(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    return model


def _prototype_windows(stream: Windowed, targets: np.ndarray, window: int) -> np.ndarray:
    """For each target position t, ids ``t - window`` to ``t`` (zeros before the start of the stream)."""
    starts = np.asarray(targets, np.int64) - window
    ids, _, _ = stream.windows(np.maximum(starts, 0), window + 1)
    for row in np.flatnonzero(starts < 0):
        ids[row] = np.concatenate([np.zeros(-starts[row], ids.dtype), ids[row, : window + 1 + starts[row]]])
    return ids


def _prototype_inputs(ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows from :func:`_prototype_windows` as the prototype reads them: the ids before each target scaled
    to [0, 1], and the target."""
    return (ids[:, :-1].astype(np.float32) / vocab_size)[..., None], ids[:, -1]


def prototype_score(
    train: Windowed,
    val: IdStream,
    vocab_size: int,
    note_ids: np.ndarray,
    *,
    epochs: int,
    max_windows: int = 2048,
    budget_seconds: float = 120.0,
    seed: int = 0,
) -> tuple[Score, dict[str, float]]:
    """Train the prototype on the training stream (up to ``epochs`` or the time budget); score it on ``val.ids[1:]``.

    Windows start every ``stride`` ids, the stride chosen so an epoch sees at most ``max_windows``.
    """
    import_tensorflow()  # once per process, without its known start-up errors
    import tensorflow as tf

    model = build_prototype(vocab_size, seed=seed)
    stride = max(1, math.ceil((len(train) - 1) / max_windows))
    chosen = np.arange(1, len(train), stride)
    x, y = _prototype_inputs(_prototype_windows(train, chosen, PROTOTYPE_WINDOW), vocab_size)
    deadline = time.perf_counter() + budget_seconds

    class Budget(tf.keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            if time.perf_counter() > deadline:
                self.model.stop_training = True

    started = time.perf_counter()
    history = model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, shuffle=True, callbacks=[Budget()])
    seconds = time.perf_counter() - started
    val_ids = val.ids
    targets = np.arange(1, len(val_ids))
    inputs, _ = _prototype_inputs(_prototype_windows(val, targets, PROTOTYPE_WINDOW), vocab_size)
    probs = model.predict(inputs, batch_size=256, verbose=0)
    picked = np.clip(probs[np.arange(len(targets)), val_ids[targets]], 1e-12, 1.0)
    accuracy = float((probs.argmax(-1) == val_ids[targets]).mean())
    score = Score(float(-np.log(picked).mean()), accuracy, len(targets), count_notes(val_ids, note_ids))
    return score, {"epochs": len(history.history["loss"]), "windows": len(chosen), "seconds": round(seconds, 1)}


NGRAM_ORDER = 4
NGRAM_DISCOUNT = 0.75  # Kneser and Ney's absolute discount
NGRAM_MAX_TOKENS = 2_000_000  # the training ids counted at most (a large catalogue's stream is sampled from its start)


class KneserNey:
    """An interpolated Kneser-Ney n-gram model over ids (Chen & Goodman's formulation, one discount).

    The highest order uses the counts of each n-gram; the lower orders the number of distinct ids that precede
    them (continuation counts), down to an add-one unigram of continuation counts over the whole vocabulary.
    """

    def __init__(self, ids: np.ndarray, vocab_size: int, *, order: int = NGRAM_ORDER, discount: float = NGRAM_DISCOUNT):
        self.order, self.discount, self.vocab_size = order, discount, vocab_size
        seq = [int(i) for i in ids]
        grams: list[Counter[tuple[int, ...]]] = [Counter() for _ in range(order + 1)]
        top = grams[order]
        for i in range(len(seq) - order + 1):
            top[tuple(seq[i : i + order])] += 1
        for n in range(order - 1, 0, -1):  # continuation counts: distinct ids before each (n)-gram
            for gram in grams[n + 1]:
                grams[n][gram[1:]] += 1
        self.counts = grams
        self.context_total: list[dict[tuple[int, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
        self.context_types: list[dict[tuple[int, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
        for n in range(1, order + 1):
            for gram, count in grams[n].items():
                self.context_total[n][gram[:-1]] += count
                self.context_types[n][gram[:-1]] += 1

    def probability(self, context: tuple[int, ...], token: int) -> float:
        """P(token | the last ``order - 1`` ids of ``context``), interpolated down to the unigram."""
        unigram_total = self.context_total[1][()]
        p = (self.counts[1].get((token,), 0) + 1.0) / (unigram_total + self.vocab_size)
        for n in range(2, self.order + 1):
            if len(context) < n - 1:
                break
            history = context[len(context) - (n - 1) :]
            total = self.context_total[n].get(history, 0)
            if not total:
                continue
            count = self.counts[n].get((*history, token), 0)
            backoff = self.discount * self.context_types[n][history] / total
            p = max(count - self.discount, 0.0) / total + backoff * p
        return p


def ngram_score(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int, note_ids: np.ndarray) -> Score:
    """A 4-gram Kneser-Ney model of ``train_ids``, scored on ``val_ids[1:]`` as the other scores are."""
    model = KneserNey(np.asarray(train_ids)[:NGRAM_MAX_TOKENS], vocab_size)
    seq = [int(i) for i in val_ids]
    history = NGRAM_ORDER - 1
    total = 0.0
    for t in range(1, len(seq)):
        total -= math.log(model.probability(tuple(seq[max(0, t - history) : t]), seq[t]))
    targets = len(seq) - 1
    # No accuracy: the most likely id at every position would take a probability for every id of the vocabulary.
    return Score(total / max(targets, 1), float("nan"), targets, count_notes(val_ids, note_ids))
