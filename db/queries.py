"""Read-only views of the catalogue for the command line and the flows' reports."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Batch, ModelVersion, Playlist, Source, SourceState, Transcription


def sources(
    session: Session, *, state: SourceState | None = None, limit: int | None = None, offset: int = 0
) -> list[dict[str, Any]]:
    """The sources (in ``state`` if given) by id, ``limit`` of them from ``offset``: filtered and paged in SQL."""
    query = select(Source, Transcription).outerjoin(Transcription).order_by(Source.id).offset(offset).limit(limit)
    rows = session.execute(query.where(Source.state == state) if state else query)
    return [
        {
            "id": source.id,
            "url": source.url,
            "webpage_url": source.webpage_url,
            "title": source.title,
            "upload_date": source.upload_date,
            "state": source.state.value,
            "reason": source.reason,
            "reason_detail": source.reason_detail,
            "audio_path": source.audio_path,
            "midi_path": transcription.midi_path if transcription else None,
            "duration": source.duration,
            "uploader": source.uploader,
            "license": source.license,
            "tempo": transcription.tempo if transcription else None,
            "key": (transcription.features or {}).get("key") if transcription else None,
            "repetition_score": (transcription.features or {}).get("repetition_score") if transcription else None,
        }
        for source, transcription in rows
    ]


def source_count(session: Session, state: SourceState | None = None) -> int:
    query = select(func.count()).select_from(Source)
    return session.scalar(query.where(Source.state == state) if state else query) or 0


def batch_summary(batch: Batch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "folder": batch.folder,
        "model_id": batch.model_id,
        "created_at": batch.created_at.isoformat(),
        "tracks": [
            {
                "title": t.title,
                "mp3": t.mp3_path,
                "duration": t.duration,
                "longest_copy": t.metrics.get("guards", {}).get("longest_copy"),
            }
            for t in batch.tracks
        ],
        "rejected": (batch.report or {}).get("rejected", {}),
    }


def current_model(session: Session) -> ModelVersion | None:
    """The model batches are made with: the newest promoted version."""
    return session.scalar(
        select(ModelVersion).where(ModelVersion.is_current.is_(True)).order_by(ModelVersion.id.desc())
    )


def latest_batch(session: Session) -> Batch | None:
    return session.scalar(select(Batch).order_by(Batch.id.desc()).limit(1))


def status(session: Session) -> dict[str, Any]:
    states: dict[SourceState, int] = {
        state: count for state, count in session.execute(select(Source.state, func.count()).group_by(Source.state))
    }
    reasons: dict[str, int] = {
        reason: count
        for reason, count in session.execute(
            select(Source.reason, func.count()).where(Source.reason.is_not(None)).group_by(Source.reason)
        )
        if reason
    }
    model = current_model(session)
    batch = latest_batch(session)
    styles: dict[str, int] = {
        style: count for style, count in session.execute(select(Playlist.style, func.count()).group_by(Playlist.style))
    }
    return {
        "playlists": session.scalar(select(func.count()).select_from(Playlist)) or 0,
        "styles": styles,
        "sources": sum(states.values()),
        "states": {state.value: count for state, count in states.items()},
        "rejections": reasons,
        "model": {
            "id": model.id,
            "path": model.path,
            "metrics": model.metrics,
            "pieces": len(model.source_ids),
            "styles": sorted((model.config.get("model") or {}).get("styles", {})),
        }
        if model
        else None,
        "models": session.scalar(select(func.count()).select_from(ModelVersion)) or 0,
        "last_batch": batch_summary(batch) if batch else None,
    }
