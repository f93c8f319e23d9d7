"""Quality benchmark: can a batch be told from its playlist, by judges it does not aim at? With ablation rows.

For each style (Bach chorales; O'Neill's fiddle tunes; Monteverdi's madrigals, a style no setting was tuned
on) the bench takes 20 pieces to train on and 20 held back, alternating (``train.base.bench_pieces``: none in
the base model), renders every one to a piano MP3 with FluidSynth and transcribes it with the pipeline's
own transcription (basic-pitch, tracked beat grid), exactly as a playlist would arrive. The 20 become a
catalogue's accepted pieces and ``train_from_catalogue`` fine-tunes the shipped base model on them (once
per style). Then, from that one model, one batch per seed for each **row**: the plain model (every
finishing step off: the LSTM's own samples, one draft a track) and then each step of the default chain added in
its order (``generate.finish``), "full" being the chain a user gets; each step it leaves off is tried on top.

Every batch is judged by ``bench/judges.py`` against the held-back pieces, beside each judge's control
(the training pieces against the same held-back pieces, at the same sizes): the distribution test (the
shape of each piece), the learned discriminator, and the target classifier (it reads what generation
aims at: reported, not a judge); the batch's spread against the held-back pieces'; and NLL per note of
the model beside the unigram, 4-gram Kneser-Ney and prototype baselines on the same validation notes. The
full chain's batches are also checked for form: the final chord holds the tonic of the key the manifest
names, the length error in bars, recurring bars against the training pieces, and a batch of loops' seams.

One batch of 16 against 16 reads +-0.1 from seed to seed, so each row is judged on its mean over
``--seeds`` (three by default).

Run: ``.venv/bin/python bench/quality.py [--styles chorales fiddle madrigals] [--rows plain full ...]
[--seeds 1 2 3] [--home DIR] [--json FILE]`` (about 10 minutes to train a style on 2 cores, a minute a
batch; renders and transcriptions are cached in ``bench/.cache``; ``--home DIR`` keeps the trained models
and reuses them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.judges import TARGETS, judge  # noqa: E402
from db.catalogue import open_catalogue  # noqa: E402
from db.home import Home  # noqa: E402
from db.models import Playlist, PlaylistEntry, Source, SourceState, Transcription  # noqa: E402
from generate.audio import decoded_mono  # noqa: E402
from generate.batch import GenerateSettings, GenerationError, generate_batch  # noqa: E402
from generate.finish import Finishing  # noqa: E402
from train.base import bench_pieces  # noqa: E402
from train.structure import recurring_bar_share  # noqa: E402
from train.tokens import GridPiece, TokenizerConfig, quantise  # noqa: E402
from transcribe.beats import BeatGrid, grid_from_midi  # noqa: E402
from transcribe.midi import read_midi, write_midi  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "quality"
TEMPOS = {
    "chorales": (66, 72, 80, 88, 96, 76, 84, 92),
    "fiddle": (104, 112, 120, 96, 108, 116),
    "madrigals": (72, 80, 88, 96, 76, 84),
}
CONFIG = TokenizerConfig()
DEFAULT = tuple(Finishing().on())
# The plain model, then each default step added in the chain's order; "full" is the default chain a user gets,
# and each step the default leaves off is tried on top of it.
ROWS = {
    "plain": (),
    **{f"+{step}": DEFAULT[: i + 1] for i, step in enumerate(DEFAULT[:-1])},
    "full": DEFAULT,
    **{f"full +{step}": (*DEFAULT, step) for step in Finishing.steps() if step not in DEFAULT},
}
Pieces = list[tuple[GridPiece, float]]


def transcribed(style: str, names: list[str]) -> list[tuple[str, Path, BeatGrid, float]]:
    """(name, transcription MIDI, beat grid, tempo) for each piece: rendered, then transcribed by the pipeline."""
    from sample.corpus import _with_tempo, corpus_score, render_score
    from transcribe.basic_pitch import Transcriber

    folder = CACHE / style
    folder.mkdir(parents=True, exist_ok=True)
    transcriber: Transcriber | None = None
    out = []
    for i, name in enumerate(names):
        stem = name.replace("/", "-").replace("#", "-")
        midi, grid_file = folder / f"{stem}.transcribed.mid", folder / f"{stem}.grid.json"
        if not grid_file.is_file():
            bpm = float(TEMPOS[style][i % len(TEMPOS[style])])
            try:
                audio, _, _ = render_score(_with_tempo(corpus_score(name), bpm), folder, stem)
            except Exception as error:  # music21 cannot write some scores: skip with the reason
                print(f"  skipping {name}: {type(error).__name__}: {error}")
                continue
            transcriber = transcriber or Transcriber()
            transcript = transcriber.transcribe(audio)
            write_midi(transcript.notes, transcript.tempo, midi)
            grid_file.write_text(json.dumps(transcript.grid.to_dict()))
        grid = BeatGrid.from_dict(json.loads(grid_file.read_text()))
        out.append((name, midi, grid, grid.tempo))
    return out


def on_grid(pieces: list[tuple[str, Path, BeatGrid, float]]) -> Pieces:
    return [(quantise(read_midi(midi), grid, CONFIG), tempo) for _, midi, grid, tempo in pieces]


def catalogue_of(home: Home, style: str, pieces: list[tuple[str, Path, BeatGrid, float]]) -> None:
    """Accepted sources for the transcriptions, listed by one playlist of ``style``."""
    catalogue = open_catalogue(home)
    with catalogue.sessions.begin() as session:
        playlist = Playlist(url=f"https://example.org/{style}", title=style, style=style)
        session.add(playlist)
        session.flush()
        for position, (name, midi, grid, tempo) in enumerate(pieces):
            source = Source(key=f"bench:{name}", url=f"music21:{name}", title=name, state=SourceState.ACCEPTED)
            session.add(source)
            session.flush()
            session.add(
                Transcription(
                    source_id=source.id, midi_path=str(midi), settings={}, note_count=0, tempo=tempo,
                    grid=grid.to_dict(),
                )
            )  # fmt: skip
            session.add(PlaylistEntry(playlist_id=playlist.id, source_id=source.id, position=position))


KEY_TONICS = {name: pc for pc, name in enumerate(("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"))}


def final_chord_holds(piece: GridPiece, key: str) -> bool:
    """Whether the notes struck at the piece's last onset hold the tonic of ``key`` (as the manifest names it),
    and, where they hold a third above it, the third of its mode."""
    tonic_name, mode = key.split()
    tonic = KEY_TONICS[tonic_name]
    last = max(n.step for n in piece.notes)
    classes = {(n.pitch - tonic) % 12 for n in piece.notes if n.step == last}
    wrong_third = 4 if mode == "minor" else 3
    return 0 in classes and wrong_third not in classes


def length_error_bars(folder: Path, minutes: float) -> list[float]:
    """Each track's decoded length against the length asked for, in its own bars."""
    manifest = json.loads((folder / "manifest.json").read_text())
    errors = []
    for track in manifest["tracks"]:
        samples, rate = decoded_mono(folder / track["mp3"])
        bar = 60.0 / track["tempo"] * track["meter"]
        errors.append(abs(len(samples) / rate - minutes * 60.0) / bar)
    return errors


