"""Process-wide defaults, set before Prefect or TensorFlow is imported."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from pathlib import Path
from typing import IO

from db.environment import environment
from db.files import pid_alive
from db.home import Home
from flows.lifecycle import at_exit

_held: list[IO[str]] = []  # the temporary-server lock, held for the life of the process


def configure_environment(home: Home | None = None) -> Home:
    """Keep Prefect's own state under ``$TUNESMITH_HOME/prefect`` (never the catalogue) unless the user chose;
    turn off Prefect's analytics (its "database is locked" noise) and TensorFlow's oneDNN kernels."""
    home = home or Home.from_env()
    home.prefect_dir.mkdir(parents=True, exist_ok=True)
    chose_prefect_home = "PREFECT_HOME" not in os.environ
    os.environ.setdefault("PREFECT_HOME", str(home.prefect_dir))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A fresh Prefect database migrates on the temporary server's first start: on 2 cores that can pass
    # Prefect's 20 s default and fail a first run, so allow two minutes.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_UI_ENABLED", "true")
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
        at_exit(lambda: shutil.rmtree(private, ignore_errors=True))  # runs after the server has stopped
        return private
    _held.append(lock)
    return shared


class LogFile(logging.FileHandler):
    """The log file's handler: a line it cannot write (its disk is full) is dropped, not printed to the terminal
    with a traceback as ``logging`` does; the command's own ``error:`` line says what went wrong."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


class ExpectedErrors(logging.Filter):
    """Drops Prefect's traceback for a run that failed with one of our expected errors (a user's mistake,
    a missing model): the command prints that error as one line, and the log file keeps the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "[Errno 28]" in message:
            return False  # a full disk: the command says so in one line
        if message.startswith("Crash detected!") and ("signal" in message or "Stopped" in message):
            return False  # a run the user stopped: the command says so in its own line
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return False  # a full disk: the command says so in one line
        module = type(error).__module__.split(".")[0]
        return not (module in OUR_PACKAGES and type(error).__name__.endswith("Error"))


OUR_PACKAGES = ("db", "ingest", "transcribe", "train", "generate", "flows")


def route_logs(home: Home) -> Path | None:
    """Send Prefect's log lines to ``$TUNESMITH_HOME/logs/tunesmith.log``, and to the terminal only when verbose.

    For a command that runs flows in this process; call it before Prefect is imported (Prefect reads
    its logging configuration once, at import). The configuration is Prefect's own ``logging.yml``
    with a file handler added to the root logger; without ``--verbose`` (``TUNESMITH_VERBOSE``) the
    console handler keeps warnings and errors only. The Prefect UI still gets every line. Returns
    the log file, or None when Prefect is already set up in this process (tests, workers).
    """
    import importlib.util
    import sys

    import yaml

    if "prefect" in sys.modules or "PREFECT_LOGGING_SETTINGS_PATH" in os.environ:
        return None
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    default = Path(next(iter(spec.submodule_search_locations))) / "logging" / "logging.yml"
    config = yaml.safe_load(default.read_text(encoding="utf-8"))
    log_file = home.root / "logs" / "tunesmith.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    config["handlers"]["file"] = {
        "level": "INFO",
        "class": "flows.env.LogFile",
        "formatter": "standard",
        "filename": str(log_file),
        "encoding": "utf-8",
    }
    config["root"]["handlers"] = [*config["root"].get("handlers", []), "file"]
    for package in OUR_PACKAGES:  # ours: INFO into the file too
        config["loggers"][package] = {"level": "INFO"}
    config["loggers"]["tensorflow"] = {"level": "ERROR"}  # its retracing advice is for its developers, not ours
    verbose = environment().verbose
    if not verbose:
        config["handlers"]["console"]["level"] = "WARNING"
        config.setdefault("filters", {})["expected_errors"] = {"()": "flows.env.ExpectedErrors"}
        config["handlers"]["console"]["filters"] = ["expected_errors"]
    from db.files import atomic_path

    path = home.prefect_dir / f"logging-{'verbose' if verbose else 'quiet'}.yml"
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(path)
    return log_file
