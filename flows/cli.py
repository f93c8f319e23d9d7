"""The ``tunesmith`` command line. Commands that run no flow never import Prefect (no temporary server)."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from db.home import Home
from flows.env import configure_environment, route_logs
from flows.progress import live

app = typer.Typer(help="YouTube playlists -> MIDI dataset -> LSTM -> nightly royalty-free music.", no_args_is_help=True)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.callback()
def _options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect's log lines in the terminal")] = False,
) -> None:
    """YouTube playlists -> MIDI dataset -> LSTM -> nightly royalty-free music."""
    if verbose:
        os.environ["TUNESMITH_VERBOSE"] = "1"
    from db.environment import EnvironmentVariableError, environment

    try:
        environment()
    except EnvironmentVariableError as error:
        _fail(str(error), code=2)


def _given(**options: Any) -> dict[str, Any]:
    """The options the user gave; the rest are left out, so the settings type's own default applies (a default
    written once, in the settings, and said in the option's help)."""
    return {name: value for name, value in options.items() if value is not None}


def _summary(title: str, rows: list[tuple[str, Any]]) -> None:
    """A short table of what a command came to, for a person at a terminal (stderr; the JSON stays on stdout)."""
    if not sys.stderr.isatty():
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for name, value in rows:
        table.add_row(name, str(value))
    Console(stderr=True).print(table)


def _log_note(log_file: Path | None) -> None:
    if log_file is not None:
        typer.echo(f"log: {log_file}", err=True)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


# Free space a command asks for before it starts (MB): a submit's first downloads and their MIDI, a model and its
# tokens, and per minute of a generated track its WAV while it renders and its MP3. TUNESMITH_MIN_FREE_MB overrides.
SUBMIT_MB, TRAIN_MB, DEMO_MB, TRACK_MINUTE_MB = 100, 50, 200, 12


def _needed_mb(estimate: float) -> int:
    from db.environment import environment

    override = environment().min_free_mb
    return override if override is not None else math.ceil(estimate)


def _no_space(home: Home, needed: int) -> str:
    free, where = home.free_mb()
    return (f"no space left under {where} ({free} MB free, about {needed} MB needed): "
            "free some and run the same command again")  # fmt: skip


def _require_space(home: Home, needed: int) -> None:
    """Refuse to start, in one line, when a folder of the home has less than ``needed`` MB free."""
    if home.free_mb()[0] < needed:
        _fail(_no_space(home, needed))


