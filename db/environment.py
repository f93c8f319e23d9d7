"""Every ``TUNESMITH_*`` variable, read and checked in one place (pydantic-settings).

Each stage asks ``environment()`` for what it needs instead of reading ``os.environ``: one list of
the variables (the README's table), one default for each, and a value that cannot be used (a
negative thread count, a word where a number goes) refused with one line naming the variable.
It is read at each call, so a test or a command that sets a variable sees it at once.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = "tunesmith-home"
DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"  # Debian's fluid-soundfont-gm


class EnvironmentVariableError(ValueError):
    """A ``TUNESMITH_*`` variable whose value cannot be used; the message is one line naming it."""


class Environment(BaseSettings):
    """What the environment sets (``TUNESMITH_`` and the field's name in capitals)."""

    model_config = SettingsConfigDict(env_prefix="TUNESMITH_", env_ignore_empty=True, frozen=True, extra="ignore")

    home: Path = Field(Path(DEFAULT_HOME), description="the folder of the catalogue, audio, MIDI, models, batches")
    database_url: str | None = Field(None, description="the catalogue's SQLAlchemy URL (default: SQLite in the home)")
    verbose: bool = Field(False, description="Prefect's log lines in the terminal too")
    retrain_cron: str = Field("0 2 * * *", description="when `up`'s nightly retraining runs")
    batch_cron: str = Field("30 3 * * *", description="when `up`'s nightly batch runs")
    export_cron: str = Field("30 4 * * *", description="when `up`'s nightly export runs")
    timezone: str = Field("UTC", description="the nightly schedules' time zone")
    dask_address: str | None = Field(None, description="a Dask scheduler to fan transcription out over")
    onnx_threads: int = Field(0, ge=0, le=256, description="threads per basic-pitch ONNX session (0: its own choice)")
    cookies: str | None = Field(None, description="a cookies.txt every submit passes to yt-dlp (a path)")
    min_free_mb: int | None = Field(None, ge=0, description="free space a command asks for (0: no check)")
    soundfont: Path = Field(Path(DEFAULT_SOUNDFONT), description="the General MIDI SoundFont FluidSynth renders with")


def environment() -> Environment:
    """The environment as it is now.

    Raises:
        EnvironmentVariableError: a variable's value cannot be used (one line: which, and what it takes).
    """
    try:
        return Environment()
    except ValidationError as error:
        first = error.errors()[0]
        name = f"TUNESMITH_{str(first['loc'][0]).upper()}" if first["loc"] else "a TUNESMITH_ variable"
        given = first.get("input")
        raise EnvironmentVariableError(f"{name}={given!r} cannot be used: {first['msg'].lower()}") from None
