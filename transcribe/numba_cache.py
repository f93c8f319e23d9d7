"""librosa, imported so that processes starting at once cannot corrupt numba's cache.

librosa compiles its numba kernels when its modules load and caches them beside its own files
(``__pycache__/*.nbi``, ``*.nbc``). Two processes compiling the same kernels at once (two
transcription workers on a fresh install, say) can leave an index that points at the other's code:
every later process then crashes with a segmentation fault the first time it tracks beats. So the
first import of librosa's modules in each process holds a lock file that every tunesmith process
shares, and only one compiles at a time; the others then load what it cached.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

# librosa's modules that define cached numba kernels (they load lazily, on first attribute access)
MODULES = ("librosa", "librosa.util", "librosa.core", "librosa.onset", "librosa.feature")


def lock_path() -> Path:
    return Path(os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir()) / "tunesmith-numba.lock"


def load_librosa(*more: str) -> ModuleType:
    """The librosa module, with its kernels compiled or loaded under the shared lock (once per process); ``more``:
    other librosa modules with cached kernels to load the same way (the tests' ``librosa.beat``: two pytest
    workers collecting it at once left an index that crashed every later process in its beat tracker)."""
    wanted = (*MODULES, *more)
    if all(name in sys.modules for name in wanted):
        return sys.modules["librosa"]
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            import fcntl
        except ImportError:  # not on POSIX: no lock to take
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            for name in wanted:
                importlib.import_module(name)
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return sys.modules["librosa"]


if __name__ == "__main__":  # `python -m transcribe.numba_cache`: compile the kernels once, after install
    load_librosa()
