"""Third-party start-up noise is dropped by name, and nothing else is."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import logging, warnings
from transcribe.third_party import import_tensorflow, silence_import_noise
silence_import_noise()
import_tensorflow()
import basic_pitch, resampy  # their import-time announcements
logging.warning("Tensorflow is not installed, says our own code")  # not basic-pitch's sentence: shown
warnings.warn("pkg_resources is deprecated as an API (our own warning)", UserWarning)  # not resampy's: shown
"""


def test_known_import_noise_is_dropped_and_other_warnings_still_show() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for noise in ("Unable to register", "Coremltools is not installed", "tflite-runtime is not installed",
                  "reinstall basic-pitch", "resampy"):  # fmt: skip
        assert noise not in result.stderr, result.stderr
    assert "Tensorflow is not installed, says our own code" in result.stderr
    assert "(our own warning)" in result.stderr


def test_without_the_filters_the_same_imports_are_noisy() -> None:
    """The control: the lines the test above looks for are really printed by these packages here."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    script = "import tensorflow, basic_pitch, resampy"
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "Unable to register cuDNN factory" in result.stderr
    assert "Coremltools is not installed" in result.stderr and "pkg_resources is deprecated" in result.stderr
