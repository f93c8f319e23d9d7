"""Judges: tests that tell generated pieces from real ones, kept apart from what generation aims at.

Nothing in ``train/`` or ``generate/`` imports this module (``tests/test_layout.py`` checks it), and no
feature here is one that generation code reads, fits or selects on. Those are **targets** (``TARGETS``):
reporting them shows whether generation hit its aim, never whether the music is like its playlist.

Each judge answers "can generated be told from real?" as an accuracy between 0.5 (no) and 1.0 (always), and
each is run twice: batch against held-back real pieces, and its **control**, training pieces against the same
held-back pieces at the same set sizes (what two sets of real music of one style read).

- ``distribution_test``: the *shape* of each piece, as seven histograms read inside it (how many notes each
  onset strikes, how long a note sounds against the time to the next onset, the top line's signed intervals,
  its inter-onset intervals in beats, where onsets fall in the beat, the interval classes sounding together,
  and which scale degrees the top line's downbeats land on), compared piece to piece by the sum of their
  Jensen-Shannon distances; leave-one-out 1-nearest-neighbour accuracy over both sets pooled (Schilling's
  nearest-neighbour two-sample test).
- ``discriminator``: a small network (a multi-layer perceptron) over piano-roll windows of eight beats (onsets
  by pitch class relative to the piece's key, notes sounding, the top line's height), trained real against
  generated on four folds of pieces and scored on the fifth; a piece is called generated when its windows
  say so on average.
- ``target_classifier``: the old style classifier (a logistic regression over eleven per-piece features). It
  reads targets (``TARGETS``), so it is reported as how near generation came to its aims, not as a judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from train.structure import recurring_bar_share, top_line
from train.tokens import GridPiece, TokenizerConfig, key_of, key_reference

CONFIG = TokenizerConfig()

# Features some generation code reads, fits or selects on, and where: they cannot judge.
TARGETS = {
    "pitch_range, pitch_count, pitch_class_entropy, scale_share, top_mean_step, top_leap_share, polyphony, "
    "onsets_per_beat, ioi_variation, median_note_beats": "train.profile: the select step's distance, "
    "train.calibrate's lift",
    "top-line repeat share": "train.calibrate's lift (repeats knob)",
    "top-line share of leaps over an octave": "the fold step (generate.arrange.singable)",
    "share of recurring bars": "the form step (generate.form.choose_form)",
    "register (lowest and highest pitch)": "the register step (train.sampler.Lift.within)",
    "tempo, meter, key": "drawn per track from a training piece (generate.draft)",
    "final chord on the tonic": "the cadence step (generate.form.with_cadence)",
    "chord triads per half bar": "the harmony step (generate.harmony)",
}

# ---------------------------------------------------------------------------------------------------------
# The distribution test


def _histogram(values: Sequence[float], edges: Sequence[float]) -> np.ndarray:
    """Counts of ``values`` in the bins between ``edges`` (the outer bins open-ended), as shares."""
    if not len(values):
        return np.zeros(len(edges) + 1)
    counts = np.bincount(np.searchsorted(np.asarray(edges, float), values, side="right"), minlength=len(edges) + 1)
    return counts / counts.sum()


def shape_histograms(piece: GridPiece, config: TokenizerConfig = CONFIG) -> dict[str, np.ndarray]:
    """The seven within-piece distributions the distribution test compares (see the module docstring)."""
    spb = config.steps_per_beat
    onsets: dict[int, list[int]] = {}
    for n in piece.notes:
        onsets.setdefault(n.step, []).append(n.pitch)
    steps = sorted(onsets)
    following = {s: steps[i + 1] for i, s in enumerate(steps[:-1])}
    articulation = [n.steps / (following[n.step] - n.step) for n in piece.notes if n.step in following]
    line = top_line(piece)
    intervals = [b.pitch - a.pitch for a, b in zip(line, line[1:], strict=False)]
    iois = [(b.step - a.step) / spb for a, b in zip(line, line[1:], strict=False)]
    end = max((n.step + n.steps for n in piece.notes), default=0)
    sounding: list[list[int]] = [[] for _ in range(end)]
    for n in piece.notes:
        for t in range(n.step, n.step + n.steps):
            sounding[t].append(n.pitch)
    classes = []
    for step in steps:  # the interval classes among the notes sounding at each onset
        pitches = sorted(set(sounding[step]))
        classes += [min((b - a) % 12, 12 - (b - a) % 12) for i, a in enumerate(pitches) for b in pitches[i + 1 :]]
    tonic = key_reference(key_of(piece)) if piece.notes else 0
    bar = piece.bar_steps(config)
    degrees = [(n.pitch - tonic) % 12 for n in line if n.step % bar == 0]
    return {
        "onset_polyphony": _histogram([len(p) for p in onsets.values()], [1.5, 2.5, 3.5, 4.5, 5.5]),
        "articulation": _histogram(articulation, [0.5, 0.8, 0.99, 1.01, 1.5, 3.0]),
        "top_intervals": _histogram(intervals, [-7.5, -4.5, -2.5, -0.5, 0.5, 2.5, 4.5, 7.5]),
        "top_iois": _histogram(iois, [0.3, 0.6, 0.8, 1.1, 1.6, 2.1, 3.1]),
        "beat_position": np.bincount([s % spb for s in steps], minlength=spb) / max(len(steps), 1),
        "interval_classes": np.bincount(classes, minlength=7)[:7] / max(len(classes), 1),
        "downbeat_degrees": np.bincount(degrees, minlength=12) / max(len(degrees), 1),
    }


SHAPES = tuple(shape_histograms(GridPiece(4, ())))


def _js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen-Shannon distance (base 2, 0..1) between two histograms; 1 when exactly one is empty."""
    if not p.sum() or not q.sum():
        return 0.0 if not p.sum() and not q.sum() else 1.0
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        inside = a > 0
        return float((a[inside] * np.log2(a[inside] / m[inside])).sum())

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def shape_distances(pieces: Sequence[GridPiece], shapes: Sequence[str] = SHAPES) -> np.ndarray:
    """The pieces' pairwise distances: the sum, over ``shapes``, of their histograms' Jensen-Shannon distances."""
    histograms = [shape_histograms(p) for p in pieces]
    n = len(pieces)
    distances = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            distances[i, j] = distances[j, i] = sum(_js_distance(histograms[i][s], histograms[j][s]) for s in shapes)
    return distances


