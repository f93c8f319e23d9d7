"""Quality benchmark: does a batch sound like its playlist? A classifier two-sample test, on two styles.

For each style (Bach chorales; O'Neill's fiddle tunes) the bench takes 20 pieces to train on and 20
held back (``train.base.bench_pieces``: none of them in the base model), renders every one to a
piano MP3 with FluidSynth and transcribes it with the pipeline's own transcription (basic-pitch,
tracked beat grid), exactly as a playlist would arrive. The 20 become a catalogue's accepted pieces;
``train_from_catalogue`` trains a model on them (fine-tuned from the shipped base model, and from
scratch), and ``generate_batch`` makes a batch. Then:

- **classifier two-sample test** (the headline): per-piece style features (pitch range and count,
  pitch-class entropy, scale consistency, top-line mean interval and leap share, polyphony, onsets
  per second, IOI variation, median note length, self-similarity) of the batch's tracks against as
  many held-back real pieces; a standardised logistic regression, leave-one-out accuracy (0.5: the
  classifier cannot tell them apart; 1.0: it always can). The control runs the same test between two
  sets of real pieces (training pieces against held-back ones). Both sides are read in the token
  domain (notes on their beat grid), so the test judges the music, not the transcription.
- form: the share of tracks whose final chord holds the tonic, the length error in bars (the decoded
  MP3 against ``--minutes``), the share of recurring bars (``train.structure``: same onset rhythm and
  pitch classes, one note changed at most) in the batch against the training pieces, and the seam of
  a second batch of loops (RMS jump against the median frame-to-frame jump, and against the jumps at
  the track's own bar lines; the sample step across the seam against the track's 99.9th percentile and
  against the steepest step in any of its downbeats' attacks; the near-silence either side of the seam).
- Yang & Lerch overlap areas between the batch and the training pieces, NLL per note of the model
  and both baselines on the same validation notes, and the longest span copied from any piece behind
  the model (the base model's corpus included).

One batch of 16 tracks against as many held-back pieces reads +-0.1 on the classifier from seed to seed, so
each model makes one batch per ``--seeds`` (three by default) and the summary's mean is what the target is
judged on.

Run: ``.venv/bin/python bench/quality.py [--styles chorales fiddle] [--tracks 16] [--init base scratch]
[--seeds 1 2 3]`` (about 10 minutes per style and initialisation to train on 2 cores, and 1.5 minutes per
seed; renders and transcriptions are cached; ``--home DIR`` keeps the trained models and reuses them, to
compare generation settings alone).
"""

from __future__ import annotations

import argparse
import json
import math
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

from db.catalogue import open_catalogue  # noqa: E402
from db.home import Home  # noqa: E402
from db.models import Playlist, PlaylistEntry, Source, SourceState, Transcription  # noqa: E402
from generate.audio import decoded_mono  # noqa: E402
from generate.batch import GenerateSettings, GenerationError, generate_batch  # noqa: E402
from train.base import bench_pieces  # noqa: E402
from train.reference import FEATURES  # noqa: E402
from train.structure import recurring_bar_share  # noqa: E402
from train.tokens import GridPiece, TokenizerConfig, key_of, quantise  # noqa: E402
from transcribe.beats import BeatGrid, grid_from_midi  # noqa: E402
from transcribe.midi import read_midi, write_midi  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "quality"
TEMPOS = {"chorales": (66, 72, 80, 88, 96, 76, 84, 92), "fiddle": (104, 112, 120, 96, 108, 116)}
CONFIG = TokenizerConfig()
STYLE_FEATURES = (
    "pitch_range",
    "pitch_count",
    "pitch_class_entropy",
    "scale_consistency",
    "top_mean_interval",
    "top_leap_share",
    "polyphony",
    "onsets_per_second",
    "ioi_variation",
    "median_note_seconds",
    "self_similarity",
)
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


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


