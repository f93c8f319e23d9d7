"""A piano-roll picture of a track, one colour per line of the arrangement."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from db.files import atomic_path
from transcribe.notes import NoteEvent


def save_pianoroll(notes: Sequence[NoteEvent], path: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4), dpi=80)
    for n in notes:
        colour = {92: "tab:red", 58: "tab:blue", 80: "tab:green"}.get(n.velocity, "tab:gray")
        ax.broken_barh([(n.start, n.duration)], (n.pitch - 0.4, 0.8), facecolors=colour)
    ax.set_xlabel("seconds")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return path
