"""Transcription benchmark: accuracy (note F1) and throughput of the pipeline's transcription.

Renders music21 corpus chorales to piano MP3s with FluidSynth (cached), runs the pipeline's
own transcription (``transcribe.parallel.run_pieces``: one process per core, model loaded once
each, MIDI written, analysis and verdict computed) and prints:

- throughput in audio seconds per wall second, counting worker start-up and model loading (and again with
  the workers' fork server already running, as in a flow run), and its ratio to basic-pitch's network alone
  on the same windows and cores (the ceiling: the better of one many-thread process and one-thread processes);
- ffmpeg's own CPU time decoding the same files, against the network's, and the ratio a pipeline doing
  nothing but those two would reach;
- mean note F1 (mir_eval, onset-only, 50 ms) of the current defaults against the rendered MIDI;
- with ``--timbres N``: N chorales and N fiddle tunes each rendered on eight General MIDI timbres
  (``sample.timbres``), and the onset F1 per timbre on the held-out half (every other piece) for
  basic-pitch's defaults, the one piano-tuned setting and the pipeline's per-piece choice;
- with ``--tune`` too: the note settings and the articulation bound chosen on the other half;
- peak memory of one process transcribing a short file and a 20-minute file (bounded memory).

Run: ``.venv/bin/python bench/transcription.py [--pieces 16] [--workers 2] [--timbres 16 [--tune]] [--long]``
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mir_eval  # noqa: E402
import numpy as np  # noqa: E402
import pretty_midi  # noqa: E402

from sample.corpus import RenderedPiece, render_pieces  # noqa: E402
from sample.timbres import TIMBRE_NAMES, TimbreRender, render_timbres  # noqa: E402
from transcribe.analysis import FilterSettings  # noqa: E402
from transcribe.basic_pitch import (  # noqa: E402
    Articulation,
    NoteSettings,
    Posteriors,
    Reading,
    Transcriber,
    TranscriptionSettings,
    drop_partials,
    harmonic_share,
    notes_from_posteriors,
    onset_support,
    read_notes,
)
from transcribe.notes import NoteEvent  # noqa: E402
from transcribe.parallel import default_workers, run_pieces  # noqa: E402
from transcribe.piece import PieceJob  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "transcription"
BASIC_PITCH_DEFAULTS = NoteSettings(
    onset_threshold=0.5, frame_threshold=0.3, minimum_note_length_ms=127.7, melodia_trick=True
)
PIANO_TUNED = NoteSettings(onset_threshold=0.7, frame_threshold=0.3)  # tunesmith's one setting, tuned on piano
ONE_SETTING = {"sustained_below": 0.0, "harmonics_from": 1.0}  # every piece read as struck, no partials dropped
# The mixed-timbre set: chorales (four voices, slow) and O'Neill's fiddle tunes (one fast line), none of them
# the demo's, the tests' or the quality bench's.
TIMBRE_CHORALES_SKIP = 40  # past the chorales the throughput figures use
TIMBRE_TUNES = tuple(f"oneills1850/0351-0400#{n}" for n in range(24))
TUNE_TEMPOS = (104, 112, 120, 96, 108, 116)


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
    midi = pretty_midi.PrettyMIDI(str(midi_path))  # a band's drum kit is not notes to transcribe
    return [NoteEvent(n.start, n.end, n.pitch) for inst in midi.instruments if not inst.is_drum for n in inst.notes]


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


def _network_share(windows: list[np.ndarray], threads: int, ready: Any, go: Any, seconds: Any) -> None:
    transcriber = Transcriber(threads=threads)
    transcriber._frames(windows[:4])  # warm up
    ready.release()
    go.wait()
    started = time.perf_counter()
    transcriber._frames(windows)
    seconds.put(time.perf_counter() - started)


def model_ceiling(pieces: list[RenderedPiece], workers: int) -> dict[str, float]:
    """Audio seconds per second for basic-pitch's network alone over the pieces' windows, on ``workers`` cores,
    arranged both ways: one process with ``workers`` threads, and ``workers`` one-thread processes (each a share
    of the windows, started together; the slowest counts). The better of the two is the ceiling.

    No decoding, features, note creation or analysis, and no start-up.
    """
    import multiprocessing

    from transcribe.basic_pitch import _windows, decode_chunks

    windows = [w for p in pieces for w in _windows(decode_chunks(p.audio_path))]
    audio = sum(p.duration for p in pieces)
    context = multiprocessing.get_context("spawn")  # a clean process: this one has TensorFlow loaded
    speeds = {}
    for processes, threads in ((1, workers), (workers, 1)):
        ready, go, seconds = context.Semaphore(0), context.Event(), context.Queue()
        shares = [windows[i::processes] for i in range(processes)]
        started = [
            context.Process(target=_network_share, args=(share, threads, ready, go, seconds)) for share in shares
        ]
        for process in started:
            process.start()
        for _ in started:
            ready.acquire()
        go.set()
        slowest = max(seconds.get() for _ in started)
        for process in started:
            process.join()
        speeds[f"{processes} process(es) x {threads} thread(s)"] = audio / slowest
    return speeds


def decoding_cost(pieces: list[RenderedPiece]) -> float:
    """CPU seconds ffmpeg spends per audio second decoding the pieces as the pipeline does (``decode_chunks``),
    counted from the finished ffmpeg processes' own usage: work a pipeline cannot leave out."""
    from transcribe.basic_pitch import decode_chunks

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for piece in pieces:
        for _ in decode_chunks(piece.audio_path):
            pass
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / sum(p.duration for p in pieces)


