"""Audio finishing with pydub: cut to the bar, fade or loop, normalise loudness, encode MP3 with ID3 tags.

LAME writes the encoder's delay and padding into the MP3's gapless header and ffmpeg's decoder
honours it, so a decoded track has exactly the samples that were encoded: a loop cut sample-exactly
repeats without a gap (``seam`` checks that on the decoded audio).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydub import AudioSegment
from pydub.silence import detect_leading_silence

from db.files import atomic_path

MP3_RATE = 44100  # at 22,050 Hz MP3 tops out at 160 kb/s
BITRATE = "320k"  # MP3's highest: at 192k a decoded mix lies only 20-25 dB from its own WAV, and its summed
# stems no nearer (worst palette 20.5 dB at 192k, 27.8 dB at 320k: bench/stems.py)


def trim_silence(audio: AudioSegment, *, threshold_dbfs: float = -60.0, keep_ms: int = 1500) -> AudioSegment:
    """Cut leading silence and all but ``keep_ms`` of trailing silence (reverb tails stay)."""
    start = detect_leading_silence(audio, silence_threshold=threshold_dbfs)
    end = len(audio) - detect_leading_silence(audio.reverse(), silence_threshold=threshold_dbfs)
    return audio[start : min(len(audio), end + keep_ms)]


LOUDNESS_DBFS = -16.0  # a track's average loudness, at medium energy (generate.controls)


def loudness_gain(audio: AudioSegment, *, target_dbfs: float = LOUDNESS_DBFS, peak_dbfs: float = -1.0) -> float:
    """The gain in dB that brings the average loudness to ``target_dbfs`` without a peak passing ``peak_dbfs``."""
    if audio.dBFS == float("-inf"):
        return 0.0
    return float(min(target_dbfs - audio.dBFS, peak_dbfs - audio.max_dBFS))


def normalise(audio: AudioSegment, *, target_dbfs: float = LOUDNESS_DBFS, peak_dbfs: float = -1.0) -> AudioSegment:
    """Bring the average loudness to ``target_dbfs`` without letting a peak pass ``peak_dbfs``."""
    return audio.apply_gain(loudness_gain(audio, target_dbfs=target_dbfs, peak_dbfs=peak_dbfs))


def encode_mp3(
    audio: AudioSegment, mp3_path: Path, *, tags: dict[str, str] | None = None, bitrate: str = BITRATE
) -> Path:
    """Write ``audio`` as a 44.1 kHz MP3 with ID3v2 tags; the file appears only when complete."""
    with atomic_path(mp3_path, suffix=".mp3") as tmp:
        audio.set_frame_rate(MP3_RATE).export(tmp, format="mp3", bitrate=bitrate, tags=tags or {}, id3v2_version="3")
    return mp3_path


@dataclass(frozen=True)
class Stem:
    """One part of a track, rendered alone by the same synthesizer (``rendered``), to be written as ``mp3``
    (and ``wav``, if given) with the mix's cut, fade and gain, so the stems sum to the mix."""

    rendered: Path
    mp3: Path
    wav: Path | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)


