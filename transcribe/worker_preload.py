"""Imported once by the transcription fork server (``transcribe.parallel``): what every worker needs.

TensorFlow is blocked first (basic-pitch's package imports it when installed; a worker runs the ONNX
model), then onnxruntime, the piece's code, librosa's numba kernels and what note creation and MIDI writing
import are loaded, so each worker forked from the server starts with them. No model session is made here:
its thread pool would not survive a fork.
"""

import sys

sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]  # makes `import tensorflow` fail fast

import onnxruntime  # noqa: E402, F401

import transcribe.piece  # noqa: E402, F401
from transcribe.numba_cache import load_librosa  # noqa: E402

load_librosa()

# What each piece's work imports on first use (each worker paid ~0.1 s for them on its first piece).
import basic_pitch.note_creation  # noqa: E402, F401
import pretty_midi  # noqa: E402, F401
import scipy.ndimage  # noqa: E402, F401
