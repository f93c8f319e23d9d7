"""basic-pitch transcription with the ONNX model that ships inside the package.

The ONNX model gives the same notes as the TensorFlow SavedModel without its ~20 s graph
trace on the first call. Audio is decoded once per file by ffmpeg and streamed, a chunk at a
time, through the model and the feature extractor, so a long file needs no more memory than a
short one beyond the model's small per-frame outputs.
"""

from __future__ import annotations

import bisect
import dataclasses
import importlib.util
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from db.environment import environment
from db.reasons import Reason
from transcribe.beats import BeatGrid, grid_from_audio
from transcribe.features import AudioFeatures, FeatureAccumulator
from transcribe.groove import Groove, PercussionAccumulator
from transcribe.notes import NoteEvent
from transcribe.numba_cache import load_librosa
from transcribe.third_party import import_tensorflow, silence_import_noise

SAMPLE_RATE = 22050  # basic-pitch's AUDIO_SAMPLE_RATE
ANNOTATIONS_FPS = SAMPLE_RATE // 256  # basic-pitch's ANNOTATIONS_FPS: model frames per second
MIDI_OFFSET = 21  # basic-pitch's MIDI_OFFSET: the model's 88 pitch columns start at A0
N_OVERLAPPING_FRAMES = 30  # basic-pitch's own overlap between consecutive 2-s windows
BATCH_WINDOWS = 4  # windows per model call: ~20 MB of activations each; bigger batches are no faster
MODEL_WINDOW_FRAMES = 172  # basic-pitch's ANNOT_N_FRAMES: its frame times restart every window
SEGMENT_FRAMES = MODEL_WINDOW_FRAMES * 150  # note creation ~5 minutes at a time
MARGIN_FRAMES = MODEL_WINDOW_FRAMES * 5  # with ~10 s of context either side
# The ONNX graph's output names for each head (as basic-pitch's own Model.predict maps them).
_OUTPUTS = {
    "note": "StatefulPartitionedCall:1",
    "onset": "StatefulPartitionedCall:2",
    "contour": "StatefulPartitionedCall:0",
}

silence_import_noise()  # basic-pitch and resampy announce, at import, backends tunesmith never uses


class TranscriptionError(Exception):
    """Expected failure on one file (unreadable or empty audio); ``reason`` goes to the catalogue."""

    def __init__(self, message: str, *, reason: Reason = Reason.CORRUPT_AUDIO) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class NoteSettings:
    """basic-pitch's note-creation thresholds for one kind of sound, and a shift applied to every onset.

    A sustained sound (bowed strings, organ, flute) swells: the model's onset head barely fires and its
    frames cross the threshold late, one note later than another. Its notes are read from the note head
    alone (``frames_only``, see ``frame_notes``): each starts where its swell began, not where it crossed
    a threshold.
    """

    onset_threshold: float  # frames_only: the level a pitch's frames must reach for a note to begin
    frame_threshold: float
    minimum_note_length_ms: float = 58.0
    melodia_trick: bool = False
    onset_shift_ms: float = 0.0
    frames_only: bool = False

    def __post_init__(self) -> None:
        if not (0 < self.onset_threshold < 1 and 0 < self.frame_threshold < 1):
            raise ValueError("thresholds must lie strictly between 0 and 1")
        if self.minimum_note_length_ms <= 0 or abs(self.onset_shift_ms) > 200:
            raise ValueError("minimum_note_length_ms must be positive and onset_shift_ms within 200 ms")
        if self.frames_only and self.melodia_trick:
            raise ValueError("the melodia trick is part of basic-pitch's onset decoding, not of frames_only")


class Articulation(StrEnum):
    """How a piece's notes begin and sound, as the model's posteriors show it (chooses its ``NoteSettings``)."""

    STRUCK = "struck"  # piano, guitar, plucked or percussive: the onset head marks each note
    SUSTAINED = "sustained"  # bowed or blown: notes swell in, the onset head mostly silent
    # Sustained with partials the model reads as notes an octave or a twelfth up (organ stops, brass, bright
    # pads): building notes from leftover frame energy (the melodia trick) would turn those into notes.
    SUSTAINED_HARMONICS = "sustained_harmonics"