@dataclass
class TimbreSet:
    """The mixed-timbre renders with their model posteriors (computed once) and reference notes."""

    renders: list[TimbreRender]
    posteriors: list[Posteriors]
    references: list[list[NoteEvent]]
    held_out: list[bool]  # by piece: every other piece, sorted by name, is held out

    def indices(self, held_out: bool) -> list[int]:
        return [i for i, h in enumerate(self.held_out) if h == held_out]


def timbre_set(count: int) -> TimbreSet:
    from sample.corpus import chorale_names

    folder = CACHE / "timbres"
    started = time.perf_counter()
    renders = render_timbres(folder, chorale_names(count + 8, skip=TIMBRE_CHORALES_SKIP), count=count)  # spares
    renders += render_timbres(folder, TIMBRE_TUNES, tempos=TUNE_TEMPOS, count=count)
    transcriber = Transcriber()
    posteriors = [transcriber.posteriors(r.audio_path) for r in renders]
    pieces = sorted({r.piece for r in renders})
    held = {name: i % 2 == 1 for i, name in enumerate(pieces)}
    print(
        f"{len(pieces)} pieces x {len(TIMBRE_NAMES)} timbres, {sum(r.duration for r in renders):.0f} s of audio "
        f"(rendered or cached, posteriors in {time.perf_counter() - started:.0f} s)"
    )
    return TimbreSet(
        renders, posteriors, [reference_notes(r.midi_path) for r in renders], [held[r.piece] for r in renders]
    )


def per_timbre(data: TimbreSet, scores: list[float], indices: list[int]) -> dict[str, float]:
    """Mean of ``scores`` (one per render) per timbre over ``indices``."""
    by: dict[str, list[float]] = {}
    for i in indices:
        by.setdefault(data.renders[i].timbre, []).append(scores[i])
    return {t: statistics.mean(by[t]) for t in TIMBRE_NAMES if t in by}


def piano_means(data: TimbreSet, scores: list[float], indices: list[int]) -> tuple[float, float]:
    """Mean of ``scores`` (one per render) over the piano chorales and over the piano tunes among ``indices``."""
    chorales, tunes = (
        [scores[i] for i in indices if data.renders[i].timbre == "piano" and ("#" in data.renders[i].piece) == tune]
        for tune in (False, True)
    )
    return statistics.mean(chorales), statistics.mean(tunes)


def decoded(data: TimbreSet, settings: TranscriptionSettings) -> tuple[list[list[NoteEvent]], list[Reading]]:
    """Every render's notes as the pipeline reads them with ``settings`` (articulation chosen per piece)."""
    read = [read_notes(post, settings) for post in data.posteriors]
    return [notes for notes, _ in read], [reading for _, reading in read]


def timbre_table(data: TimbreSet, rows: dict[str, TranscriptionSettings] | None = None) -> None:
    """Onset F1 per timbre on the held-out half: basic-pitch's defaults, the piano-tuned setting, the pipeline's."""
    held = data.indices(held_out=True)
    rows = rows or {
        "basic-pitch defaults": TranscriptionSettings(struck=BASIC_PITCH_DEFAULTS, **ONE_SETTING),
        "one setting, tuned on piano": TranscriptionSettings(struck=PIANO_TUNED, **ONE_SETTING),
        "per piece (the pipeline's)": TranscriptionSettings(),
    }
    print(f"\nonset F1 (50 ms) on the {len({data.renders[i].piece for i in held})} held-out pieces, per timbre:")
    print(f"{'settings':30} " + " ".join(f"{t[:8]:>8}" for t in TIMBRE_NAMES) + f" {'mean':>6} {'min':>6}")
    readings: list[Reading] = []
    for label, settings in rows.items():
        notes, readings = decoded(data, settings)
        scores = [onset_f1(reference, estimate) for reference, estimate in zip(data.references, notes, strict=True)]
        table = per_timbre(data, scores, held)
        cells = " ".join(f"{table[t]:8.2f}" for t in TIMBRE_NAMES)
        print(f"{label:30} {cells} {statistics.mean(table.values()):6.3f} {min(table.values()):6.2f}", end="")
        chorales, tunes = piano_means(data, scores, held)
        print(f"   (piano chorales {chorales:.3f}, piano tunes {tunes:.3f})")
    shares = {
        f"read as {articulation}": [r.articulation is articulation for r in readings]
        for articulation in (Articulation.SUSTAINED, Articulation.SUSTAINED_HARMONICS)
    }
    shares["partials dropped"] = [r.partials_dropped for r in readings]
    for label, flags in shares.items():
        share = {t: statistics.mean(flags[i] for i in held if data.renders[i].timbre == t) for t in TIMBRE_NAMES}
        print(f"{label:30} " + " ".join(f"{share[t]:8.2f}" for t in TIMBRE_NAMES))


