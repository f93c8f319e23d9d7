"""A piece's beat grid: tracked beat times, the meter and where the bars start.

basic-pitch writes MIDI at one fixed tempo with unquantised onsets, and a global tempo estimate
comes in coarse bins (117.45 bpm for a 120 bpm piece): a constant grid drifts a beat in under a
minute. So notes are placed against the *tracked* beat times instead: librosa's dynamic-programming
beat tracker over the audio's onset strength (or, for a catalogue row made before beats were
stored, over an onset envelope made from the transcribed notes). Between two beats a note's
position is interpolated; before the first and after the last beat the grid goes on at the local
beat length, so a piece that speeds up or starts off the beat still lands on its grid.

The meter (3 or 4 beats a bar) and the bar phase (which beat is a downbeat) are read from the
notes: downbeats carry more weight (more, longer, louder and lower notes start there), so the
meter and phase whose beats gather the most of that accent win ("accent phase").
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transcribe.notes import NoteEvent
from transcribe.numba_cache import load_librosa

METERS = (4, 3)  # beats per bar, in order of preference when two fit equally
ENVELOPE_FPS = 100.0  # frames per second of an onset envelope made from notes
BEAT_METHOD = "librosa.beat_track(audio onset strength)-40ms+accent_phase"
# librosa's onset strength marks an onset late (each frame's flux against the frame before, frames centred
# on their hop): beats tracked over it came 28-47 ms after the rendered MIDI's beats on six piano chorales,
# while the notes are read at their onsets. The audio's beats are moved back by this much to meet them.
AUDIO_ENVELOPE_LATENCY = 0.04
NOTES_METHOD = "librosa.beat_track(note onsets)+accent_phase"


@dataclass(frozen=True)
class BeatGrid:
    """Beat times in seconds, beats per bar, and the index of the first downbeat among the beats."""

    beats: tuple[float, ...]
    meter: int
    phase: int
    method: str

    @property
    def tempo(self) -> float:
        """The median tempo in bpm (beats per minute over the tracked beats)."""
        if len(self.beats) < 2:
            return 120.0
        return round(60.0 / float(np.median(np.diff(self.beats))), 2)

    def beat_position(self, times: np.ndarray) -> np.ndarray:
        """Fractional beat index of each time (0 = the first tracked beat); extrapolated outside the beats."""
        beats = np.asarray(self.beats, dtype=float)
        times = np.asarray(times, dtype=float)
        if len(beats) < 2:
            return times * 2.0  # no grid: 120 bpm from time zero
        head = float(np.median(np.diff(beats[:5])))
        tail = float(np.median(np.diff(beats[-5:])))
        inside = np.interp(times, beats, np.arange(len(beats), dtype=float))
        before = (times - beats[0]) / head
        after = len(beats) - 1 + (times - beats[-1]) / tail
        return np.where(times < beats[0], before, np.where(times > beats[-1], after, inside))

    def to_dict(self) -> dict[str, Any]:
        return {
            "beats": [round(b, 4) for b in self.beats],
            "meter": self.meter,
            "phase": self.phase,
            "method": self.method,
            "tempo": self.tempo,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BeatGrid:
        return cls(tuple(float(b) for b in data["beats"]), int(data["meter"]), int(data["phase"]), str(data["method"]))


ENVELOPE_HOP = 512  # librosa reads an envelope's frame rate as sample rate / hop: any rate, put as a sample rate


def _silent(onset_envelope: np.ndarray) -> bool:
    """Too short, or no onset at all: nothing for a tempo estimate or a beat tracker to go on."""
    return onset_envelope.size < 16 or not np.any(onset_envelope > 0)


def _sample_rate(frames_per_second: float) -> int:
    return int(round(frames_per_second * ENVELOPE_HOP))


def envelope_bpm(onset_envelope: np.ndarray, *, frames_per_second: float) -> float | None:
    """librosa's tempo estimate (bpm, searched from 120) over an onset-strength envelope; None when the
    envelope has nothing to go on. The beat tracker and the piece's stored tempo both read this one value."""
    librosa = load_librosa()

    if _silent(onset_envelope):
        return None
    sr, hop = _sample_rate(frames_per_second), ENVELOPE_HOP
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(librosa.feature.tempo(onset_envelope=onset_envelope, sr=sr, hop_length=hop, start_bpm=120.0)[0])