@dataclass(frozen=True)
class Reading:
    """The articulation chosen for a piece, whether its partials were dropped (``drop_partials``), and the two
    measures both were read from; stored with the transcription."""

    articulation: Articulation
    onset_support: float  # share of note starts the onset head marks (see onset_support)
    harmonic_share: float  # share of active cells with a note an octave or twelfth below (see harmonic_share)
    partials_dropped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "articulation": str(self.articulation)}


# Chosen by ``bench/transcription.py --timbres 16 --tune`` on half of a mixed-timbre set (corpus chorales and
# fiddle tunes on piano, electric piano, organ, guitar, violin, strings, flute and a band with drums), with
# piano chorales and piano tunes each kept within 0.02 of the piano-tuned setting; reported on the other half
# in the README. Both sustained readings came out best read from the note head alone.
STRUCK = NoteSettings(onset_threshold=0.7, frame_threshold=0.3, onset_shift_ms=-30.0)
SUSTAINED = NoteSettings(onset_threshold=0.4, frame_threshold=0.3, frames_only=True)
SUSTAINED_HARMONICS = NoteSettings(onset_threshold=0.4, frame_threshold=0.3, frames_only=True)


@dataclass(frozen=True)
class TranscriptionSettings:
    """Note creation per articulation, how a piece's articulation is read, and how the work is spread.

    Stored with every transcription, beside the reading that chose its settings. A piece is sustained when
    fewer than ``sustained_below`` of its note starts carry an onset-head peak (``onset_support``), and
    sustained with harmonics when at least ``harmonics_from`` of its active cells sit an octave or a twelfth
    over another (``harmonic_share``). ``sustained_below=0`` reads every piece as struck. Whatever its
    articulation, a piece with that many harmonics has its partials dropped (``drop_partials``: an organ
    tune's onsets are sharp enough to read as struck, its partials are still read as notes).
    """

    struck: NoteSettings = STRUCK
    sustained: NoteSettings = SUSTAINED
    sustained_harmonics: NoteSettings = SUSTAINED_HARMONICS
    sustained_below: float = 0.3
    harmonics_from: float = 0.14
    minimum_frequency: float | None = None
    maximum_frequency: float | None = None
    chunk_seconds: float = 60.0  # audio decoded and analysed this much at a time: bounded memory

    def __post_init__(self) -> None:
        if not (0 <= self.sustained_below <= 1 and 0 <= self.harmonics_from <= 1):
            raise ValueError("sustained_below and harmonics_from are shares: between 0 and 1")
        if self.chunk_seconds < 5:
            raise ValueError("chunk_seconds must be at least 5")

    def read(self, posteriors: Posteriors) -> Reading:
        """How ``posteriors``' piece is articulated, by the two measures and this setting's bounds."""
        support, harmonics = onset_support(posteriors), harmonic_share(posteriors)
        if support >= self.sustained_below:
            articulation = Articulation.STRUCK
        elif harmonics >= self.harmonics_from:
            articulation = Articulation.SUSTAINED_HARMONICS
        else:
            articulation = Articulation.SUSTAINED
        return Reading(articulation, support, harmonics, partials_dropped=harmonics >= self.harmonics_from)

    def notes(self, articulation: Articulation) -> NoteSettings:
        return {
            Articulation.STRUCK: self.struck,
            Articulation.SUSTAINED: self.sustained,
            Articulation.SUSTAINED_HARMONICS: self.sustained_harmonics,
        }[articulation]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Transcript:
    notes: list[NoteEvent]
    tempo: float
    duration: float
    features: AudioFeatures
    grid: BeatGrid  # tracked beats, meter and bar phase: what the tokens are quantised against
    groove: Groove | None = None  # percussive onsets by position in the bar, on that grid
    reading: Reading | None = None  # the articulation read from the posteriors: which note settings made the notes