def tune(data: TimbreSet) -> TranscriptionSettings:
    """Choose each articulation's note settings and the two bounds on the tuning half; report both halves.

    Every candidate is decoded once per render (an onset shift is applied after decoding, so shifts cost
    nothing): basic-pitch's decoding at several thresholds, melodia trick on or off, and the note head alone
    (``frames_only``). A render whose harmonic share reaches the harmonics bound has its partials dropped,
    as the pipeline does. For each pair of bounds, each articulation takes the candidate best on its own
    tuning pieces (a struck one must keep piano chorales and piano tunes each within 0.02 of the
    piano-tuned setting); the bounds are then ranked by the mean over timbres plus half the worst timbre,
    so no timbre is given up for the others.
    """
    tuning, held = data.indices(held_out=False), data.indices(held_out=True)
    bases = [
        NoteSettings(onset_threshold=o, frame_threshold=f, melodia_trick=m)
        for o, f, m in itertools.product((0.3, 0.4, 0.5, 0.7), (0.3, 0.5), (False, True))
    ] + [
        NoteSettings(onset_threshold=o, frame_threshold=f, frames_only=True)
        for o, f in itertools.product((0.3, 0.4, 0.5, 0.7), (0.3, 0.5))
        if o >= f
    ]
    bound_grid = list(itertools.product((0.2, 0.3, 0.4, 0.5), (0.14, 0.18, 0.22, 0.26, 1.01)))
    least_harmonics = min(h for _, h in bound_grid)
    support = [onset_support(p) for p in data.posteriors]
    harmonics = [harmonic_share(p) for p in data.posteriors]
    f1: dict[NoteSettings, list[float]] = {}
    f1_dropped: dict[NoteSettings, dict[int, float]] = {}  # partials dropped, on renders any bound could drop
    for base in bases:
        raw = [notes_from_posteriors(p, base) for p in data.posteriors]
        for shift in (15.0, 0.0, -15.0, -30.0, -45.0):
            moved = [[dataclasses.replace(n, start=max(0.0, n.start + shift / 1000)) for n in ns] for ns in raw]
            setting = dataclasses.replace(base, onset_shift_ms=shift)
            f1[setting] = [onset_f1(data.references[i], moved[i]) for i in range(len(raw))]
            f1_dropped[setting] = {
                i: onset_f1(data.references[i], drop_partials(moved[i]))
                for i in range(len(raw))
                if harmonics[i] >= least_harmonics
            }

    floor = [f - 0.02 for f in piano_means(data, f1[PIANO_TUNED], tuning)]  # neither may lose more than 0.02
    struck_allowed = [
        s for s in f1 if all(a >= b for a, b in zip(piano_means(data, f1[s], tuning), floor, strict=True))
    ]

    def kind(i: int, bounds: tuple[float, float]) -> Articulation:
        if support[i] >= bounds[0]:
            return Articulation.STRUCK
        return Articulation.SUSTAINED_HARMONICS if harmonics[i] >= bounds[1] else Articulation.SUSTAINED

    def score(setting: NoteSettings, i: int, bounds: tuple[float, float]) -> float:
        return f1_dropped[setting][i] if harmonics[i] >= bounds[1] else f1[setting][i]

    def choose(bounds: tuple[float, float]) -> dict[Articulation, NoteSettings]:
        chosen = {}
        for articulation in Articulation:
            mine = [i for i in tuning if kind(i, bounds) is articulation]
            allowed = struck_allowed if articulation is Articulation.STRUCK else list(f1)
            chosen[articulation] = max(
                allowed, key=lambda s: statistics.mean(score(s, i, bounds) for i in mine) if mine else 0
            )
        return chosen

    def table(
        bounds: tuple[float, float], chosen: dict[Articulation, NoteSettings], indices: list[int]
    ) -> dict[str, float]:
        scores = [score(chosen[kind(i, bounds)], i, bounds) for i in range(len(data.renders))]
        return per_timbre(data, scores, indices)

    results = []
    for bounds in bound_grid:
        chosen = choose(bounds)
        tuned = table(bounds, chosen, tuning)
        results.append((statistics.mean(tuned.values()) + 0.5 * min(tuned.values()), bounds, chosen))
    results.sort(key=lambda r: r[0], reverse=True)
    pieces = len({data.renders[i].piece for i in tuning})
    print(f"\ntuning on {pieces} pieces x {len(TIMBRE_NAMES)} timbres, {len(f1)} note settings, {len(results)} pairs")
    print("of bounds (sustained below, harmonics from; 1.01: never); mean / min over timbres:")
    for _, bounds, chosen in results[:5]:
        t, h = table(bounds, chosen, tuning), table(bounds, chosen, held)
        print(f"  bounds {bounds}: tuning {statistics.mean(t.values()):.3f} / {min(t.values()):.2f}", end="")
        print(f"   held-out {statistics.mean(h.values()):.3f} / {min(h.values()):.2f}")
        for articulation, settings in chosen.items():
            print(f"    {articulation:20} {_label(settings)}")
    _, (below, harmonics_from), chosen = results[0]
    return TranscriptionSettings(
        struck=chosen[Articulation.STRUCK],
        sustained=chosen[Articulation.SUSTAINED],
        sustained_harmonics=chosen[Articulation.SUSTAINED_HARMONICS],
        sustained_below=below,
        harmonics_from=min(harmonics_from, 1.0),
    )


