"""Fit the LSTM on the catalogue's accepted pieces and register the result as a model version."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ModelVersion, Playlist, PlaylistEntry, Source, SourceState, Transcription
from train.baselines import model_score, prototype_score, unigram_score
from train.dataset import DEFAULT_STYLE, Piece, split_pieces, stream_ids, streaming_dataset, window_count
from train.model import ModelConfig, SavedModel, build_model, warm_start_weights
from train.tokens import Slice, key_shift, slice_tokens, slices_from_midi, transpose_token
from train.vocab import Vocabulary

log = logging.getLogger(__name__)


class TrainingError(Exception):
    """Training cannot run (too little data) or produced nothing usable."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 40
    # Windows per step: large batches keep the CPU's matmuls efficient (bench/train.py), but every epoch
    # should still take at least ``min_steps`` steps, so a small dataset gets smaller batches.
    batch_size: int = 128
    min_batch_size: int = 16
    min_steps: int = 20
    seq_len: int = 64
    stride: int = 4
    validation_share: float = 0.2
    min_count: int = 2
    embedding: int = 96
    units: int = 256
    dropout: float = 0.2
    learning_rate: float = 3e-3
    patience: int = 6
    min_pieces: int = 2
    seed: int = 0
    warm_start: bool = True  # start from the current model's weights where the vocabulary allows
    # The earlier prototype's architecture as a baseline: at most this many epochs / seconds (0 skips it).
    prototype_epochs: int = 4
    prototype_seconds: float = 90.0
    # Train only on sources whose licence (as yt-dlp reports it) contains this text, case-insensitively,
    # e.g. "Creative Commons" (YouTube's "Creative Commons Attribution license (reuse allowed)").
    licence: str | None = None

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
    key: str | None
    style: str


def piece_tokens(midi_path: Path, key: str | None) -> list[str]:
    """A transcription's tokens, transposed to C major / A minor so a small dataset shares its chords."""
    return key_tokens(slices_from_midi(midi_path), key)


def key_tokens(slices: Sequence[Slice], key: str | None) -> list[str]:
    """The slices' tokens, moved from ``key`` to C major / A minor."""
    shift = key_shift(key)
    return [transpose_token(t, shift) for t in slice_tokens(slices)]


def accepted_pieces(session: Session, licence: str | None = None) -> list[AcceptedPiece]:
    """Every accepted source with its MIDI, tempo, key and style (its first playlist's); ``licence``'d ones if given."""
    query = (
        select(Source.id, Transcription.midi_path, Transcription.tempo, Transcription.features)
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
        AcceptedPiece(sid, path, tempo or 120.0, (features or {}).get("key"), styles.get(sid, DEFAULT_STYLE))
        for sid, path, tempo, features in session.execute(query)
    ]


def load_pieces(rows: Sequence[AcceptedPiece]) -> list[Piece]:
    pieces = []
    for row in rows:
        tokens = piece_tokens(Path(row.midi_path), row.key)
        if tokens:
            pieces.append(Piece(source_id=row.source_id, tokens=tokens, tempo=row.tempo, style=row.style))
    return pieces


