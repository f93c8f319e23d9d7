"""Generation benchmark: the pipeline's batch sampler against the earlier prototype's loop, same model.

The pipeline samples all tracks at once in one ``tf.function`` loop that carries the LSTM state
(``train.model.sample``). The earlier prototype called ``model.predict`` once per note over the
last 100 tokens, one track at a time. Both run on the same trained model here (the pipeline's
default sizes, trained briefly on corpus chorales) for 16 tracks x 500 tokens; the script prints
both times and the ratio.

Run: ``.venv/bin/python bench/generate.py [--tracks 16] [--tokens 500] [--prototype-tracks 2]``
(``--prototype-tracks`` below ``--tracks`` times that many tracks of the slow loop and scales up:
each of its calls is independent, so the time is linear in the number of tracks).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from sample.corpus import chorale_names, corpus_pieces  # noqa: E402
from train.model import SavedModel  # noqa: E402
from train.sampler import sample  # noqa: E402
from train.training import TrainSettings, fit  # noqa: E402

WINDOW = 100  # the prototype's window


def trained_model(pieces: int) -> SavedModel:
    settings = TrainSettings(epochs=2, patience=2, prototype_epochs=0)
    saved, _ = fit(corpus_pieces(chorale_names(pieces)), settings)
    return saved


def prototype_loop(saved: SavedModel, *, tracks: int, tokens: int, temperature: float, seed: int) -> np.ndarray:
    """One ``model.predict`` per note over the last 100 tokens, one track at a time (the earlier prototype)."""
    rng = np.random.default_rng(seed)
    sep = saved.vocab.index["<sep>"]
    banned = np.array(saved.vocab.special_ids())
    out = np.zeros((tracks, tokens), np.int32)
    for track in range(tracks):
        window = [sep]
        for step in range(tokens):
            logits = saved.model.predict(np.array([window[-WINDOW:]], np.int32), verbose=0)[0, -1] / temperature
            logits[banned] = -np.inf
            probs = np.exp(logits - logits.max())
            token = int(rng.choice(len(probs), p=probs / probs.sum()))
            out[track, step] = token
            window.append(token)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--prototype-tracks", type=int, default=2)
    parser.add_argument("--pieces", type=int, default=24, help="corpus chorales to train the model on")
    args = parser.parse_args()

    saved = trained_model(args.pieces)
    print(f"model: embedding {saved.config.embedding}, LSTM {saved.config.units}, vocabulary {len(saved.vocab)}")

    started = time.perf_counter()
    sample(saved, batch=args.tracks, steps=args.tokens, temperature=1.0, top_p=0.95, seed=1)
    first = time.perf_counter() - started
    started = time.perf_counter()
    ids = sample(saved, batch=args.tracks, steps=args.tokens, temperature=1.0, top_p=0.95, seed=2)
    pipeline = time.perf_counter() - started
    assert ids.shape == (args.tracks, args.tokens)
    print(
        f"pipeline sampler, {args.tracks} tracks x {args.tokens} tokens: {pipeline:.2f} s "
        f"({first:.2f} s on the first call, which traces the graph)"
    )

    measured = min(args.prototype_tracks, args.tracks)
    started = time.perf_counter()
    prototype_loop(saved, tracks=measured, tokens=args.tokens, temperature=1.0, seed=3)
    slow = (time.perf_counter() - started) * args.tracks / measured
    how = "measured" if measured == args.tracks else f"{measured} tracks measured, scaled to {args.tracks}"
    print(f"prototype loop (model.predict per note, 100-token window), same work: {slow:.1f} s ({how})")
    print(f"speed-up: {slow / pipeline:.0f}x (against the first, tracing call: {slow / first:.0f}x)")


if __name__ == "__main__":
    main()