@contextmanager
def _running_flows(home: Home, needed_mb: int) -> Iterator[Callable[[], None]]:
    """For a command that runs flows in this process: at least ``needed_mb`` free under the home (else one line,
    before anything starts), a temporary Prefect server of its own unless a server is up (started now, in the
    background), and SIGINT/SIGTERM ending the command cleanly (``flows.lifecycle``); a write that finds the
    disk full ends it in one line too. Yields ``ready()``, which waits for the server: call it before the first
    flow."""
    from flows.lifecycle import ServerError, TemporaryServer, at_exit, stopping

    _require_space(home, needed_mb)
    server = None
    if "PREFECT_API_URL" not in os.environ:
        server = TemporaryServer(home.root / "logs" / "prefect-server.log").start()
        os.environ["PREFECT_API_URL"] = server.api_url
        at_exit(server.stop)  # registered before Prefect's own exit handlers, so it runs after they flush to it

    def ready() -> None:
        if server is not None:
            try:
                server.wait_ready(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
            except ServerError as error:
                _fail(str(error))

    def release() -> None:
        from db.catalogue import open_catalogue
        from db.claims import release_mine

        release_mine(open_catalogue(home).sessions)

    with stopping(on_stop=release):
        try:
            yield ready
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            with contextlib.suppress(Exception):  # a catalogue on that disk may refuse this too: the owner is gone soon
                release()
            _fail(_no_space(home, needed_mb))


@app.command()
def submit(
    urls: Annotated[list[str], typer.Argument(help="playlist or video URLs")],
    min_duration: Annotated[float | None, typer.Option(help="reject audio shorter than this (s; default 5)")] = None,
    max_duration: Annotated[float | None, typer.Option(help="reject audio longer than this (s; default 1200)")] = None,
    retries: Annotated[int | None, typer.Option(min=0, max=10, help="retries of a 429/5xx/timeout (default 3)")] = None,
    backoff: Annotated[
        float | None, typer.Option(min=0, help="seconds before the first retry, doubling (default 2)")
    ] = None,
    sleep: Annotated[
        float | None, typer.Option(min=0, help="polite pause before each request (s; unset: 1, YouTube's own pace)")
    ] = None,
    host_pause: Annotated[
        float | None, typer.Option(min=0, help="seconds a host that rate-limits is left alone (default 900)")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="seconds to wait on a silent connection (default 20)")
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="transcription processes (0: one per core)")] = 0,
    style: Annotated[str | None, typer.Option(help="style name for these playlists (default: from the title)")] = None,
    downloads: Annotated[int | None, typer.Option(min=1, max=16, help="entries downloaded at once (default 3)")] = None,
    cookies: Annotated[
        Path | None, typer.Option(help="cookies.txt (Netscape format, chmod 600) for sign-in and bot checks")
    ] = None,
    cookies_from_browser: Annotated[
        str | None, typer.Option(help="read cookies from a browser: firefox, chrome, ... (BROWSER[:PROFILE])")
    ] = None,
    extractor_args: Annotated[
        list[str] | None, typer.Option(help="yt-dlp --extractor-args, e.g. youtube:player_client=default,mweb")
    ] = None,
) -> None:
    """Ingest and transcribe the playlists or videos now.

    A playlist that cannot be read (site unreachable, name not resolving, timeouts past the retries)
    is one ``error:`` line on stderr and exit status 1; the others go on, and the catalogue keeps
    only what was read, so running the same command again resumes.
    """
    from pydantic import ValidationError

    from ingest.catalogue import STYLE_PATTERN
    from ingest.errors import InvalidURLError
    from ingest.youtube import IngestSettings, validate_url

    try:
        urls = [validate_url(url) for url in urls]
        settings = IngestSettings(
            **_given(
                min_duration=min_duration, max_duration=max_duration, retries=retries, backoff=backoff,
                sleep_between_requests=sleep, host_pause=host_pause, socket_timeout=timeout,
                parallel_downloads=downloads,
                cookies=str(cookies.resolve()) if cookies else None, cookies_from_browser=cookies_from_browser,
                extractor_args=extractor_args or None,
            )
        )  # fmt: skip
        if style is not None and not re.match(STYLE_PATTERN, style):
            _fail(f"--style takes lower-case letters, digits and dashes (at most 40), not {style!r}", code=2)
    except InvalidURLError as error:
        _fail(str(error), code=2)
    except ValidationError as error:  # pydantic's own text is a paragraph: the first message is the line
        _fail(str(error.errors()[0]["msg"]).removeprefix("Value error, "), code=2)
    home = configure_environment()
    from flows.service import running_api_url

    _require_space(home, _needed_mb(SUBMIT_MB))
    api = running_api_url(home)
    if api:  # a server is up (`tunesmith up`): run it on the worker, visible in the UI
        from flows.submit import submit_to_server

        _print_json(submit_to_server(api, urls=urls, style=style, settings=settings.model_dump(), workers=workers))
        return
    log_file = route_logs(home)
    with _running_flows(home, _needed_mb(SUBMIT_MB)) as ready:
        from flows.pipeline import SubmitRequest, ingest_flow

        ready()
        with live():
            result = ingest_flow(SubmitRequest(urls=urls, style=style, settings=settings), workers=workers)
    _summary(
        "Submitted",
        [("downloaded", result.ingest.downloaded), *((f"rejected: {k}", v) for k, v in result.ingest.rejected.items())]
        + ([("transcribed", result.transcribe.transcribed), ("accepted", result.transcribe.accepted),
            *((f"rejected: {k}", v) for k, v in result.transcribe.rejected.items())] if result.transcribe else []),
    )  # fmt: skip
    _print_json(result.model_dump(mode="json"))
    _log_note(log_file)
    unread = [p for p in result.ingest.playlists if p.error]
    for playlist in unread:
        typer.secho(f"error: {_one_line(playlist.error or '')}; {UNREAD_HINT}", fg=typer.colors.RED, err=True)
    from db.reasons import Reason

    for host, reasons in result.ingest.held.items():
        for reason, count in reasons.items():
            advice = Reason(reason).advice
            typer.secho(f"error: {host} left {count} entries pending ({reason}): {advice}", fg=typer.colors.RED,
                        err=True)  # fmt: skip
    if unread or result.ingest.held:
        raise typer.Exit(1)


UNREAD_HINT = "nothing from it was catalogued; run the same command again to retry"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


@app.command()
def up(
    port: Annotated[int, typer.Option(help="the Prefect server's port on 127.0.0.1")] = 4200,
    workers: Annotated[int, typer.Option(min=1, max=16, help="workers to start")] = 1,
) -> None:
    """Start a local Prefect server (UI), the work pool, the deployments and a worker; safe to repeat."""
    from flows.service import Service, ServiceError

    home = configure_environment()
    try:
        result = Service(home, port=port).up(workers=workers)
    except ServiceError as error:
        _fail(str(error))
    _print_json(result)
    typer.echo(f"Prefect UI: {result['ui']}   (stop with `tunesmith down`)", err=True)


