"""The whole pipeline as Prefect flows on a loopback feed, then the command line over the same catalogue."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db.home import Home
from sample.corpus import RenderedPiece
from sample.feed import LOOPBACK_INGEST, FeedItem
from tests.faults import Fault, FaultyServer
from tests.generate.test_page import page_links

pytestmark = [pytest.mark.slow, pytest.mark.network]


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.mark.both_databases
def test_submit_train_generate_pull(
    prefect_harness: None,
    home: Home,
    server: FaultyServer,
    feed_items: list[FeedItem],
    pieces: list[RenderedPiece],
    tmp_path: Path,
) -> None:
    from flows.cli import app
    from flows.pipeline import SubmitRequest, batch_flow, catalogue, ingest_flow, retrain_flow
    from flows.progress import listening

    catalogue.cache_clear()
    feed = server.write_feed("e2e.xml", "End to end", feed_items)
    reported: list[tuple[str, int, int, str]] = []  # what a person's live display would show
    with listening(lambda *event: reported.append(event)):
        first = ingest_flow(SubmitRequest(urls=[feed], settings=LOOPBACK_INGEST), workers=2)
    for stage in ("downloads", "transcription"):
        steps = [(done, total) for name, done, total, _ in reported if name == stage]
        count = len(feed_items)
        assert steps == [(n, count) for n in range(count + 1)], (stage, steps)  # its start, then each piece finished
    assert first.ingest.downloaded == len(feed_items) and first.transcribe is not None
    assert (first.transcribe.transcribed, first.transcribe.accepted) == (4, 3)
    assert first.transcribe.rejected == {"repetitive": 1} and first.transcribe.audio_seconds > 60

    audio_requests = sum(r.endswith(".mp3") for r in server.requests)
    secret = "s3cr3t-session-value"  # the re-run passes the user's cookies: only their path may travel
    jar = tmp_path / "cookies.txt"
    jar.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\t{secret}\n")
    jar.chmod(0o600)
    with_cookies = LOOPBACK_INGEST.model_copy(update={"cookies": str(jar)})
    again = ingest_flow(SubmitRequest(urls=[feed], settings=with_cookies))
    assert again.ingest.downloaded == 0 and again.transcribe is not None and again.transcribe.transcribed == 0
    assert sum(r.endswith(".mp3") for r in server.requests) == audio_requests
    import asyncio

    from prefect.client.orchestration import get_client

    async def recorded() -> str:
        """Every flow run's parameters and every artifact, as the Prefect server keeps them."""
        async with get_client() as client:
            runs = await client.read_flow_runs()
            artifacts = await client.read_artifacts()
            return json.dumps([r.parameters for r in runs], default=str) + json.dumps(
                [a.data for a in artifacts], default=str
            )

    kept = asyncio.run(recorded())
    assert str(jar) in kept and secret not in kept  # the path, never the cookie
    log_file = home.root / "logs" / "tunesmith.log"
    assert not log_file.exists() or secret not in log_file.read_text()

    reported.clear()
    with listening(lambda *event: reported.append(event)):
        trained = retrain_flow(epochs=4, baseline_epochs=1)
    epochs = [(done, total) for name, done, total, note in reported if name == "training" and "validation loss" in note]
    assert epochs == [(n, 4) for n in range(1, trained["metrics"]["epochs"] + 1)]
    assert trained["trained"] and trained["promoted"] and trained["metrics"]["val_loss"] > 0
    assert set(trained["metrics"]["baselines"]) == {"unigram", "4-gram", "prototype"}
    calibrated = [(done, total, note) for name, done, total, note in reported if name == "calibration"]
    assert [(done, total) for done, total, _ in calibrated] == [(0, 1), (1, 1)]  # the one style, begun, calibrated
    assert re.match(r"end-to-end: onsets/beat [0-9.]+ -> [0-9.]+ \([0-9.]+\), voices", calibrated[-1][2])
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    async def progress() -> dict[str, float]:
        """The latest version of each training artifact (each run adds one under the same key)."""
        async with get_client() as client:
            keys = ArtifactCollectionFilterKey(any_=["training-epochs", "training-calibration"])
            latest = await client.read_latest_artifacts(artifact_filter=ArtifactCollectionFilter(key=keys))
            return {a.key: float(a.data) for a in latest if a.key}

    assert asyncio.run(progress()) == {"training-epochs": 100.0, "training-calibration": 100.0}  # in the UI
    assert not retrain_flow(epochs=4)["trained"]  # no new pieces: nothing to train

    from generate.batch import GenerationError

    with pytest.raises(GenerationError, match="knows no style 'jazz'; it knows end-to-end"):
        batch_flow(count=1, style="jazz")
    reported.clear()
    with listening(lambda *event: reported.append(event)):
        batch = batch_flow(count=2, minutes=0.5, seed=3, style="end-to-end", prompt_midi=str(pieces[0].midi_path))
    assert [(done, total) for name, done, total, _ in reported if name == "tracks"] == [(0, 2), (1, 2), (2, 2)]
    folder = Path(batch["folder"])
    assert batch["tracks"] == 2
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["settings"]["style"] == "end-to-end" and manifest["longest_copy"] < 12
    assert {
        "pitch_count",
        "pitch_class_histogram",
        "pitch_range",
        "avg_pitch_interval",
        "avg_ioi",
        "note_length",
    } <= set(manifest["quality"])
    from db.models import ModelVersion
    from generate.arrange import StyleSound, palettes_for
    from generate.finish import Finishing

    with catalogue().sessions() as session:
        config = session.get_one(ModelVersion, trained["model_id"]).config["model"]
    record = config["styles"]["end-to-end"]
    sound = StyleSound(**record["sound"])  # piano chorales: dark and struck
    assert (sound.bright, sound.sustained) == (False, False) and record["groove"] is None  # piano only: no drums
    assert record["profile"] and set(record["lift"]) == {"onsets", "voices", "scale", "leaps", "repeats", "focus"}
    assert 0 <= record["repeats"] < 1 and record["count"] == 3  # the top line's repeats, which calibration aims at
    assert len(record["pieces"]) == 3 and all(low < high for low, high in (p["register"] for p in record["pieces"]))
    assert all(0 <= p["recurrence"] < 1 and len(p["features"]) == 10 for p in record["pieces"])  # one per piece
    assert set(trained["metrics"]["calibration"]) == {"end-to-end"}
    assert manifest["drafts"] >= len(manifest["tracks"])  # one draft a track, more where the guards refused one
    assert all(track["aim_distance"] >= 0 and track["aim"]["head"] for track in manifest["tracks"])
    assert manifest["finishing"] == Finishing().on()  # the default chain, recorded
    for track in manifest["tracks"]:
        bar = 60.0 * track["meter"] / track["tempo"]
        assert abs(track["duration"] - 30.0) <= bar and track["style"] == "end-to-end"  # to the bar
        assert track["form"]["sections"][0]["label"] == "A" and track["bars"] == track["form"]["sections"][-1][
            "start"] + track["form"]["sections"][-1]["bars"]  # fmt: skip
        assert not track["drums"] and track["instruments"]["name"] in {p.name for p in palettes_for(sound)}
        assert len(track["chords"]) >= track["bars"]
        assert track["guards"]["longest_copy"] < 12
        assert (folder / track["mp3"]).stat().st_size > 100_000 and (folder / track["pianoroll"]).is_file()
        assert "melody" in track["stems"] and set(track["stems"]) <= {"melody", "chords", "bass"}  # no drums here
    from tests.generate.test_stems import _residual_db

    first = manifest["tracks"][0]  # its stems, as the batch wrote them, sum to its mix
    assert _residual_db([folder / stem for stem in first["stems"].values()], folder / first["mp3"]) < -20

    runner = CliRunner()
    status = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    assert status["styles"] == {"end-to-end": 1} and status["model"]["styles"] == ["end-to-end"]
    assert status["states"] == {"accepted": 3, "rejected": 1}
    assert status["rejections"] == {"repetitive": 1}
    assert status["model"]["id"] == trained["model_id"]
    assert status["last_batch"]["id"] == batch["batch_id"]
    tables = runner.invoke(app, ["status"]).stdout  # the same, as tables for a person
    nll = f"{trained['metrics']['nll_per_note']:.3f}"
    for shown in ("Sources", "accepted", "Rejections", "repetitive", "unigram baseline", nll, "index.html"):
        assert shown in tables, (shown, tables)
    sources = json.loads(runner.invoke(app, ["sources", "--json"]).stdout)
    assert len(sources) == 4
    assert all(Path(s["midi_path"]).is_file() for s in sources if s["state"] == "accepted")
    assert {s["reason"] for s in sources} == {None, "repetitive"}
    pulled = runner.invoke(app, ["pull", "--to", str(tmp_path / "out")])
    assert pulled.exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out" / folder.name).glob("*.mp3")) == ["01.mp3", "02.mp3"]
    page = page_links(tmp_path / "out" / folder.name / "index.html")  # the page travels with the batch
    assert page["audio"] == ["01.mp3", "02.mp3"] and page["img"] == ["01.png", "02.png"]
    assert all((tmp_path / "out" / folder.name / link).is_file() for links in page.values() for link in links)

    # A batch made without a seed records the one it drew, and that seed makes the same batch again.
    drawn = Path(batch_flow(count=1, minutes=0.25, style="end-to-end")["folder"])
    seed = json.loads((drawn / "manifest.json").read_text())["settings"]["seed"]
    again = Path(batch_flow(count=1, minutes=0.25, style="end-to-end", seed=seed)["folder"])
    assert isinstance(seed, int) and again != drawn
    assert (again / "01.mid").read_bytes() == (drawn / "01.mid").read_bytes()


