"""Training benchmark: the LSTM's training throughput and its share of this CPU's float32 matmul peak.

Trains the pipeline's model (``train.training.fit``, its default sizes) on music21 corpus chorales
and measures, in the same run, what TensorFlow's float32 matmul reaches on this machine. The
model's work per token is counted from its layer sizes (LSTM gates on input and state, output
layer; backward pass = 2x forward).

``--sweep`` trains each candidate stack of LSTM widths the same few epochs on the same pieces and
prints its validation NLL per note, its speed and what a nightly retrain of 300 pieces of 3.5
minutes would cost with it (``TrainSettings.max_windows`` windows an epoch, ``epochs`` at most).

Run: ``.venv/bin/python bench/train.py [--pieces 120] [--epochs 4] [--batch-size 64] [--sweep]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from sample.corpus import chorale_names, corpus_pieces  # noqa: E402
from train.training import TrainSettings, fit  # noqa: E402

SWEEP = ((256,), (256, 256), (384, 384), (192, 192, 192))


def matmul_peak(n: int = 2048, seconds: float = 3.0) -> float:
    """float32 GFLOP/s of a square matmul on all cores (TensorFlow), best of repeated runs."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    best = 0.0
    deadline = time.perf_counter() + seconds
    tf.matmul(a, b).numpy()  # warm up
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        tf.matmul(a, b).numpy()
        best = max(best, 2 * n**3 / (time.perf_counter() - started) / 1e9)
    return best


def flops_per_token(embedding: int, units: tuple[int, ...], vocab: int) -> float:
    """Multiply-adds x 2 for one token forward (every LSTM layer's gates + output layer), x 3 with the backward pass."""
    forward, width = 0, embedding
    for size in units:
        forward += 2 * 4 * size * (width + size)
        width = size
    return 3.0 * (forward + 2 * width * vocab)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=120)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=TrainSettings.batch_size)
    parser.add_argument("--sweep", action="store_true", help="compare LSTM stacks instead")
    args = parser.parse_args()

    pieces = corpus_pieces(chorale_names(args.pieces))
    peak = matmul_peak()
    print(f"float32 matmul peak (TensorFlow, 2048x2048, all cores): {peak:.1f} GFLOP/s")
    candidates = SWEEP if args.sweep else (TrainSettings.units,)
    for units in candidates:
        settings = TrainSettings(
            epochs=args.epochs, batch_size=args.batch_size, patience=args.epochs, prototype_epochs=0, units=units,
            stride=TrainSettings.seq_len // 2,
        )  # fmt: skip
        _saved, metrics = fit(pieces, settings)
        rate = metrics["tokens_per_second"]
        work = flops_per_token(settings.embedding, units, metrics["vocab_size"])
        achieved = rate * work / 1e9
        nightly = TrainSettings.epochs * settings.max_windows * settings.seq_len / rate / 60
        print(
            f"LSTM {'x'.join(map(str, units))}: {len(pieces)} chorales, {metrics['train_tokens']} training tokens, "
            f"batch {metrics['batch_size']} x {settings.seq_len} tokens"
        )
        print(f"  validation {metrics['nll_per_note']:.3f} nats/note after {metrics['epochs']} epochs")
        print(f"  training: {rate:,.0f} tokens/s ({metrics['train_seconds']} s)")
        print(f"  work: {work / 1e6:.2f} MFLOP per token -> {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of the peak")
        print(f"  a nightly retrain at the window bound ({TrainSettings.epochs} epochs): at most {nightly:.0f} min")


if __name__ == "__main__":
    main()
