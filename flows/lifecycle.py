"""The life of a command that runs flows in this process: its own temporary Prefect server, and a clean stop.

A flow run needs a Prefect API. With no server up (``tunesmith up``), Prefect would start a temporary one as
a child in the command's process group, where Ctrl-C, ``systemctl stop``, ``docker stop`` and ``timeout``
signal it too: it went down first, the flow engine then retried reporting the crash to it for minutes, and
a quick exit left its ``uvicorn`` behind as an orphan holding the home's Prefect database. So the command
starts that server itself (``TemporaryServer``, Prefect's own ephemeral app, as Prefect would): in a session
of its own, so a signal to the terminal's group does not reach it, told by the kernel to stop when the
command dies however it dies (``PR_SET_PDEATHSIG``), and stopped by the command when it ends. It starts in
the background while the command imports its stages.

``stopping`` turns SIGINT and SIGTERM (to the process or its group) into one line and exit status 130 or
143, within ``STOP_SECONDS``: the signal ends the flow run where it is (Prefect records it as crashed), the
command releases the claims it holds, stops every process it started, and says how far it got. Work that
finished is catalogued and kept; running the same command again resumes.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

STOP_SECONDS = 8.0  # after a signal, at most this long before the command exits whatever is still running
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
PR_SET_PDEATHSIG = 1


class Stopped(BaseException):  # noqa: N818 - not an error: the user asked the command to stop
    """SIGINT or SIGTERM arrived; raised in the main thread, through whatever it was doing."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(signal.Signals(self.signum), 128 + self.signum)


class ServerError(Exception):
    """The temporary Prefect server would not start."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In the server's process: ask the kernel to send it SIGTERM when the process that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class TemporaryServer:
    """Prefect's ephemeral API server (its ``create_app``, no UI, no background services) for this command."""

    log_file: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> TemporaryServer:
        """Start it (not waiting for it): as Prefect 3.8's ``SubprocessASGIServer`` does, in its own session."""
        import importlib.util

        spec = importlib.util.find_spec("prefect")
        if spec is None or spec.origin is None:
            raise ServerError("Prefect is not installed")
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        command = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory",
            "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "error", "--lifespan", "on",
        ]  # fmt: skip
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        return self

    def wait_ready(self, timeout: float) -> None:
        """Block until the API answers its health check.

        Raises:
            ServerError: the server exited, or did not answer within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise ServerError(f"the temporary Prefect server exited ({code}); its log: {self.log_file}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise ServerError(
            f"the temporary Prefect server did not answer within {timeout:.0f} s; its log: {self.log_file}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``timeout``); safe to repeat."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def descendants() -> list[int]:
    """Every process this one started, and theirs, by pid (read from /proc)."""
    import psutil

    try:
        return [child.pid for child in psutil.Process().children(recursive=True)]
    except psutil.Error:
        return []


def stop_processes(pids: list[int], *, timeout: float = 3.0, keep: set[int] | None = None) -> None:
    """SIGTERM to each of ``pids`` (but ``keep``), then SIGKILL to whichever is still there after ``timeout``."""
    import psutil

    procs = []
    for pid in pids:
        if keep and pid in keep:
            continue
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout)


@dataclass
class Progress:
    """The last step each stage reported (``flows.progress``), to say how far a stopped command got."""

    stages: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __call__(self, stage: str, done: int, total: int, note: str) -> None:
        self.stages[stage] = (done, total)

    def summary(self) -> str:
        if not self.stages:
            return "stopped before any step finished"
        stage, (done, total) = next(reversed(self.stages.items()))
        return f"stopped during {stage}: {done} of {total} done"


_cleanups: list[Callable[[], None]] = []


def at_exit(cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` when the process exits, normally (atexit) or stopped by a signal (``stopping``)."""
    import atexit

    _cleanups.append(cleanup)
    atexit.register(cleanup)


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


GRACE_SECONDS = 3.0  # a signal the main thread has not acted on by then is acted on by the watcher


