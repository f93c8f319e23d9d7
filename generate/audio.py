"""Audio finishing with pydub: trim trailing silence, normalise loudness, encode MP3 with ID3 tags."""

from __future__ import annotations

from pathlib import Path

from pydub import AudioSegment
from pydub.silence import detect_leading_silence

from db.files import atomic_path

MP3_RATE = 44100  # at 22,050 Hz MP3 tops out at 160 kb/s


def trim_silence(audio: AudioSegment, *, threshold_dbfs: float = -60.0, keep_ms: int = 1500) -> AudioSegment:
    """Cut leading silence and all but ``keep_ms`` of trailing silence (reverb tails stay)."""
    start = detect_leading_silence(audio, silence_threshold=threshold_dbfs)
    end = len(audio) - detect_leading_silence(audio.reverse(), silence_threshold=threshold_dbfs)
    return audio[start : min(len(audio), end + keep_ms)]


def normalise(audio: AudioSegment, *, target_dbfs: float = -16.0, peak_dbfs: float = -1.0) -> AudioSegment:
    """Bring the average loudness to ``target_dbfs`` without letting a peak pass ``peak_dbfs``."""
    if audio.dBFS == float("-inf"):
        return audio
    gain = min(target_dbfs - audio.dBFS, peak_dbfs - audio.max_dBFS)
    return audio.apply_gain(gain)


def encode_mp3(
    audio: AudioSegment, mp3_path: Path, *, tags: dict[str, str] | None = None, bitrate: str = "192k"
) -> Path:
    """Write ``audio`` as a 44.1 kHz MP3 with ID3v2 tags; the file appears only when complete."""
    with atomic_path(mp3_path, suffix=".mp3") as tmp:
        audio.set_frame_rate(MP3_RATE).export(tmp, format="mp3", bitrate=bitrate, tags=tags or {}, id3v2_version="3")
    return mp3_path


def wav_to_mp3(wav_path: Path, mp3_path: Path, *, tags: dict[str, str] | None = None, bitrate: str = "192k") -> float:
    """Trim, normalise and encode a rendered WAV; returns the MP3's duration in seconds."""
    audio = normalise(trim_silence(AudioSegment.from_wav(wav_path)))
    encode_mp3(audio, mp3_path, tags=tags, bitrate=bitrate)
    return len(audio) / 1000.0
