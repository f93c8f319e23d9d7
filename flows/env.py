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
    # A fresh Prefect database migrates on the temporary server's first start: on 2 cores that can pass
    # Prefect's 20 s default and fail a first run, so allow two minutes.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_UI_ENABLED", "true")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if "PREFECT_API_URL" not in os.environ:  # a server `tunesmith up` started: flows show in its UI
        from flows.service import running_api_url

        if api := running_api_url(home):
            os.environ["PREFECT_API_URL"] = api
    return home
