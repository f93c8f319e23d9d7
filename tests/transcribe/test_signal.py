"""tunesmith's own versions of librosa's and scipy's signal code (written for speed) give their numbers.

Each is checked against the library function it replaces, on a rendered chorale where it reads audio.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage

from sample.corpus import RenderedPiece
from transcribe.basic_pitch import decode_chunks
from transcribe.beats import ENVELOPE_FPS, dynamic_programming_beats, note_envelope
from transcribe.features import HOP, N_FFT, FeatureAccumulator, spectral_flatness, spectral_shape, zero_crossing_rate
from transcribe.groove import hpss, median_filter
from transcribe.midi import read_midi
from transcribe.numba_cache import load_librosa


@pytest.fixture(scope="module")
def audio(pieces: list[RenderedPiece]) -> np.ndarray:
    """The first 30 s of a rendered chorale at the transcriber's rate, its silent tail included."""
    return next(decode_chunks(pieces[0].audio_path, seconds=30.0))


@pytest.mark.parametrize("size", [1, 3, 17, 31])
def test_the_median_filter_is_scipys_with_mirrored_edges(size: int) -> None:
    rng = np.random.default_rng(size)
    for shape in ((256, 300), (size // 2 + 1, 40), (40, size // 2 + 1)):
        values = (rng.random(shape) ** 4).astype(np.float32)
        values[rng.random(shape) < 0.3] = 0.0  # ties, as a quiet spectrogram has
        for axis in (0, 1):
            window = [1, 1]
            window[axis] = size
            expected = scipy.ndimage.median_filter(values, size=window, mode="reflect")
            assert np.array_equal(median_filter(values, size, axis=axis), expected), (shape, axis)
    with pytest.raises(ValueError, match="odd"):
        median_filter(values, 4, axis=0)


def test_hpss_and_the_spectral_features_are_librosas(audio: np.ndarray) -> None:
    librosa = load_librosa("librosa.decompose")
    magnitude = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP))
    magnitude[:, :20] = 0.0  # a silent stretch: librosa's special cases for empty frames
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "centroid": librosa.feature.spectral_centroid(S=magnitude, sr=22050)[0],
            "rolloff": librosa.feature.spectral_rolloff(S=magnitude, sr=22050)[0],
            "bandwidth": librosa.feature.spectral_bandwidth(S=magnitude, sr=22050)[0],
        }
    shape = spectral_shape(magnitude, 22050)
    for name, values in expected.items():
        np.testing.assert_allclose(shape[name], values, rtol=1e-6, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(
        spectral_flatness(magnitude**2), librosa.feature.spectral_flatness(S=magnitude)[0], rtol=1e-6
    )
    assert np.array_equal(
        zero_crossing_rate(audio), librosa.feature.zero_crossing_rate(audio, frame_length=N_FFT, hop_length=HOP)[0]
    )
    harmonic, percussive = hpss(magnitude**2, 17)
    expected_harmonic, expected_percussive = librosa.decompose.hpss(magnitude**2, kernel_size=17)
    assert np.array_equal(harmonic, expected_harmonic) and np.array_equal(percussive, expected_percussive)


def test_the_beat_tracker_is_librosas(pieces: list[RenderedPiece], audio: np.ndarray) -> None:
    librosa = load_librosa("librosa.beat")  # its kernels compiled under the lock every tunesmith process shares
    features = FeatureAccumulator(22050)
    features.add(audio)
    envelopes = [
        (features.onset_envelope(), features.frames_per_second),  # audio, float32, 43 frames a second
        (note_envelope(read_midi(pieces[1].midi_path)), ENVELOPE_FPS),  # notes, float64, 100 frames a second
        (features.onset_envelope()[:40], features.frames_per_second),  # shorter than a beat's window
    ]
    for envelope, fps in envelopes:
        sr = int(round(fps * 512))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bpm, expected = librosa.beat.beat_track(onset_envelope=envelope, sr=sr, hop_length=512, trim=False)
        beats = dynamic_programming_beats(envelope, bpm=float(np.atleast_1d(bpm)[0]), frame_rate=sr / 512)
        assert len(expected) > 2 and np.array_equal(beats, expected), (envelope.size, fps)