def track_beats(onset_envelope: np.ndarray, *, frames_per_second: float, bpm: float | None = None) -> tuple[float, ...]:
    """Beat times (seconds) from an onset-strength envelope: librosa's tempo estimate (or ``bpm``, that
    estimate made already, see ``envelope_bpm``) and beat tracker."""
    if bpm is None:
        bpm = envelope_bpm(onset_envelope, frames_per_second=frames_per_second)
    if bpm is None or _silent(onset_envelope):
        return ()
    sr, hop = _sample_rate(frames_per_second), ENVELOPE_HOP  # the rate the tempo estimate is made at
    frames = dynamic_programming_beats(onset_envelope, bpm=bpm, frame_rate=sr / hop)
    times = np.asarray(frames, dtype=float) * hop / sr
    return tuple(float(t) for t in times)


def dynamic_programming_beats(
    onset_envelope: np.ndarray, *, bpm: float, frame_rate: float, tightness: float = 100.0
) -> np.ndarray:
    """Frame indices of the beats: Ellis's dynamic-programming beat tracker (2007), as librosa 0.11's
    ``beat.beat_track(trim=False)`` runs it at a fixed tempo, in numpy.

    librosa compiles its local-score kernel with numba every time a process imports ``librosa.beat``
    (it is not cached), which cost each transcription worker ~2 s at start-up; the recursion here
    takes whole blocks of frames at once (a beat's predecessor lies at least half a beat back), so it
    costs a few milliseconds a minute. It follows librosa line for line, the first frame left out of
    the local score included; the beat-grid tests check it against librosa's on rendered pieces.
    """
    librosa = load_librosa()

    envelope = onset_envelope.astype(np.float64)
    envelope = envelope / (envelope.std(ddof=1) + np.finfo(envelope.dtype).tiny)
    period = int(np.round(frame_rate * 60.0 / bpm))  # frames per beat
    # the local score: the envelope smoothed by a Gaussian of a beat's width (librosa skips frame 0)
    window = np.exp(-0.5 * (np.arange(-period, period + 1) * 32.0 / period) ** 2)
    envelope[0] = 0.0
    local = np.convolve(envelope, window)[period : period + envelope.size]  # centred, whatever the lengths
    n = local.size
    # the recursion: each frame's best predecessor between half a beat and two beats back
    shortest, longest = int(np.round(period / 2)), 2 * period
    offsets = np.arange(shortest, longest + 1)
    penalty = tightness * (np.log(offsets) - np.log(period)) ** 2
    cumulative = local.copy()
    backlink = np.full(n, -1, dtype=np.int64)
    for start in range(shortest, n, max(shortest, 1)):
        frames = np.arange(start, min(start + max(shortest, 1), n))
        candidates = frames[:, None] - offsets[None, :]
        scores = np.where(candidates >= 0, cumulative[np.maximum(candidates, 0)] - penalty, -np.inf)
        best = np.argmax(scores, axis=1)  # the first best: the nearest, as librosa's strict comparison
        found = np.isfinite(scores[np.arange(frames.size), best])
        cumulative[frames] = local[frames] + np.where(found, scores[np.arange(frames.size), best], 0.0)
        backlink[frames] = np.where(found, candidates[np.arange(frames.size), best], -1)
    first = int(np.argmax(local >= 0.01 * local.max()))  # no beat leads into the frames before the first onset
    backlink[:first] = -1
    # the last beat: the last local maximum of the score above half the median of its local maxima
    peaks = librosa.util.localmax(cumulative)
    threshold = 0.5 * np.median(cumulative[peaks]) if peaks.any() else 0.0
    eligible = np.flatnonzero(peaks & (cumulative >= threshold))
    beat = int(eligible[-1]) if eligible.size else n - 1
    beats = np.zeros(n, dtype=bool)
    while beat >= 0:
        beats[beat] = True
        beat = int(backlink[beat])
    # beats where the local score is not positive are dropped from both ends (trim=False keeps the rest)
    positive = np.flatnonzero(local > 0)
    if positive.size:
        beats[: positive[0]] = False
        beats[positive[-1] + 1 :] = False
    return np.flatnonzero(beats)


