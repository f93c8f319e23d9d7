"""Audio features per piece, computed chunk by chunk as the audio streams past (bounded memory).

The set is the one an earlier prototype used for genre analysis (tempo, spectral centroid,
rolloff and bandwidth, zero-crossing rate, chroma, RMS, 20 MFCCs), each summarised by its mean
and variance over frames, plus the silence ratio and spectral flatness the filter reads. One
magnitude STFT per chunk feeds every spectral feature.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from transcribe.beats import envelope_bpm
from transcribe.groove import PercussionAccumulator
from transcribe.numba_cache import load_librosa

N_FFT = 2048
HOP = 512
N_MFCC = 20
SILENCE_DB = -50.0
# Scalar features summarised by mean and variance, in the order of the similarity vector.
SCALARS = ("centroid", "rolloff", "bandwidth", "zcr", "rms")


@dataclass(frozen=True)
class AudioFeatures:
    tempo: float  # bpm, folded into 60-180
    means: dict[str, float]  # scalar feature -> mean over frames
    variances: dict[str, float]
    chroma: list[float]  # 12 pitch-class means, C first
    mfcc_mean: list[float]  # N_MFCC
    mfcc_var: list[float]
    silence_ratio: float
    spectral_flatness: float  # mean over non-silent frames

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def similarity_vector(features: dict[str, Any]) -> np.ndarray:
    """The features stored in the catalogue as one vector, each group on a comparable scale.

    Tempo in octaves (log2), centroid/rolloff/bandwidth in log-Hz, chroma normalised to sum 1,
    MFCCs as they are (already log-scaled) with the first (overall loudness) left out.
    """
    means, variances = features["means"], features["variances"]
    spectral = [np.log1p(means[name]) for name in ("centroid", "rolloff", "bandwidth")]
    spread = [np.log1p(np.sqrt(variances[name])) for name in ("centroid", "rolloff", "bandwidth")]
    chroma = np.asarray(features["chroma"], dtype=float)
    chroma = chroma / chroma.sum() if chroma.sum() > 0 else chroma
    mfcc = np.asarray(features["mfcc_mean"][1:], dtype=float) / 10.0
    mfcc_spread = np.sqrt(np.asarray(features["mfcc_var"][1:], dtype=float)) / 10.0
    rhythm = [np.log2(features["tempo"] / 60.0), means["zcr"] * 10, np.sqrt(variances["rms"]) * 10]
    return np.concatenate([spectral, spread, chroma * 4, mfcc, mfcc_spread, rhythm]).astype(np.float64)


class FeatureAccumulator:
    """Feed audio chunks in order with :meth:`add`; :meth:`finish` returns the piece's features."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._frames = 0
        self.samples = 0  # audio samples seen, before any padding
        self._sums: dict[str, float] = dict.fromkeys(SCALARS, 0.0)
        self._squares: dict[str, float] = dict.fromkeys(SCALARS, 0.0)
        self._chroma = np.zeros(12)
        self._mfcc = np.zeros(N_MFCC)
        self._mfcc_sq = np.zeros(N_MFCC)
        self._loud = 0
        self._flatness = 0.0
        self._onsets: list[np.ndarray] = []
        self._bpm: tuple[int, float | None] | None = None  # (envelope frames it was estimated over, bpm)
        self.percussion = PercussionAccumulator(sample_rate, N_FFT, HOP)

    def add(self, chunk: np.ndarray) -> None:
        librosa = load_librosa()

        self.samples += chunk.size
        if chunk.size < N_FFT:
            chunk = np.pad(chunk, (0, N_FFT - chunk.size))
        sr = self.sample_rate
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            magnitude = np.abs(librosa.stft(chunk, n_fft=N_FFT, hop_length=HOP))
            power = magnitude**2
            per_frame = spectral_shape(magnitude, sr)
            per_frame["zcr"] = zero_crossing_rate(chunk)
            per_frame["rms"] = librosa.feature.rms(S=magnitude, frame_length=N_FFT)[0]
            chroma = librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0)  # A440: skip the tuning search
            mel = librosa.feature.melspectrogram(S=power, sr=sr)
            mel_db = librosa.power_to_db(mel)
            mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
            flatness = spectral_flatness(power)
            self._onsets.append(librosa.onset.onset_strength(S=mel_db, sr=sr))
            self.percussion.add(magnitude)
        frames = magnitude.shape[1]
        for name, values in per_frame.items():
            values = values[:frames]
            self._sums[name] += float(values.sum())
            self._squares[name] += float((values.astype(np.float64) ** 2).sum())
        self._chroma += chroma.sum(axis=1)
        self._mfcc += mfcc.sum(axis=1)
        self._mfcc_sq += (mfcc.astype(np.float64) ** 2).sum(axis=1)
        loud = librosa.amplitude_to_db(per_frame["rms"], ref=1.0) > SILENCE_DB
        self._loud += int(loud.sum())
        self._flatness += float(flatness[loud].sum())
        self._frames += frames

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / HOP

    def onset_envelope(self) -> np.ndarray:
        """The onset strength of every frame so far (librosa's, over the mel spectrogram)."""
        return np.concatenate(self._onsets) if self._onsets else np.zeros(0)

    def bpm(self) -> float | None:
        """librosa's tempo estimate over the onset strength so far (the beat tracker's too); None if silent."""
        envelope = self.onset_envelope()
        if self._bpm is None or self._bpm[0] != envelope.size:
            self._bpm = (envelope.size, envelope_bpm(envelope, frames_per_second=self.frames_per_second))
        return self._bpm[1]

    def finish(self) -> AudioFeatures:
        n = max(self._frames, 1)
        means = {name: self._sums[name] / n for name in SCALARS}
        variances = {name: max(self._squares[name] / n - means[name] ** 2, 0.0) for name in SCALARS}
        mfcc_mean = self._mfcc / n
        return AudioFeatures(
            tempo=fold_tempo(self.bpm()),
            means=_rounded(means),
            variances=_rounded(variances),
            chroma=[round(float(v), 5) for v in self._chroma / n],
            mfcc_mean=[round(float(v), 4) for v in mfcc_mean],
            mfcc_var=[round(float(v), 4) for v in np.maximum(self._mfcc_sq / n - mfcc_mean**2, 0.0)],
            silence_ratio=round(1.0 - self._loud / n, 4),
            spectral_flatness=round(self._flatness / self._loud, 4) if self._loud else 0.0,
        )