def nearest_neighbour_accuracy(distances: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out accuracy of labelling each item as its nearest other item is labelled."""
    masked = distances + np.diag(np.full(len(labels), np.inf))
    return float((labels[masked.argmin(axis=1)] == labels).mean())


def _equal(a: Sequence[GridPiece], b: Sequence[GridPiece]) -> tuple[list[GridPiece], np.ndarray]:
    n = min(len(a), len(b))
    return [*a[:n], *b[:n]], np.array([1] * n + [0] * n)


def distribution_test(a: Sequence[GridPiece], b: Sequence[GridPiece], shapes: Sequence[str] = SHAPES) -> float:
    """How often a piece's nearest neighbour (by ``shapes``) is from its own set, the two sets at equal sizes."""
    pooled, labels = _equal(a, b)
    return nearest_neighbour_accuracy(shape_distances(pooled, shapes), labels)


# ---------------------------------------------------------------------------------------------------------
# The learned discriminator

WINDOW_BEATS = 8
MAX_WINDOWS = 12  # per piece, so a long piece does not outweigh a short one


def piano_roll_windows(piece: GridPiece, config: TokenizerConfig = CONFIG) -> np.ndarray:
    """(windows, features): eight-beat windows every four beats, each as onsets by pitch class relative to the
    piece's key reference (12 x steps), notes sounding (/6) and the top line's height against the piece's
    median pitch (/12), per step."""
    if not piece.notes:
        return np.zeros((0, 14 * WINDOW_BEATS * config.steps_per_beat))
    span = WINDOW_BEATS * config.steps_per_beat
    end = max(n.step + n.steps for n in piece.notes)
    tonic = key_reference(key_of(piece))
    median = float(np.median([n.pitch for n in piece.notes]))
    onsets = np.zeros((12, end + span))
    sounding = np.zeros(end + span)
    top = np.zeros(end + span)
    for n in piece.notes:
        onsets[(n.pitch - tonic) % 12, n.step] = 1.0
        sounding[n.step : n.step + n.steps] += 1.0 / 6
    for n in top_line(piece):
        top[n.step : n.step + n.steps] = (n.pitch - median) / 12
    hop = span // 2
    starts = list(range(0, max(end - hop, 1), hop))[:MAX_WINDOWS]
    return np.array(
        [np.concatenate([onsets[:, s : s + span].ravel(), sounding[s : s + span], top[s : s + span]]) for s in starts]
    )


def discriminator(a: Sequence[GridPiece], b: Sequence[GridPiece], *, folds: int = 5, seed: int = 0) -> float:
    """Held-out accuracy of a small network telling set ``a`` from set ``b`` (equal sizes), piece by piece."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pooled, labels = _equal(a, b)
    windows = [piano_roll_windows(p) for p in pooled]
    correct = 0
    splitter = StratifiedKFold(n_splits=min(folds, len(labels) // 2), shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(labels)), labels):
        x = np.concatenate([windows[i] for i in train])
        y = np.concatenate([[labels[i]] * len(windows[i]) for i in train])
        network = make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-2, max_iter=400, random_state=seed)
        )
        network.fit(x, y)
        for i in test:
            said = float(network.predict_proba(windows[i])[:, 1].mean()) if len(windows[i]) else 0.5
            correct += int((said > 0.5) == bool(labels[i]))
    return correct / len(labels)


# ---------------------------------------------------------------------------------------------------------
# Targets: reported, never judges

TARGET_FEATURES = (
    "pitch_range",
    "pitch_count",
    "pitch_class_entropy",
    "scale_share",
    "top_mean_interval",
    "top_leap_share",
    "polyphony",
    "onsets_per_second",
    "ioi_variation",
    "median_note_seconds",
    "recurring_bars",
)


def target_features(piece: GridPiece, bpm: float, config: TokenizerConfig = CONFIG) -> np.ndarray:
    """Eleven per-piece features that generation aims at (``train.profile``'s, in seconds, and the share of
    recurring bars by ``train.structure``'s one rule)."""
    from train.profile import PROFILE_FEATURES, profile_features

    f = dict(zip(PROFILE_FEATURES, profile_features(piece, config), strict=True))
    beat = 60.0 / bpm
    return np.array(
        [
            f["pitch_range"], f["pitch_count"], f["pitch_class_entropy"], f["scale_share"], f["top_mean_step"],
            f["top_leap_share"], f["polyphony"], f["onsets_per_beat"] / beat, f["ioi_variation"],
            f["median_note_beats"] * beat, recurring_bar_share(piece, config),
        ]
    )  # fmt: skip


def target_classifier(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Leave-one-out accuracy of a standardised logistic regression telling set ``a`` from set ``b``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneOut, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = min(len(a), len(b))
    x = np.array([*a[:n], *b[:n]])
    y = np.array([1] * n + [0] * n)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(model, x, y, cv=LeaveOneOut()).mean())


def spread_ratios(generated: Sequence[np.ndarray], real: Sequence[np.ndarray]) -> np.ndarray:
    """Per feature, the batch's standard deviation over the real pieces' (1: it varies as much as they do)."""
    real_sd = np.std(np.array(real), axis=0)
    return np.std(np.array(generated), axis=0) / np.where(real_sd > 0, real_sd, 1.0)


@dataclass(frozen=True)
class Verdict:
    """Every judge on one batch against held-back pieces, beside its control (training against held-back)."""

    distribution: float
    distribution_control: float
    discriminator: float
    discriminator_control: float
    targets: float
    targets_control: float
    spread: float  # the median over TARGET_FEATURES of spread_ratios
    per_shape: dict[str, float]  # the distribution test on each histogram alone
    spreads: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def judge(
    generated: Sequence[tuple[GridPiece, float]],
    training: Sequence[tuple[GridPiece, float]],
    held_back: Sequence[tuple[GridPiece, float]],
) -> Verdict:
    """Every judge on (piece, tempo) sets: the batch against the held-back pieces, the training pieces against
    the same as the control, the sets cut to equal sizes."""
    n = min(len(generated), len(held_back), len(training))
    gen, train, real = ([p for p, _ in s[:n]] for s in (generated, training, held_back))
    gen_t, train_t, real_t = ([target_features(p, bpm) for p, bpm in s[:n]] for s in (generated, training, held_back))
    ratios = spread_ratios(gen_t, real_t)
    return Verdict(
        distribution=distribution_test(gen, real),
        distribution_control=distribution_test(train, real),
        discriminator=discriminator(gen, real),
        discriminator_control=discriminator(train, real),
        targets=target_classifier(gen_t, real_t),
        targets_control=target_classifier(train_t, real_t),
        spread=float(np.median(ratios)),
        per_shape={s: round(distribution_test(gen, real, (s,)), 3) for s in SHAPES},
        spreads={name: round(float(r), 3) for name, r in zip(TARGET_FEATURES, ratios, strict=True)},
    )