@app.command()
def down(port: Annotated[int, typer.Option(help="the Prefect server's port")] = 4200) -> None:
    """Stop the workers, then the server (in that order); safe to repeat."""
    from flows.service import Service

    _print_json(Service(configure_environment(), port=port).down())


@app.command()
def similar(
    source_id: Annotated[int, typer.Argument(help="a source id (see `tunesmith sources`)")],
    n: Annotated[int, typer.Option("--n", min=1, max=100, help="how many")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The catalogue's pieces most like SOURCE_ID by their audio features (cosine similarity)."""
    from db.catalogue import open_catalogue
    from transcribe.similarity import SimilarityError, most_similar

    cat = open_catalogue()
    with cat.sessions() as session:
        try:
            neighbours = most_similar(session, source_id, n)
        except SimilarityError as error:
            _fail(str(error))
    if as_json:
        _print_json([vars(neighbour) for neighbour in neighbours])
        return
    for neighbour in neighbours:
        typer.echo(f"{neighbour.similarity:+.3f} {neighbour.source_id:>5} {neighbour.state:<9} {neighbour.title or ''}")


@app.command()
def train(
    force: Annotated[bool, typer.Option(help="train even if no piece changed")] = False,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="at most this many epochs, early stopping (default 12)")
    ] = None,
    licence: Annotated[
        str | None, typer.Option(help="train only on sources whose licence contains this, e.g. 'Creative Commons'")
    ] = None,
) -> None:
    """Retrain the LSTM from the accepted pieces (does nothing, and says so, if none changed)."""
    home = configure_environment()
    log_file = route_logs(home)
    with _running_flows(home, _needed_mb(TRAIN_MB)) as ready:
        from flows.pipeline import retrain_flow
        from train.training import TrainingError

        ready()
        try:
            with live():
                result = retrain_flow(force=force, licence=licence, **_given(epochs=epochs))
        except TrainingError as error:
            _fail(str(error))
    typer.echo(result["message"], err=True)
    _print_json(result)
    _log_note(log_file)


@app.command()
def generate(
    count: Annotated[int | None, typer.Option(min=1, max=64, help="tracks (default 4)")] = None,
    minutes: Annotated[float | None, typer.Option(min=0.1, max=30, help="each track's length (default 0.75)")] = None,
    temperature: Annotated[float | None, typer.Option(min=0.1, max=3.0, help="sampling heat (default 1)")] = None,
    seed: int | None = None,
    style: Annotated[str | None, typer.Option(help="in the style of one playlist (see `status`)")] = None,
    prompt: Annotated[Path | None, typer.Option(help="a MIDI file the tracks continue", exists=True)] = None,
    loop: Annotated[bool, typer.Option(help="tracks that repeat without a seam (no ending)")] = False,
    stems: Annotated[bool, typer.Option(help="each part also alone, under stems/ (they sum to the mix)")] = True,
    wav: Annotated[bool, typer.Option(help="every track and stem also as a WAV")] = False,
    tempo: Annotated[float | None, typer.Option(help="beats a minute, exactly (default: the style's pieces')")] = None,
    key: Annotated[str | None, typer.Option(help='e.g. "D minor", "Bb major" (default: the style\'s pieces\')')] = None,
    meter: Annotated[int | None, typer.Option(help="beats a bar: 3 or 4 (default: the style's pieces')")] = None,
    energy: Annotated[str, typer.Option(help="low, medium or high: notes, dynamics and drums")] = "medium",
    instruments: Annotated[str | None, typer.Option(help="a palette, e.g. strings (default: from the style)")] = None,
) -> None:
    """Make a batch of tracks now with the current model, each --minutes long to the bar, with its stems."""
    home = configure_environment()
    log_file = route_logs(home)
    from generate.batch import GenerateSettings, GenerationError
    from generate.controls import Controls

    try:
        Controls(tempo=tempo, key=key, meter=meter, energy=energy, instruments=instruments)  # type: ignore[arg-type]
    except ValueError as error:
        _fail(str(error), code=2)
    asked = GenerateSettings(**_given(count=count, minutes=minutes))
    minute_mb = TRACK_MINUTE_MB * (5 if stems else 1) * (2 if wav else 1)  # a mix, and up to four stems
    with _running_flows(home, _needed_mb(10 + asked.count * asked.minutes * minute_mb)) as ready:
        from flows.pipeline import batch_flow

        ready()
        try:
            with live():
                result = batch_flow(
                    **_given(count=count, minutes=minutes, temperature=temperature),
                    seed=seed,
                    style=style,
                    prompt_midi=str(prompt.resolve()) if prompt else None,
                    loop=loop,
                    stems=stems,
                    wav=wav,
                    tempo=tempo,
                    key=key,
                    meter=meter,
                    energy=energy,  # type: ignore[arg-type]
                    instruments=instruments,
                )
        except GenerationError as error:
            _fail(str(error))
    notes: list[str] = result["notes"] if isinstance(result, dict) else []
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    _print_json(result)
    _log_note(log_file)