def batch_pieces(folder: Path) -> tuple[Pieces, list[str]]:
    """The batch's tracks as written (their MIDI, on its own tempo grid), with their tempos, and their keys."""
    manifest = json.loads((folder / "manifest.json").read_text())
    out = []
    for track in manifest["tracks"]:
        path = folder / track["midi"]
        out.append((quantise(read_midi(path), grid_from_midi(str(path)), CONFIG), float(track["tempo"])))
    return out, [t["key"] for t in manifest["tracks"]]


def form_checks(
    catalogue: Any, home: Home, folder: Path, tracks: Pieces, keys: list[str], train: Pieces, args: argparse.Namespace,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """The full chain's form: keys and endings, lengths, recurrence, and a batch of loops' seams."""
    holds = [final_chord_holds(piece, key) for (piece, _), key in zip(tracks, keys, strict=True)]
    form: dict[str, Any] = {
        "final_chord_holds_key": float(np.mean(holds)),
        "length_error_bars": max(length_error_bars(folder, args.minutes)),
        "recurring_bars": float(np.mean([recurring_bar_share(p, CONFIG) for p, _ in tracks])),
        "recurring_bars_training": float(np.mean([recurring_bar_share(p, CONFIG) for p, _ in train])),
    }  # fmt: skip
    loops = generate_batch(
        catalogue.sessions, home.batches_dir, GenerateSettings(count=4, minutes=args.minutes, seed=seed, loop=True)
    )
    seams = [t["loop_seam"] for t in json.loads((loops.folder / "manifest.json").read_text())["tracks"]]
    form["loop_seam"] = {k: max(s[k] for s in seams) for k in seams[0]}
    return form


def run_style(style: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse, with ``--home``) the style's model once, then one batch per row and seed: a result each."""
    from train.training import TrainSettings, train_from_catalogue

    sides = bench_pieces()[style]
    train_raw = transcribed(style, sides["train"])
    train, held_back = on_grid(train_raw), on_grid(transcribed(style, sides["reference"]))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.home) / style if args.home else Path(tmp)
        trained = root / "bench-training.json"  # written once the model is trained, with its metrics
        home = Home.at(root).ensure()
        if trained.is_file():  # --home: the model trained by an earlier run
            catalogue = open_catalogue(home)
            metrics, trained_in = (json.loads(trained.read_text())[k] for k in ("metrics", "seconds"))
        else:
            catalogue_of(home, style, train_raw)
            catalogue = open_catalogue(home)
            settings = TrainSettings(epochs=args.epochs, prototype_epochs=args.baseline_epochs,
                                     prototype_seconds=600.0, base_below=10_000, stride=args.stride)  # fmt: skip
            started = time.perf_counter()
            outcome = train_from_catalogue(catalogue.sessions, home.models_dir, settings, tokens_dir=home.tokens_dir)
            trained_in = time.perf_counter() - started
            metrics = outcome.metrics or {}
            trained.write_text(json.dumps({"metrics": metrics, "seconds": trained_in}))
        about = {
            "style": style, "train_pieces": len(train), "reference_pieces": len(held_back),
            "nll_per_note": metrics.get("nll_per_note"), "epochs": metrics.get("epochs"),
            "baselines": {k: v["nll_per_note"] for k, v in metrics.get("baselines", {}).items()},
            "train_seconds": round(trained_in),
        }  # fmt: skip
        for row in args.rows:
            steps = Finishing.of(ROWS[row])
            for seed in args.seeds:
                started = time.perf_counter()
                settings = GenerateSettings(count=args.tracks, minutes=args.minutes, seed=seed, finishing=steps)
                try:
                    batch = generate_batch(catalogue.sessions, home.batches_dir, settings)
                except GenerationError as error:  # a model that writes nothing usable is a result too
                    results.append({**about, "row": row, "seed": seed, "failed": str(error)})
                    continue
                seconds = time.perf_counter() - started
                tracks, keys = batch_pieces(batch.folder)
                verdict = judge(tracks, train, held_back)
                manifest = json.loads((batch.folder / "manifest.json").read_text())
                result = {
                    **about, "row": row, "steps": steps.on(), "seed": seed, "tracks": len(tracks),
                    "verdict": verdict.to_dict(), "generate_seconds": round(seconds, 1),
                    "longest_copy": manifest["longest_copy"], "rejected": manifest["rejected"],
                }  # fmt: skip
                if row == "full":
                    result["form"] = form_checks(catalogue, home, batch.folder, tracks, keys, train, args, seed)
                results.append(result)
                print(one_line(result), flush=True)
    return results


