"""Files that appear only when complete: every stage writes to a temporary name beside the target, then renames."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` if the block succeeds, removed if not.

    ``suffix`` keeps an extension on the temporary name for writers that pick the format from it
    (ffmpeg, FluidSynth, matplotlib). A half-written file never carries the final name, so a run
    killed mid-write leaves nothing that looks done.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