@app.command()
def pull(
    to: Annotated[Path, typer.Option("--to", help="folder to copy the batch into")],
    batch: Annotated[str, typer.Option(help="a batch id, or 'latest'")] = "latest",
) -> None:
    """Copy a batch's files (MP3s, MIDIs, pictures, manifest) out of tunesmith's home."""
    from db.catalogue import open_catalogue
    from db.models import Batch
    from db.queries import latest_batch

    cat = open_catalogue()
    with cat.sessions() as session:
        if batch == "latest":
            row = latest_batch(session)
        elif batch.isdigit():
            row = session.get(Batch, int(batch))
        else:
            row = None
            _fail(f"--batch takes a number or 'latest', not {batch!r}", code=2)
        if row is None:
            _fail(f"no batch {batch!r} in the catalogue: `tunesmith generate` makes one, `tunesmith status` lists them")
        source = Path(row.folder)  # type: ignore[union-attr]
    if not source.is_dir():
        _fail(f"batch folder {source} is missing (moved or deleted): `tunesmith generate` makes a new batch")
    target = to / source.name
    shutil.copytree(source, target, dirs_exist_ok=True)
    typer.echo(str(target))


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Counts per stage and per rejection reason, the current model, the last batch."""
    from db.catalogue import open_catalogue
    from db.queries import status as status_query

    cat = open_catalogue()
    with cat.sessions() as session:
        data = status_query(session)
    if as_json:
        _print_json(data)
        return
    _status_tables(cat.home.root, data)


def _status_tables(home: Path, data: dict[str, Any]) -> None:
    """``status`` for a person: sources by state, rejections by reason, the model against its baselines, the batch."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"home: {home}  ({data['playlists']} playlists; styles: {', '.join(data['styles']) or 'none'})")
    states = Table("state", "sources", title="Sources")
    for state, count in sorted(data["states"].items()):
        states.add_row(state, str(count))
    states.add_row("all", str(data["sources"]), style="bold")
    console.print(states)
    if data["rejections"]:
        from db.reasons import Reason

        reasons = Table("reason", "sources", "what to do", title="Rejections")
        for reason, count in sorted(data["rejections"].items(), key=lambda item: -item[1]):
            known = Reason.read(reason)
            reasons.add_row(reason, str(count), known.advice if known else "")
        console.print(reasons)
    model = data["model"]
    if model is None:
        console.print("model: none yet (`tunesmith train`)")
    else:
        metrics = model["metrics"] or {}
        scores = Table("model", "validation NLL per note", "accuracy", title=f"Current model {model['id']}")
        scores.add_row(f"this model ({model['pieces']} pieces)", _nats(metrics), _share(metrics))
        for name, baseline in (metrics.get("baselines") or {}).items():
            scores.add_row(f"{name} baseline", _nats(baseline), _share(baseline))
        console.print(scores)
    last = data["last_batch"]
    if last is None:
        console.print("last batch: none yet (`tunesmith generate`)")
    else:
        console.print(f"last batch: {last['id']}, {len(last['tracks'])} tracks in {last['folder']} (index.html)")


def _nats(metrics: dict[str, Any]) -> str:
    value = metrics.get("nll_per_note")
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def _share(metrics: dict[str, Any]) -> str:
    value = metrics.get("val_accuracy")
    return f"{value:.2f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


