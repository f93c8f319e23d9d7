"""The TUNESMITH_* variables: read in one place, each documented, a value that cannot be used refused in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from db.environment import Environment, EnvironmentVariableError, environment

ROOT = Path(__file__).resolve().parents[2]


def test_each_variable_has_its_default_and_is_read_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Environment.model_fields:
        monkeypatch.delenv(f"TUNESMITH_{name.upper()}", raising=False)
    plain = environment()
    assert plain.home == Path("tunesmith-home") and plain.database_url is None and not plain.verbose
    assert (plain.onnx_threads, plain.min_free_mb, plain.timezone) == (0, None, "UTC")
    monkeypatch.setenv("TUNESMITH_ONNX_THREADS", "3")
    monkeypatch.setenv("TUNESMITH_VERBOSE", "1")
    monkeypatch.setenv("TUNESMITH_DATABASE_URL", "")  # empty: as if unset
    now = environment()
    assert (now.onnx_threads, now.verbose, now.database_url) == (3, True, None)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [("TUNESMITH_ONNX_THREADS", "-1", "greater than or equal to 0"),
     ("TUNESMITH_MIN_FREE_MB", "lots", "valid integer"),
     ("TUNESMITH_VERBOSE", "maybe", "valid boolean")],
)  # fmt: skip
def test_a_value_that_cannot_be_used_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, said: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(EnvironmentVariableError, match=f"^{name}='{re.escape(value)}' cannot be used: .*{said}"):
        environment()
    command = [str(Path(sys.executable).parent / "tunesmith"), "status"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env={
        "PATH": "/usr/bin:/bin", name: value, "TUNESMITH_HOME": str(tmp_path / "h")},
        timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stderr.startswith(f"error: {name}=") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and not (tmp_path / "h").exists()  # refused before anything was made


def test_only_the_environment_module_reads_tunesmith_variables() -> None:
    """Writing one (``-v`` sets TUNESMITH_VERBOSE for the flows it runs) is fine; reading one is db.environment's."""
    reads = re.compile(r"""(environ\.get|getenv)\(\s*["']TUNESMITH_|environ\[["']TUNESMITH_\w+["']\](?!\s*=)""")
    for package in ("db", "ingest", "transcribe", "train", "generate", "flows", "sample"):
        for path in (ROOT / package).glob("*.py"):
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if reads.search(line)]
            assert path.name == "environment.py" or not lines, (path, lines)
