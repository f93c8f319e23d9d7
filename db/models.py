"""Catalogue tables.

The data flows one way and so do the tables: a playlist lists sources; a source is
downloaded to audio, transcribed to MIDI and analysed (its verdict is the source's
state); accepted sources feed model versions; a model version makes batches of tracks.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.reasons import Reason

__all__ = ["Reason"]  # kept here for the catalogue's callers; defined without SQLAlchemy in db.reasons

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SourceState(str, enum.Enum):
    """Where a source is in the pipeline. ``accepted`` and ``rejected`` are final."""

    PENDING = "pending"  # catalogued from a playlist, not downloaded yet
    DOWNLOADED = "downloaded"  # audio on disk, not transcribed yet
    TRANSCRIBED = "transcribed"  # MIDI on disk, not analysed yet
    ACCEPTED = "accepted"  # usable for training
    REJECTED = "rejected"  # see ``reason``


class Playlist(Base):
    __tablename__ = "playlists"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    title: Mapped[str | None] = mapped_column(String(512))
    style: Mapped[str] = mapped_column(String(128), default="default")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expanded_at: Mapped[datetime | None]

    entries: Mapped[list[PlaylistEntry]] = relationship(back_populates="playlist", order_by="PlaylistEntry.position")


class Source(Base):
    """One piece of audio, however many playlists list it.

    ``key`` identifies it before any download (``youtube:VIDEO_ID``, or the media URL).
    """

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(2048), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    webpage_url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(String(512))
    uploader: Mapped[str | None] = mapped_column(String(512))
    upload_date: Mapped[str | None] = mapped_column(String(16))
    license: Mapped[str | None] = mapped_column(String(256))
    duration: Mapped[float | None]
    state: Mapped[SourceState] = mapped_column(default=SourceState.PENDING, index=True)
    reason: Mapped[str | None] = mapped_column(String(64), index=True)
    reason_detail: Mapped[str | None] = mapped_column(Text)
    audio_path: Mapped[str | None] = mapped_column(String(1024))
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # the process downloading or transcribing it
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    entries: Mapped[list[PlaylistEntry]] = relationship(back_populates="source")
    transcription: Mapped[Transcription | None] = relationship(back_populates="source", uselist=False)


class PlaylistEntry(Base):
    __tablename__ = "playlist_entries"
    __table_args__ = (UniqueConstraint("playlist_id", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    playlist_id: Mapped[int] = mapped_column(ForeignKey("playlists.id", ondelete="CASCADE"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]

    playlist: Mapped[Playlist] = relationship(back_populates="entries")
    source: Mapped[Source] = relationship(back_populates="entries")


class Transcription(Base):
    """The MIDI made from a source's audio, the settings that made it, and its analysis."""

    __tablename__ = "transcriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), unique=True)
    midi_path: Mapped[str] = mapped_column(String(1024))
    settings: Mapped[dict[str, Any]]
    note_count: Mapped[int]
    tempo: Mapped[float | None]
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # transcribe.beats.BeatGrid: tracked beat times, meter and bar phase (None until derived)
    grid: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    source: Mapped[Source] = relationship(back_populates="transcription")


class ModelVersion(Base):
    """One training run: where its files are, what it saw, how well it did."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(1024))
    config: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source_ids: Mapped[list[Any]] = mapped_column(default=list)
    is_current: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    batches: Mapped[list[Batch]] = relationship(back_populates="model")


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    folder: Mapped[str] = mapped_column(String(1024))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[ModelVersion] = relationship(back_populates="batches")
    tracks: Mapped[list[Track]] = relationship(back_populates="batch", order_by="Track.position")


class Track(Base):
    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(256))
    mp3_path: Mapped[str] = mapped_column(String(1024))
    midi_path: Mapped[str] = mapped_column(String(1024))
    duration: Mapped[float]
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)

    batch: Mapped[Batch] = relationship(back_populates="tracks")