def fit(
    pieces: Sequence[Piece], settings: TrainSettings, *, warm_start: SavedModel | None = None
) -> tuple[SavedModel, dict[str, Any]]:
    """Train on ``pieces`` (split by piece) and return the model with its validation metrics and baselines.

    Raises:
        TrainingError: too few pieces, or the loss is not finite.
    """
    import tensorflow as tf

    if len(pieces) < settings.min_pieces:
        raise TrainingError(f"need at least {settings.min_pieces} accepted pieces to train, have {len(pieces)}")
    train_pieces, val_pieces = split_pieces(pieces, validation_share=settings.validation_share, seed=settings.seed)
    styles: dict[str, list[float]] = {}
    for piece in pieces:
        styles.setdefault(piece.style, []).append(round(piece.tempo, 1))
    vocab = Vocabulary.build([p.tokens for p in train_pieces], styles=styles, min_count=settings.min_count)
    train_ids, val_ids = stream_ids(train_pieces, vocab), stream_ids(val_pieces, vocab)
    steps = [int(t.rpartition("_")[2]) for p in train_pieces for t in p.tokens]
    config = ModelConfig(
        vocab_size=len(vocab),
        embedding=settings.embedding,
        units=settings.units,
        dropout=settings.dropout,
        seq_len=settings.seq_len,
        learning_rate=settings.learning_rate,
        tempos=sorted({round(p.tempo, 1) for p in pieces}),
        styles={style: sorted(tempos) for style, tempos in sorted(styles.items())},
        steps_per_token=float(np.mean(steps)) if steps else 2.0,
        seed=settings.seed,
    )
    model = build_model(config)
    shared = warm_start_weights(model, vocab, warm_start) if warm_start is not None else 0
    windows = window_count(len(train_ids), settings.seq_len, settings.stride)
    batch_size = max(settings.min_batch_size, min(settings.batch_size, windows // settings.min_steps))
    train_data = streaming_dataset(
        train_ids, seq_len=settings.seq_len, stride=settings.stride, batch_size=batch_size,
        shuffle=True, seed=settings.seed,
    )  # fmt: skip
    val_data = streaming_dataset(
        val_ids, seq_len=settings.seq_len, stride=settings.seq_len, batch_size=batch_size,
        shuffle=False, seed=settings.seed,
    )  # fmt: skip
    started = time.perf_counter()
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=settings.epochs,
        verbose=0,
        callbacks=[
            tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True)
        ],
    )
    seconds = time.perf_counter() - started
    score = model_score(model, val_ids, settings.seq_len)
    if not math.isfinite(score.nll):
        raise TrainingError(f"training diverged: validation loss {score.nll}")
    epochs = len(history.history["loss"])
    metrics: dict[str, Any] = {
        **score.to_dict(),
        "perplexity": round(math.exp(score.nll), 3),
        "baselines": {"unigram": unigram_score(train_ids, val_ids, len(vocab)).to_dict()},
        "epochs": epochs,
        "train_tokens": int(len(train_ids)),
        "val_tokens": int(len(val_ids)),
        "vocab_size": len(vocab),
        "styles": {style: len(tempos) for style, tempos in styles.items()},
        "batch_size": batch_size,
        "train_seconds": round(seconds, 2),
        "tokens_per_second": round(epochs * windows * settings.seq_len / seconds, 1),
        "warm_start_tokens": shared,
        "validation_source_ids": [p.source_id for p in val_pieces],
    }
    if settings.prototype_epochs > 0:
        proto, run = prototype_score(
            train_ids, val_ids, len(vocab), epochs=settings.prototype_epochs,
            budget_seconds=settings.prototype_seconds, seed=settings.seed,
        )  # fmt: skip
        metrics["baselines"]["prototype"] = proto.to_dict() | run
    return SavedModel(config=config, vocab=vocab, model=model), metrics


def current_model(session: Session) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.is_current.is_(True)).order_by(ModelVersion.id.desc())
    )


def _load_current(current: ModelVersion | None) -> SavedModel | None:
    if current is None:
        return None
    try:
        return SavedModel.load(Path(current.path))
    except (OSError, ValueError, KeyError) as error:
        log.warning("current model %d cannot be loaded (%s): training from scratch", current.id, error)
        return None


def train_from_catalogue(
    sessions: sessionmaker[Session], models_dir: Path, settings: TrainSettings, *, force: bool = False
) -> TrainOutcome:
    """Train on every accepted piece, unless a model was already trained on exactly those pieces.

    The candidate warm-starts from the current model (where their vocabularies share tokens) and
    is promoted only if its validation loss is not worse than the current model's on the same
    validation pieces. Either way it is registered (with ``promoted`` in its metrics) once its
    files are complete; a failed run registers nothing and leaves the current model in place.
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
        previous = _load_current(current)
    pieces = load_pieces(rows)
    saved, metrics = fit(pieces, settings, warm_start=previous if settings.warm_start else None)

    promoted, verdict = True, "the first model"
    if previous is not None:
        val_pieces = [p for p in pieces if p.source_id in set(metrics["validation_source_ids"])]
        old = model_score(previous.model, stream_ids(val_pieces, previous.vocab), previous.config.seq_len)
        metrics["current_model"] = {"id": current_id, **old.to_dict()}
        promoted = not math.isfinite(old.nll) or metrics["val_loss"] <= old.nll + 1e-6
        sign = "<=" if promoted else ">"
        verdict = f"{metrics['val_loss']:.3f} {sign} {old.nll:.3f} for model {current_id} on the same validation pieces"
    metrics["promoted"] = promoted
    scores = ", ".join(f"{name} {b['val_loss']:.3f}" for name, b in metrics["baselines"].items())
    summary = f"val loss {metrics['val_loss']:.3f} nats/token ({scores})"

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = saved.save(models_dir / f"lstm-{stamp}-{len(pieces)}p")
    with sessions.begin() as session:
        if promoted:
            for old_version in session.scalars(select(ModelVersion).where(ModelVersion.is_current.is_(True))):
                old_version.is_current = False
        version = ModelVersion(
            path=str(folder),
            config={"model": saved.config.to_dict(), "train": settings.to_dict()},
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


def training_token_streams(sessions: sessionmaker[Session], source_ids: Sequence[int]) -> list[list[str]]:
    """The token sequences a model was trained on (for the originality index and the quality report)."""
    with sessions.begin() as session:
        rows = [r for r in accepted_pieces(session) if r.source_id in set(source_ids)]
    return [piece_tokens(Path(r.midi_path), r.key) for r in rows]