def test_submit_refuses_local_paths_before_starting_anything(home: Home) -> None:
    from flows.cli import app

    result = CliRunner().invoke(app, ["submit", "file:///etc/passwd"])
    assert result.exit_code == 2
    assert "not an http(s) URL" in result.stderr


def test_generate_without_a_model_is_a_clear_error(home: Home) -> None:
    from db.catalogue import open_catalogue
    from generate.batch import GenerateSettings, GenerationError, generate_batch

    cat = open_catalogue(home)
    with pytest.raises(GenerationError, match="no trained model"):
        generate_batch(cat.sessions, home.batches_dir, GenerateSettings())


def test_transcription_fans_out_over_a_dask_cluster(
    prefect_harness: None,
    home: Home,
    pieces: list[RenderedPiece],
    hammered: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With TUNESMITH_DASK_ADDRESS set, each piece is a Prefect task run on a Dask worker process."""
    import shutil

    from distributed import LocalCluster

    from db.catalogue import open_catalogue
    from db.models import Source, SourceState
    from flows.pipeline import catalogue, transcribe_flow

    catalogue.cache_clear()
    cat = open_catalogue(home)
    with cat.sessions.begin() as session:
        for path in [pieces[0].audio_path, hammered]:
            audio = home.audio_dir / path.name
            shutil.copy(path, audio)
            session.add(
                Source(key=f"dask:{path.name}", url=str(path), state=SourceState.DOWNLOADED, audio_path=str(audio))
            )
    from prefect.settings import PREFECT_API_URL

    # The Dask workers are new processes: point them at the harness's server (not a temporary one of their own).
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        monkeypatch.setenv("TUNESMITH_DASK_ADDRESS", cluster.scheduler_address)
        summary = transcribe_flow()
        workers = len(cluster.workers)
    assert workers == 2
    assert (summary.transcribed, summary.accepted, summary.rejected) == (2, 1, {"repetitive": 1})
    assert summary.audio_seconds > 30  # the fan-out's pieces tallied the same way as a local run's
    catalogue.cache_clear()


UNRESOLVED_HOST = "playlists.tunesmith.invalid"
TUNESMITH = str(Path(sys.executable).with_name("tunesmith"))  # the console script, as a user runs it


def _users_shell() -> dict[str, str]:
    """This environment as a user's shell has it: no Prefect settings from earlier tests, no server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


@pytest.mark.network
@pytest.mark.parametrize("failure", ["timeout", "refused", "unresolved"])
def test_a_site_that_cannot_be_reached_is_one_line_and_a_non_zero_exit(
    prefect_harness: None, home: Home, server: FaultyServer, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    from db.catalogue import open_catalogue
    from db.models import Playlist, Source
    from flows.cli import app
    from flows.pipeline import catalogue

    catalogue.cache_clear()
    if failure == "timeout":  # the playlist page answers, but only after the client has given up
        url = server.write_feed("silent.xml", "Silent", [])
        server.fail("silent.xml", Fault(delay=1.5))
    elif failure == "refused":  # nothing listens on the port
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{closed.getsockname()[1]}/playlist.xml"
    else:  # the name never resolves (resolution is answered here: no DNS query leaves the machine)
        url = f"http://{UNRESOLVED_HOST}/playlist?list=PL1"
        real_getaddrinfo = socket.getaddrinfo

        def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
            if host == UNRESOLVED_HOST:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    args = ["submit", url, "--retries", "1", "--backoff", "0", "--sleep", "0", "--timeout", "0.5", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output  # exited, not crashed
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert url in errors[0] and "run the same command again" in errors[0]
    with open_catalogue(home).sessions() as session:  # nothing half-recorded
        assert session.query(Playlist).count() == 0 and session.query(Source).count() == 0


@pytest.mark.network
@pytest.mark.both_databases
def test_two_submits_at_once_fetch_and_transcribe_each_source_once(
    home: Home, server: FaultyServer, feed_items: list[FeedItem]
) -> None:
    """Two `tunesmith submit` processes on overlapping playlists (the same entries under two URLs), into one home."""
    from db.catalogue import open_catalogue
    from db.models import PlaylistEntry, Source
    from ingest.youtube import download_audio

    solo = len(server.requests)  # what one download costs in requests (yt-dlp's extractor reads the head first)
    download_audio(server.url(feed_items[0].filename), home.root / "solo", LOOPBACK_INGEST)
    per_download = sum(r == f"/{feed_items[0].filename}" for r in server.requests[solo:])

    first = server.write_feed("together-a.xml", "Together", feed_items[:3])
    second = server.write_feed("together-b.xml", "Together", feed_items[1:])
    for item in feed_items:  # slow media: the two runs' downloads overlap for many seconds, whoever starts first
        server.fail(item.filename, Fault(delay=1.5))
    before = len(server.requests)
    command = [TUNESMITH, "submit", "--sleep", "0", "--backoff", "0.05"]
    env = _users_shell()
    runs = [
        subprocess.Popen(
            [*command, url, "--workers", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for url in (first, second)
    ]
    try:
        outputs = [run.communicate(timeout=600) for run in runs]
    finally:
        for item in feed_items:
            server.faults.pop(f"/{item.filename}", None)
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-3000:]
        assert "ERROR" not in err and "Traceback" not in err, err[-3000:]
        assert "is not installed" not in err and "pkg_resources" not in err, err[-3000:]  # third-party noise
        assert "| INFO" not in err and "Falling back" not in err, err[-3000:]  # Prefect's lines go to the log file
        assert f"log: {home.root / 'logs' / 'tunesmith.log'}" in err

    media = Counter(r for r in server.requests[before:] if r.endswith(".mp3") and not r.startswith("HEAD"))
    assert sorted(media) == sorted(f"/{item.filename}" for item in feed_items)
    assert set(media.values()) == {per_download}, media  # every media file fetched once
    with open_catalogue(home).sessions() as session:
        sources = {s.key: (s.state.value, s.reason, s.claimed_by) for s in session.query(Source)}
        assert session.query(PlaylistEntry).count() == 3 + (len(feed_items) - 1)
    # what one run after the other gives: every entry catalogued once, each with its verdict, no claim left
    expected = {f"rss:{item.guid}": ("accepted", None, None) for item in feed_items}
    expected["rss:test:hammered"] = ("rejected", "repetitive", None)
    assert sources == expected
    assert not list(home.midi_dir.glob(".*tmp*")) and not list(home.audio_dir.glob(".download-*"))
    assert not list(home.prefect_dir.glob("private-*"))  # the second run's own Prefect home is gone with it
    logged = (home.root / "logs" / "tunesmith.log").read_text(encoding="utf-8")
    assert logged.count("Beginning flow run") >= 2 and "Falling back on generic information extractor" in logged


@pytest.mark.parametrize("model", ["none", "truncated"])
def test_the_real_command_prints_one_line_for_a_users_mistake(home: Home, model: str) -> None:
    """`tunesmith generate` with no model, or with a model whose weights file was cut short: one error line naming
    what to do, exit 1; Prefect's traceback only in the log file."""
    import shutil

    from db.catalogue import open_catalogue
    from db.models import ModelVersion

    expected = "error: no trained model yet: run `tunesmith train` first"
    if model == "truncated":
        folder = home.models_dir / "damaged"
        shutil.copytree(Path(__file__).parents[2] / "train" / "base_model", folder)
        weights = folder / "weights.h5"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        with open_catalogue(home).sessions.begin() as session:
            session.add(ModelVersion(path=str(folder), config={}, is_current=True))
        expected = f"error: the model in {folder} cannot be read ("
    result = subprocess.run([TUNESMITH, "generate"], env=_users_shell(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    if model == "truncated":
        assert lines[0].endswith("retrain with `tunesmith train --force`")
    logged = (home.root / "logs" / "tunesmith.log").read_text(encoding="utf-8")
    assert "Traceback" in logged and "GenerationError" in logged
