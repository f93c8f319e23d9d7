"""Build the shipped base model: ``python -m train.build_base`` tokenises music21's corpus collections
(``train.base``) and trains the pipeline's own model on them (about 13 minutes on 2 cores)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

from train.base import BASE_NAME, COLLECTIONS, base_model_folder, corpus_pieces
from train.dataset import Piece
from train.pieces import PIECES_FILE, save_pieces
from train.training import TrainSettings, fit


def build(out: Path, *, epochs: int, workers: int, scale: float = 1.0) -> None:
    """Tokenise the corpus pieces, train the pipeline's model on them, save it with its piece list."""
    started = time.perf_counter()
    rows = list(corpus_pieces(workers, scale=scale))
    pieces = [
        Piece(int.from_bytes(hashlib.sha256(name.encode()).digest()[:6], "big"), tokens, tempo, style)
        for name, style, tokens, tempo in rows
    ]
    tokens = sum(len(p.tokens) for p in pieces)
    print(f"{len(pieces)} pieces, {tokens} tokens, tokenised in {time.perf_counter() - started:.0f} s", flush=True)
    # Windows do not overlap (stride = length): each epoch reads every token once, in a fresh random key.
    settings = TrainSettings(
        epochs=epochs, prototype_epochs=0, patience=2, validation_share=0.05, batch_size=64, stride=192, seq_len=192
    )
    saved, metrics = fit(pieces, settings)
    print(
        f"trained {metrics['epochs']} epochs in {metrics['train_seconds']:.0f} s: validation "
        f"{metrics['nll_per_note']:.3f} nats/note (unigram {metrics['baselines']['unigram']['nll_per_note']:.3f})",
        flush=True,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    saved.save(out, extra={"train_settings.json": settings.to_dict(), "metrics.json": metrics})
    save_pieces(out / PIECES_FILE, [p.tokens for p in pieces])
    (out / "pieces.txt").write_text("".join(f"{name}\t{style}\n" for name, style, _, _ in rows), encoding="utf-8")
    (out / "README.md").write_text(
        f"# {BASE_NAME}\n\nBuilt by `python -m train.base` from {len(pieces)} public-domain pieces of music21's "
        f"corpus ({', '.join(c.style for c in COLLECTIONS)}; listed in pieces.txt), {tokens} tokens.\n"
        f"Validation: {metrics['nll_per_note']:.3f} nats/note over {metrics['notes']} notes.\n\n"
        f"```json\n{json.dumps({k: metrics[k] for k in ('epochs', 'train_seconds', 'tokens_per_second')})}\n```\n",
        encoding="utf-8",
    )
    print(f"saved {out} in {time.perf_counter() - started:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Build tunesmith's base model from music21's corpus.")
    parser.add_argument("--out", type=Path, default=base_model_folder())
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0, help="a share of each collection (for a quick try)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    build(args.out, epochs=args.epochs, workers=args.workers, scale=args.scale)


if __name__ == "__main__":
    main()
