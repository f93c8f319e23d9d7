"""tunesmith as a service, for real: a Prefect server on loopback, the deployments, a worker, the UI.

One server for the module (started by ``Service.up``, stopped by ``Service.down``). The tests submit a
loopback feed through the CLI, which creates a run of the ``ingest`` deployment; the worker runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from db.catalogue import open_catalogue
from db.home import Home
from db.models import Source, SourceState, Transcription
from flows.service import Service
from sample.corpus import RenderedPiece
from sample.feed import FeedItem
from tests.databases import empty_postgres_database
from tests.faults import Fault, FaultyServer

pytestmark = [pytest.mark.slow, pytest.mark.network]


def _process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it, read from /proc (a flow run the worker starts has its own session)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, todo = [pid], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        tree += below
        todo += below
    return tree


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A running service whose catalogue is a SQLite file, then (a second time) a PostgreSQL database."""
    home = Home.at(tmp_path_factory.mktemp("service-home")).ensure()
    if request.param == "postgresql":
        home = Home(root=home.root, database_url=empty_postgres_database())
    running = Service(home, port=_free_port())
    try:
        running.up(workers=1)
        yield running
    finally:
        running.down()


def _talk_to(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNESMITH_HOME", str(service.home.root))
    monkeypatch.setenv("TUNESMITH_DATABASE_URL", service.home.database_url)
    monkeypatch.setenv("PREFECT_API_URL", service.api_url)
    monkeypatch.setenv("PREFECT_HOME", str(service.home.prefect_dir))


@pytest.fixture
def as_service_home(service: Service, monkeypatch: pytest.MonkeyPatch) -> Service:
    """This test's commands talk to the module's service (its home, its server)."""
    _talk_to(service, monkeypatch)
    return service


@pytest.fixture(scope="module")
def ingest_run(service: Service, server: FaultyServer, pieces: list[RenderedPiece]) -> tuple[dict[str, Any], Any]:
    """A two-piece playlist submitted to the service and run to its end on the worker: (what submit printed,
    the flow run). Its own fixture, so each test that reads it finds it whichever runs first."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _talk_to(service, monkeypatch)
        items = [FeedItem(p.audio_path.name, p.title, f"service:{p.name}", p.duration) for p in pieces[:2]]
        submitted = _submit(server.write_feed("service.xml", "Service", items))
        return submitted, _wait(service, submitted["id"])


def _on(service: Service, query: Any) -> Any:
    """Run an async client query against ``service``'s server (not whatever server this process saw first)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: service.api_url}):
        return asyncio.run(query())


def _flow_run(service: Service, run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_flow_run(run_id)

    return _on(service, read)


def _wait(service: Service, run_id: str, *, timeout: float = 420.0, until: str = "final") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = _flow_run(service, run_id)
        if (until == "final" and run.state.is_final()) or (until == "running" and run.state.is_running()):
            return run
        time.sleep(1.0)
    raise AssertionError(f"flow run {run_id} did not reach {until} in {timeout:.0f} s: {run.state}")


def _submit(url: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        __import__("flows.cli", fromlist=["app"]).app, ["submit", url, "--sleep", "0", "--backoff", "0.1"]
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _consistent(home: Home) -> dict[SourceState, int]:
    """No row claims a file that is not there; returns the count per state."""
    catalogue = open_catalogue(home)
    with catalogue.sessions() as session:
        sources = list(session.scalars(select(Source)))
        for source in sources:
            if source.state in (SourceState.DOWNLOADED, SourceState.ACCEPTED):
                assert source.audio_path and Path(source.audio_path).is_file(), source.key
        for row in session.scalars(select(Transcription)):
            assert Path(row.midi_path).is_file()
    catalogue.engine.dispose()
    counts: dict[SourceState, int] = {}
    for source in sources:
        counts[source.state] = counts.get(source.state, 0) + 1
    return counts


def test_submit_runs_the_ingest_deployment_on_the_worker(
    as_service_home: Service, ingest_run: tuple[dict[str, Any], Any]
) -> None:
    service = as_service_home
    submitted, run = ingest_run
    assert submitted["ui"].startswith(service.ui_url) and submitted["state"] == "Scheduled"
    assert run.state.is_completed(), run.state
    assert run.deployment_id is not None and run.work_pool_name == "tunesmith"
    assert _consistent(service.home) == {SourceState.ACCEPTED: 2}

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def progress() -> list[Any]:
        async with get_client() as client:
            keys = ArtifactFilterKey(any_=["ingest-downloads", "transcribe-pieces"])
            return list(await client.read_artifacts(artifact_filter=ArtifactFilter(key=keys)))

    assert {(a.key, a.data) for a in _on(service, progress)} >= {("ingest-downloads", 100), ("transcribe-pieces", 100)}


def test_the_nightly_export_runs_on_the_worker_and_publishes_the_dataset_card(
    as_service_home: Service, ingest_run: tuple[dict[str, Any], Any]
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    service = as_service_home

    async def start() -> Any:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("export-dataset/nightly-export")
            assert [s.schedule.cron for s in deployment.schedules] == ["30 4 * * *"]  # type: ignore[union-attr]
            return await client.create_flow_run_from_deployment(deployment.id)

    run = _wait(service, str(_on(service, start).id))
    assert run.state.is_completed(), run.state
    dataset = service.home.root / "dataset"
    rows = [json.loads(line) for line in (dataset / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all((dataset / row["midi"]).is_file() for row in rows)

    async def card() -> list[Any]:
        async with get_client() as client:
            return list(await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["dataset-card"])),
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))))  # fmt: skip

    (artifact,) = _on(service, card)
    assert "2 pieces" in artifact.data and artifact.data == (dataset / "README.md").read_text()


@pytest.mark.browser
def test_the_prefect_ui_shows_the_flow_run(as_service_home: Service, ingest_run: tuple[dict[str, Any], Any]) -> None:
    """Headless Chromium (Debian's, driven by Selenium; no browser download) finds the run in the UI."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "make test installs Debian's chromium and chromium-driver"

    _, run = ingest_run
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=DriverService(executable_path=driver_path))
    try:
        browser.get(f"{as_service_home.ui_url}/runs/flow-run/{run.id}")
        WebDriverWait(browser, 60).until(lambda b: run.name in b.find_element(By.TAG_NAME, "body").text)
        browser.get(f"{as_service_home.ui_url}/runs")
        WebDriverWait(browser, 60).until(lambda b: run.name in b.find_element(By.TAG_NAME, "body").text)
    finally:
        browser.quit()


def _run_in_flight(
    service: Service, server: FaultyServer, pieces: list[RenderedPiece], tag: str, *, quieter_db: int, slow_times: int
) -> tuple[str, str, dict[SourceState, int]]:
    """A three-piece playlist submitted to the service, returned once its run downloads the second, slow piece:
    (the feed's URL, the run's id, the catalogue's counts before). The audio is the pieces' made ``quieter_db``
    quieter (new audio, not duplicates of another test's); the second download hangs 4 s, ``slow_times`` times."""
    from pydub import AudioSegment

    names = [f"{tag}-{i}.mp3" for i in range(3)]
    for name, piece in zip(names, pieces, strict=True):
        (AudioSegment.from_file(piece.audio_path) - quieter_db).export(server.root / name, format="mp3")
    server.fail(names[1], Fault(delay=4.0, times=slow_times))
    items = [FeedItem(n, n, f"{tag}:{n}", p.duration) for n, p in zip(names, pieces, strict=True)]
    url = server.write_feed(f"{tag}.xml", tag.capitalize(), items)
    before = _consistent(service.home)
    run_id = _submit(url)["id"]
    _wait(service, run_id, until="running")
    deadline = time.monotonic() + 120
    while server.faults[f"/{names[1]}"].served == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    return url, run_id, before


def test_a_worker_killed_mid_run_loses_nothing_and_the_next_run_finishes(
    as_service_home: Service, server: FaultyServer, pieces: list[RenderedPiece]
) -> None:
    service = as_service_home
    url, _, before = _run_in_flight(service, server, pieces, "slow", quieter_db=2, slow_times=2)
    worker = int((service.run_dir / "worker-1.pid").read_text())
    tree = _process_tree(worker)
    assert len(tree) > 1, "the worker has started its flow run"
    for pid in tree:  # the worker and the flow run it started (Prefect gives a flow run its own session)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(1.0)
    midway = _consistent(service.home)
    assert sum(midway.values()) == sum(before.values()) + 3  # every entry catalogued by the listing

    service.up(workers=1, deploy=False)  # a new worker
    run = _wait(service, _submit(url)["id"])
    assert run.state.is_completed(), run.state
    after = _consistent(service.home)
    assert after.get(SourceState.ACCEPTED, 0) == before.get(SourceState.ACCEPTED, 0) + 3


def test_the_server_killed_under_a_running_flow_and_started_again_loses_nothing(
    as_service_home: Service, server: FaultyServer, pieces: list[RenderedPiece]
) -> None:
    """The Prefect server dies (SIGKILL) while a run downloads, and `tunesmith up` starts it again: the run
    finishes (its client retries through a short gap) or is marked crashed (a long one: bench/service_outage.py),
    the worker carries on, and the next run finishes the work with nothing lost."""
    service = as_service_home
    if not service.home.database_url.startswith("sqlite"):
        pytest.skip("the server keeps its own state: the catalogue's database changes nothing here")
    url, run_id, before = _run_in_flight(service, server, pieces, "outage", quieter_db=3, slow_times=1)
    worker = int((service.run_dir / "worker-1.pid").read_text())
    os.killpg(int((service.run_dir / "server.pid").read_text()), signal.SIGKILL)
    time.sleep(3.0)
    assert not service.healthy()
    assert service.up(workers=1, deploy=False)["started"] == ["server"]  # the worker lived through it
    run = _wait(service, run_id)
    assert run.state.is_completed() or run.state.is_crashed(), run.state
    assert int((service.run_dir / "worker-1.pid").read_text()) == worker
    again = _wait(service, _submit(url)["id"])
    assert again.state.is_completed(), again.state
    after = _consistent(service.home)
    assert after.get(SourceState.ACCEPTED, 0) == before.get(SourceState.ACCEPTED, 0) + 3
    catalogue = open_catalogue(service.home)
    with catalogue.sessions() as session:
        assert all(s.claimed_by is None for s in session.scalars(select(Source)))  # no claim outlives a run
    catalogue.engine.dispose()


def test_down_stops_workers_then_server_and_is_safe_to_repeat(service: Service) -> None:
    """Last in the module: the fixture's own ``down`` then finds nothing to stop."""
    assert service.down() == {"stopped": ["worker-1", "server"]}  # workers first: one whose server went first hangs
    assert not service.healthy()
    assert service.down() == {"stopped": []}
