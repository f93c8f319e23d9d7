"""Process-wide defaults, set before Prefect or TensorFlow is imported."""

from __future__ import annotations

import atexit
import os
import re
import shutil
from pathlib import Path
from typing import IO

from db.files import pid_alive
from db.home import Home

_held: list[IO[str]] = []  # the temporary-server lock, held for the life of the process


def configure_environment(home: Home | None = None) -> Home:
    """Keep Prefect's own state under ``$TUNESMITH_HOME/prefect`` (never the catalogue) unless the user chose;
    turn off Prefect's analytics (its "database is locked" noise) and TensorFlow's start-up chatter."""
    home = home or Home.from_env()
    home.prefect_dir.mkdir(parents=True, exist_ok=True)
    chose_prefect_home = "PREFECT_HOME" not in os.environ
    os.environ.setdefault("PREFECT_HOME", str(home.prefect_dir))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A fresh Prefect database migrates on the temporary server's first start: on 2 cores that can pass
    # Prefect's 20 s default and fail a first run, so allow two minutes.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_UI_ENABLED", "true")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if "PREFECT_API_URL" not in os.environ:  # a server `tunesmith up` started: flows show in its UI
        from flows.service import running_api_url

        if api := running_api_url(home):
            os.environ["PREFECT_API_URL"] = api
        elif chose_prefect_home:
            os.environ["PREFECT_HOME"] = str(prefect_home_for_temporary_server(home.prefect_dir))
    return home


def prefect_home_for_temporary_server(shared: Path) -> Path:
    """Where this process's temporary Prefect server keeps its database.

    With no server running, a flow starts a temporary one on ``PREFECT_HOME``'s database; two of
    them migrating one database at once fail (``duplicate column name``). So the first process
    holds a lock and uses the shared home (its runs stay in the history ``tunesmith up`` shows);
    a process that finds the lock taken uses a private home of its own, removed when it exits.
    """
    for stale in shared.glob("private-*"):  # a killed process's private home
        pid = re.fullmatch(r"private-(\d+)", stale.name)
        if pid and not pid_alive(int(pid.group(1))):
            shutil.rmtree(stale, ignore_errors=True)
    if _held:
        return shared
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the shared home
        return shared
    lock = open(shared / "temporary-server.lock", "a")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        private = shared / f"private-{os.getpid()}"
        private.mkdir(exist_ok=True)
        atexit.register(shutil.rmtree, private, ignore_errors=True)  # runs after Prefect stops its server
        return private
    _held.append(lock)
    return shared