def spectral_shape(magnitude: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    """Per frame of a (bins, frames) magnitude spectrogram: centroid, 85% rolloff and bandwidth (Hz).

    librosa's ``spectral_centroid``, ``spectral_rolloff`` and ``spectral_bandwidth`` (p=2), from one pass of
    sums: bandwidth^2 = E[f^2] - 2c E[f] + c^2 w over the normalised frame (w = 1, or 0 in a silent frame),
    rather than librosa's three passes with two normalisations and a (bins, frames) table of deviations.
    """
    freq = np.linspace(0.0, sample_rate / 2, magnitude.shape[0])  # librosa.fft_frequencies
    total = magnitude.sum(axis=0, dtype=np.float64)
    length = np.where(total < np.finfo(magnitude.dtype).tiny, 1.0, total)  # librosa.util.normalize(norm=1)
    first = (freq @ magnitude) / length
    second = ((freq**2) @ magnitude) / length
    weight = total / length
    centroid = first
    spread = second - 2 * centroid * first + centroid**2 * weight
    cumulative = np.cumsum(magnitude, axis=0)
    reached = cumulative >= 0.85 * cumulative[-1]
    return {
        "centroid": centroid,
        "rolloff": freq[np.argmax(reached, axis=0)],
        "bandwidth": np.sqrt(np.maximum(spread, 0.0)),
    }


def zero_crossing_rate(chunk: np.ndarray) -> np.ndarray:
    """librosa's ``zero_crossing_rate`` (frames of N_FFT every HOP, centred, edges repeated), from one pass of
    sign changes over the chunk instead of a copy of every frame."""
    padded = np.pad(chunk, (N_FFT // 2, N_FFT // 2), mode="edge")
    negative = np.signbit(np.where(np.abs(padded) <= 1e-10, 0.0, padded))  # zeros count as positive
    changes = np.concatenate([[0], np.cumsum(negative[1:] != negative[:-1])])
    starts = np.arange(1 + (padded.size - N_FFT) // HOP) * HOP
    return (changes[starts + N_FFT - 1] - changes[starts]) / N_FFT


def spectral_flatness(power: np.ndarray, *, amin: float = 1e-10) -> np.ndarray:
    """librosa's ``spectral_flatness`` of a magnitude spectrogram, given its power (already computed)."""
    floored = np.maximum(amin, power)
    return np.exp(np.mean(np.log(floored), axis=0)) / np.mean(floored, axis=0)


def fold_tempo(bpm: float | None, *, default: float = 120.0) -> float:
    """A tempo estimate (``transcribe.beats.envelope_bpm``) folded into 60-180 bpm; ``default`` without one."""
    if bpm is None or not np.isfinite(bpm) or bpm <= 0:
        return default
    while bpm < 60:
        bpm *= 2
    while bpm > 180:
        bpm /= 2
    return round(bpm, 2)


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: round(float(value), 6) for name, value in values.items()}
