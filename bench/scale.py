"""Scale benchmark: what a night costs with a catalogue of 100, 1,000 and 10,000 accepted pieces.

How each catalogue is built (quickly, from real music, through the catalogue's own functions):
a playlist feed of N entries on 127.0.0.1 is expanded by the real yt-dlp and recorded
(``ingest.catalogue.save_listing``); each entry is then recorded as transcribed and accepted
(``transcribe.catalogue.record_piece``, as the transcription stage does) with a MIDI file written
from one of 60 Bach chorales (music21's corpus), transposed (-6..+5 semitones) and re-timed
(0.80-1.25x), on its own constant beat grid, with the analysis the filter reads computed from
its notes (no audio: audio features are zeros). Nothing is downloaded or transcribed: this
bench measures what grows with the catalogue, not basic-pitch.

Printed for each size, on SQLite (and PostgreSQL with ``--postgres URL``):
- build: seconds to record the catalogue;
- re-submit of the known playlist (expand, record, download what is pending): media requests
  (target 0) and wall time (target < 2 s at 10,000);
- ``tunesmith status --json`` as a user runs it (a new process): wall time (target < 1 s at 10,000);
- tokens: first read of every piece (MIDI onto its grid, then stored) and the next read (from the store);
  training holds none of them: it reads each piece's stored file when it needs it;
- what training saves for the batches (the style's form measures, the originality index, the quality
  reference): build time, and the index's size;
- a nightly batch of 8 tracks x 2 minutes, index loading included, with the shipped base model's
  weights and the catalogue's own measures (as training saves them): target at 10,000 within 1.2x
  of the time at 100;
- one training epoch in a fresh process (LSTM 1 x 128, the default window cap): seconds per
  thousand tokens and peak memory, targets flat across sizes (within 1.2x).

Run: ``.venv/bin/python bench/scale.py [--sizes 100 1000 10000] [--postgres URL [--postgres-only]] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from sqlalchemy import select  # noqa: E402

from db.catalogue import Catalogue, open_catalogue  # noqa: E402
from db.home import Home  # noqa: E402
from db.models import ModelVersion, Source  # noqa: E402
from generate.batch import GenerateSettings, generate_batch  # noqa: E402
from ingest.catalogue import ingest_urls, save_listing  # noqa: E402
from ingest.youtube import list_playlist  # noqa: E402
from sample.corpus import chorale_names, corpus_midis  # noqa: E402
from sample.feed import LOOPBACK_INGEST, FeedItem, FeedServer, serve  # noqa: E402
from train.base import base_model_folder  # noqa: E402
from train.model import SavedModel  # noqa: E402
from train.tokens import TokenizerConfig  # noqa: E402
from train.training import (  # noqa: E402
    TrainSettings,
    accepted_pieces,
    fit,
    load_pieces,
    save_measures,
    style_records,
)
from transcribe.analysis import FilterSettings, PieceAnalysis, polyphony  # noqa: E402
from transcribe.basic_pitch import TranscriptionSettings  # noqa: E402
from transcribe.beats import BeatGrid  # noqa: E402
from transcribe.catalogue import record_piece  # noqa: E402
from transcribe.midi import read_midi, write_midi  # noqa: E402
from transcribe.notes import NoteEvent  # noqa: E402
from transcribe.piece import PieceResult  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "scale"
MATERIAL = 60
MODEL_FILES = ("config.json", "vocab.json", "tokenizer.json", "weights.h5", "metrics.json")


def material() -> list[tuple[list[NoteEvent], float]]:
    """The chorales' notes (music21 writes them at 120 bpm unless the score says otherwise) and tempos."""
    import pretty_midi

    pieces = []
    for path in corpus_midis(CACHE / "material", chorale_names(MATERIAL)):
        tempo = float(pretty_midi.PrettyMIDI(str(path)).get_tempo_changes()[1][0])
        pieces.append((read_midi(path), tempo))
    return pieces


def variant(source: tuple[list[NoteEvent], float], index: int) -> tuple[list[NoteEvent], float, BeatGrid]:
    """Piece ``index``: its chorale transposed and re-timed, with the constant beat grid it is played on."""
    notes, tempo = source
    shift = index % 12 - 6
    stretch = 0.8 + 0.45 * ((index * 37) % 100) / 100
    moved = [NoteEvent(n.start * stretch, n.end * stretch, n.pitch + shift, n.velocity) for n in notes]
    beat = 60.0 / tempo * stretch
    end = max(n.end for n in moved)
    grid = BeatGrid(tuple(np.arange(0.0, end + beat, beat).round(4).tolist()), 4, 0, "bench: constant")
    return moved, tempo / stretch, grid


