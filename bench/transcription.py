"""Transcription benchmark: accuracy (note F1) and throughput of the pipeline's transcription.

Renders music21 corpus chorales to piano MP3s with FluidSynth (cached), runs the pipeline's
own transcription (``transcribe.parallel.run_pieces``: one process per core, model loaded once
each, MIDI written, analysis and verdict computed) and prints:

- throughput in audio seconds per wall second, counting worker start-up and model loading;
- mean note F1 (mir_eval, onset-only, 50 ms) of the current defaults against the rendered MIDI;
- with ``--tune``: basic-pitch's defaults against a grid of thresholds, chosen on half the pieces
  and reported on the other half (no tuning on the pieces that score it);
- peak memory of one process transcribing a short file and a 20-minute file (bounded memory).

Run: ``.venv/bin/python bench/transcription.py [--pieces 16] [--workers 2] [--tune] [--long]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mir_eval  # noqa: E402
import numpy as np  # noqa: E402
import pretty_midi  # noqa: E402

from sample.corpus import RenderedPiece, render_pieces  # noqa: E402
from transcribe.analysis import FilterSettings  # noqa: E402
from transcribe.basic_pitch import Transcriber, TranscriptionSettings, notes_from_posteriors  # noqa: E402
from transcribe.notes import NoteEvent  # noqa: E402
from transcribe.parallel import default_workers, run_pieces  # noqa: E402
from transcribe.piece import PieceJob  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "transcription"
BASIC_PITCH_DEFAULTS = TranscriptionSettings(onset_threshold=0.5, frame_threshold=0.3, minimum_note_length_ms=127.7)


def chorale_names(count: int) -> tuple[str, ...]:
    from music21 import corpus

    paths = sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl")
    return tuple(f"bach/{p.stem}" for p in paths[: count * 2])  # spares for scores music21 cannot expand


def cached_renders(count: int) -> list[RenderedPiece]:
    """``count`` rendered chorales, from the cache when an earlier run made them."""
    index = CACHE / f"pieces-{count}.json"
    if index.is_file():
        pieces = [
            RenderedPiece(**{**row, "audio_path": Path(row["audio_path"]), "midi_path": Path(row["midi_path"])})
            for row in json.loads(index.read_text())
        ]
        if all(p.audio_path.is_file() and p.midi_path.is_file() for p in pieces):
            return pieces
    pieces = render_pieces(CACHE, chorale_names(count), count=count)
    rows = [{**vars(p), "audio_path": str(p.audio_path), "midi_path": str(p.midi_path)} for p in pieces]
    index.write_text(json.dumps(rows))
    return pieces


def reference_notes(midi_path: Path) -> list[NoteEvent]:
    midi = pretty_midi.PrettyMIDI(str(midi_path))
    return [NoteEvent(n.start, n.end, n.pitch) for inst in midi.instruments for n in inst.notes]


def onset_f1(reference: list[NoteEvent], estimate: list[NoteEvent]) -> float:
    """mir_eval note F1, onsets only, 50 ms tolerance."""
    if not reference or not estimate:
        return 0.0

    def arrays(notes: list[NoteEvent]) -> tuple[np.ndarray, np.ndarray]:
        intervals = np.array([[n.start, max(n.end, n.start + 0.01)] for n in notes])
        return intervals, pretty_midi.note_number_to_hz(np.array([n.pitch for n in notes]))

    ref_i, ref_p = arrays(reference)
    est_i, est_p = arrays(estimate)
    return float(
        mir_eval.transcription.precision_recall_f1_overlap(
            ref_i, ref_p, est_i, est_p, onset_tolerance=0.05, offset_ratio=None
        )[2]
    )


def throughput(
    pieces: list[RenderedPiece], settings: TranscriptionSettings, workers: int
) -> tuple[float, float, float]:
    """(audio seconds, wall seconds, mean F1) for the pipeline's transcription of ``pieces``."""
    with tempfile.TemporaryDirectory() as out:
        jobs = [PieceJob(i, p.audio_path, Path(out) / f"{i}.mid") for i, p in enumerate(pieces)]
        started = time.perf_counter()
        results = list(run_pieces(jobs, settings, FilterSettings(), workers=workers))
        wall = time.perf_counter() - started
        f1 = [
            onset_f1(reference_notes(pieces[r.source_id].midi_path), reference_notes(r.midi_path))
            for r in results
            if r.midi_path is not None
        ]
    return sum(r.seconds for r in results), wall, statistics.mean(f1)