def one_line(r: dict[str, Any]) -> str:
    v = r["verdict"]
    return (
        f"  {r['style']:<9} {r['row']:<9} seed {r['seed']}: distribution {v['distribution']:.2f} "
        f"(control {v['distribution_control']:.2f}), discriminator {v['discriminator']:.2f} "
        f"({v['discriminator_control']:.2f}), targets {v['targets']:.2f} ({v['targets_control']:.2f}), "
        f"spread {v['spread']:.2f}, {r['generate_seconds']:.0f} s"
    )


def table(results: list[dict[str, Any]]) -> list[str]:
    """Per style, the judge table: one line per row, each judge's mean over the seeds, the controls, the NLLs."""
    lines: list[str] = []
    by_style: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if "failed" not in r:
            by_style[r["style"]].append(r)
    for style, rs in by_style.items():
        first = rs[0]
        baselines = ", ".join(f"{k} {v:.3f}" for k, v in first["baselines"].items())
        lines += [
            "",
            f"### {style}: {first['train_pieces']} pieces to train on, {first['reference_pieces']} held back, "
            f"seeds {', '.join(str(s) for s in sorted({r['seed'] for r in rs}))}",
            f"NLL per note on held-out notes: model {first['nll_per_note']:.3f}; {baselines}",
            "",
            "| row | distribution test | discriminator | target classifier | spread | batch (s) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rs:
            rows[r["row"]].append(r)
        for name, group in rows.items():
            mean = {k: float(np.mean([g["verdict"][k] for g in group])) for k in group[0]["verdict"] if
                    isinstance(group[0]["verdict"][k], float)}  # fmt: skip
            seconds = np.mean([g["generate_seconds"] for g in group])
            lines.append(
                f"| {name} | {mean['distribution']:.2f} | {mean['discriminator']:.2f} | {mean['targets']:.2f} | "
                f"{mean['spread']:.2f} | {seconds:.0f} |"
            )
        controls = {k: np.mean([r["verdict"][f"{k}_control"] for r in rs]) for k in ("distribution",
                    "discriminator", "targets")}  # fmt: skip
        lines.append(
            f"| control (training vs held back) | {controls['distribution']:.2f} | {controls['discriminator']:.2f} "
            f"| {controls['targets']:.2f} | 1.00 | - |"
        )
        forms = [r["form"] for r in rs if "form" in r]
        if forms:
            lines.append(
                f"\nFull chain: final chord holds the manifest's key in "
                f"{np.mean([f['final_chord_holds_key'] for f in forms]):.0%} of tracks; length error at most "
                f"{max(f['length_error_bars'] for f in forms):.2f} bars; recurring bars "
                f"{np.mean([f['recurring_bars'] for f in forms]):.2f} "
                f"(training {forms[0]['recurring_bars_training']:.2f}); "
                f"loop seams at most {max(f['loop_seam']['bar_line_step_ratio'] for f in forms):.2f}x the downbeats' "
                f"steepest step, {max(f['loop_seam']['gap_seconds'] for f in forms):.2f} s silent"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", default=["chorales", "fiddle", "madrigals"])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--tracks", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=0.75)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--stride", type=int, default=48)
    parser.add_argument("--baseline-epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="one batch per seed")
    parser.add_argument("--home", help="keep each style's catalogue and model here and reuse them")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    print("Targets (aimed at by generation, so never judges):")
    for feature, where in TARGETS.items():
        print(f"  {feature}: {where}")
    results = []
    for style in args.styles:
        results += run_style(style, args)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
