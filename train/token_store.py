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
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        path = self.folder / f"{source_id}-{transcription_key(midi_path, grid)}.tokens.gz"
        try:
            with gzip.open(path, "rt", encoding="utf-8") as stored:
                text = stored.read()
        except (OSError, EOFError):
            text = None
        if text is not None:
            if text.startswith(_SKIPPED):
                raise TokenizeError(text.removeprefix(_SKIPPED))
            return [sys.intern(token) for token in text.split()]  # one object per distinct token, not per use
        self.computed += 1
        try:
            tokens = compute()
        except TokenizeError as error:
            self._write(path, source_id, f"{_SKIPPED}{error}")
            raise
        self._write(path, source_id, " ".join(tokens))
        return [sys.intern(token) for token in tokens]

    def _write(self, path: Path, source_id: int, text: str) -> None:
        for stale in self.folder.glob(f"{source_id}-*.tokens.gz"):  # an earlier transcription's
            stale.unlink(missing_ok=True)
        with atomic_path(path) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as out:
            out.write(text)
