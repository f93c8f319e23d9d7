"""Files that appear only when complete: every stage writes to a temporary name beside the target, then renames."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STALE_SECONDS = 2 * 3600.0  # a temporary file this old is a dead writer's, wherever it ran


@contextmanager
def atomic_path(path: Path, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` if the block succeeds, removed if not.

    ``suffix`` keeps an extension on the temporary name for writers that pick the format from it
    (ffmpeg, FluidSynth, matplotlib). A half-written file never carries the final name, so a run
    killed mid-write leaves nothing that looks done. The temporary name carries the writer's pid
    and a random token, so two writers of one target never collide (the last rename wins, each
    file complete); a dead writer's leftovers are cleared, a live one's never.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{suffix}")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def clear_stale(path: Path) -> int:
    """Remove the temporary files of ``path`` whose writer is gone (or that are hours old); returns how many."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:(\d+)-[0-9a-f]+\.)?tmp")
    removed = 0
    for candidate in path.parent.glob(f".{path.name}.*"):
        match = pattern.match(candidate.name)
        if match is None:
            continue
        pid = int(match.group(1)) if match.group(1) else None
        try:
            old = time.time() - candidate.stat().st_mtime > STALE_SECONDS
        except FileNotFoundError:
            continue
        if pid is None or old or not pid_alive(pid):
            candidate.unlink(missing_ok=True)
            removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` runs on this machine (or may: one we cannot signal).

    A zombie (killed, not yet reaped: a killed flow run whose worker died too, in a container whose first
    process reaps no orphans) answers signals but runs nothing, so it is not alive.
    """
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux), or it went meanwhile: the signal said it was there
    return state not in ("Z", "X")
