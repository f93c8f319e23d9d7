"""FluidSynth with the General MIDI SoundFont: MIDI in, WAV out."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from db.environment import environment
from db.files import atomic_path


class SynthError(RuntimeError):
    """FluidSynth is missing or failed on a file."""


def soundfont() -> Path:
    path = environment().soundfont
    if not path.is_file():
        raise SynthError(
            f"SoundFont not found at {path}: install Debian's fluid-soundfont-gm or set TUNESMITH_SOUNDFONT"
        )
    return path


def render_wav(midi_path: Path, wav_path: Path, *, sample_rate: int = 44100, gain: float = 0.5) -> Path:
    """Render ``midi_path`` to a 16-bit stereo WAV with FluidSynth; the file appears only when complete."""
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise SynthError("fluidsynth not found: install Debian's fluidsynth (make install does)")
    with atomic_path(wav_path, suffix=".wav") as tmp:
        command = [
            binary, "-ni", "-q", "-g", str(gain), "-r", str(sample_rate), "-T", "wav", "-O", "s16",
            "-F", str(tmp), str(soundfont()), str(midi_path),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0 or not tmp.is_file() or tmp.stat().st_size <= 44:
            raise SynthError(f"fluidsynth failed on {midi_path}: {result.stderr.strip()[-500:]}")
    return wav_path
