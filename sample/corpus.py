"""Render music21 corpus pieces (and a deliberately degenerate one) to audio files."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from music21 import corpus, instrument, note, stream, tempo

from generate.audio import encode_mp3, normalise, trim_silence
from generate.synth import render_wav
from train.dataset import Piece

log = logging.getLogger(__name__)

# What the sample stands for: a video site's audio stream (YouTube's are about 130-160 kb/s), not a finished
# track; the full-disk test's 6 MB disk is sized to these files.
SOURCE_BITRATE = "192k"

# Four-part Bach chorales, each 40-70 quarter notes long: at 66-96 bpm, 30-60 s of piano.
DEFAULT_PIECES = (
    "bach/bwv10.7",
    "bach/bwv101.7",
    "bach/bwv102.7",
    "bach/bwv103.6",
    "bach/bwv104.6",
    "bach/bwv108.6",
    "bach/bwv11.6",
    "bach/bwv110.7",
    "bach/bwv113.8",
    "bach/bwv114.7",
    "bach/bwv117.4",
    "bach/bwv12.7",
)
TEMPOS = (66, 72, 80, 88, 96, 76, 84, 92)


@dataclass(frozen=True)
class RenderedPiece:
    name: str
    title: str
    audio_path: Path
    midi_path: Path
    tempo: float
    duration: float


def _with_tempo(score: stream.Score, bpm: float) -> stream.Score:
    for mark in list(score.recurse().getElementsByClass(tempo.MetronomeMark)):
        mark.activeSite.remove(mark)
    for part in score.parts:
        part.insert(0, tempo.MetronomeMark(number=bpm))
        part.insert(0, instrument.Piano())
    return score


def corpus_score(name: str) -> stream.Score:
    """A corpus piece by name; ``path#n`` is the n-th score of a file that holds many (O'Neill's tunes)."""
    path, _, number = name.partition("#")
    parsed = corpus.parse(path)
    return parsed.scores[int(number)] if number else parsed


def hammered_note(seconds: float = 45.0, bpm: float = 120.0, pitch: str = "C4") -> stream.Score:
    """One note struck every eighth for ``seconds``: what the repetition filter must reject."""
    part = stream.Part([tempo.MetronomeMark(number=bpm), instrument.Piano()])
    for _ in range(int(seconds * bpm / 60 * 2)):
        part.append(note.Note(pitch, quarterLength=0.5))
    return stream.Score([part])


def render_score(score: stream.Score, out_dir: Path, stem: str, *, fmt: str = "mp3") -> tuple[Path, Path, float]:
    """Score -> MIDI -> FluidSynth WAV -> trimmed, normalised ``fmt`` file; returns (audio, midi, seconds)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    midi_path = out_dir / f"{stem}.mid"
    score.write("midi", fp=str(midi_path))
    with tempfile.TemporaryDirectory() as tmp:
        wav = render_wav(midi_path, Path(tmp) / "render.wav")
        from pydub import AudioSegment

        audio = normalise(trim_silence(AudioSegment.from_wav(wav)))
        audio_path = out_dir / f"{stem}.{fmt}"
        if fmt == "mp3":
            tags = {"title": stem, "artist": "J. S. Bach (music21 corpus)"}
            encode_mp3(audio, audio_path, tags=tags, bitrate=SOURCE_BITRATE)
        else:
            audio.export(audio_path, format=fmt)
    return audio_path, midi_path, len(audio) / 1000.0


def render_pieces(
    out_dir: Path, names: tuple[str, ...] = DEFAULT_PIECES, *, count: int | None = None, fmt: str = "mp3"
) -> list[RenderedPiece]:
    """Render up to ``count`` corpus pieces; a piece music21 cannot read is skipped with its reason logged."""
    rendered: list[RenderedPiece] = []
    for index, name in enumerate(names):
        if count is not None and len(rendered) >= count:
            break
        bpm = float(TEMPOS[index % len(TEMPOS)])
        stem = name.replace("/", "-")
        try:
            score = _with_tempo(corpus.parse(name), bpm)
            audio_path, midi_path, seconds = render_score(score, out_dir, stem, fmt=fmt)
        except Exception as error:  # music21 raises many types for unreadable scores
            log.warning("skipping corpus piece %s: %s: %s", name, type(error).__name__, error)
            continue
        title = f"{name.split('/')[-1].upper()} (J. S. Bach, chorale)"
        rendered.append(RenderedPiece(name, title, audio_path, midi_path, bpm, seconds))
    return rendered


def chorale_names(count: int, *, skip: int = 0) -> tuple[str, ...]:
    """``count`` Bach chorales from music21's corpus (sorted by name, after the first ``skip``)."""
    paths = sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl")
    return tuple(f"bach/{p.stem}" for p in paths[skip : skip + count])


def corpus_midis(out_dir: Path, names: tuple[str, ...]) -> list[Path]:
    """Corpus scores written straight to MIDI (no audio), reusing files already there; unreadable ones skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        path = out_dir / f"{name.replace('/', '-')}.mid"
        if not path.is_file():
            try:
                corpus.parse(name).write("midi", fp=str(path))
            except Exception as error:  # music21 raises many types for unreadable scores
                log.warning("skipping corpus piece %s: %s: %s", name, type(error).__name__, error)
                continue
        written.append(path)
    return written


def corpus_pieces(names: tuple[str, ...]) -> list[Piece]:
    """Corpus scores as training pieces (tokens from the score's own beats and bars); unreadable ones skipped."""
    from train.scores import score_tokens
    from train.tokens import TokenizeError, TokenizerConfig

    pieces = []
    for i, name in enumerate(names):
        try:
            tokens, bpm = score_tokens(corpus.parse(name), TokenizerConfig())
        except (TokenizeError, ValueError) as error:
            log.warning("skipping corpus piece %s: %s", name, error)
            continue
        pieces.append(Piece(i, tokens, bpm, style="chorales"))
    return pieces
