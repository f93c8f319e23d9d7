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

from db.models import ModelVersion, Source, SourceState, Transcription
from train.dataset import Piece, split_pieces, stream_ids, tf_dataset, windows
from train.model import ModelConfig, SavedModel, build_model
from train.tokens import key_shift, slice_tokens, slices_from_midi, transpose_token
from train.vocab import Vocabulary

log = logging.getLogger(__name__)


class TrainingError(Exception):
    """Training cannot run (too little data) or produced nothing usable."""


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 40
    batch_size: int = 32
    seq_len: int = 64
    stride: int = 4
    validation_share: float = 0.2
    min_count: int = 2
    embedding: int = 96
    units: int = 256
    dropout: float = 0.2
    patience: int = 6
    min_pieces: int = 2
    seed: int = 0
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
    metrics: dict[str, float] | None = None


def piece_tokens(midi_path: Path, key: str | None) -> list[str]:
    """A transcription's tokens, transposed to C major / A minor so a small dataset shares its chords."""
    shift = key_shift(key)
    return [transpose_token(t, shift) for t in slice_tokens(slices_from_midi(midi_path))]


def accepted_pieces(session: Session, licence: str | None = None) -> list[tuple[int, str, float, str | None]]:
    """(source id, MIDI path, tempo, key) of every accepted source, by id; only ``licence``'d ones if given."""
    query = (
        select(Source.id, Transcription.midi_path, Transcription.tempo, Transcription.features)
        .join(Transcription, Transcription.source_id == Source.id)
        .where(Source.state == SourceState.ACCEPTED)
        .order_by(Source.id)
    )
    if licence:
        query = query.where(Source.license.ilike(f"%{licence}%"))
    rows = session.execute(query)
    return [(sid, path, tempo or 120.0, (features or {}).get("key")) for sid, path, tempo, features in rows]


def unigram_nll(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Baseline: validation NLL (nats/token) of add-one-smoothed training token frequencies."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    log_probs = np.log(counts / counts.sum())
    return float(-log_probs[val_ids].mean())


def fit(pieces: Sequence[Piece], settings: TrainSettings) -> tuple[SavedModel, dict[str, float]]:
    """Train on ``pieces`` (split by piece) and return the model with validation metrics."""
    import tensorflow as tf

    if len(pieces) < settings.min_pieces:
        raise TrainingError(f"need at least {settings.min_pieces} accepted pieces to train, have {len(pieces)}")
    train_pieces, val_pieces = split_pieces(pieces, validation_share=settings.validation_share, seed=settings.seed)
    vocab = Vocabulary.build([p.tokens for p in train_pieces], min_count=settings.min_count)
    train_ids, val_ids = stream_ids(train_pieces, vocab), stream_ids(val_pieces, vocab)
    steps = [int(t.rpartition("_")[2]) for p in train_pieces for t in p.tokens]
    config = ModelConfig(
        vocab_size=len(vocab),
        embedding=settings.embedding,
        units=settings.units,
        dropout=settings.dropout,
        seq_len=settings.seq_len,
        tempos=sorted({round(p.tempo, 1) for p in pieces}),
        steps_per_token=float(np.mean(steps)) if steps else 2.0,
        seed=settings.seed,
    )
    model = build_model(config)
    x, y = windows(train_ids, settings.seq_len, settings.stride)
    vx, vy = windows(val_ids, settings.seq_len, settings.seq_len)
    started = time.perf_counter()
    history = model.fit(
        tf_dataset(x, y, batch_size=settings.batch_size, shuffle=True, seed=settings.seed),
        validation_data=tf_dataset(vx, vy, batch_size=settings.batch_size, shuffle=False, seed=settings.seed),
        epochs=settings.epochs,
        verbose=0,
        callbacks=[
            tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True)
        ],
    )
    seconds = time.perf_counter() - started
    val_loss, val_accuracy = model.evaluate(
        tf_dataset(vx, vy, batch_size=settings.batch_size, shuffle=False, seed=0), verbose=0
    )
    metrics = {
        "val_loss": round(float(val_loss), 4),
        "val_accuracy": round(float(val_accuracy), 4),
        "perplexity": round(math.exp(float(val_loss)), 3),
        "unigram_val_loss": round(unigram_nll(train_ids, vy.reshape(-1), len(vocab)), 4),
        "epochs": len(history.history["loss"]),
        "train_tokens": int(len(train_ids)),
        "val_tokens": int(len(val_ids)),
        "vocab_size": len(vocab),
        "train_seconds": round(seconds, 2),
        "tokens_per_second": round(len(history.history["loss"]) * x.size / seconds, 1),
    }
    metrics["validation_source_ids"] = [p.source_id for p in val_pieces]  # type: ignore[assignment]
    return SavedModel(config=config, vocab=vocab, model=model), metrics


def current_model(session: Session) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.is_current.is_(True)).order_by(ModelVersion.id.desc())
    )


def train_from_catalogue(
    sessions: sessionmaker[Session], models_dir: Path, settings: TrainSettings, *, force: bool = False
) -> TrainOutcome:
    """Train on every accepted piece, unless the current model already saw exactly those pieces.

    The new version is registered and made current only once its files are complete.
    """
    with sessions.begin() as session:
        rows = accepted_pieces(session, settings.licence)
        current = current_model(session)
        if current is not None and not force and sorted(current.source_ids) == [r[0] for r in rows]:
            return TrainOutcome(False, f"no new pieces since model {current.id}: nothing to train", current.id)
    pieces = []
    for source_id, midi_path, tempo, key in rows:
        tokens = piece_tokens(Path(midi_path), key)
        if tokens:
            pieces.append(Piece(source_id=source_id, tokens=tokens, tempo=tempo))
    saved, metrics = fit(pieces, settings)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = saved.save(models_dir / f"lstm-{stamp}-{len(pieces)}p")
    with sessions.begin() as session:
        for old in session.scalars(select(ModelVersion).where(ModelVersion.is_current.is_(True))):
            old.is_current = False
        version = ModelVersion(
            path=str(folder),
            config={"model": saved.config.to_dict(), "train": settings.to_dict()},
            metrics=metrics,
            source_ids=[p.source_id for p in pieces],
            is_current=True,
        )
        session.add(version)
        session.flush()
        version_id = version.id
    return TrainOutcome(True, f"trained model {version_id} on {len(pieces)} pieces", version_id, metrics)


def training_token_streams(sessions: sessionmaker[Session], source_ids: Sequence[int]) -> list[list[str]]:
    """The token sequences a model was trained on (for the originality index)."""
    with sessions.begin() as session:
        rows = [r for r in accepted_pieces(session) if r[0] in set(source_ids)]
    return [piece_tokens(Path(path), key) for _sid, path, _tempo, key in rows]
