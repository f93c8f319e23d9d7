"""``tunesmith doctor``: what a real run needs, checked one by one, each a line saying what is wrong and what to do."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from db.home import Home

YT_DLP_MAX_AGE_DAYS = 60  # YouTube breaks yt-dlp's extractors every few weeks; fixes ship within days
FREE_DISK_MB = 1024  # a playlist of an hour's audio, its MIDI, a model and a few batches


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _tool(name: str) -> str | None:
    """A program on PATH or in this environment's own bin folder (where pip puts deno)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def yt_dlp_check(today: dt.date | None = None) -> Check:
    import yt_dlp.version

    version = yt_dlp.version.__version__
    try:
        released = dt.date(*(int(p) for p in version.split(".")[:3]))
    except (TypeError, ValueError):
        return Check("yt-dlp", True, f"{version} (a build without a release date)")
    age = ((today or dt.date.today()) - released).days
    if age > YT_DLP_MAX_AGE_DAYS:
        return Check("yt-dlp", False, f"{version} is {age} days old and YouTube changes every few weeks: "
                                      f"{Path(sys.executable).parent / 'pip'} install -U yt-dlp")  # fmt: skip
    return Check("yt-dlp", True, f"{version} ({age} days old)")


def js_runtime_check() -> Check:
    found = next((name for name in ("deno", "node", "bun") if _tool(name)), None)
    if found is None:
        return Check("JavaScript runtime", False, "none found: YouTube's challenges need deno (pip install deno)")
    return Check("JavaScript runtime", True, f"{found} at {_tool(found)}")


def program_check(name: str, why: str, package: str) -> Check:
    path = _tool(name)
    if path is None:
        return Check(name, False, f"not found ({why}): sudo apt-get install --no-install-recommends {package}")
    return Check(name, True, path)


def soundfont_check() -> Check:
    from generate.synth import SynthError, soundfont

    try:
        return Check("SoundFont", True, str(soundfont()))
    except SynthError as error:
        return Check("SoundFont", False, str(error))


def disk_check(home: Home) -> Check:
    root = home.root if home.root.exists() else next(p for p in home.root.parents if p.exists())
    free = shutil.disk_usage(root).free // 2**20
    if free < FREE_DISK_MB:
        return Check("free disk", False, f"{free} MB free under {home.root} (want {FREE_DISK_MB} MB): free some")
    return Check("free disk", True, f"{free} MB free under {home.root}")


def catalogue_check(home: Home) -> Check:
    from db.migrate import at_head
    from db.session import make_engine

    if home.database_url.startswith("sqlite") and not (home.root / "catalogue.sqlite").exists():
        return Check("catalogue", True, "none yet: the first command creates it")
    try:
        engine = make_engine(home.database_url)
        try:
            current = at_head(engine)
        finally:
            engine.dispose()
    except Exception as error:  # any driver's error: the database cannot be read
        return Check("catalogue", False, f"cannot open it: {type(error).__name__}: {str(error).splitlines()[0]}")
    if not current:
        return Check("catalogue", True, "older schema: the next command migrates it")
    return Check("catalogue", True, "at the current schema")


def server_check(home: Home) -> Check:
    from flows.service import running_api_url

    recorded = home.root / "run" / "api-url"
    if not recorded.is_file():
        return Check("Prefect server", True, "not up (commands start a temporary one; `tunesmith up` for the UI)")
    url = running_api_url(home)
    if url is None:
        return Check("Prefect server", False, f"`tunesmith up` recorded {recorded.read_text().strip()} but it does "
                                              "not answer: run `tunesmith up` again")  # fmt: skip
    return Check("Prefect server", True, f"up at {url}")


def model_check(home: Home) -> Check:
    from db.catalogue import open_catalogue
    from db.queries import current_model
    from train.model import ModelFormatError, SavedModel

    if home.database_url.startswith("sqlite") and not (home.root / "catalogue.sqlite").exists():
        return Check("model", True, "none yet (`tunesmith train`)")
    try:
        with open_catalogue(home).sessions() as session:
            version = current_model(session)
            path = Path(version.path) if version else None
    except Exception:  # any driver's error: the catalogue line says which
        return Check("model", False, "the catalogue cannot be read, so neither can which model is current")
    if path is None:
        return Check("model", True, "none yet (`tunesmith train`)")
    try:
        SavedModel.load(path)
    except ModelFormatError as error:
        return Check("model", False, f"{error}: retrain with `tunesmith train --force`")
    return Check("model", True, str(path))


def run_checks(home: Home) -> list[Check]:
    checks: list[Callable[[], Check]] = [
        yt_dlp_check,
        js_runtime_check,
        lambda: program_check("ffmpeg", "decodes downloads and encodes MP3s", "ffmpeg"),
        lambda: program_check("fluidsynth", "renders tracks", "fluidsynth"),
        soundfont_check,
        lambda: disk_check(home),
        lambda: catalogue_check(home),
        lambda: server_check(home),
        lambda: model_check(home),
    ]
    return [check() for check in checks]


__all__ = ["Check", "run_checks", "yt_dlp_check"]