def finish_track(
    wav_path: Path,
    mp3_path: Path,
    *,
    seconds: float,
    fade_seconds: float = 0.0,
    loop_from: float | None = None,
    tags: dict[str, str] | None = None,
    bitrate: str = BITRATE,
    wav_out: Path | None = None,
    stems: Sequence[Stem] = (),
    loudness_dbfs: float = LOUDNESS_DBFS,
) -> float:
    """Cut a rendered WAV to exactly ``seconds`` and encode it; returns the MP3's duration in seconds.

    A track starts at the render's start and ends with a fade over its last ``fade_seconds``; a loop is
    the span from ``loop_from`` (a render of the loop played twice, cut at the second pass), so the
    sound still ringing from its last bar is already under its first and the seam is inaudible.
    The mix is raised to ``loudness_dbfs`` on average, its peaks kept under -1 dBFS. ``wav_out`` also keeps the
    finished mix as a 16-bit WAV. Each of ``stems`` is cut, faded and raised
    by the very gain of the mix (the synthesizer mixes linearly, so the stems sum to the mix), one at a
    time, so memory holds two renders whatever the count.
    """
    rendered = AudioSegment.from_wav(wav_path)
    audio = _cut(rendered, seconds=seconds, fade_seconds=fade_seconds, loop_from=loop_from)
    gain = loudness_gain(audio, target_dbfs=loudness_dbfs)
    _write(audio.apply_gain(gain), mp3_path, wav_out, tags=tags, bitrate=bitrate)
    for stem in stems:
        part = AudioSegment.from_wav(stem.rendered)
        if part.channels != rendered.channels or part.frame_rate != rendered.frame_rate:
            raise ValueError(f"stem {stem.rendered} is not rendered as its mix is")
        cut = _cut(part, seconds=seconds, fade_seconds=fade_seconds, loop_from=loop_from)
        _write(cut.apply_gain(gain), stem.mp3, stem.wav, tags=stem.tags, bitrate=bitrate)
    return audio.frame_count() / rendered.frame_rate


def _write(audio: AudioSegment, mp3: Path, wav: Path | None, *, tags: dict[str, str] | None, bitrate: str) -> None:
    encode_mp3(audio, mp3, tags=tags, bitrate=bitrate)
    if wav is not None:
        with atomic_path(wav, suffix=".wav") as tmp:
            audio.export(tmp, format="wav")


def _cut(rendered: AudioSegment, *, seconds: float, fade_seconds: float, loop_from: float | None) -> AudioSegment:
    """``seconds`` of a render from its start (or from ``loop_from``, its seam closed), padded with silence where
    the render stopped early (a part that falls silent before the end), faded over its last ``fade_seconds``."""
    rate = rendered.frame_rate
    start = round((loop_from or 0.0) * rate)
    frames = round(seconds * rate)
    if rendered.frame_count() < start + frames:
        rendered = _padded(rendered, start + frames - int(rendered.frame_count()))
    audio = rendered.get_sample_slice(start, start + frames)
    if loop_from is not None:
        audio = _close_seam(audio, rendered.get_sample_slice(start - SEAM_SAMPLES, start))
    if fade_seconds > 0:
        audio = audio.fade_out(round(fade_seconds * 1000))
    return audio


def _padded(audio: AudioSegment, frames: int) -> AudioSegment:
    silence = b"\0" * (frames * audio.frame_width)
    return audio + AudioSegment(silence, frame_rate=audio.frame_rate, sample_width=audio.sample_width,
                                channels=audio.channels)  # fmt: skip


SEAM_SAMPLES = 1024  # a loop's last ~23 ms at 44.1 kHz are blended into what led into its first sample


def _close_seam(loop: AudioSegment, lead_in: AudioSegment) -> AudioSegment:
    """Blend the loop's last samples into ``lead_in``, the render's samples just before the loop's start.

    The second pass of a render is not sample-identical to the first (chorus and reverb run on), so the
    loop's last sample would not meet its first; blended, it ends on the very sample that preceded its
    first in the render, and the repeat is continuous.
    """
    count = min(int(lead_in.frame_count()), int(loop.frame_count()))
    if count <= 0:
        return loop
    channels = loop.channels
    body = np.array(loop.get_array_of_samples(), dtype=np.float64).reshape(-1, channels)
    lead = np.array(lead_in.get_array_of_samples(), dtype=np.float64).reshape(-1, channels)[-count:]
    weight = np.linspace(0.0, 1.0, count + 1)[1:, None]
    body[-count:] = body[-count:] * (1 - weight) + lead * weight
    limit = float(1 << (8 * loop.sample_width - 1))
    samples = np.clip(np.round(body), -limit, limit - 1).astype(f"<i{loop.sample_width}").ravel()
    return AudioSegment(
        samples.tobytes(), frame_rate=loop.frame_rate, sample_width=loop.sample_width, channels=channels
    )


