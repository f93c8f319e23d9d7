"""Process-wide defaults, set before Prefect or TensorFlow is imported."""

from __future__ import annotations

import os

from db.home import Home


def configure_environment(home: Home | None = None) -> Home:
    """Keep Prefect's own state under ``$TUNESMITH_HOME/prefect`` (never the catalogue) unless the user chose;
    turn off Prefect's analytics (its "database is locked" noise) and TensorFlow's start-up chatter."""
    home = home or Home.from_env()
    home.prefect_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home.prefect_dir))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "true")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return home
