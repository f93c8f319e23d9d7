"""Fit the LSTM on the catalogue's accepted pieces and register the result as a model version."""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ModelVersion, Playlist, PlaylistEntry, Source, SourceState, Transcription
from db.queries import current_model
from train.base import BASE_NAME, base_model_folder
from train.baselines import NGRAM_MAX_TOKENS, Score, model_score, ngram_score, prototype_score, unigram_score
from train.calibrate import calibrate
from train.dataset import (
    DEFAULT_STYLE,
    IdFile,
    Piece,
    shift_table,
    split_pieces,
    stream_ids,
    streaming_dataset,
    window_count,
)
from train.model import ModelConfig, SavedModel, build_model, warm_start_weights
from train.originality import CopyIndex
from train.pieces import PIECES_FILE, pieces_behind, save_pieces
from train.reference import REFERENCE_FILE, reference_features, save_reference
from train.style import StyleRecord, measure_style
from train.token_store import TokenStore
from train.tokens import BAR, TokenizeError, TokenizerConfig, encode, quantise
from train.vocab import Vocabulary
from transcribe.beats import BeatGrid, grid_from_notes
from transcribe.groove import Groove, style_groove
from transcribe.midi import read_midi
from transcribe.third_party import import_tensorflow

log = logging.getLogger(__name__)


class TrainingError(Exception):
    """Training cannot run (too little data) or produced nothing usable."""