def analysis_of(notes: list[NoteEvent], tempo: float) -> PieceAnalysis:
    pitches = [n.pitch for n in notes]
    duration = max(n.end for n in notes)
    zeros = {"centroid": 0.0, "rolloff": 0.0, "bandwidth": 0.0}
    return PieceAnalysis(
        duration=round(duration, 3), tempo=round(tempo, 2), key=None, note_count=len(notes),
        note_density=round(len(notes) / duration, 3), pitch_low=min(pitches), pitch_high=max(pitches),
        distinct_pitches=len(set(pitches)), polyphony=round(polyphony(notes), 3), repetition_score=0.0,
        repetition_pattern=0, pattern_share=0.0, bar_similarity=0.0, silence_ratio=0.0, spectral_flatness=0.0,
        audio={"tempo": tempo, "means": zeros, "variances": zeros, "chroma": [0.0] * 12, "mfcc_mean": [0.0] * 13,
               "mfcc_var": [0.0] * 13, "silence_ratio": 0.0, "spectral_flatness": 0.0},
    )  # fmt: skip


def build(catalogue: Catalogue, server: FeedServer, size: int, pieces: list[tuple[list[NoteEvent], float]]) -> str:
    """Record a playlist of ``size`` entries and every entry as an accepted transcription; return the feed URL."""
    items = [FeedItem(f"piece-{i}.mp3", f"Piece {i}", f"scale:{i}", 60.0) for i in range(size)]
    url = server.write_feed(f"scale-{size}.xml", f"Scale {size}", items)
    save_listing(catalogue.sessions, list_playlist(url, LOOPBACK_INGEST), LOOPBACK_INGEST)  # no downloads
    with catalogue.sessions() as session:
        ids = list(session.scalars(select(Source.id).order_by(Source.id)))
    transcription, filters = TranscriptionSettings(), FilterSettings()
    for index, source_id in enumerate(ids):
        notes, tempo, grid = variant(pieces[index % len(pieces)], index)
        midi = write_midi(notes, tempo, catalogue.home.midi_dir / f"{source_id}.mid")
        result = PieceResult(source_id, midi, analysis_of(notes, tempo), grid, accepted=True)
        record_piece(catalogue.sessions, result, transcription, filters)
    return url


def resubmit(catalogue: Catalogue, server: FeedServer, url: str) -> dict[str, Any]:
    before = len(server.requests)
    started = time.perf_counter()
    summary = ingest_urls(catalogue.sessions, [url], catalogue.home.audio_dir, LOOPBACK_INGEST)
    seconds = time.perf_counter() - started
    media = [r for r in server.requests[before:] if not r.endswith(".xml")]
    return {"seconds": round(seconds, 3), "media_requests": len(media), "downloaded": summary.downloaded}


def status_seconds(home: Home) -> float:
    """``tunesmith status --json`` as a new process, best of three: the console script's own code, run from this
    bench's checkout (the installed script would run whichever checkout is installed, perhaps a newer one that
    migrates the catalogue under the bench)."""
    env = {
        **os.environ, "TUNESMITH_HOME": str(home.root), "TUNESMITH_DATABASE_URL": home.database_url,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }  # fmt: skip
    command = [sys.executable, "-c", "from flows.cli import main; main()", "status", "--json"]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=ROOT)
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def tokens_and_model(catalogue: Catalogue, size: int) -> tuple[dict[str, Any], Path]:
    """Read every piece's tokens twice (first tokenised and stored, then from the store), and save a model
    folder with the base model's weights and this catalogue's measures, registered as the current model."""
    base = SavedModel.load(base_model_folder())
    with catalogue.sessions() as session:
        rows = accepted_pieces(session)
    started = time.perf_counter()
    pieces, _ = load_pieces(rows, base.tokenizer, catalogue.home.tokens_dir)
    first = time.perf_counter() - started
    started = time.perf_counter()
    again, _ = load_pieces(rows, base.tokenizer, catalogue.home.tokens_dir)
    tokens = sum(len(list(p.tokens)) for p in again)  # each piece's stored file read back in full
    second = time.perf_counter() - started
    assert [p.source_id for p in again] == [p.source_id for p in pieces]
    folder = catalogue.home.models_dir / f"scale-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copy(base_model_folder() / name, folder / name)
    started = time.perf_counter()
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))  # what training records of the pieces
    records = style_records(pieces, base.tokenizer, seed=0)
    config["styles"] = {name: record.to_dict() for name, record in records.items()}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    save_measures(folder, [p.tokens for p in pieces], base.tokenizer, [], seed=0)
    measures = time.perf_counter() - started
    index_bytes = sum(f.stat().st_size for f in (folder / "originality").iterdir())
    with catalogue.sessions.begin() as session:
        session.add(ModelVersion(path=str(folder), config={"lineage": []}, metrics={}, is_current=True,
                                 source_ids=[p.source_id for p in pieces]))  # fmt: skip
    return {
        "pieces": len(pieces),
        "tokens": tokens,
        "first_read_seconds": round(first, 2),
        "stored_read_seconds": round(second, 2),
        "measures_seconds": round(measures, 2),
        "index_mb": round(index_bytes / 2**20, 1),
    }, folder