def _label(s: NoteSettings) -> str:
    if s.frames_only:
        return f"frames only: on {s.onset_threshold} off {s.frame_threshold} shift {s.onset_shift_ms:g} ms"
    return (
        f"onset {s.onset_threshold} frame {s.frame_threshold} melodia {s.melodia_trick} shift {s.onset_shift_ms:g} ms"
    )


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
    parser.add_argument("--timbres", type=int, default=0, help="F1 per timbre on N chorales and N fiddle tunes")
    parser.add_argument("--tune", action="store_true", help="with --timbres: choose the note settings (slow)")
    parser.add_argument("--long", action="store_true", help="peak memory: a 2-minute file against a 20-minute one")
    args = parser.parse_args()

    started = time.perf_counter()
    pieces = cached_renders(args.pieces)
    print(
        f"{len(pieces)} chorales, {sum(p.duration for p in pieces):.0f} s of piano audio "
        f"(rendered or cached in {time.perf_counter() - started:.1f} s)"
    )

    runs = {
        "one": (1, "one process"),
        "cold": (args.workers, "cold: worker start-up and model loading included"),
        "warm": (args.workers, "the fork server already up, as a flow run has it (see transcribe.parallel.warm_up)"),
    }  # in this order: the cold run starts the fork server the warm run finds
    speeds = {}
    for run, (workers, what) in runs.items():
        audio, wall, f1 = throughput(pieces, TranscriptionSettings(), workers)
        speeds[run] = audio / wall
        print(f"workers={workers}, {what}: {audio:.0f} s of audio in {wall:.2f} s = {audio / wall:.0f}x real time; "
              f"mean onset F1 {f1:.3f}")  # fmt: skip

    ceilings = model_ceiling(pieces, args.workers)
    for arrangement, speed in ceilings.items():
        print(f"basic-pitch's network alone, {arrangement}: {speed:.0f}x real time")
    ceiling = max(ceilings.values())
    print(
        f"pipeline / network alone: {speeds['cold'] / ceiling:.0%} cold, {speeds['warm'] / ceiling:.0%} with the fork "
        f"server up (workers={args.workers}; target 85%)"
    )
    decoding = decoding_cost(pieces)
    network = args.workers / ceiling  # core-seconds per audio second
    print(
        f"ffmpeg's decoding alone: {decoding:.4f} CPU s per audio second, {decoding / network:.0%} of the network's "
        f"{network:.4f} core-s; a pipeline that only decoded and ran the network: {network / (network + decoding):.0%}"
    )

    if args.timbres:
        data = timbre_set(args.timbres)
        timbre_table(data)
        if args.tune:
            timbre_table(data, {"as tuned in this run": tune(data)})

    if args.long:
        with tempfile.TemporaryDirectory() as tmp:
            for minutes in (2, 20):
                path = long_file(pieces, minutes, Path(tmp))
                print(f"peak memory transcribing a {minutes}-minute file: {peak_memory(path):.0f} MB")
    print(f"(this process: peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
