"""Transcription into the catalogue: parallel workers, recorded verdicts and features, similarity, resumption."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from db.catalogue import Catalogue
from db.models import Source, SourceState, Transcription
from flows.cli import app
from sample.corpus import RenderedPiece
from train.training import accepted_pieces
from transcribe.beats import BEAT_METHOD, NOTES_METHOD
from transcribe.catalogue import TranscribeOutcome, backfill_grids, downloaded_source_ids, transcribe_sources
from transcribe.features import N_MFCC
from transcribe.similarity import most_similar


def _downloaded(catalogue: Catalogue, files: dict[str, Path], licences: dict[str, str] | None = None) -> dict[str, int]:
    """Sources as ingest leaves them: audio in place, state downloaded."""
    ids = {}
    with catalogue.sessions.begin() as session:
        for name, path in files.items():
            audio = catalogue.home.audio_dir / f"{name}{path.suffix}"
            shutil.copy(path, audio)
            source = Source(key=f"test:{name}", url=f"https://example.org/{name}", title=name, audio_path=str(audio))
            source.state, source.license = SourceState.DOWNLOADED, (licences or {}).get(name)
            session.add(source)
            session.flush()
            ids[name] = source.id
    return ids


def test_parallel_transcription_records_verdicts_features_and_resumes(
    catalogue: Catalogue, pieces: list[RenderedPiece], hammered: Path, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"ID3" + bytes(range(256)) * 64)
    files = {f"chorale{i}": p.audio_path for i, p in enumerate(pieces)} | {"hammered": hammered, "corrupt": corrupt}
    ids = _downloaded(catalogue, files, licences={"chorale0": "Creative Commons Attribution license (reuse allowed)"})
    seen: list[tuple[int, int, TranscribeOutcome]] = []

    with catalogue.sessions() as session:
        todo = downloaded_source_ids(session)
    summary = transcribe_sources(
        catalogue.sessions, todo, catalogue.home.midi_dir, workers=2, progress=lambda *a: seen.append(a)
    )

    assert [(done, total) for done, total, _ in seen] == [(i, 5) for i in range(1, 6)]
    counts = summary.counts()
    assert counts["transcribed"] == 4 and counts["accepted"] == 3
    assert counts["rejected"] == {"repetitive": 1, "corrupt_audio": 1}
    with catalogue.sessions() as session:
        states = {s.title: (s.state, s.reason) for s in session.scalars(select(Source))}
        rows = {t.source_id: t for t in session.scalars(select(Transcription))}
    assert states["hammered"] == (SourceState.REJECTED, "repetitive")
    assert states["corrupt"][0] is SourceState.REJECTED
    chorale = rows[ids["chorale0"]]
    assert Path(chorale.midi_path).is_file() and chorale.note_count > 50
    assert chorale.settings["basic_pitch"]["struck"]["onset_threshold"] > 0  # the thresholds that made it
    assert chorale.settings["reading"]["articulation"] == "struck"  # a piano: the onset head marks its notes
    assert chorale.settings["reading"]["onset_support"] > 0.5
    audio = chorale.features["audio"]
    assert len(audio["mfcc_mean"]) == len(audio["mfcc_var"]) == N_MFCC and len(audio["chroma"]) == 12
    assert set(audio["means"]) == {"centroid", "rolloff", "bandwidth", "zcr", "rms"}
    assert 60 <= audio["tempo"] <= 180 and chorale.features["key"]
    grid = chorale.grid  # the tracked beats the tokens are quantised against
    assert grid["meter"] == 4 and len(grid["beats"]) > 20 and "beat_track" in grid["method"]
    assert abs(grid["tempo"] - pieces[0].tempo) / pieces[0].tempo < 0.03
    hammered_row = rows[ids["hammered"]]
    assert hammered_row.features["repetition_score"] > 0.9

    # A re-run finds nothing left to do.
    with catalogue.sessions() as session:
        assert downloaded_source_ids(session) == []

    # Similarity: a chorale's nearest neighbours are the other chorales, not the hammered note.
    with catalogue.sessions() as session:
        neighbours = most_similar(session, ids["chorale0"], n=3)
    assert {n.source_id for n in neighbours[:2]} == {ids["chorale1"], ids["chorale2"]}
    assert neighbours[0].similarity >= neighbours[1].similarity > neighbours[2].similarity
    assert neighbours[-1].source_id == ids["hammered"]
    result = CliRunner().invoke(app, ["similar", str(ids["chorale0"]), "--n", "2"])
    assert result.exit_code == 0, result.output
    assert "chorale" in result.output and "hammered" not in result.output
    missing = CliRunner().invoke(app, ["similar", str(ids["corrupt"])])
    assert missing.exit_code == 1 and "no audio features" in missing.output

    # Training can be restricted to Creative Commons sources.
    with catalogue.sessions() as session:
        assert [row.source_id for row in accepted_pieces(session, licence="creative commons")] == [ids["chorale0"]]
        assert len(accepted_pieces(session)) == 3


def test_a_killed_run_leaves_no_verdict_and_is_redone(catalogue: Catalogue, pieces: list[RenderedPiece]) -> None:
    """A half-written MIDI (the run died before the rename) is never recorded; the re-run redoes the piece."""
    ids = _downloaded(catalogue, {"chorale": pieces[0].audio_path})
    dead_writer = catalogue.home.midi_dir / f".{ids['chorale']}.mid.999999999-0badc0de.tmp"  # no such pid
    dead_writer.write_bytes(b"MThd half")
    with catalogue.sessions() as session:
        assert downloaded_source_ids(session) == [ids["chorale"]]
    summary = transcribe_sources(catalogue.sessions, [ids["chorale"]], catalogue.home.midi_dir, workers=1)
    assert summary.counts()["accepted"] == 1
    assert not list(catalogue.home.midi_dir.glob(".*.tmp"))  # the stale half-file was replaced, then renamed
    with catalogue.sessions() as session:
        row = session.scalar(select(Transcription))
        assert row is not None and Path(row.midi_path).stat().st_size > 100


def test_a_catalogue_from_before_beat_grids_gets_them_without_downloading(
    catalogue: Catalogue, pieces: list[RenderedPiece]
) -> None:
    """Rows made before grids were stored get them from the audio on disk, or from the MIDI when it is gone."""
    ids = _downloaded(catalogue, {"kept": pieces[0].audio_path, "gone": pieces[1].audio_path})
    transcribe_sources(catalogue.sessions, list(ids.values()), catalogue.home.midi_dir, workers=1)
    with catalogue.sessions.begin() as session:
        stored = {t.source_id: t.grid for t in session.scalars(select(Transcription))}
        for row in session.scalars(select(Transcription)):
            row.grid = None  # as migration 0003 leaves an older catalogue
    Path(catalogue.home.audio_dir / "gone.mp3").unlink()
    assert backfill_grids(catalogue.sessions) == 2
    assert backfill_grids(catalogue.sessions) == 0  # nothing left: a re-run does nothing
    with catalogue.sessions() as session:
        grids = {t.source_id: t.grid for t in session.scalars(select(Transcription))}
    assert grids[ids["kept"]]["method"] == BEAT_METHOD and grids[ids["gone"]]["method"] == NOTES_METHOD
    assert grids[ids["kept"]]["beats"] == stored[ids["kept"]]["beats"]  # the same beats as at transcription
    assert abs(grids[ids["gone"]]["tempo"] - pieces[1].tempo) / pieces[1].tempo < 0.03