@dataclass
class _Stop:
    """The one way a signalled command ends, whichever thread gets there first (see ``stopping``)."""

    progress: Progress
    on_stop: Callable[[], None]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self, signum: int) -> None:
        """Release, stop every process this one started, say how far it got, exit 130 or 143; at most
        ``STOP_SECONDS`` however it goes. Only the first caller does it; a later one waits for the exit."""
        if not self.lock.acquire(blocking=False):
            threading.Event().wait()  # the first caller ends the process, its watchdog at the latest
        code = Stopped(signum).exit_code
        started = descendants()
        work = [pid for pid in started if _session(pid) == os.getsid(0)]  # ffmpeg, FluidSynth, Dask workers...
        freeze(work)
        watchdog = threading.Timer(STOP_SECONDS, os._exit, args=(code,))
        watchdog.daemon = True
        watchdog.start()
        with contextlib.suppress(Exception):
            self.on_stop()
        stop_processes([pid for pid in started if pid not in work])  # the temporary server, in its own session
        for cleanup in _cleanups:
            with contextlib.suppress(Exception):
                cleanup()
        sys.stderr.write(f"{self.progress.summary()}; run the same command to resume\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def freeze(pids: list[int]) -> None:
    """SIGSTOP each of ``pids`` now and SIGKILL them once this process has exited, however it exits.

    Killed while this process still runs, a child's death would reach the work waiting on it (a decoder gone
    reads as a file that is not audio) and be catalogued as that piece's verdict. Frozen, it dies with no one
    left to misread it: a forked reaper waits for this process to end, then kills them.
    """
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGSTOP)
    if not pids:
        return
    parent = os.getpid()
    if os.fork() == 0:  # pragma: no cover - the reaper: only async-signal-safe calls from here
        try:
            while os.getppid() == parent:
                time.sleep(0.02)
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        finally:
            os._exit(0)


def _watch(read_fd: int, stop: _Stop) -> None:
    """Read the signal numbers Python's C-level handler writes to the wakeup fd: whatever Python handler ran
    (ours, or Prefect's flow engine's, which replaces ours for SIGTERM during a flow run) and whatever became
    of the exception it raised (one raised inside a ``__del__``, as TensorFlow's, is printed and dropped),
    a stop signal the main thread has not acted on within ``GRACE_SECONDS`` is acted on here."""
    with open(read_fd, "rb", buffering=0) as wakeups:
        while data := wakeups.read(64):
            wanted = [n for n in data if n in EXIT_CODES]
            if wanted:
                time.sleep(GRACE_SECONDS)
                stop.now(wanted[0])


def _lost_in_finaliser(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """An unraisable-exception hook that sends a stop signal's exception, raised inside a finaliser and so
    dropped, to the log instead of the terminal (the watcher acts on the signal); any other goes to ``previous``."""

    def hook(unraisable: Any) -> object:
        if type(unraisable.exc_value).__name__ in {"Stopped", "TerminationSignal"}:
            logging.getLogger("tunesmith").info("a stop signal landed in %r; the watcher stops the command",
                                                unraisable.object)  # fmt: skip
            return None
        return previous(unraisable)

    return hook


@contextlib.contextmanager
def stopping(*, on_stop: Callable[[], None] = lambda: None) -> Iterator[Progress]:
    """SIGINT and SIGTERM raise :class:`Stopped` in the main thread for the block; on it, ``on_stop`` runs
    (release what the command holds), every process the command started is stopped, one ``stopped:`` line
    goes to stderr and the process exits 130 or 143, at most ``STOP_SECONDS`` after the signal (threads
    still waiting on the network are not waited for: what they had not recorded is done again next time).
    A watcher thread does the same where the exception was lost (``_watch``)."""
    from flows.progress import listening

    progress = Progress()
    stop = _Stop(progress, on_stop)
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in EXIT_CODES}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read_fd, stop), name="tunesmith-stop", daemon=True).start()
    previous_hook, sys.unraisablehook = sys.unraisablehook, _lost_in_finaliser(sys.unraisablehook)
    try:
        with listening(progress):
            yield progress
    except Stopped as stopped:
        for sig in EXIT_CODES:  # a second Ctrl-C now ends it at once
            signal.signal(sig, signal.SIG_DFL)
        stop.now(stopped.signum)
    finally:
        sys.unraisablehook = previous_hook
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # the watcher reads end-of-file and returns
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