@dataclass(frozen=True)
class TrainSettings:
    """How a model is trained; saved as ``train_settings.json`` beside every model."""

    epochs: int = 12
    # Windows per step: large batches keep the CPU's matmuls efficient (bench/train.py), but every epoch
    # should still take at least ``min_steps`` steps, so a small dataset gets smaller batches.
    batch_size: int = 64
    min_batch_size: int = 16
    min_steps: int = 20
    seq_len: int = 192
    stride: int = 24
    # At most this many windows an epoch, a new random sample of them each epoch once there are more: a
    # nightly retrain stays within about 12 epochs x 3,000 windows x 192 tokens, under half an hour on 2
    # cores, however large the catalogue.
    max_windows: int = 3000
    validation_share: float = 0.2
    # At most this many validation pieces (those of the lowest hashes): a large catalogue's validation,
    # run every epoch and again to compare models, stays the size of a few hundred pieces.
    max_validation_pieces: int = 200
    embedding: int = 128
    units: tuple[int, ...] = (256, 256)  # stacked LSTM layers (bench/train.py --sweep chose these)
    dropout: float = 0.2
    learning_rate: float = 2e-3
    patience: int = 3
    min_pieces: int = 2
    seed: int = 0
    augment: bool = True  # every window in a random key that fits its pieces' range
    # After training, sample and lift each style's onsets, voices, notes off the scale and top-line leaps to its
    # pieces' (train.calibrate).
    calibrate: bool = True
    warm_start: bool = True  # start from the current model's weights where the vocabulary allows
    # With no current model and fewer accepted pieces than this, fine-tune the shipped base model
    # (train/base_model, trained on public-domain corpus music) instead of starting from nothing.
    base_below: int = 400
    # The earlier prototype's architecture as a baseline: at most this many epochs / seconds (0 skips it).
    prototype_epochs: int = 4
    prototype_seconds: float = 90.0
    # Train only on sources whose licence (as yt-dlp reports it) contains this text, case-insensitively,
    # e.g. "Creative Commons" (YouTube's "Creative Commons Attribution license (reuse allowed)").
    licence: str | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.min_batch_size < 1 or self.min_steps < 1:
            raise ValueError("epochs and batch sizes must be at least 1")
        if self.seq_len < 8 or self.stride < 1 or self.max_windows < 1:
            raise ValueError("seq_len must be at least 8 and stride at least 1")
        if not 0.0 < self.validation_share < 1.0:
            raise ValueError(f"validation_share must lie strictly between 0 and 1, not {self.validation_share}")
        if not self.units or min(self.units) < 1 or self.embedding < 1:
            raise ValueError("a model needs at least one LSTM layer and positive sizes")
        if not 0.0 <= self.dropout < 1.0 or self.learning_rate <= 0:
            raise ValueError("dropout must lie in [0, 1) and the learning rate be positive")
        if self.max_validation_pieces < 1:
            raise ValueError("max_validation_pieces must be at least 1")
        if self.min_pieces < 2:
            raise ValueError("training needs at least 2 pieces (one to validate on)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainOutcome:
    trained: bool
    message: str
    model_id: int | None = None
    metrics: dict[str, Any] | None = None
    promoted: bool = False


@dataclass(frozen=True)
class AcceptedPiece:
    source_id: int
    midi_path: str
    tempo: float
    grid: dict[str, Any] | None
    style: str
    groove: dict[str, Any] | None = None
    centroid: float | None = None


def piece_tokens(midi_path: Path, grid: BeatGrid | None, tokenizer: TokenizerConfig) -> list[str]:
    """A transcription's tokens on its beat grid (derived from its notes when it has none stored).

    Raises:
        TokenizeError: no notes in range, or a meter the tokenizer cannot hold.
    """
    notes = read_midi(midi_path)
    return encode(quantise(notes, grid or grid_from_notes(notes), tokenizer), tokenizer)


def accepted_pieces(session: Session, licence: str | None = None) -> list[AcceptedPiece]:
    """Every accepted source with its MIDI, tempo, grid and style (its first playlist's), ``licence``'d if given."""
    query = (
        select(Source.id, Transcription.midi_path, Transcription.tempo, Transcription.grid, Transcription.features)
        .join(Transcription, Transcription.source_id == Source.id)
        .where(Source.state == SourceState.ACCEPTED)
        .order_by(Source.id)
    )
    if licence:
        query = query.where(Source.license.ilike(f"%{licence}%"))
    styles: dict[int, str] = {}
    for source_id, style in session.execute(
        select(PlaylistEntry.source_id, Playlist.style).join(Playlist).order_by(PlaylistEntry.playlist_id)
    ):
        styles.setdefault(source_id, style)
    return [
        AcceptedPiece(
            sid, path, (grid or {}).get("tempo") or tempo or 120.0, grid, styles.get(sid, DEFAULT_STYLE),
            (features or {}).get("groove"), ((features or {}).get("audio") or {}).get("means", {}).get("centroid"),
        )
        for sid, path, tempo, grid, features in session.execute(query)
    ]  # fmt: skip


def load_pieces(
    rows: Sequence[AcceptedPiece], tokenizer: TokenizerConfig, tokens_dir: Path | None = None
) -> tuple[list[Piece], Counter[str]]:
    """The rows' pieces, a piece that cannot be tokenised skipped and counted by reason.

    With ``tokens_dir``, each piece's tokens are stored there (tokenised now where they were not before)
    and the pieces hold only a handle on their file (``StoredTokens``), read again on each use: the
    catalogue's tokens are never all in memory. Without, they are tokenised and held as lists.
    """
    pieces: list[Piece] = []
    skipped: Counter[str] = Counter()
    store = TokenStore(tokens_dir, tokenizer) if tokens_dir is not None else None
    for row in rows:
        midi = Path(row.midi_path)
        grid = BeatGrid.from_dict(row.grid) if row.grid else None

        def compute(midi: Path = midi, grid: BeatGrid | None = grid) -> list[str]:
            return piece_tokens(midi, grid, tokenizer)

        try:
            tokens: Sequence[str] = store.stored(row.source_id, midi, row.grid, compute) if store else compute()
        except TokenizeError as error:
            log.warning("piece %d not used for training: %s", row.source_id, error)
            skipped[str(error).split(":")[0]] += 1
            continue
        except OSError as error:  # the MIDI file is gone or unreadable
            log.warning("piece %d not used for training: %s", row.source_id, error)
            skipped["midi_unreadable"] += 1
            continue
        pieces.append(
            Piece(
                source_id=row.source_id,
                tokens=tokens,
                tempo=row.tempo,
                style=row.style,
                groove=row.groove,
                centroid=row.centroid,
            )
        )
    if store is not None:
        log.info("tokens of %d pieces read back, %d computed", len(rows) - store.computed, store.computed)
    return pieces, skipped


def style_records(pieces: Sequence[Piece], tokenizer: TokenizerConfig, *, seed: int) -> dict[str, StyleRecord]:
    """One record per style (``train.style``): its pieces' measures, its drums where its sources have percussion
    (``transcribe.groove.style_groove``) and its sound (the median spectral centroid and percussive share over
    its sources that measured both)."""
    records: dict[str, StyleRecord] = {}
    for style in sorted({p.style for p in pieces}):
        own = [p for p in pieces if p.style == style]
        grooves = [Groove.from_dict(p.groove) for p in own if p.groove]
        groove = style_groove(grooves) if grooves else None
        sounds = [(p.centroid, p.groove["percussive_share"]) for p in own if p.groove and p.centroid is not None]
        centroids, shares = [c for c, _ in sounds], [s for _, s in sounds]
        sound = (
            {"centroid": float(np.median(centroids)), "percussive_share": float(np.median(shares))} if sounds else None
        )
        records[style] = measure_style(
            style, [(list(p.tokens), p.tempo) for p in own], tokenizer, seed=seed,
            groove=groove.to_dict() if groove is not None else None, sound=sound,
        )  # fmt: skip
    return records


def note_ids(vocab: Vocabulary) -> np.ndarray:
    return np.array([i for i, t in enumerate(vocab.tokens) if t.startswith("Pitch_")], dtype=np.int32)


def score_pieces(saved: SavedModel, pieces: Sequence[Piece]) -> Score:
    """A model's NLL on pieces tokenised its own way (the same notes whatever its tokenizer)."""
    stream = stream_ids(pieces, saved.vocab, saved.tokenizer)
    return model_score(saved.model, stream.ids, saved.config.seq_len, note_ids(saved.vocab))


# (stage, done, total, note): each epoch of "training" with its losses, then each style's "calibration" with what
# it measured; flows.pipeline makes each a log line and a step of a Prefect progress artifact.
StepListener = Callable[[str, int, int, str], None]


def _EpochReport(listener: StepListener, epochs: int) -> Any:  # noqa: N802 - a Keras callback's class, made here
    """A Keras callback that tells ``listener`` each epoch's losses (TensorFlow is imported lazily)."""
    import tensorflow as tf

    class EpochReport(tf.keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            found = logs or {}
            train, val = (float(found.get(k, float("nan"))) for k in ("loss", "val_loss"))
            listener("training", epoch + 1, epochs, f"training loss {train:.3f}, validation loss {val:.3f}")

    return EpochReport()


def fit(
    pieces: Sequence[Piece],
    settings: TrainSettings,
    *,
    tokenizer: TokenizerConfig | None = None,
    warm_start: SavedModel | None = None,
    on_step: StepListener | None = None,
) -> tuple[SavedModel, dict[str, Any]]:
    """Train on ``pieces`` (split by piece) and return the model with its validation metrics and baselines.

    ``on_step(stage, done, total, note)`` is told of every epoch (counted from 1) and each style calibrated.

    Raises:
        TrainingError: too few pieces, or the loss is not finite.
    """
    import_tensorflow()  # once per process, without its known start-up errors
    import tensorflow as tf

    if len(pieces) < settings.min_pieces:
        raise TrainingError(f"need at least {settings.min_pieces} accepted pieces to train, have {len(pieces)}")
    tokenizer = warm_start.tokenizer if warm_start is not None else (tokenizer or TokenizerConfig())
    train_pieces, val_pieces = split_pieces(
        pieces, validation_share=settings.validation_share, seed=settings.seed,
        max_validation=settings.max_validation_pieces,
    )  # fmt: skip
    styles: dict[str, list[float]] = {}
    for piece in pieces:
        styles.setdefault(piece.style, []).append(round(piece.tempo, 1))
    inherited = warm_start.vocab.styles if warm_start is not None else []
    vocab = Vocabulary.build(tokenizer, styles=[*styles, *inherited])
    with tempfile.TemporaryDirectory(prefix="tunesmith-train-") as work:
        # Each training piece's tokens are read once, into a file of ids that the epochs read a window at a
        # time; only validation's (a bounded number of pieces) are held.
        train_stream = IdFile(Path(work) / "train.ids", vocab, tokenizer)
        bars = train_tokens = 0
        for piece in train_pieces:
            tokens = list(piece.tokens)
            train_stream.add(piece.style, tokens)
            bars += tokens.count(BAR)
            train_tokens += len(tokens)
        train_stream.close()
        val_pieces = [dataclasses.replace(p, tokens=list(p.tokens)) for p in val_pieces]
        val_stream = stream_ids(val_pieces, vocab, tokenizer)
        config = ModelConfig(
            vocab_size=len(vocab),
            embedding=settings.embedding,
            units=tuple(settings.units),
            dropout=settings.dropout,
            seq_len=settings.seq_len,
            learning_rate=settings.learning_rate,
            tokens_per_bar=train_tokens / max(bars, 1),
            styles=style_records(pieces, tokenizer, seed=settings.seed),
            seed=settings.seed,
        )
        model = build_model(config)
        shared = warm_start_weights(model, vocab, warm_start) if warm_start is not None else 0
        windows = min(window_count(len(train_stream), settings.seq_len, settings.stride), settings.max_windows)
        batch_size = max(settings.min_batch_size, min(settings.batch_size, windows // settings.min_steps))
        train_data = streaming_dataset(
            train_stream, seq_len=settings.seq_len, stride=settings.stride, batch_size=batch_size, shuffle=True,
            seed=settings.seed, shifts=shift_table(vocab, tokenizer) if settings.augment else None,
            max_windows=settings.max_windows,
        )  # fmt: skip
        val_data = streaming_dataset(
            val_stream, seq_len=settings.seq_len, stride=settings.seq_len, batch_size=batch_size,
            shuffle=False, seed=settings.seed,
        )  # fmt: skip
        started = time.perf_counter()
        history = model.fit(
            train_data,
            validation_data=val_data,
            epochs=settings.epochs,
            verbose=0,
            callbacks=[
                tf.keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=settings.patience, restore_best_weights=True
                ),
                *([_EpochReport(on_step, settings.epochs)] if on_step else []),
            ],
        )
        seconds = time.perf_counter() - started
        notes = note_ids(vocab)
        score = model_score(model, val_stream.ids, settings.seq_len, notes)
        if not math.isfinite(score.nll):
            raise TrainingError(f"training diverged: validation loss {score.nll}")
        epochs = len(history.history["loss"])
        unigram = unigram_score(train_stream.counts(len(vocab)), val_stream.ids, notes)
        counted = train_stream.windows(np.array([0]), min(len(train_stream), NGRAM_MAX_TOKENS))[0][0]
        ngram = ngram_score(counted, val_stream.ids, len(vocab), notes)
        metrics: dict[str, Any] = {
            **score.to_dict(),
            "perplexity": round(math.exp(score.nll), 3),
            "baselines": {"unigram": unigram.to_dict(), "4-gram": ngram.to_dict()},
            "epochs": epochs,
            "train_tokens": len(train_stream),
            "val_tokens": len(val_stream),
            "vocab_size": len(vocab),
            "tokenizer": tokenizer.version,
            "styles": {style: len(tempos) for style, tempos in styles.items()},
            "batch_size": batch_size,
            "stride": settings.stride,
            "windows_per_epoch": windows,
            "train_seconds": round(seconds, 2),
            "tokens_per_second": round(epochs * windows * settings.seq_len / seconds, 1),
            "warm_start_tokens": shared,
            "validation_source_ids": [p.source_id for p in val_pieces],
        }
        if settings.prototype_epochs > 0:
            proto, run = prototype_score(
                train_stream, val_stream, len(vocab), notes, epochs=settings.prototype_epochs,
                budget_seconds=settings.prototype_seconds, seed=settings.seed,
            )  # fmt: skip
            metrics["baselines"]["prototype"] = proto.to_dict() | run
    saved = SavedModel(config=config, vocab=vocab, tokenizer=tokenizer, model=model)
    if settings.calibrate:
        saved, metrics["calibration"] = calibrated(saved, seed=settings.seed, on_step=on_step)
    return saved, metrics


def calibrated(
    saved: SavedModel, *, seed: int, on_step: StepListener | None = None
) -> tuple[SavedModel, dict[str, Any]]:
    """The model with its sampler's lift per style (``train.calibrate``), and what each calibration measured;
    ``on_step`` is told after each style."""
    styles = dict(saved.config.styles)
    report: dict[str, Any] = {}
    names = list(saved.config.styles)
    for done, (name, record) in enumerate(saved.config.styles.items(), start=1):
        found = calibrate(saved, name, record.profile, seed=seed) if record.profile is not None else None
        if found is not None:
            styles[name] = dataclasses.replace(record, lift=found.lift.knobs())
            report[name] = found.to_dict()
        if on_step is not None:
            said = found.summary() if found is not None else "nothing to calibrate (no measured pieces, or no notes)"
            on_step("calibration", done, len(names), f"{name}: {said}")
    return dataclasses.replace(saved, config=dataclasses.replace(saved.config, styles=styles)), report


def save_measures(
    folder: Path, pieces: Sequence[Sequence[str]], tokenizer: TokenizerConfig, lineage: list[str], *, seed: int
) -> None:
    """Save beside a model what its batches are checked against, built once here rather than every night:
    the pieces it saw (validation ones too: they are real pieces as well), the originality index over them
    and, for a model descended from the base model, the base model's pieces too, and the quality reference."""
    save_pieces(folder / PIECES_FILE, pieces)
    CopyIndex.build(pieces_behind(pieces, lineage), tokenizer).save(folder)
    save_reference(folder / REFERENCE_FILE, reference_features(pieces, tokenizer, seed=seed))


def _load(folder: Path, what: str) -> SavedModel | None:
    try:
        return SavedModel.load(folder)
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("%s cannot be loaded (%s): training from scratch", what, error)
        return None


def train_from_catalogue(
    sessions: sessionmaker[Session],
    models_dir: Path,
    settings: TrainSettings,
    *,
    force: bool = False,
    tokens_dir: Path | None = None,
    on_step: StepListener | None = None,
) -> TrainOutcome:
    """Train on every accepted piece, unless a model was already trained on exactly those pieces.

    The candidate warm-starts from the current model (or, with none and a small catalogue, from the
    shipped base model) and is promoted only if its NLL per note is not worse than the current
    model's on the same validation pieces, each model reading them with its own tokenizer. Either
    way it is registered (with ``promoted`` in its metrics) once its files are complete; a failed run
    registers nothing and leaves the current model in place. ``tokens_dir``: where each piece's tokens
    are kept between runs (``train.token_store``); None tokenises every piece afresh. ``on_step``: see
    :func:`fit`.
    """
    with sessions.begin() as session:
        rows = accepted_pieces(session, settings.licence)
        current = current_model(session)
        ids = [r.source_id for r in rows]
        tried = session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())).all()
        same = next((v for v in tried if sorted(v.source_ids) == ids), None)
        if same is not None and not force:
            what = "the current model" if same.is_current else "a model that was not promoted"
            return TrainOutcome(False, f"no new pieces since model {same.id} ({what}): nothing to train", same.id)
        current_id = current.id if current else None
        current_path = Path(current.path) if current else None
        lineage = list((current.config or {}).get("lineage", [])) if current else []
    previous = _load(current_path, f"current model {current_id}") if current_path else None
    start_from: SavedModel | None = None
    if settings.warm_start and previous is not None:
        start_from = previous
    elif settings.warm_start and len(rows) < settings.base_below:
        start_from = _load(base_model_folder(), "the base model")
        lineage = [BASE_NAME] if start_from is not None else []
    if start_from is None:
        lineage = []
    pieces, skipped = load_pieces(rows, start_from.tokenizer if start_from else TokenizerConfig(), tokens_dir)
    saved, metrics = fit(pieces, settings, warm_start=start_from, on_step=on_step)
    if not metrics["warm_start_tokens"]:  # different layer sizes: nothing carried over
        start_from, lineage = None, []
    metrics["skipped"] = dict(skipped)
    metrics["started_from"] = (current_id if start_from is previous else BASE_NAME) if start_from else None
    metrics["lineage"] = lineage

    promoted, verdict = True, "the first model"
    if previous is not None:
        val_ids = set(metrics["validation_source_ids"])
        old_pieces, _ = load_pieces([r for r in rows if r.source_id in val_ids], previous.tokenizer, tokens_dir)
        old = score_pieces(previous, old_pieces)
        metrics["current_model"] = {"id": current_id, **old.to_dict()}
        promoted = not math.isfinite(old.nll_per_note) or metrics["nll_per_note"] <= old.nll_per_note + 1e-6
        sign = "<=" if promoted else ">"
        verdict = (
            f"{metrics['nll_per_note']:.3f} {sign} {old.nll_per_note:.3f} nats per note for model {current_id} "
            "on the same validation pieces"
        )
    metrics["promoted"] = promoted
    scores = ", ".join(f"{name} {b['nll_per_note']:.3f}" for name, b in metrics["baselines"].items())
    summary = f"validation NLL {metrics['nll_per_note']:.3f} nats/note ({scores})"

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = models_dir / f"lstm-{stamp}-{len(pieces)}p"
    saved.save(folder, extra={"train_settings.json": settings.to_dict(), "lineage.json": lineage})
    save_measures(folder, [p.tokens for p in pieces], saved.tokenizer, lineage, seed=settings.seed)
    with sessions.begin() as session:
        if promoted:
            for old_version in session.scalars(select(ModelVersion).where(ModelVersion.is_current.is_(True))):
                old_version.is_current = False
        version = ModelVersion(
            path=str(folder),
            config={"model": saved.config.to_dict(), "train": settings.to_dict(), "lineage": lineage},
            metrics=metrics,
            source_ids=[p.source_id for p in pieces],
            is_current=promoted,
        )
        session.add(version)
        session.flush()
        version_id = version.id
    if promoted:
        message = f"trained model {version_id} on {len(pieces)} pieces, {summary}; promoted it ({verdict})"
    else:
        message = f"trained model {version_id} on {len(pieces)} pieces, {summary}; kept model {current_id} ({verdict})"
    return TrainOutcome(True, message, version_id, metrics, promoted)
