"""Where tunesmith keeps its state: one folder, ``$TUNESMITH_HOME``, and one catalogue URL."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from db.environment import environment

MB = 1_000_000


@dataclass(frozen=True)
class Home:
    """The state folder and the catalogue URL.

    Every stage writes its files below ``root`` (audio, MIDI, models, batches); the
    catalogue is a SQLite file there unless ``database_url`` names another database.
    """

    root: Path
    database_url: str

    @classmethod
    def from_env(cls) -> Home:
        """Read ``TUNESMITH_HOME`` (default ``./tunesmith-home``) and ``TUNESMITH_DATABASE_URL``."""
        env = environment()
        root = env.home.expanduser().resolve()
        url = env.database_url or f"sqlite:///{root / 'catalogue.sqlite'}"
        return cls(root=root, database_url=url)

    @classmethod
    def at(cls, root: Path) -> Home:
        """A home at ``root`` with its own SQLite catalogue (ignores the environment)."""
        root = root.expanduser().resolve()
        return cls(root=root, database_url=f"sqlite:///{root / 'catalogue.sqlite'}")

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    @property
    def midi_dir(self) -> Path:
        return self.root / "midi"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def tokens_dir(self) -> Path:
        """Each transcription's tokens, per tokenizer (``train.token_store``): derived, safe to delete."""
        return self.root / "tokens"

    @property
    def batches_dir(self) -> Path:
        return self.root / "batches"

    @property
    def prefect_dir(self) -> Path:
        return self.root / "prefect"

    def free_mb(self) -> tuple[int, Path]:
        """The least free space (MB) among the folders tunesmith writes to, and that folder: any of them can be a
        link to another disk. A folder not made yet counts as the nearest one above it that exists."""
        least: tuple[int, Path] | None = None
        for folder in (self.root, self.audio_dir, self.midi_dir, self.models_dir, self.tokens_dir, self.batches_dir):
            there = folder
            while not there.exists() and there != there.parent:
                there = there.parent
            free = shutil.disk_usage(there).free // MB
            if least is None or free < least[0]:
                least = (free, folder)
        assert least is not None
        return least

    def ensure(self) -> Home:
        """Create the folders (idempotent) and return self."""
        for folder in (self.root, self.audio_dir, self.midi_dir, self.models_dir, self.batches_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self
