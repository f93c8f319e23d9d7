"""tunesmith as a local service: a Prefect server on 127.0.0.1, the work pool, the deployments and a worker.

``up`` starts what is not running yet (safe to repeat); ``down`` stops the workers first, then the
server (a worker whose server went first hangs). Process ids, logs and the API URL live under
``$TUNESMITH_HOME/run``; Prefect's own database lives under ``$TUNESMITH_HOME/prefect`` (never the
catalogue). Everything here drives Prefect's own CLI, so the server, pool, deployments and worker
are exactly what ``prefect server start``, ``prefect work-pool create``, ``prefect deploy`` and
``prefect worker start`` make.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from db.environment import environment
from db.home import Home

POOL = "tunesmith"
REPO = Path(__file__).resolve().parent.parent  # where prefect.yaml and the flow code live


class ServiceError(Exception):
    """The server or a worker would not start, or a Prefect command failed."""


@dataclass(frozen=True)
class Schedules:
    """When the nightly deployments run (cron strings in ``timezone``): settings, read at deploy time."""

    retrain_cron: str = "0 2 * * *"
    batch_cron: str = "30 3 * * *"
    export_cron: str = "30 4 * * *"
    timezone: str = "UTC"

    @classmethod
    def from_env(cls) -> Schedules:
        env = environment()
        return cls(env.retrain_cron, env.batch_cron, env.export_cron, env.timezone)

    def env(self) -> dict[str, str]:
        """The variables prefect.yaml's ``{{ $TUNESMITH_... }}`` placeholders read."""
        return {
            "TUNESMITH_RETRAIN_CRON": self.retrain_cron,
            "TUNESMITH_BATCH_CRON": self.batch_cron,
            "TUNESMITH_EXPORT_CRON": self.export_cron,
            "TUNESMITH_TIMEZONE": self.timezone,
        }


@dataclass
class Service:
    home: Home
    host: str = "127.0.0.1"
    port: int = 4200
    schedules: Schedules = field(default_factory=Schedules.from_env)

    @property
    def run_dir(self) -> Path:
        return self.home.root / "run"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment of every Prefect process tunesmith starts."""
        return {
            **os.environ,
            "PREFECT_HOME": str(self.home.prefect_dir),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_API_URL": self.api_url,
            "TUNESMITH_HOME": str(self.home.root),
            "TUNESMITH_REPO": str(REPO),
            "TUNESMITH_DATABASE_URL": self.home.database_url,
            **self.schedules.env(),
        }

    # --- processes --------------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _running(self, name: str) -> int | None:
        """The pid recorded for ``name`` if that process is alive."""
        path = self._pid_file(name)
        try:
            pid = int(path.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return None
        return pid

    def _start(self, name: str, args: list[str]) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / f"{name}.log").open("ab") as log:  # the child keeps its own copy of the handle
            process = subprocess.Popen(
                [sys.executable, "-m", "prefect", *args],
                cwd=REPO,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as one, not by the terminal
            )
        self._pid_file(name).write_text(str(process.pid))
        return process.pid

    def _stop(self, name: str, *, timeout: float = 30.0) -> bool:
        pid = self._running(name)
        if pid is None:
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            if _wait_gone(pid, wait):
                break
        self._pid_file(name).unlink(missing_ok=True)
        return True

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _prefect(self, *args: str, timeout: float = 300.0) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServiceError(f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}".strip())
        return result.stdout

    # --- the commands -----------------------------------------------------------------------------

    def up(self, *, workers: int = 1, deploy: bool = True, startup_timeout: float = 180.0) -> dict[str, object]:
        """Start the server, create the pool, deploy prefect.yaml and start ``workers`` workers (what is missing)."""
        started = []
        if self._running("server") is None or not self.healthy():
            self._stop("server")
            self._start("server", ["server", "start", "--host", self.host, "--port", str(self.port)])
            started.append("server")
            deadline = time.monotonic() + startup_timeout
            while not self.healthy():
                if self._running("server") is None:
                    raise ServiceError(f"the Prefect server exited; see {self.run_dir / 'server.log'}")
                if time.monotonic() > deadline:
                    raise ServiceError(f"the Prefect server did not answer in {startup_timeout:.0f} s")
                time.sleep(0.5)
        (self.run_dir / "api-url").write_text(self.api_url)
        self._ensure_pool()
        if deploy:
            self._prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(REPO / "prefect.yaml"))
        if not any(self._running(name) for name in self._names("worker-")):
            crashed = self.recover_orphans()
            if crashed:
                started.append(f"marked {crashed} orphaned run(s) crashed")
        for n in range(workers):
            name = f"worker-{n + 1}"
            if self._running(name) is None:
                self._start(name, ["worker", "start", "--pool", POOL, "--name", f"{POOL}-{n + 1}"])
                started.append(name)
        return {"ui": self.ui_url, "api": self.api_url, "started": started, "home": str(self.home.root)}

    def recover_orphans(self) -> int:
        """Mark the pool's pending or running flow runs Crashed when no worker is alive to finish them.

        A worker killed mid-run takes its flow-run process with it (same process group) but leaves the
        run marked Running, which would hold the pool's concurrency slot for ever. Re-submitting
        resumes the work: nothing finished is redone (see the catalogue's states).
        """
        import asyncio

        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
            WorkPoolFilter,
            WorkPoolFilterName,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.settings import PREFECT_API_URL, temporary_settings
        from prefect.states import Crashed

        async def crash() -> int:
            async with get_client() as client:
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(
                            type=FlowRunFilterStateType(
                                any_=[StateType.RUNNING, StateType.PENDING, StateType.CANCELLING]
                            )
                        )
                    ),
                    work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[POOL])),
                )
                for run in runs:
                    await client.set_flow_run_state(run.id, Crashed(message="its worker stopped"), force=True)
                return len(runs)

        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            return asyncio.run(crash())

    def _ensure_pool(self) -> None:
        try:
            self._prefect("work-pool", "inspect", POOL, timeout=60)
        except ServiceError:
            self._prefect("work-pool", "create", POOL, "--type", "process", timeout=60)
        if self.home.database_url.startswith("sqlite"):
            # SQLite has one writer at a time: one flow run at a time in this pool.
            self._prefect("work-pool", "set-concurrency-limit", POOL, "1", timeout=60)

    def down(self) -> dict[str, object]:
        """Stop every worker, then the server; safe to repeat."""
        stopped = [name for name in self._names("worker-") if self._stop(name)]
        if self._stop("server"):
            stopped.append("server")
        (self.run_dir / "api-url").unlink(missing_ok=True)
        return {"stopped": stopped}

    def _names(self, prefix: str) -> list[str]:
        return sorted(p.stem for p in self.run_dir.glob(f"{prefix}*.pid")) if self.run_dir.is_dir() else []


def _wait_gone(pid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``pid`` to exit (reaping it when it is this process's child)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child, now reaped
                return True
        except ChildProcessError:  # not our child (started by another `tunesmith up`)
            pass
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.2)
    return False


def running_api_url(home: Home) -> str | None:
    """The API URL ``tunesmith up`` recorded, if its server answers."""
    path = home.root / "run" / "api-url"
    if not path.is_file():
        return None
    url = path.read_text().strip()
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return url if response.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None
