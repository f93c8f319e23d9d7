"""basic-pitch transcription with the ONNX model that ships inside the package.

The ONNX model gives the same notes as the TensorFlow SavedModel without its ~20 s graph
trace on the first call. Audio is decoded once per file and shared by inference, tempo
estimation and the silence measure.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transcribe.notes import NoteEvent

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050  # basic-pitch's AUDIO_SAMPLE_RATE
# The ONNX graph's output names for each head (as basic-pitch's own Model.predict maps them).
_OUTPUTS = {
    "note": "StatefulPartitionedCall:1",
    "onset": "StatefulPartitionedCall:2",
    "contour": "StatefulPartitionedCall:0",
}


class TranscriptionError(Exception):
    """Expected failure on one file (unreadable or empty audio); ``reason`` goes to the catalogue."""

    def __init__(self, message: str, *, reason: str = "corrupt_audio") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TranscriptionSettings:
    """basic-pitch's note-creation thresholds; stored with every transcription."""

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    minimum_note_length_ms: float = 127.7
    minimum_frequency: float | None = None
    maximum_frequency: float | None = None
    melodia_trick: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Transcript:
    notes: list[NoteEvent]
    tempo: float
    duration: float
    audio: np.ndarray  # mono, SAMPLE_RATE, for analysis


def _onnx_model_path() -> Path:
    from basic_pitch import FilenameSuffix, build_icassp_2022_model_path

    return Path(build_icassp_2022_model_path(FilenameSuffix.onnx))


class Transcriber:
    """Holds basic-pitch's ONNX model; build one per worker process and reuse it."""

    def __init__(self, settings: TranscriptionSettings | None = None) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import onnxruntime as ort

        self.settings = settings or TranscriptionSettings()
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("TUNESMITH_ONNX_THREADS", "0"))
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(_onnx_model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def _infer(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        from basic_pitch.constants import AUDIO_N_SAMPLES, FFT_HOP
        from basic_pitch.inference import unwrap_output, window_audio_file

        n_overlapping_frames = 30
        overlap_len = n_overlapping_frames * FFT_HOP
        hop_size = AUDIO_N_SAMPLES - overlap_len
        padded = np.concatenate([np.zeros(overlap_len // 2, dtype=np.float32), audio])
        windows = [window for window, _ in window_audio_file(padded, hop_size)]
        raw: dict[str, list[np.ndarray]] = {key: [] for key in _OUTPUTS}
        names = list(_OUTPUTS.values())
        for start in range(0, len(windows), 16):  # bounded batches: long files in bounded memory
            batch = np.stack(windows[start : start + 16]).astype(np.float32)
            for key, value in zip(_OUTPUTS, self._session.run(names, {self._input: batch}), strict=True):
                raw[key].append(value)
        return {
            key: unwrap_output(np.concatenate(chunks), len(audio), n_overlapping_frames) for key, chunks in raw.items()
        }

    def transcribe(self, audio_path: Path) -> Transcript:
        """Decode ``audio_path``, estimate its tempo and transcribe it to notes.

        Raises:
            TranscriptionError: the file cannot be decoded or holds no audio.
        """
        audio = load_audio(audio_path)
        tempo = estimate_tempo(audio)
        from basic_pitch.constants import AUDIO_SAMPLE_RATE, FFT_HOP
        from basic_pitch.note_creation import model_output_to_notes

        output = self._infer(audio)
        s = self.settings
        min_note_len = int(np.round(s.minimum_note_length_ms / 1000 * (AUDIO_SAMPLE_RATE / FFT_HOP)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, events = model_output_to_notes(
                output,
                onset_thresh=s.onset_threshold,
                frame_thresh=s.frame_threshold,
                min_note_len=min_note_len,
                min_freq=s.minimum_frequency,
                max_freq=s.maximum_frequency,
                melodia_trick=s.melodia_trick,
                midi_tempo=tempo,
            )
        notes = sorted(
            NoteEvent(float(start), float(end), int(pitch), int(np.clip(round(127 * amp), 1, 127)))
            for start, end, pitch, amp, _bends in events
        )
        return Transcript(notes=notes, tempo=tempo, duration=len(audio) / SAMPLE_RATE, audio=audio)


def load_audio(path: Path) -> np.ndarray:
    """Mono float32 at basic-pitch's rate; any format ffmpeg or libsndfile reads."""
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            audio, _ = librosa.load(str(path), sr=SAMPLE_RATE, mono=True)
    except Exception as error:  # soundfile and audioread raise many unrelated types
        raise TranscriptionError(f"cannot decode {path.name}: {type(error).__name__}: {error}") from error
    if audio.size < SAMPLE_RATE // 2:
        raise TranscriptionError(f"{path.name} holds less than half a second of audio", reason="too_short")
    return audio.astype(np.float32)


def estimate_tempo(audio: np.ndarray, *, default: float = 120.0) -> float:
    """Beats per minute from librosa's beat tracker, folded into 60-180."""
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tempo = float(np.atleast_1d(librosa.beat.beat_track(y=audio, sr=SAMPLE_RATE)[0])[0])
    if not np.isfinite(tempo) or tempo <= 0:
        return default
    while tempo < 60:
        tempo *= 2
    while tempo > 180:
        tempo /= 2
    return round(tempo, 2)


def write_midi(notes: list[NoteEvent], tempo: float, midi_path: Path) -> Path:
    """A one-track piano MIDI at ``tempo`` (so its beats are the piece's beats); written atomically."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    piano = pretty_midi.Instrument(program=0, name="transcription")
    piano.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in notes]
    midi.instruments.append(piano)
    midi_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = midi_path.with_name(f".{midi_path.name}.tmp")
    try:
        midi.write(str(tmp))
        tmp.replace(midi_path)
    finally:
        tmp.unlink(missing_ok=True)
    return midi_path
