"""The catalogue as a dataset: its pieces' MIDI files, a metadata table (Parquet and JSONL), splits and a card.

Shaped like the public YouTube-to-MIDI datasets (GiantMIDI-Piano, Aria-MIDI): ``midi/<id>.mid`` per piece,
``metadata.parquet`` and ``metadata.jsonl`` with one row per piece, and ``README.md``, the dataset card.
A piece's id is ``ts-`` and the first 16 hex digits of its audio's content hash (its source key's where
there is none), so it is the same on every export; so is its split, drawn from that hash (80 / 10 / 10):
duplicates share the hash, so a source and its duplicates never straddle two splits. Rows are read from
the catalogue a page at a time and written as they come (bounded memory at any size). An export into a
folder that holds an earlier one copies only the MIDI files that changed and rewrites a table or the card
only when its content did: a second export of an unchanged catalogue writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from db.files import atomic_path
from db.models import PlaylistEntry, Source, SourceState, Transcription

SPLITS = (("train", 0.8), ("validation", 0.9), ("test", 1.0))  # upper bounds of each split's share of [0, 1)
PAGE = 500


@dataclass(frozen=True)
class ExportFilter:
    licence: str | None = None  # a substring of the licence YouTube reported, case-insensitive
    style: str | None = None
    min_duration: float | None = None
    since: datetime | None = None  # catalogued on or after
    rejected: bool = False  # add the rejected pieces that have MIDI, with their reason


@dataclass
class ExportSummary:
    folder: Path
    pieces: int = 0
    hours: float = 0.0
    splits: Counter[str] = field(default_factory=Counter)
    styles: Counter[str] = field(default_factory=Counter)
    licences: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    written: list[str] = field(default_factory=list)  # what this export changed, relative to the folder
    missing: list[str] = field(default_factory=list)  # catalogued MIDI files that are gone, so left out

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "pieces": self.pieces, "hours": round(self.hours, 3),
                "splits": dict(self.splits), "styles": dict(self.styles), "licences": dict(self.licences),
                "rejections": dict(self.rejections), "written": len(self.written),
                "missing": self.missing}  # fmt: skip


def piece_id(source: Source) -> str:
    digest = source.content_hash or hashlib.sha256(source.key.encode()).hexdigest()
    return f"ts-{digest[:16]}"


def split_of(source: Source) -> str:
    digest = hashlib.sha256((source.content_hash or source.key).encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    return next(name for name, upper in SPLITS if share < upper)


def _row(source: Source, transcription: Transcription) -> dict[str, Any]:
    features, grid = transcription.features or {}, transcription.grid or {}
    playlists = sorted({e.playlist.url for e in source.entries})
    styles = sorted({e.playlist.style for e in source.entries})
    return {
        "id": piece_id(source),
        "split": split_of(source),
        "midi": f"midi/{piece_id(source)}.mid",
        "source_key": source.key,
        "url": source.webpage_url or source.url,
        "title": source.title,
        "uploader": source.uploader,
        "upload_date": source.upload_date,
        "licence": source.license,
        "playlists": playlists,
        "styles": styles,
        "state": source.state.value,
        "reason": source.reason,
        "duration": features.get("duration") or source.duration,
        "key": features.get("key"),
        "tempo": transcription.tempo,
        "meter": grid.get("meter"),
        "beats": len(grid.get("beats") or []),
        "notes": transcription.note_count,
        "repetition_score": features.get("repetition_score"),
        "transcription_settings": json.dumps(transcription.settings, sort_keys=True),
        "content_hash": source.content_hash,
        "catalogued": source.created_at.isoformat(timespec="seconds"),
        "transcribed": transcription.created_at.isoformat(timespec="seconds"),
    }


def _rows(session: Session, only: ExportFilter) -> Iterator[tuple[dict[str, Any], Path]]:
    states = [SourceState.ACCEPTED, *([SourceState.REJECTED] if only.rejected else [])]
    query = (
        select(Source, Transcription).join(Transcription, Transcription.source_id == Source.id)
        .where(Source.state.in_(states)).order_by(Source.id)
        .options(selectinload(Source.entries).selectinload(PlaylistEntry.playlist))
    )  # fmt: skip
    if only.since is not None:
        query = query.where(Source.created_at >= only.since)
    last = 0
    while True:
        page = session.execute(query.where(Source.id > last).limit(PAGE)).all()
        if not page:
            return
        for source, transcription in page:
            last = source.id
            row = _row(source, transcription)
            if only.licence and only.licence.lower() not in (row["licence"] or "").lower():
                continue
            if only.style and only.style not in row["styles"]:
                continue
            if only.min_duration and (row["duration"] or 0.0) < only.min_duration:
                continue
            yield row, Path(transcription.midi_path)
        session.expunge_all()


def _write_if_changed(path: Path, data: bytes, summary: ExportSummary) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    summary.written.append(str(path.relative_to(summary.folder)))


def _copy_if_changed(src: Path, dest: Path, summary: ExportSummary) -> None:
    if dest.is_file() and dest.stat().st_size == src.stat().st_size and dest.read_bytes() == src.read_bytes():
        return
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    summary.written.append(str(dest.relative_to(summary.folder)))


SCHEMA_FIELDS = (
    ("id", "string"), ("split", "string"), ("midi", "string"), ("source_key", "string"), ("url", "string"),
    ("title", "string"), ("uploader", "string"), ("upload_date", "string"), ("licence", "string"),
    ("playlists", "list"), ("styles", "list"), ("state", "string"), ("reason", "string"), ("duration", "float"),
    ("key", "string"), ("tempo", "float"), ("meter", "int"), ("beats", "int"), ("notes", "int"),
    ("repetition_score", "float"), ("transcription_settings", "string"), ("content_hash", "string"),
    ("catalogued", "string"), ("transcribed", "string"),
)  # fmt: skip


def _schema() -> Any:
    import pyarrow as pa

    kinds = {"string": pa.string(), "list": pa.list_(pa.string()), "float": pa.float64(), "int": pa.int64()}
    return pa.schema([(name, kinds[kind]) for name, kind in SCHEMA_FIELDS])


def export_dataset(sessions: sessionmaker[Session], folder: Path, only: ExportFilter | None = None) -> ExportSummary:
    """Export the catalogue's accepted pieces (``only`` narrows them) into ``folder`` (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    only = only or ExportFilter()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "midi").mkdir(exist_ok=True)
    summary = ExportSummary(folder)
    schema = _schema()
    work = folder / f".export-{os.getpid()}"
    work.mkdir(exist_ok=True)
    try:
        parquet, jsonl = work / "metadata.parquet", work / "metadata.jsonl"
        with pq.ParquetWriter(parquet, schema) as writer, jsonl.open("w", encoding="utf-8") as lines, \
                sessions() as session:  # fmt: skip
            batch: list[dict[str, Any]] = []
            for row, midi in _rows(session, only):
                if not midi.is_file():
                    summary.missing.append(str(midi))
                    continue
                _copy_if_changed(midi, folder / row["midi"], summary)
                lines.write(json.dumps(row, sort_keys=True) + "\n")
                batch.append(row)
                summary.pieces += 1
                summary.hours += (row["duration"] or 0.0) / 3600
                summary.splits[row["split"]] += 1
                summary.styles.update(row["styles"])
                summary.licences[row["licence"] or "not stated"] += 1
                if len(batch) == PAGE:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch = []
            if batch:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            rejected = session.execute(select(Source.reason).where(Source.state == SourceState.REJECTED)).scalars()
            summary.rejections.update(r or "unknown" for r in rejected)
        _write_if_changed(folder / "metadata.parquet", parquet.read_bytes(), summary)
        _write_if_changed(folder / "metadata.jsonl", jsonl.read_bytes(), summary)
        _write_if_changed(folder / "README.md", card(summary, only).encode(), summary)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def card(summary: ExportSummary, only: ExportFilter) -> str:
    """The dataset card: what is in it, how it was made, what was left out and why, and its limits."""
    from importlib.metadata import PackageNotFoundError, version

    def v(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "?"

    def table(counts: Counter[str], what: str) -> list[str]:
        return [f"| {what} | pieces |", "| --- | --- |", *(f"| {k} | {n} |" for k, n in counts.most_common())]

    filters = ", ".join(f"{k} {v}" for k, v in vars(only).items() if v) or "none"
    return "\n".join(
        [
            "# tunesmith MIDI dataset",
            "",
            f"{summary.pieces} pieces, {summary.hours:.2f} hours of audio transcribed to MIDI. Filters: {filters}.",
            "",
            "Files: `midi/<id>.mid` (one per piece), `metadata.parquet` and `metadata.jsonl` (one row per piece: "
            "source URL and key, title, uploader, licence as the site reported it, playlists and styles, duration, "
            "key, tempo, meter, beats, notes, repetition score, transcription settings, content hash, dates, split).",
            "",
            'Load it: `datasets.load_dataset("parquet", data_files="metadata.parquet")` or '
            '`pyarrow.parquet.read_table("metadata.parquet")`.',
            "",
            "## Splits",
            "",
            "By the audio's content hash (80 / 10 / 10), so a piece keeps its split on every export and duplicates "
            "never straddle two: " + ", ".join(f"{name} {summary.splits[name]}" for name, _ in SPLITS) + ".",
            "",
            "## Styles",
            "",
            *table(summary.styles, "style"),
            "",
            "## Licences",
            "",
            "As each source's page stated it; check each before any use beyond research.",
            "",
            *table(summary.licences, "licence"),
            "",
            "## Rejected, and why",
            "",
            *table(summary.rejections, "reason"),
            "",
            "## How it was made",
            "",
            f"Downloaded with yt-dlp {v('yt-dlp')}, transcribed with basic-pitch {v('basic-pitch')} (ONNX) on a "
            "tracked "
            f"beat grid, filtered and catalogued by tunesmith {v('tunesmith')}.",
            "",
            "## Known limits",
            "",
            "Transcriptions, not scores: basic-pitch is most accurate on piano and plucked timbres and misses notes in "
            "dense or sustained textures (onset F1 per timbre: `bench/README.md`, transcription). Licences are as "
            "reported by the site, unverified.",
            "",
        ]
    )