def model_ceiling(pieces: list[RenderedPiece]) -> tuple[float, float]:
    """(audio seconds, seconds) for basic-pitch's network alone over the pieces' windows, all cores.

    The ceiling on throughput: no decoding, features, note creation or analysis.
    """
    from transcribe.basic_pitch import _windows, decode_chunks

    transcriber = Transcriber()
    windows = [w for p in pieces for w in _windows(decode_chunks(p.audio_path))]
    list(transcriber._frames(windows[:4]))  # warm up
    started = time.perf_counter()
    transcriber._frames(windows)
    return sum(p.duration for p in pieces), time.perf_counter() - started


def tune(pieces: list[RenderedPiece]) -> TranscriptionSettings:
    """Grid-search the note-creation thresholds on half the pieces; report on the other half."""
    transcriber = Transcriber(BASIC_PITCH_DEFAULTS)
    posteriors = [transcriber.posteriors(p.audio_path) for p in pieces]
    references = [reference_notes(p.midi_path) for p in pieces]
    tuning, held_out = range(0, len(pieces), 2), range(1, len(pieces), 2)

    def score(settings: TranscriptionSettings, indices: range) -> float:
        return statistics.mean(onset_f1(references[i], notes_from_posteriors(posteriors[i], settings)) for i in indices)

    grid = [
        TranscriptionSettings(onset_threshold=o, frame_threshold=f, minimum_note_length_ms=m, melodia_trick=t)
        for o, f, m, t in itertools.product(
            (0.4, 0.5, 0.6, 0.7, 0.8, 0.9), (0.2, 0.3, 0.4), (34.8, 58.0, 92.9, 127.7), (True, False)
        )
    ]
    ranked = sorted(grid, key=lambda s: score(s, tuning), reverse=True)
    best = ranked[0]
    print(f"\ntuning on {len(tuning)} pieces, {len(grid)} settings; reporting on the other {len(held_out)}:")
    print(f"{'settings':64} {'tune F1':>8} {'held-out F1':>12}")
    for label, s in [("basic-pitch defaults", BASIC_PITCH_DEFAULTS), ("tunesmith defaults", TranscriptionSettings())]:
        print(f"{label:64} {score(s, tuning):8.3f} {score(s, held_out):12.3f}")
    for s in ranked[:5]:
        label = (
            f"onset {s.onset_threshold} frame {s.frame_threshold} "
            f"min {s.minimum_note_length_ms} ms melodia {s.melodia_trick}"
        )
        print(f"{label:64} {score(s, tuning):8.3f} {score(s, held_out):12.3f}")
    return best


def peak_memory(audio: Path) -> float:
    """Peak resident MB of a fresh process (a worker's imports) that transcribes ``audio``."""
    code = (  # a process like a transcription worker: TensorFlow never imported (see transcribe.parallel)
        "import resource, sys; sys.modules['tensorflow'] = None; from pathlib import Path;"
        "from transcribe.basic_pitch import Transcriber;"
        "t = Transcriber(); n = len(t.transcribe(Path(sys.argv[1])).notes);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", code, str(audio)], capture_output=True, text=True, check=True, cwd=root)
    return float(out.stdout.strip().splitlines()[-1])


def long_file(pieces: list[RenderedPiece], minutes: float, out: Path) -> Path:
    """Concatenate the renders (looping) into one ``minutes``-long MP3 with ffmpeg."""
    listing = out / "list.txt"
    total, names = 0.0, []
    for piece in itertools.cycle(pieces):
        names.append(f"file '{piece.audio_path}'")
        total += piece.duration
        if total >= minutes * 60:
            break
    listing.write_text("\n".join(names) + "\n")
    target = out / f"long-{minutes:g}min.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(target)],
        check=True,
    )
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=16)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--tune", action="store_true", help="grid-search the note thresholds")
    parser.add_argument("--long", action="store_true", help="peak memory: a 2-minute file against a 20-minute one")
    args = parser.parse_args()

    started = time.perf_counter()
    pieces = cached_renders(args.pieces)
    print(
        f"{len(pieces)} chorales, {sum(p.duration for p in pieces):.0f} s of piano audio "
        f"(rendered or cached in {time.perf_counter() - started:.1f} s)"
    )

    for workers in sorted({1, args.workers}):
        audio, wall, f1 = throughput(pieces, TranscriptionSettings(), workers)
        print(
            f"workers={workers}: {audio:.0f} s of audio in {wall:.2f} s wall = {audio / wall:.0f}x real time "
            f"(model loading included); mean onset F1 {f1:.3f}"
        )

    audio, seconds = model_ceiling(pieces)
    print(f"basic-pitch's network alone (all cores, nothing else): {audio / seconds:.0f}x real time")

    if args.tune:
        tune(pieces)

    if args.long:
        with tempfile.TemporaryDirectory() as tmp:
            for minutes in (2, 20):
                path = long_file(pieces, minutes, Path(tmp))
                print(f"peak memory transcribing a {minutes}-minute file: {peak_memory(path):.0f} MB")
    print(f"(this process: peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