def note_envelope(notes: Sequence[NoteEvent], *, fps: float = ENVELOPE_FPS) -> np.ndarray:
    """An onset-strength envelope from notes: each onset a short pulse weighted by its velocity."""
    if not notes:
        return np.zeros(0)
    frames = int(max(n.end for n in notes) * fps) + 8
    envelope = np.zeros(frames)
    for n in notes:
        envelope[int(n.start * fps)] += n.velocity / 127.0
    kernel = np.exp(-np.arange(6) / 2.0)  # a decaying pulse, like an onset-strength peak
    return np.convolve(envelope, kernel)[:frames]


def bar_phase(notes: Sequence[NoteEvent], beats: Sequence[float]) -> tuple[int, int]:
    """(meter, phase): the beats per bar and the first downbeat's beat index, by accent.

    Each beat's accent sums the notes starting within an eighth of it, each weighted by loudness,
    length (up to two beats) and register (bass notes mark downbeats). For each meter and phase the
    share of accent that falls on the downbeats, against the share expected by chance, is the
    score.
    """
    if len(beats) < 8 or not notes:
        return 4, 0
    grid = BeatGrid(tuple(beats), 4, 0, "")
    starts = grid.beat_position(np.array([n.start for n in notes]))
    ends = grid.beat_position(np.array([n.end for n in notes]))
    nearest = np.round(starts).astype(int)
    close = np.abs(starts - nearest) < 0.2
    accent = np.zeros(len(beats) + 1)
    for n, beat, length, near in zip(notes, nearest, ends - starts, close, strict=True):
        if near and 0 <= beat < len(accent):
            register = 1.5 if n.pitch < 55 else 1.0
            accent[beat] += (n.velocity / 127.0) * min(max(length, 0.25), 2.0) * register
    total = accent.sum()
    if total <= 0:
        return 4, 0
    best = (0.0, 4, 0)
    for meter in METERS:
        for phase in range(meter):
            share = accent[phase::meter].sum() / total * meter  # 1.0 = no better than chance
            if share > best[0] + 0.02:
                best = (share, meter, phase)
    return best[1], best[2]


def grid_from_envelope(
    onset_envelope: np.ndarray,
    frames_per_second: float,
    notes: Sequence[NoteEvent],
    *,
    method: str,
    latency: float = 0.0,
    bpm: float | None = None,
) -> BeatGrid:
    """Beats tracked over ``onset_envelope`` (at ``bpm`` when its tempo is estimated already), moved back by the
    envelope's ``latency``, phased by ``notes``."""
    beats = track_beats(onset_envelope, frames_per_second=frames_per_second, bpm=bpm)
    beats = tuple(max(0.0, b - latency) for b in beats)
    meter, phase = bar_phase(notes, beats)
    return BeatGrid(beats, meter, phase, method)


def grid_from_audio(
    onset_envelope: np.ndarray, frames_per_second: float, notes: Sequence[NoteEvent], *, bpm: float | None = None
) -> BeatGrid:
    """The grid of transcribed audio: beats tracked over its onset strength, less that envelope's latency."""
    return grid_from_envelope(
        onset_envelope, frames_per_second, notes, method=BEAT_METHOD, latency=AUDIO_ENVELOPE_LATENCY, bpm=bpm
    )


def grid_from_notes(notes: Sequence[NoteEvent]) -> BeatGrid:
    """The grid of a transcription whose audio is gone: beats tracked over its notes' onsets."""
    return grid_from_envelope(note_envelope(notes), ENVELOPE_FPS, notes, method=NOTES_METHOD)


MIDI_METHOD = "midi tempo map and time signatures (pretty_midi)"


def grid_from_midi(midi_path: str) -> BeatGrid:
    """The grid a MIDI file states itself (its tempo map and time signatures): for prompts and scores."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(midi_path)
    beats = [float(b) for b in midi.get_beats()]
    downbeats = [float(d) for d in midi.get_downbeats()]
    if len(beats) < 2:
        return BeatGrid(tuple(beats), 4, 0, MIDI_METHOD)
    first = int(np.argmin(np.abs(np.asarray(beats) - downbeats[0]))) if downbeats else 0
    meter = 4
    if len(downbeats) >= 2:
        meter = int(round((downbeats[1] - downbeats[0]) / float(np.median(np.diff(beats)))))
    return BeatGrid(tuple(beats), max(meter, 1), first, MIDI_METHOD)
