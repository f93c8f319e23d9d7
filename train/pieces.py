"""The token sequences a model saw, saved beside it: its originality index is built from exactly these."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

from db.files import atomic_path

PIECES_FILE = "pieces.json.gz"


def save_pieces(path: Path, pieces: Sequence[Sequence[str]]) -> Path:
    """Write the pieces' tokens (gzip'd JSON, one list per piece); the file appears only when complete."""
    with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as out:
        json.dump([list(p) for p in pieces], out, separators=(",", ":"))
    return path


def load_pieces_file(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        data = json.load(source)
    return [list(p) for p in data]
