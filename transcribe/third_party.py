"""Third-party start-up noise, silenced narrowly at its source: the named messages only, never a whole category.

- basic-pitch logs on the root logger, at import, that CoreML, TFLite and TensorFlow are not installed
  (three lines per worker process): tunesmith runs its ONNX model and needs none of them.
- resampy warns at import that ``pkg_resources`` is deprecated (a setuptools matter for its authors).
- TensorFlow 2.15 prints, from C++ at import, that it could not register the cuDNN, cuFFT and cuBLAS
  factories (a known duplicate registration, harmless); these three lines are dropped and anything
  else it prints while importing is passed on.

Any other warning, ours or theirs, still shows.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import warnings
from types import ModuleType

BASIC_PITCH_BACKENDS = re.compile(r"^(Coremltools|tflite-runtime|Tensorflow) is not installed\. If you plan to use")
TF_REGISTRATION = re.compile(r"Unable to register (cuDNN|cuFFT|cuBLAS) factory: Attempting to register factory")


class _BasicPitchBackends(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and BASIC_PITCH_BACKENDS.match(str(record.msg)))


def silence_import_noise() -> None:
    """Install the basic-pitch and resampy filters (idempotent)."""
    root = logging.getLogger()
    if not any(isinstance(f, _BasicPitchBackends) for f in root.filters):
        root.addFilter(_BasicPitchBackends())
    warnings.filterwarnings(
        "ignore", message=r"pkg_resources is deprecated as an API", category=UserWarning, module=r"resampy"
    )


def import_tensorflow() -> ModuleType | None:
    """``import tensorflow``, without its C++ INFO lines and its three known registration errors on stderr.

    Returns None in a process that blocked TensorFlow (a transcription worker sets
    ``sys.modules["tensorflow"] = None`` so that basic-pitch's optional import fails fast).
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # its C++ INFO lines; the one place tunesmith sets it
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            printed = capture.read().decode(errors="replace")
    kept = [line for line in printed.splitlines() if line.strip() and not TF_REGISTRATION.search(line)]
    if kept:
        sys.stderr.write("\n".join(kept) + "\n")
    return tensorflow