def style_features(piece: GridPiece, bpm: float) -> np.ndarray:
    """The per-piece features the classifier reads (see the module docstring)."""
    seconds = 60.0 / bpm / CONFIG.steps_per_beat
    notes = sorted(piece.notes)
    pitches = np.array([n.pitch for n in notes])
    histogram = np.bincount(pitches % 12, minlength=12) / len(pitches)
    nonzero = histogram[histogram > 0]
    scale = max(histogram[(MAJOR + tonic) % 12].sum() for tonic in range(12))
    tops: dict[int, int] = {}
    for n in notes:
        tops[n.step] = max(tops.get(n.step, 0), n.pitch)
    onsets = sorted(tops)
    intervals = np.abs(np.diff([tops[s] for s in onsets])) if len(onsets) > 1 else np.zeros(1)
    end = max(n.step + n.steps for n in notes)
    sounding = np.zeros(end + 1)
    for n in notes:
        sounding[n.step : n.step + n.steps] += 1
    iois = np.diff(onsets) if len(onsets) > 1 else np.ones(1)
    bar = piece.bar_steps(CONFIG)
    bars: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for n in notes:
        bars[n.step // bar].add((n.step % bar, n.pitch % 12))
    recurring = 0
    ordered = [bars[k] for k in sorted(bars)]
    for i, current in enumerate(ordered):
        if any(len(current & other) / max(len(current | other), 1) >= 0.75 for other in ordered[:i]):
            recurring += 1
    return np.array(
        [
            pitches.max() - pitches.min(),
            len(set(pitches.tolist())),
            float(-(nonzero * np.log2(nonzero)).sum()),
            scale,
            float(intervals.mean()),
            float((intervals > 4).mean()),
            float(sounding[sounding > 0].mean()),
            len(onsets) / (end * seconds),
            float(iois.std() / iois.mean()),
            float(np.median([n.steps for n in notes]) * seconds),
            recurring / max(len(ordered), 1),
        ]
    )


def two_sample_accuracy(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Leave-one-out accuracy of a standardised logistic regression telling set ``a`` from set ``b`` (equal sizes)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneOut, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = min(len(a), len(b))
    x = np.array(a[:n] + b[:n])
    y = np.array([1] * n + [0] * n)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(model, x, y, cv=LeaveOneOut()).mean())


def ends_on_tonic(piece: GridPiece) -> bool:
    """Whether the notes struck at the piece's last onset hold the tonic of the piece's key."""
    last = max(n.step for n in piece.notes)
    return key_of(piece) % 12 in {n.pitch % 12 for n in piece.notes if n.step == last}


def length_error_bars(folder: Path, minutes: float) -> list[float]:
    """Each track's decoded length against the length asked for, in its own bars."""
    manifest = json.loads((folder / "manifest.json").read_text())
    errors = []
    for track in manifest["tracks"]:
        samples, rate = decoded_mono(folder / track["mp3"])
        bar = 60.0 / track["tempo"] * track["meter"]
        errors.append(abs(len(samples) / rate - minutes * 60.0) / bar)
    return errors


def batch_pieces(folder: Path) -> list[tuple[GridPiece, float]]:
    """The batch's tracks as written (their MIDI, on its own tempo grid), with their tempos."""
    manifest = json.loads((folder / "manifest.json").read_text())
    out = []
    for track in manifest["tracks"]:
        path = folder / track["midi"]
        out.append((quantise(read_midi(path), grid_from_midi(str(path)), CONFIG), float(track["tempo"])))
    return out


def save_comparison(generated: GridPiece, generated_bpm: float, real: GridPiece, real_bpm: float, path: Path) -> None:
    """A generated track's first 30 s above a held-back real piece's, as piano rolls, in one picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(12, 6), dpi=80, sharex=True)
    for ax, piece, bpm, label in ((axes[0], generated, generated_bpm, "generated"), (axes[1], real, real_bpm, "real")):
        for n in piece.seconds(bpm, CONFIG):
            if n.start < 30:
                ax.broken_barh([(n.start, n.duration)], (n.pitch - 0.4, 0.8), facecolors="tab:blue")
        bar = 60.0 / bpm * piece.meter
        for x in np.arange(0, 30, bar):
            ax.axvline(x, color="0.85", linewidth=0.8, zorder=0)
        ax.set_ylabel("MIDI pitch")
        ax.set_title(f"{label} ({bpm:.0f} bpm, {piece.meter} beats a bar; grey lines: bars)")
    axes[1].set_xlabel("seconds")
    axes[1].set_xlim(0, 30)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def compare_kept(keep: Path, out: Path) -> None:
    """Pictures from batches kept by an earlier run (``--keep``): each style's first track beside a real piece."""
    for folder in sorted(keep.iterdir()):
        if not (folder / "manifest.json").is_file():
            continue
        style = folder.name.split("-")[0]
        (track, bpm), *_ = batch_pieces(folder)
        _, midi, grid, tempo = transcribed(style, bench_pieces()[style]["reference"][:1])[0]
        save_comparison(
            track, bpm, quantise(read_midi(midi), grid, CONFIG), tempo, out / f"pianoroll-{folder.name}.png"
        )
        print(out / f"pianoroll-{folder.name}.png")


def run_style(style: str, init: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or reuse, with ``--home``) the style's model once, then one batch per seed: a result each."""
    from train.training import TrainSettings, train_from_catalogue

    sides = bench_pieces()[style]
    train = transcribed(style, sides["train"])
    reference = transcribed(style, sides["reference"])
    real = [style_features(quantise(read_midi(midi), grid, CONFIG), tempo) for _, midi, grid, tempo in reference]
    seen = [style_features(quantise(read_midi(midi), grid, CONFIG), tempo) for _, midi, grid, tempo in train]
    recurring_training = float(
        np.mean([recurring_bar_share(quantise(read_midi(midi), grid, CONFIG), CONFIG) for _, midi, grid, _ in train])
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.home) / f"{style}-{init}" if args.home else Path(tmp)
        trained = root / "bench-training.json"  # written once the model is trained, with its metrics
        home = Home.at(root).ensure()
        if trained.is_file():  # --home: the model trained by an earlier run, to compare generation settings
            catalogue = open_catalogue(home)
            metrics, trained_in = (json.loads(trained.read_text())[k] for k in ("metrics", "seconds"))
        else:
            catalogue_of(home, style, train)
            catalogue = open_catalogue(home)
            settings = TrainSettings(
                epochs=args.epochs, prototype_epochs=args.baseline_epochs, prototype_seconds=600.0,
                base_below=10_000 if init == "base" else 0, stride=args.stride,
            )  # fmt: skip
            started = time.perf_counter()
            outcome = train_from_catalogue(catalogue.sessions, home.models_dir, settings, tokens_dir=home.tokens_dir)
            trained_in = time.perf_counter() - started
            metrics = outcome.metrics or {}
            trained.write_text(json.dumps({"metrics": metrics, "seconds": trained_in}))
        about = {
            "style": style, "init": init, "train_pieces": len(train), "reference_pieces": len(reference),
            "nll_per_note": metrics.get("nll_per_note"), "epochs": metrics.get("epochs"),
            "baselines": {k: v["nll_per_note"] for k, v in metrics.get("baselines", {}).items()},
            "train_seconds": round(trained_in),
        }  # fmt: skip
        for seed in args.seeds:
            started = time.perf_counter()
            try:
                batch = generate_batch(
                    catalogue.sessions, home.batches_dir,
                    GenerateSettings(
                        count=args.tracks, minutes=args.minutes, seed=seed, temperature=args.temperature,
                        top_p=args.top_p, candidates=args.candidates,
                    ),
                )  # fmt: skip
            except GenerationError as error:  # a model that writes nothing usable is a result too
                results.append({**about, "seed": seed, "failed": str(error)})
                continue
            generated_in = time.perf_counter() - started
            manifest = json.loads((batch.folder / "manifest.json").read_text())
            tracks = batch_pieces(batch.folder)
            generated = [style_features(piece, bpm) for piece, bpm in tracks]
            form = {
                "ends_on_tonic": float(np.mean([ends_on_tonic(piece) for piece, _ in tracks])),
                "length_error_bars": max(length_error_bars(batch.folder, args.minutes)),
                "recurring_bars": float(np.mean([recurring_bar_share(piece, CONFIG) for piece, _ in tracks])),
                "recurring_bars_training": recurring_training,
                "plans": sorted({t["form"]["plan"] for t in manifest["tracks"]}),
            }
            loops = generate_batch(
                catalogue.sessions, home.batches_dir,
                GenerateSettings(count=4, minutes=args.minutes, seed=seed, temperature=args.temperature,
                                 top_p=args.top_p, loop=True, candidates=args.candidates),
            )  # fmt: skip
            seams = [t["loop_seam"] for t in json.loads((loops.folder / "manifest.json").read_text())["tracks"]]
            form["loop_seam"] = {k: max(s[k] for s in seams) for k in seams[0]}
            if args.keep:
                import shutil

                shutil.copytree(batch.folder, Path(args.keep) / f"{style}-{init}-seed{seed}", dirs_exist_ok=True)
            results.append({
                **about,
                "seed": seed,
                "tracks": len(generated),
                "accuracy": two_sample_accuracy(generated, real),
                "control": two_sample_accuracy(seen, real),
                "means": {
                    "generated": dict(zip(STYLE_FEATURES, np.mean(generated, axis=0).round(3).tolist(), strict=True)),
                    "real": dict(zip(STYLE_FEATURES, np.mean(real, axis=0).round(3).tolist(), strict=True)),
                },
                "overlaps": {name: manifest["quality"][name]["overlap"] for name in FEATURES},
                "longest_copy": manifest["longest_copy"],
                "rejected": manifest["rejected"],
                "form": form,
                "generate_seconds": round(generated_in),
            })  # fmt: skip
    return results


def report(r: dict[str, Any]) -> None:
    """One batch's figures, printed."""
    how = "fine-tuned from the base model" if r["init"] == "base" else "trained from scratch"
    baselines = ", ".join(f"{k} {v:.3f}" for k, v in r["baselines"].items())
    if "failed" in r:
        print(
            f"\n== {r['style']}, {how}, seed {r['seed']}: {r['train_pieces']} pieces to train on (trained "
            f"{r['epochs']} epochs in {r['train_seconds']} s)\n  NLL per note: model {r['nll_per_note']:.3f}; "
            f"{baselines}\n  no batch: {r['failed']}"
        )
        return
    print(
        f"\n== {r['style']}, {how}, seed {r['seed']}: {r['train_pieces']} pieces to train on, "
        f"{r['reference_pieces']} held back, {r['tracks']} tracks "
        f"(trained {r['epochs']} epochs in {r['train_seconds']} s, batch in {r['generate_seconds']} s)"
    )
    print(f"  classifier two-sample accuracy, batch vs held-back: {r['accuracy']:.2f}   (target <= 0.65)")
    print(f"  control, training pieces vs held-back:             {r['control']:.2f}")
    print(f"  NLL per note: model {r['nll_per_note']:.3f}; {baselines}")
    overlaps = ", ".join(f"{k} {v:.2f}" for k, v in r["overlaps"].items())
    print(f"  overlap areas (target >= 0.7): {overlaps}")
    print(f"  longest copied span: {r['longest_copy']} onsets (target < 12); rejected {r['rejected'] or 'none'}")
    f = r["form"]
    seam = f["loop_seam"]
    print(
        f"  form: final chord holds the tonic in {f['ends_on_tonic']:.0%} of tracks (target 100%); "
        f"length error at most {f['length_error_bars']:.2f} bars (target <= 1)"
    )
    print(
        f"  recurring bars: batch {f['recurring_bars']:.2f}, training pieces "
        f"{f['recurring_bars_training']:.2f} (target within 25%); plans {', '.join(f['plans'])}"
    )
    print(
        f"  loop seams (worst of 4): RMS jump {seam['rms_ratio']:.2f}x the median frame jump (target <= 2), "
        f"{seam['bar_line_ratio']:.2f}x the bar lines' jumps, sample step {seam['click_ratio']:.2f}x "
        f"the 99.9th percentile and {seam.get('bar_line_step_ratio', float('nan')):.2f}x the downbeats' "
        f"steepest step, silence at the seam {seam.get('gap_seconds', float('nan')):.2f} s"
    )
    gen, real = r["means"]["generated"], r["means"]["real"]
    print("  feature means, batch / held-back: " + ", ".join(f"{k} {gen[k]}/{real[k]}" for k in gen))


def summary(results: list[dict[str, Any]]) -> list[str]:
    """Per style and initialisation, the classifier's accuracy and the recurring bars over the seeds: one
    batch of 16 reads +-0.1, so the target is judged on the mean."""
    lines = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if "failed" not in r and not math.isnan(r["accuracy"]):
            groups[(r["style"], r["init"])].append(r)
    for (style, init), rs in groups.items():
        accuracies = [r["accuracy"] for r in rs]
        recurring = [r["form"]["recurring_bars"] for r in rs]
        training = rs[0]["form"]["recurring_bars_training"]
        lines.append(
            f"{style} ({init}): classifier accuracy mean {np.mean(accuracies):.2f} over {len(rs)} seeds "
            f"({', '.join(f'{a:.2f}' for a in accuracies)}; target <= 0.65), control {rs[0]['control']:.2f}; "
            f"recurring bars mean {np.mean(recurring):.2f} (training pieces {training:.2f})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", nargs="+", default=["chorales", "fiddle"])
    parser.add_argument("--init", nargs="+", default=["base", "scratch"], choices=["base", "scratch"])
    parser.add_argument("--tracks", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=0.75)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--stride", type=int, default=48)
    parser.add_argument("--baseline-epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="one batch per seed")
    parser.add_argument("--temperature", type=float, default=GenerateSettings.temperature)
    parser.add_argument("--top-p", type=float, default=GenerateSettings.top_p)
    parser.add_argument("--candidates", type=int, default=GenerateSettings.candidates, help="drafts per track")
    parser.add_argument("--keep", help="copy each batch into this folder")
    parser.add_argument(
        "--home", help="keep each style's catalogue and model here and reuse them (generation settings compared alone)"
    )
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--pictures", type=Path, help="only draw piano rolls of the batches kept in --keep, here")
    args = parser.parse_args()
    if args.pictures:
        args.pictures.mkdir(parents=True, exist_ok=True)
        compare_kept(Path(args.keep), args.pictures)
        return

    results = []
    for style in args.styles:
        for init in args.init:
            for result in run_style(style, init, args):
                results.append(result)
                report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print()
    for line in summary(results):
        print(line)


if __name__ == "__main__":
    main()
