# Two commands for a new user: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-3
# Two workers (this machine has two cores): the suite takes about half the time it takes serially.
PYTEST_ARGS ?= -n 2
APT_PACKAGES := ffmpeg fluidsynth fluid-soundfont-gm
TEST_APT_PACKAGES := chromium chromium-driver
SOUNDFONT := /usr/share/sounds/sf2/FluidR3_GM.sf2
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test system system-test install lint clean

demo: install
	$(BIN)/tunesmith demo

test: install system-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: system $(STAMP)

# Debian packages: FluidSynth and the General MIDI SoundFont render audio, ffmpeg decodes and encodes it.
system:
	@if ! command -v ffmpeg >/dev/null || ! command -v fluidsynth >/dev/null || [ ! -f $(SOUNDFONT) ]; then \
		echo "Installing $(APT_PACKAGES) with apt"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

# The UI test drives Debian's Chromium (headless, through its chromedriver): nothing is downloaded at run time.
system-test:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "Installing $(TEST_APT_PACKAGES) with apt"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(TEST_APT_PACKAGES); \
	fi

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "tunesmith needs Python 3.11 (basic-pitch and TensorFlow 2.15)"'
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@# librosa's numba kernels: drop any cache a crashed or concurrent run left, compile them once here
	find $(VENV)/lib -path '*/librosa/*' \( -name '*.nbi' -o -name '*.nbc' \) -delete
	$(BIN)/python -m transcribe.numba_cache
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy db ingest transcribe train generate flows sample

clean:
	rm -rf $(VENV) tunesmith-home .pytest_cache