@app.command()
def sources(
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    state: Annotated[
        str | None, typer.Option(help="only sources in this state (pending, accepted, rejected, ...)")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="at most this many (default: 100 as text, all as --json)")
    ] = None,
    offset: Annotated[int, typer.Option(min=0, help="skip this many first (with --limit: the next page)")] = 0,
) -> None:
    """The catalogued sources by id, with state, reason, audio and MIDI."""
    from db.catalogue import open_catalogue
    from db.models import SourceState
    from db.queries import source_count
    from db.queries import sources as sources_query

    try:
        wanted = SourceState(state) if state else None
    except ValueError:
        names = ", ".join(s.value for s in SourceState)
        raise typer.BadParameter(f"{state!r} is not a state; one of: {names}", param_hint="--state") from None
    shown = limit if limit is not None or as_json else 100
    cat = open_catalogue()
    with cat.sessions() as session:
        rows = sources_query(session, state=wanted, limit=shown, offset=offset)
        total = source_count(session, wanted) if not as_json else 0
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        detail = f": {row['reason_detail']}" if row["reason_detail"] else ""
        why = f" ({row['reason']}{detail})" if row["reason"] else ""
        typer.echo(f"{row['id']:>5} {row['state']:<11} {row['title'] or row['url']}{why}")
    if offset + len(rows) < total:
        typer.echo(f"({offset + 1}-{offset + len(rows)} of {total}; --offset {offset + len(rows)} for the next page)")


@app.command()
def export(
    folder: Annotated[Path, typer.Argument(help="where the dataset goes (an earlier export there is updated)")],
    licence: Annotated[str | None, typer.Option(help="only sources whose licence says this")] = None,
    style: Annotated[str | None, typer.Option(help="only pieces of this style")] = None,
    min_duration: Annotated[float | None, typer.Option(min=0, help="only pieces at least this long (s)")] = None,
    since: Annotated[str | None, typer.Option(help="only pieces catalogued on or after this date (YYYY-MM-DD)")] = None,
    rejected: Annotated[bool, typer.Option(help="add the rejected pieces that have MIDI, with their reason")] = False,
) -> None:
    """Export the catalogue as a dataset: MIDI files, metadata.parquet and .jsonl, splits and a dataset card."""
    from datetime import datetime

    from db.catalogue import open_catalogue
    from db.export import ExportFilter, export_dataset

    try:
        after = datetime.fromisoformat(since) if since else None
    except ValueError:
        _fail(f"--since takes a date as YYYY-MM-DD, not {since!r}", code=2)
    only = ExportFilter(licence=licence, style=style, min_duration=min_duration, since=after, rejected=rejected)
    summary = export_dataset(open_catalogue(configure_environment()).sessions, folder.resolve(), only)
    typer.echo(f"{summary.pieces} pieces ({summary.hours:.2f} h) in {summary.folder}; {len(summary.written)} files "
               "written (the rest unchanged); the card: README.md", err=True)  # fmt: skip
    if summary.missing:
        more = f" and {len(summary.missing) - 1} more" if len(summary.missing) > 1 else ""
        gone = f"{summary.missing[0]}{more}"
        line = f"warning: {len(summary.missing)} catalogued pieces left out, their MIDI file is gone: {gone}"
        typer.secho(f"{line} (restore them from a backup)", fg=typer.colors.YELLOW, err=True)
    _print_json(summary.to_dict())


@app.command()
def doctor() -> None:
    """Check what a real run needs (yt-dlp and its age, a JavaScript runtime, ffmpeg, FluidSynth and its SoundFont,
    free disk, the catalogue, the Prefect server, the model): one line each; exit 1 when any fails."""
    from flows.doctor import run_checks

    checks = run_checks(configure_environment())
    for check in checks:
        mark = typer.style("ok  ", fg=typer.colors.GREEN) if check.ok else typer.style("FAIL", fg=typer.colors.RED)
        typer.echo(f"{mark} {check.name}: {check.detail}")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@app.command()
def demo(
    pieces: Annotated[int, typer.Option(min=2, max=12, help="corpus pieces in the sample playlist")] = 8,
    tracks: Annotated[int, typer.Option(min=1, max=16)] = 4,
    minutes: Annotated[float, typer.Option(min=0.5)] = 0.75,
) -> None:
    """Run the whole pipeline offline on the built-in sample (Bach chorales served as a feed on 127.0.0.1)."""
    home = configure_environment()
    log_file = route_logs(home)
    with _running_flows(home, _needed_mb(DEMO_MB)) as ready:
        from flows.demo import run_demo

        ready()
        with live():
            folder = run_demo(home, pieces=pieces, tracks=tracks, minutes=minutes)
    from db.catalogue import open_catalogue
    from db.export import export_dataset

    dataset = export_dataset(open_catalogue(home).sessions, home.root / "dataset")
    _log_note(log_file)
    typer.echo(f"\nYour batch is ready: {folder} (open index.html in it; each track's stems are in stems/)")
    typer.echo(f"The catalogue as a dataset: {dataset.folder} ({dataset.pieces} pieces; its card: README.md)")


def main() -> None:
    """The console script: the commands, and a catalogue that cannot be opened as one line (whichever command
    met it), not a traceback."""
    from db.catalogue import CatalogueError

    try:
        app()
    except CatalogueError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(1)
