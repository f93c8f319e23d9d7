"""Service outage benchmark: the Prefect server killed under a running flow, and `tunesmith up` again.

A service (`flows.service.Service.up`: server, pool, deployments, one worker) in a fresh home; a loopback
playlist of three little tones whose downloads each take 6 s is submitted to the ``ingest`` deployment.
Once the run downloads, the server's process group is killed (SIGKILL); after ``--outages`` seconds
(each in a fresh service) `up` starts it again. Printed per outage: what `up` restarted, the first run's
final state and when, whether the worker lived through it, and the next submitted run's final state.

Run: ``.venv/bin/python bench/service_outage.py [--outages 15 150]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import tone  # noqa: E402
from db.home import Home  # noqa: E402
from flows.service import Service  # noqa: E402
from sample.feed import FeedItem  # noqa: E402
from tests.faults import Fault, FaultyServer, serve_with_faults  # noqa: E402

TUNESMITH = str(Path(sys.executable).parent / "tunesmith")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def state(service: Service, run_id: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read() -> str:
        async with get_client() as client:
            return str((await client.read_flow_run(run_id)).state.type.value)

    with temporary_settings(updates={PREFECT_API_URL: service.api_url}):
        return asyncio.run(read())


def final(service: Service, run_id: str, since: float, timeout: float = 300.0) -> tuple[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = state(service, run_id)
        if now in ("COMPLETED", "CRASHED", "FAILED", "CANCELLED"):
            return now, time.monotonic() - since
        time.sleep(1.0)
    return "not final", time.monotonic() - since


def submit(env: dict[str, str], url: str) -> str:
    done = subprocess.run([TUNESMITH, "submit", url, "--sleep", "0"], env=env, capture_output=True, text=True)
    return str(json.loads(done.stdout)["id"])


def outage(seconds: float, server: FaultyServer, work: Path) -> dict[str, Any]:
    home = Home.at(work / f"home-{seconds:g}").ensure()
    service = Service(home, port=free_port())
    service.up(workers=1)
    env = {**os.environ, "TUNESMITH_HOME": str(home.root), "PREFECT_API_URL": service.api_url,
           "PREFECT_HOME": str(home.prefect_dir)}  # fmt: skip
    try:
        names = [f"tone-{seconds:g}-{i}.mp3" for i in range(3)]
        for i, name in enumerate(names):
            tone(server.root / name, i + seconds / 7, 8)
            server.fail(name, Fault(delay=6.0, times=1))
        items = [FeedItem(n, n, f"outage:{n}", 8) for n in names]
        url = server.write_feed(f"outage-{seconds:g}.xml", "Outage", items)
        before = len(server.requests)
        run_id = submit(env, url)
        while not any(r.endswith(".mp3") for r in server.requests[before:]):
            time.sleep(0.2)
        worker = int((service.run_dir / "worker-1.pid").read_text())
        os.killpg(int((service.run_dir / "server.pid").read_text()), signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(seconds)
        started = service.up(workers=1, deploy=False)["started"]
        first, at = final(service, run_id, killed)
        try:
            os.kill(worker, 0)
            lived = True
        except OSError:
            lived = False
        second, _ = final(service, submit(env, url), killed)
        return {"outage_s": seconds, "restarted": started, "first_run": first, "final_after_s": round(at, 1),
                "worker_lived": lived, "next_run": second}  # fmt: skip
    finally:
        service.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", type=float, nargs="+", default=[15.0, 150.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        with serve_with_faults(site) as server:
            for seconds in args.outages:
                print(json.dumps(outage(seconds, server, Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
