"""Quality benchmark: train on a fixed set of corpus chorales, generate a batch, and score both.

Runs the pipeline's own path against a throw-away catalogue: chorales (music21's corpus, written
to MIDI) stand in for accepted transcriptions, ``train_from_catalogue`` trains the LSTM with both
baselines, ``generate_batch`` samples, guards, arranges and renders a batch. Prints:

- validation NLL (nats/token) of the pipeline's model, the unigram baseline and the earlier
  prototype's architecture, all on the same validation targets;
- the batch's Yang & Lerch overlap areas against the training pieces (target: each >= 0.7);
- the longest span copied from any training piece across the batch (target: < 12 tokens).

Run: ``.venv/bin/python bench/quality.py [--pieces 150] [--tracks 8] [--baseline-epochs 3]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pretty_midi  # noqa: E402

from db.catalogue import open_catalogue  # noqa: E402
from db.home import Home  # noqa: E402
from db.models import Playlist, PlaylistEntry, Source, SourceState, Transcription  # noqa: E402
from generate.batch import GenerateSettings, generate_batch  # noqa: E402
from generate.quality import FEATURES  # noqa: E402
from sample.corpus import chorale_names, corpus_midis  # noqa: E402
from train.training import TrainSettings, train_from_catalogue  # noqa: E402
from transcribe.analysis import estimate_key  # noqa: E402
from transcribe.notes import NoteEvent  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "corpus-midi"


def catalogue_of_chorales(home: Home, count: int) -> int:
    """Accepted sources for ``count`` chorales, listed by one playlist; returns how many."""
    catalogue = open_catalogue(home)
    midis = corpus_midis(CACHE, chorale_names(count))
    with catalogue.sessions.begin() as session:
        playlist = Playlist(url="https://example.org/chorales", title="Bach chorales", style="chorales")
        session.add(playlist)
        session.flush()
        for position, path in enumerate(midis):
            midi = pretty_midi.PrettyMIDI(str(path))
            notes = [NoteEvent(n.start, n.end, n.pitch) for inst in midi.instruments for n in inst.notes]
            source = Source(key=f"corpus:{path.stem}", url=f"music21:{path.stem}", title=path.stem)
            source.state = SourceState.ACCEPTED
            session.add(source)
            session.flush()
            features = {"key": estimate_key(notes)}
            tempo = round(midi.estimate_tempo(), 1)
            session.add(
                Transcription(
                    source_id=source.id, midi_path=str(path), settings={}, note_count=len(notes), tempo=tempo,
                    features=features,
                )
            )  # fmt: skip
            session.add(PlaylistEntry(playlist_id=playlist.id, source_id=source.id, position=position))
    return len(midis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=150)
    parser.add_argument("--tracks", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=0.5)
    parser.add_argument("--baseline-epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Home.at(Path(tmp)).ensure()
        pieces = catalogue_of_chorales(home, args.pieces)
        catalogue = open_catalogue(home)
        started = time.perf_counter()
        settings = TrainSettings(prototype_epochs=args.baseline_epochs, prototype_seconds=600.0)
        outcome = train_from_catalogue(catalogue.sessions, home.models_dir, settings)
        metrics = outcome.metrics or {}
        print(
            f"{pieces} chorales; trained in {time.perf_counter() - started:.0f} s "
            f"({metrics['epochs']} epochs, vocabulary {metrics['vocab_size']}, "
            f"{len(metrics['validation_source_ids'])} validation pieces, {metrics['targets']} validation targets)"
        )
        print("validation NLL, nats/token (lower is better):")
        print(f"  pipeline LSTM                {metrics['val_loss']:.3f}  (accuracy {metrics['val_accuracy']:.2f})")
        for name, label in (("unigram", "unigram baseline"), ("prototype", "earlier prototype's network")):
            baseline = metrics["baselines"][name]
            extra = f", {baseline['epochs']} epochs" if "epochs" in baseline else ""
            print(f"  {label:28} {baseline['val_loss']:.3f}  (accuracy {baseline['val_accuracy']:.2f}{extra})")

        started = time.perf_counter()
        batch = generate_batch(
            catalogue.sessions, home.batches_dir,
            GenerateSettings(count=args.tracks, minutes=args.minutes, seed=args.seed),
        )  # fmt: skip
        import json

        manifest = json.loads((batch.folder / "manifest.json").read_text())
        print(
            f"batch of {batch.tracks} tracks in {time.perf_counter() - started:.0f} s "
            f"(rejected and resampled: {batch.rejected or 'none'})"
        )
        print("overlap areas with the training pieces (Yang & Lerch; 1 = same distribution):")
        for name in FEATURES:
            print(f"  {name:24} {manifest['quality'][name]['overlap']:.2f}")
        copies = [t["guards"]["longest_copy"] for t in manifest["tracks"]]
        print(f"longest copied span across the batch: {max(copies)} tokens (per track: {copies})")


if __name__ == "__main__":
    main()
