"""Files that appear only when complete, and what a dead writer leaves behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from db.files import atomic_path


def test_a_dead_writers_half_file_is_cleared_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(dead.stdout)  # a process that has exited
    leftovers = {
        "dead": tmp_path / f".1.mid.{gone}-0badc0de.tmp",
        "dead, with a suffix": tmp_path / f".2.mp3.{gone}-0badc0de.tmp.mp3",
        "older format": tmp_path / ".3.mid.tmp",
    }
    live = tmp_path / f".4.mid.{os.getppid()}-0badc0de.tmp"  # our parent: alive, mid-write
    unrelated = [tmp_path / ".batch-20261207-1", tmp_path / "5.mid"]
    for path in [*leftovers.values(), live, *unrelated]:
        path.write_bytes(b"half")
    with atomic_path(tmp_path / "6.mid") as tmp:
        assert not (tmp_path / "6.mid").exists()
        tmp.write_bytes(b"MThd whole")
    assert (tmp_path / "6.mid").read_bytes() == b"MThd whole"
    assert not [name for name, path in leftovers.items() if path.exists()]
    assert live.exists() and all(path.exists() for path in unrelated)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == [live.name]


def test_a_failed_write_leaves_neither_the_target_nor_its_temporary(tmp_path: Path) -> None:
    try:
        with atomic_path(tmp_path / "a.mid") as tmp:
            tmp.write_bytes(b"half")
            raise OSError(28, "No space left on device")
    except OSError:
        pass
    assert list(tmp_path.iterdir()) == []