def batch_seconds(catalogue: Catalogue) -> dict[str, Any]:
    started = time.perf_counter()
    outcome = generate_batch(catalogue.sessions, catalogue.home.batches_dir, GenerateSettings(count=8, minutes=2.0,
                                                                                             seed=1))  # fmt: skip
    return {"seconds": round(time.perf_counter() - started, 1), "tracks": outcome.tracks}


def epoch(home_root: str, database_url: str) -> dict[str, Any]:
    """One training epoch on the whole catalogue (this process's peak memory included)."""
    home = Home(Path(home_root), database_url)
    catalogue = open_catalogue(home)
    with catalogue.sessions() as session:
        rows = accepted_pieces(session)
    started = time.perf_counter()
    pieces, _ = load_pieces(rows, TokenizerConfig.load(base_model_folder() / "tokenizer.json"), home.tokens_dir)
    loading = time.perf_counter() - started
    settings = TrainSettings(epochs=1, units=(128,), embedding=64, prototype_epochs=0)
    _, metrics = fit(pieces, settings)
    return {
        "load_seconds": round(loading, 2),
        "train_seconds": metrics["train_seconds"],
        "train_tokens": metrics["train_tokens"],
        "val_tokens": metrics["val_tokens"],
        "ms_per_1k_tokens": round(1e6 / metrics["tokens_per_second"], 2),
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_size(size: int, database_url: str | None, server: FeedServer, pieces: list[Any], work: Path) -> dict[str, Any]:
    root = work / f"home-{size}"
    if database_url:  # emptied for each size (a schema of this process's own in that database)
        from tests.databases import empty_postgres_database

        os.environ["TUNESMITH_TEST_POSTGRES_URL"] = database_url
        database_url = empty_postgres_database()
    home = Home(root, database_url or f"sqlite:///{root / 'catalogue.sqlite'}")
    catalogue = open_catalogue(home)
    started = time.perf_counter()
    url = build(catalogue, server, size, pieces)
    result: dict[str, Any] = {"size": size, "build_seconds": round(time.perf_counter() - started, 1)}
    result["resubmit"] = resubmit(catalogue, server, url)
    result["status_seconds"] = status_seconds(home)
    result["tokens"], _ = tokens_and_model(catalogue, size)
    result["batch"] = batch_seconds(catalogue)
    child = subprocess.run(
        [sys.executable, __file__, "--epoch", str(root), home.database_url], capture_output=True, text=True
    )
    if child.returncode != 0:
        raise RuntimeError(f"the epoch at {size} pieces failed:\n{child.stderr[-4000:]}")
    result["epoch"] = json.loads(child.stdout.strip().splitlines()[-1])
    catalogue.engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL (its schema is emptied)")
    parser.add_argument("--postgres-only", action="store_true", help="with --postgres: skip SQLite")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the built homes (printed)")
    parser.add_argument("--epoch", nargs=2, metavar=("HOME", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.epoch:
        print(json.dumps(epoch(*args.epoch)))
        return
    pieces = material()
    results = []
    work = Path(tempfile.mkdtemp(prefix="tunesmith-scale-"))
    try:
        (work / "feeds").mkdir()
        with serve(work / "feeds") as server:
            databases = [*([] if args.postgres_only else ["sqlite"]), *(["postgresql"] if args.postgres else [])]
            for database in databases:
                for size in args.sizes:
                    result = run_size(size, args.postgres if database == "postgresql" else None, server, pieces,
                                      work / database)  # fmt: skip
                    result["database"] = database
                    results.append(result)
                    print(json.dumps(result), flush=True)
    finally:
        if args.keep:
            print(f"homes kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(f"{'db':<10} {'pieces':>7} {'build s':>8} {'resubmit s':>10} {'media':>6} {'status s':>8} "
          f"{'tokens 1st s':>12} {'stored s':>9} {'index s':>8} {'index MB':>8} {'batch s':>8} "
          f"{'ms/1k tok':>9} {'peak MB':>8}")  # fmt: skip
    for r in results:
        print(f"{r['database']:<10} {r['size']:>7} {r['build_seconds']:>8} {r['resubmit']['seconds']:>10} "
              f"{r['resubmit']['media_requests']:>6} {r['status_seconds']:>8} {r['tokens']['first_read_seconds']:>12} "
              f"{r['tokens']['stored_read_seconds']:>9} {r['tokens']['measures_seconds']:>8} "
              f"{r['tokens']['index_mb']:>8} {r['batch']['seconds']:>8} {r['epoch']['ms_per_1k_tokens']:>9} "
              f"{r['epoch']['peak_mb']:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
