"""The token sequences a model saw, saved beside it: its originality index is built from exactly these."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from db.files import atomic_path
from train.base import BASE_NAME, base_model_folder

PIECES_FILE = "pieces.json.gz"


def save_pieces(path: Path, pieces: Iterable[Sequence[str]]) -> Path:
    """Write the pieces' tokens (gzip'd JSON, one list per piece), a piece at a time; the file appears only
    when complete."""
    with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as out:
        out.write("[")
        for number, piece in enumerate(pieces):
            out.write(("," if number else "") + json.dumps(list(piece), separators=(",", ":")))
        out.write("]")
    return path


def load_pieces_file(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        data = json.load(source)
    return [list(p) for p in data]


def pieces_behind(own: Sequence[Sequence[str]], lineage: list[str]) -> list[Sequence[str]]:
    """Every piece a model's tracks are checked for copies of: its own, and the base model's corpus when the
    model descends from it."""
    return [*own, *(load_pieces_file(base_model_folder() / PIECES_FILE) if BASE_NAME in lineage else [])]