@dataclass(frozen=True)
class Seam:
    """How a loop's end meets its start, on decoded audio (frames of 1,024 samples laid out from the seam).

    ``rms_ratio``: the RMS jump from the last frame to the first against the median frame-to-frame jump.
    ``bar_line_ratio``: the same jump against the median jump at the track's own bar lines, each measured
    the same way, between the frames just before and just after it (a seam is a bar line, and a downbeat
    after a rest jumps by design). ``click_ratio``: the sample step across the seam against the track's
    99.9th-percentile sample step (above 1: a click, or a downbeat struck on a crest).
    ``bar_line_step_ratio``: the sample step across the seam against the steepest step in the attack of
    any of the track's downbeats (``ATTACK`` samples around each bar line; above 1: steeper than all its
    downbeats, a click; a seam that opens on a struck chord steps as steeply as that chord does at its
    bar lines, where a piano's steepest steps come 11-20 ms after the line).
    ``gap_seconds``: the near-silence (``GAP_DB`` under the median frame) that ends the loop and opens it.
    """

    rms_ratio: float
    bar_line_ratio: float
    click_ratio: float
    bar_line_step_ratio: float
    gap_seconds: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in dataclasses.asdict(self).items()}


ATTACK = (256, 2048)  # samples before and after a bar line (5.8 ms, 46 ms at 44.1 kHz): its downbeat's attack
GAP_DB = -40.0  # a frame this far under the loop's median frame is silence in the mix


def seam(samples: np.ndarray, rate: int, *, bar_seconds: float, frame: int = 1024) -> Seam:
    """Measure the seam of a loop given as its decoded mono samples."""
    count = len(samples) // frame
    if count < 4:
        raise ValueError("too short to measure a seam")
    rms = np.sqrt(np.mean(samples[: count * frame].reshape(count, frame) ** 2, axis=1))
    jump = abs(_rms(samples[:frame]) - _rms(samples[-frame:]))
    median = float(np.median(np.abs(np.diff(rms))))
    lines = [round(k * bar_seconds * rate) for k in range(1, int(len(samples) / rate / bar_seconds) + 1)]
    lines = [at for at in lines if frame <= at <= len(samples) - frame]
    at_lines = [abs(_rms(samples[at : at + frame]) - _rms(samples[at - frame : at])) for at in lines]
    steps = np.abs(np.diff(samples))
    line_steps = [float(np.max(steps[at - ATTACK[0] : at + ATTACK[1]])) for at in lines if at + ATTACK[1] < len(steps)]
    seam_step = abs(float(samples[0] - samples[-1]))
    quiet = float(np.median(rms)) * 10 ** (GAP_DB / 20)
    silent = rms < quiet
    tail = int(np.argmin(silent[::-1])) if not silent.all() else count
    head = int(np.argmin(silent)) if not silent.all() else 0
    return Seam(
        rms_ratio=jump / max(median, 1e-9),
        bar_line_ratio=jump / max(float(np.median(at_lines)) if at_lines else median, 1e-9),
        click_ratio=seam_step / max(float(np.percentile(steps, 99.9)), 1e-9),
        bar_line_step_ratio=seam_step / max(max(line_steps, default=seam_step), 1e-9),
        gap_seconds=(head + tail) * frame / rate,
    )


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2)))


def decoded_mono(path: Path) -> tuple[np.ndarray, int]:
    """A sound file decoded (by ffmpeg, for an MP3) as mono float samples in -1..1, with its rate."""
    audio = AudioSegment.from_file(path)
    samples = np.array(audio.get_array_of_samples(), dtype=np.float64).reshape(-1, audio.channels).mean(axis=1)
    return samples / float(1 << (8 * audio.sample_width - 1)), audio.frame_rate
