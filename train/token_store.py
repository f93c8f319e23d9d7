"""Each transcription's tokens, computed once per tokenizer and kept under the home's ``tokens`` folder.

Reading a MIDI file and putting it on its beat grid costs far more than reading its tokens back, and
every training run reads every accepted piece. A piece's tokens are stored in
``tokens/<tokenizer>/<source id>-<transcription>.tokens.gz``: ``<tokenizer>`` is a digest of the whole
tokenizer configuration, so a new tokenizer derives its own lazily while an old model's stay where it
finds them, and ``<transcription>`` a digest of the MIDI file's bytes and its beat grid, so a
re-transcription is read afresh (and its stale tokens removed). A piece that cannot be tokenised is
stored as such, with its reason, and not tried again until it is re-transcribed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from db.files import atomic_path
from train.tokens import TokenizeError, TokenizerConfig

_SKIPPED = "#skipped "


def tokenizer_key(tokenizer: TokenizerConfig) -> str:
    """A digest of every setting of the tokenizer: equal settings, equal tokens."""
    return hashlib.sha1(json.dumps(tokenizer.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def transcription_key(midi_path: Path, grid: dict[str, Any] | None) -> str:
    """A digest of what the tokens are computed from: the MIDI file and the beat grid it is read on.

    Raises:
        OSError: the MIDI file cannot be read.
    """
    digest = hashlib.sha1(midi_path.read_bytes())
    digest.update(json.dumps(grid, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _read(path: Path) -> list[str]:
    """A stored file's tokens, interned (one object per distinct token, not per use).

    Raises:
        TokenizeError: the file records that its piece cannot be tokenised.
        OSError, EOFError: the file is missing or damaged.
    """
    with gzip.open(path, "rt", encoding="utf-8") as stored:
        text = stored.read()
    if text.startswith(_SKIPPED):
        raise TokenizeError(text.removeprefix(_SKIPPED))
    return [sys.intern(token) for token in text.split()]


@dataclass(frozen=True)
class StoredTokens(Sequence[str]):
    """A piece's tokens as a sequence read from its stored file on every use, holding nothing in between:
    a training run reads every piece a few times rather than holding the whole catalogue's tokens."""

    path: Path

    def tokens(self) -> list[str]:
        """Read once (use this where the tokens are used more than once).

        Raises:
            OSError: the file went missing (the piece was re-transcribed meanwhile).
        """
        try:
            return _read(self.path)
        except (OSError, EOFError, TokenizeError) as error:
            raise OSError(
                f"stored tokens {self.path.name} changed while in use (re-transcribed meanwhile?): run again"
            ) from error

    def __iter__(self) -> Iterator[str]:
        return iter(self.tokens())

    def __len__(self) -> int:
        return len(self.tokens())

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self.tokens()[index]


class TokenStore:
    """The stored tokens of one tokenizer."""

    def __init__(self, root: Path, tokenizer: TokenizerConfig) -> None:
        self.folder = root / tokenizer_key(tokenizer)
        self.computed = 0  # pieces tokenised afresh by this store (the rest were read back)

    def tokens(
        self, source_id: int, midi_path: Path, grid: dict[str, Any] | None, compute: Callable[[], list[str]]
    ) -> list[str]:
        """The piece's tokens: read back when stored for this transcription, else ``compute()``d and stored.

        Raises:
            TokenizeError: the piece cannot be tokenised (now, or when it was first tried).
            OSError: the MIDI file cannot be read.
        """
        tokens, _ = self._resolve(source_id, midi_path, grid, compute)
        return tokens

    def stored(
        self, source_id: int, midi_path: Path, grid: dict[str, Any] | None, compute: Callable[[], list[str]]
    ) -> StoredTokens:
        """The piece's tokens as a handle on their stored file (computed and stored first where missing).

        Raises:
            TokenizeError: the piece cannot be tokenised (now, or when it was first tried).
            OSError: the MIDI file cannot be read.
        """
        _, path = self._resolve(source_id, midi_path, grid, compute)
        return StoredTokens(path)

    def _resolve(
        self, source_id: int, midi_path: Path, grid: dict[str, Any] | None, compute: Callable[[], list[str]]
    ) -> tuple[list[str], Path]:
        path = self.folder / f"{source_id}-{transcription_key(midi_path, grid)}.tokens.gz"
        try:
            return _read(path), path
        except (OSError, EOFError):  # not stored yet, or damaged (cut off mid-write, say)
            pass
        self.computed += 1
        try:
            tokens = compute()
        except TokenizeError as error:
            self._write(path, source_id, f"{_SKIPPED}{error}")
            raise
        self._write(path, source_id, " ".join(tokens))
        return [sys.intern(token) for token in tokens], path

    def _write(self, path: Path, source_id: int, text: str) -> None:
        for stale in self.folder.glob(f"{source_id}-*.tokens.gz"):  # an earlier transcription's
            stale.unlink(missing_ok=True)
        with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as out:
            out.write(text)