def _onnx_model_path() -> Path:
    """The ONNX file inside the installed basic-pitch package, found without importing it.

    Importing ``basic_pitch`` imports TensorFlow when it is installed (2 s and ~500 MB per process),
    which a transcription worker never needs.
    """
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("basic-pitch is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "saved_models" / "icassp_2022" / "nmp.onnx"


class Transcriber:
    """Holds basic-pitch's ONNX model; build one per worker process and reuse it."""

    def __init__(self, settings: TranscriptionSettings | None = None, *, threads: int = 0) -> None:
        import onnxruntime as ort

        load_librosa()  # before any worker touches librosa's kernels (see transcribe.numba_cache)

        self.settings = settings or TranscriptionSettings()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or environment().onnx_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(_onnx_model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._outputs = [_OUTPUTS["note"], _OUTPUTS["onset"]]

    def _frames(self, windows: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Run the model over windows in bounded batches; keep only the note and onset heads, unwrapped."""
        half = N_OVERLAPPING_FRAMES // 2
        notes: list[np.ndarray] = []
        onsets: list[np.ndarray] = []
        batch: list[np.ndarray] = []

        def flush() -> None:
            note, onset = self._session.run(self._outputs, {self._input: np.stack(batch)[..., None]})
            notes.append(note[:, half:-half, :].reshape(-1, note.shape[-1]))
            onsets.append(onset[:, half:-half, :].reshape(-1, onset.shape[-1]))
            batch.clear()

        for window in windows:
            batch.append(window)
            if len(batch) == BATCH_WINDOWS:
                flush()
        if batch:
            flush()
        if not notes:
            return np.zeros((0, 88), np.float32), np.zeros((0, 88), np.float32)
        return np.concatenate(notes), np.concatenate(onsets)

    def posteriors(self, audio_path: Path) -> Posteriors:
        """Stream ``audio_path`` through ffmpeg, the model and the feature extractor.

        Memory stays bounded by the chunk size plus the model's frame outputs (176 floats per
        11.6 ms frame, about 50 MB per hour), whatever the file's length.

        Raises:
            TranscriptionError: the file cannot be decoded or holds no audio.
        """
        accumulator = FeatureAccumulator(SAMPLE_RATE)
        chunks = decode_chunks(audio_path, seconds=self.settings.chunk_seconds)
        note_frames, onset_frames = self._frames(_windows(_tap(chunks, accumulator.add)))
        if accumulator.samples < SAMPLE_RATE // 2:
            raise TranscriptionError(
                f"{audio_path.name} holds less than half a second of audio", reason=Reason.EMPTY_AUDIO
            )
        n_frames = min(int(np.floor(accumulator.samples * ANNOTATIONS_FPS / SAMPLE_RATE)), len(note_frames))
        return Posteriors(
            note=note_frames[:n_frames],
            onset=onset_frames[:n_frames],
            samples=accumulator.samples,
            features=accumulator.finish(),
            onset_envelope=accumulator.onset_envelope(),
            bpm=accumulator.bpm(),
            envelope_fps=accumulator.frames_per_second,
            percussion=accumulator.percussion,
        )

    def transcribe(self, audio_path: Path) -> Transcript:
        """Notes, tempo and audio features of ``audio_path`` (see :meth:`posteriors` for the streaming).

        Raises:
            TranscriptionError: the file cannot be decoded or holds no audio.
        """
        posteriors = self.posteriors(audio_path)
        notes, reading = read_notes(posteriors, self.settings)
        grid = grid_from_audio(posteriors.onset_envelope, posteriors.envelope_fps, notes, bpm=posteriors.bpm)
        return Transcript(
            notes=notes,
            tempo=posteriors.features.tempo,
            duration=posteriors.samples / SAMPLE_RATE,
            features=posteriors.features,
            grid=grid,
            groove=posteriors.percussion.groove(grid),
            reading=reading,
        )


@dataclass(frozen=True)
class Posteriors:
    """The model's per-frame note and onset activations for one file, and its audio features."""

    note: np.ndarray  # (frames, 88)
    onset: np.ndarray  # (frames, 88)
    samples: int
    features: AudioFeatures
    onset_envelope: np.ndarray  # librosa onset strength per feature frame, for beat tracking
    envelope_fps: float
    bpm: float | None  # the envelope's tempo estimate (``transcribe.beats.envelope_bpm``), made once for both
    percussion: PercussionAccumulator  # percussive onsets per band and the high band's measures


def onset_support(posteriors: Posteriors, *, frame: float = 0.5, onset: float = 0.7, reach: int = 3) -> float:
    """The share of note starts the model's onset head marks: near 1 for struck sounds, low for swelling ones.

    A start is a pitch's frames rising over ``frame`` and staying there five frames (58 ms); it is marked
    when the onset head passes ``onset`` within ``reach`` frames of it. A piece with no starts reads 1.
    """
    from scipy.ndimage import maximum_filter1d

    active = posteriors.note > frame
    if len(active) < 6:
        return 1.0
    held = np.logical_and.reduce([active[i : len(active) - 4 + i] for i in range(5)])  # frames t..t+4 active
    starts = held & ~np.vstack([np.zeros((1, active.shape[1]), bool), active[: len(held) - 1]])
    if not starts.any():
        return 1.0
    peaks = maximum_filter1d(posteriors.onset, size=2 * reach + 1, axis=0)[: len(held)]
    return float(np.mean(peaks[starts] > onset))


def harmonic_share(posteriors: Posteriors, *, frame: float = 0.5) -> float:
    """The share of active cells (a pitch's frame over ``frame``) with the note an octave or a twelfth below
    active too: partials the model reads as notes. On the development set, chorales on strings, violin or
    flute came to 0.06-0.20, on an organ 0.24-0.38 (an organ's single-line tunes 0.12-0.27)."""
    active = posteriors.note > frame
    if not active.any():
        return 0.0
    below = np.zeros_like(active)
    below[:, 12:] = active[:, :-12]
    below[:, 19:] |= active[:, :-19]
    return float(np.count_nonzero(active & below) / np.count_nonzero(active))


def read_notes(posteriors: Posteriors, settings: TranscriptionSettings) -> tuple[list[NoteEvent], Reading]:
    """The piece's articulation read from its posteriors, and its notes made with that articulation's settings."""
    reading = settings.read(posteriors)
    notes = notes_from_posteriors(
        posteriors,
        settings.notes(reading.articulation),
        minimum_frequency=settings.minimum_frequency,
        maximum_frequency=settings.maximum_frequency,
    )
    return (drop_partials(notes) if reading.partials_dropped else notes), reading


SWELL_FLOOR = 0.5  # frame_notes moves a note's start back over rising frames down to this share of its threshold
PARTIALS = (12, 19, 24)  # an octave, a twelfth, two octaves: the partials an organ stop's notes are read at
PARTIAL_LEAD = 0.08  # seconds a partial's note may begin before its fundamental's (a swell's partials lead)


def drop_partials(notes: list[NoteEvent]) -> list[NoteEvent]:
    """``notes`` without those that are another note's partials: a note is dropped when a note an octave, a
    twelfth or two octaves below, and louder, is sounding when it begins (or begins within 80 ms
    after it). A real voice doubling another an octave up is usually the softer and goes too: on a piece
    whose partials read as notes, that costs less than keeping every partial (see ``harmonic_share``)."""
    ordered = sorted(notes)
    by_pitch: dict[int, list[NoteEvent]] = {}
    for note in ordered:
        by_pitch.setdefault(note.pitch, []).append(note)
    starts = {pitch: [n.start for n in ns] for pitch, ns in by_pitch.items()}

    def under(note: NoteEvent, interval: int) -> bool:
        below = by_pitch.get(note.pitch - interval, [])
        last = bisect.bisect_right(starts.get(note.pitch - interval, []), note.start + PARTIAL_LEAD)
        # notes of one pitch rarely overlap: the two latest to begin are the ones that can still sound
        return any(m.end >= note.start and m.velocity > note.velocity for m in below[max(0, last - 2) : last])

    return [n for n in ordered if not any(under(n, interval) for interval in PARTIALS)]


def notes_from_posteriors(
    posteriors: Posteriors,
    settings: NoteSettings,
    *,
    minimum_frequency: float | None = None,
    maximum_frequency: float | None = None,
) -> list[NoteEvent]:
    """basic-pitch's note creation with ``settings``' thresholds (cheap: tune without re-running the model);
    with ``frames_only``, ``frame_notes`` instead.

    The same steps as ``basic_pitch.note_creation.model_output_to_notes`` (pitch bends off), arranged
    so memory stays flat with the file's length: onsets are inferred from the frames over the whole
    file (that step rescales by a global maximum), then notes are decoded about five minutes at a
    time, each segment read with ten seconds of context on both sides, a note belonging to the
    segment its onset falls in. (With the melodia trick on, its global search runs per segment.)
    """
    if settings.frames_only:
        return frame_notes(
            posteriors, settings, minimum_frequency=minimum_frequency, maximum_frequency=maximum_frequency
        )
    load_librosa()  # basic-pitch's note creation imports librosa: load its kernels under the lock first
    import_tensorflow()  # basic-pitch imports TensorFlow where it can: quietly (None in a worker that blocks it)
    from basic_pitch.note_creation import model_frames_to_time, output_to_notes_polyphonic

    s = settings
    total = len(posteriors.note)
    if total < 2:
        return []
    min_note_len = int(np.round(s.minimum_note_length_ms / 1000 * (SAMPLE_RATE / 256)))  # as basic-pitch rounds it
    onsets = _inferred_onsets(posteriors.onset, posteriors.note)
    shift = s.onset_shift_ms / 1000
    times = model_frames_to_time(total)
    notes: list[NoteEvent] = []
    for core_start in range(0, total, SEGMENT_FRAMES):
        core_end = min(core_start + SEGMENT_FRAMES, total)
        low, high = max(0, core_start - MARGIN_FRAMES), min(total, core_end + MARGIN_FRAMES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            events = output_to_notes_polyphonic(
                posteriors.note[low:high].copy(),  # it zeroes bands outside min/max frequency in place
                onsets[low:high].copy(),
                onset_thresh=s.onset_threshold,
                frame_thresh=s.frame_threshold,
                min_note_len=min_note_len,
                infer_onsets=False,  # done above, over the whole file
                max_freq=maximum_frequency,
                min_freq=minimum_frequency,
                melodia_trick=s.melodia_trick,
            )
        for start, end, pitch, amplitude in events:
            if core_start <= low + start < core_end:
                velocity = int(np.clip(round(127 * float(amplitude)), 1, 127))
                onset = max(0.0, float(times[low + start]) + shift)
                notes.append(NoteEvent(onset, float(times[low + end]), int(pitch), velocity))
    return sorted(notes)


def frame_notes(
    posteriors: Posteriors,
    settings: NoteSettings,
    *,
    minimum_frequency: float | None = None,
    maximum_frequency: float | None = None,
) -> list[NoteEvent]:
    """Notes read from the note head alone, for sounds that swell in (the onset head barely fires on them).

    Per pitch, a note is a run of frames over ``frame_threshold`` that reaches ``onset_threshold``: it
    begins where the run first reaches it, moved back over the frames still rising into it (while over
    half the frame threshold: where the swell began, which is where the sound began), and ends with the
    run; runs shorter than the minimum note length are not notes. A pitch at one column at a time, so
    memory stays flat with the file's length.
    """
    load_librosa()  # basic-pitch's note_creation imports librosa (see notes_from_posteriors)
    import_tensorflow()
    from basic_pitch.note_creation import model_frames_to_time

    s = settings
    total = len(posteriors.note)
    if total < 2:
        return []
    min_note_len = int(np.round(s.minimum_note_length_ms / 1000 * (SAMPLE_RATE / 256)))
    times = model_frames_to_time(total)
    shift = s.onset_shift_ms / 1000
    low = 0 if minimum_frequency is None else max(0, int(np.round(_hz_to_midi(minimum_frequency))) - MIDI_OFFSET)
    high = 88 if maximum_frequency is None else min(88, int(np.round(_hz_to_midi(maximum_frequency))) - MIDI_OFFSET)
    positions = np.arange(total)
    floor = s.frame_threshold * SWELL_FLOOR
    notes: list[NoteEvent] = []
    for column in range(low, high):
        frames = np.asarray(posteriors.note[:, column], np.float64)
        if frames.max() < s.onset_threshold:
            continue
        over = np.concatenate([[False], frames >= s.frame_threshold, [False]])
        edges = np.flatnonzero(over[1:] != over[:-1])
        starts, ends = edges[::2], edges[1::2]  # each run of frames over the frame threshold
        reached = np.minimum.accumulate(np.where(frames >= s.onset_threshold, positions, total)[::-1])[::-1]
        begins = reached[starts]  # where each run first reaches the onset threshold (total: never)
        keep = begins < ends
        # moved back over the frames still rising into it: to the last frame at or before it that does not rise
        rising = np.concatenate([[False], (frames[:-1] < frames[1:]) & (frames[:-1] >= floor)])
        still = np.maximum.accumulate(np.where(rising, 0, positions))
        begins = still[np.minimum(begins, total - 1)]
        keep &= ends - begins >= min_note_len
        sums = np.concatenate([[0.0], np.cumsum(frames)])
        for begin, end in zip(begins[keep].tolist(), ends[keep].tolist(), strict=True):
            velocity = int(np.clip(round(127 * (sums[end] - sums[begin]) / (end - begin)), 1, 127))
            onset = max(0.0, float(times[begin]) + shift)
            notes.append(NoteEvent(onset, float(times[min(end, total - 1)]), column + MIDI_OFFSET, velocity))
    return sorted(notes)


def _hz_to_midi(hz: float) -> float:
    return 69 + 12 * float(np.log2(hz / 440.0))


def _inferred_onsets(onsets: np.ndarray, frames: np.ndarray, n_diff: int = 2, rows: int = 8192) -> np.ndarray:
    """``basic_pitch.note_creation.get_infered_onsets``, computed a block of rows at a time (float32).

    An onset is also inferred where a frame's activation rises against each of the ``n_diff``
    frames before it; those rises are rescaled to the predicted onsets' global maximum.
    """

    def before(start: int, stop: int, n: int) -> np.ndarray:
        """Rows ``start - n .. stop - n`` of the frames, zeros before the first."""
        if start - n >= 0:
            return frames[start - n : stop - n]
        return np.concatenate([np.zeros((n - start, frames.shape[1]), frames.dtype), frames[: stop - n]])

    def rises(start: int, stop: int) -> np.ndarray:
        block = frames[start:stop]
        diff = np.min([block - before(start, stop, n) for n in range(1, n_diff + 1)], axis=0)
        diff[diff < 0] = 0
        if start < n_diff:
            diff[: n_diff - start] = 0
        return diff

    total = len(frames)
    peak = max((float(rises(i, min(i + rows, total)).max()) for i in range(0, total, rows)), default=0.0)
    scale = float(onsets.max()) / peak if peak > 0 else 0.0
    result = np.empty_like(onsets, dtype=np.float32)
    for i in range(0, total, rows):
        stop = min(i + rows, total)
        np.maximum(onsets[i:stop], rises(i, stop) * scale, out=result[i:stop])
    return result


def _tap(chunks: Iterable[np.ndarray], consumer: Callable[[np.ndarray], None]) -> Iterator[np.ndarray]:
    for chunk in chunks:
        consumer(chunk)
        yield chunk


def _windows(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """basic-pitch's windowing (``inference.window_audio_file`` over the half-overlap-padded audio), streamed."""
    from basic_pitch.constants import AUDIO_N_SAMPLES, FFT_HOP

    overlap = N_OVERLAPPING_FRAMES * FFT_HOP
    hop = AUDIO_N_SAMPLES - overlap
    buffer = np.zeros(overlap // 2, dtype=np.float32)
    for chunk in chunks:
        buffer = np.concatenate([buffer, chunk])
        while buffer.size >= AUDIO_N_SAMPLES:
            yield buffer[:AUDIO_N_SAMPLES]
            buffer = buffer[hop:]
    while buffer.size > 0:  # the tail, zero-padded, at every hop that still starts inside the audio
        yield np.pad(buffer[:AUDIO_N_SAMPLES], (0, max(0, AUDIO_N_SAMPLES - buffer.size)))
        buffer = buffer[hop:]


def decode_chunks(path: Path, *, seconds: float = 60.0) -> Iterator[np.ndarray]:
    """Decode any file ffmpeg reads to mono float32 at basic-pitch's rate, ``seconds`` at a time.

    Raises:
        TranscriptionError: ffmpeg cannot decode it (``corrupt_audio``).
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg not found: install it (the README's first command does)")
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(SAMPLE_RATE)]
    command += ["-f", "f32le", "-"]
    chunk_bytes = int(seconds * SAMPLE_RATE) * 4
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        try:
            while data := process.stdout.read(chunk_bytes):
                usable = len(data) - len(data) % 4
                yield np.frombuffer(data[:usable], dtype=np.float32)
        finally:
            process.stdout.close()
            code = process.wait()
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
    if code != 0:
        last = message.splitlines()[-1] if message else f"ffmpeg exited with {code}"
        raise TranscriptionError(f"cannot decode {path.name}: {last}")


def audio_onset_envelope(audio_path: Path, *, seconds: float = 60.0) -> tuple[np.ndarray, float]:
    """The onset strength the transcription tracks beats over, for a file transcribed before beats were kept.

    Raises:
        TranscriptionError: ffmpeg cannot decode the file.
    """
    accumulator = FeatureAccumulator(SAMPLE_RATE)
    for chunk in decode_chunks(audio_path, seconds=seconds):
        accumulator.add(chunk)
    return accumulator.onset_envelope(), accumulator.frames_per_second
