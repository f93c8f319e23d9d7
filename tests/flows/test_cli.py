"""Command-line views of a large catalogue: filtered and paged in SQL, the same rows either way."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db.catalogue import Catalogue
from db.home import Home
from flows.cli import app
from ingest.catalogue import record_listing
from ingest.youtube import Entry, PlaylistListing
from sample.feed import LOOPBACK_INGEST

pytestmark = pytest.mark.both_databases


def test_sources_are_paged_and_filtered(catalogue: Catalogue) -> None:
    """250 sources, every tenth listed as three hours long (rejected before download)."""
    entries = [
        Entry(key=f"youtube:{i:011d}", url=f"https://www.youtube.com/watch?v={i:011d}", title=f"Tune {i}",
              duration=3 * 3600.0 if i % 10 == 0 else 200.0)
        for i in range(250)
    ]  # fmt: skip
    with catalogue.sessions.begin() as session:
        record_listing(session, PlaylistListing("https://example.org/big", "Big", entries), LOOPBACK_INGEST)
    runner = CliRunner()

    everything = json.loads(runner.invoke(app, ["sources", "--json"]).stdout)
    assert [s["title"] for s in everything] == [f"Tune {i}" for i in range(250)]
    first = runner.invoke(app, ["sources"]).stdout.splitlines()
    assert len(first) == 101 and first[0].split() == ["1", "rejected", "Tune", "0", "(too_long)"]
    assert first[-1] == "(1-100 of 250; --offset 100 for the next page)"
    page = json.loads(runner.invoke(app, ["sources", "--json", "--limit", "100", "--offset", "200"]).stdout)
    assert page == everything[200:]
    rejected = json.loads(runner.invoke(app, ["sources", "--json", "--state", "rejected"]).stdout)
    assert [s["title"] for s in rejected] == [f"Tune {i}" for i in range(0, 250, 10)]
    assert {s["reason"] for s in rejected} == {"too_long"}
    last = runner.invoke(app, ["sources", "--state", "pending", "--offset", "200"]).stdout.splitlines()
    assert len(last) == 25 and "of" not in last[-1]  # the last page says nothing more
    wrong = runner.invoke(app, ["sources", "--state", "done"])
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", wrong.output).split())  # typer's box, wrapped to the terminal
    assert wrong.exit_code == 2 and "'done' is not a state; one of: pending, downloaded" in said


def test_each_commands_stated_defaults_are_the_settings_types_own() -> None:
    """An option left out takes the settings type's default; the number its help states is that default."""
    import typer.main

    from generate.batch import GenerateSettings
    from ingest.youtube import IngestSettings
    from train.training import TrainSettings

    fields = {
        "submit": (IngestSettings(), {"sleep": "sleep_between_requests", "timeout": "socket_timeout",
                                      "downloads": "parallel_downloads"}),
        "train": (TrainSettings(), {}),
        "generate": (GenerateSettings(), {}),
    }  # fmt: skip
    command = typer.main.get_command(app)
    checked = 0
    for name, (defaults, renamed) in fields.items():
        for param in command.commands[name].params:  # type: ignore[attr-defined]
            stated = re.search(r"default ([0-9.]+)\)", param.help or "")
            if not stated:
                continue
            assert param.default is None, f"{name} --{param.name} repeats its default instead of leaving it out"
            value = getattr(defaults, renamed.get(param.name, param.name))
            assert float(stated.group(1)) == value, f"{name} --{param.name}: help says {stated.group(1)}, it is {value}"
            checked += 1
    assert checked == 11


def test_generate_refuses_an_unknown_key_palette_meter_or_energy_in_one_line(home: Home) -> None:
    """Refused before anything starts (no server, no model needed), naming what can be asked."""
    runner = CliRunner()
    for option, value, said in [
        ("--key", "H minor", "error: no key 'H minor': a key is a tonic (C, C#/Db, D,"),
        ("--instruments", "kazoo", "error: no palette 'kazoo': the palettes are 'piano trio', 'strings',"),
        ("--meter", "5", "error: no meter 5: the meters are 3/4 and 4/4"),
        ("--energy", "loud", "error: no energy 'loud': the energies are low, medium, high"),
        ("--tempo", "500", "error: a tempo is 30 to 240 beats a minute, not 500"),
    ]:
        result = runner.invoke(app, ["generate", option, value])
        assert result.exit_code == 2, (option, result.output)
        assert result.stderr.startswith(said) and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not home.batches_dir.exists() or not any(home.batches_dir.iterdir())


def test_the_prefect_form_offers_the_creator_controls() -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.pipeline import batch_flow

    schema = parameter_schema(batch_flow.fn).model_dump_for_openapi()
    fields = schema["properties"]
    assert {"tempo", "key", "meter", "energy", "instruments", "stems", "wav"} <= set(fields)
    energy = fields["energy"]
    choices = energy.get("enum") or schema["definitions"][energy["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert choices == ["low", "medium", "high"] and energy.get("default") == "medium"


def test_a_catalogue_that_is_not_a_database_is_one_line_whatever_the_command(tmp_path: Path) -> None:
    import subprocess

    from tests.flows.test_end_to_end import TUNESMITH, _users_shell

    home = tmp_path / "home"
    home.mkdir()
    (home / "catalogue.sqlite").write_bytes(b"this is not a database " * 100)
    env = {**_users_shell(), "TUNESMITH_HOME": str(home)}
    for command in (["status"], ["sources"], ["export", str(tmp_path / "out")]):
        run = subprocess.run([TUNESMITH, *command], env=env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 1 and run.stderr.count("\n") == 1, (command, run.stderr[-3000:])
        assert run.stderr.startswith(f"error: the catalogue {home / 'catalogue.sqlite'} cannot be read (file is not")
        assert run.stderr.rstrip().endswith("restore it from a backup, or move it aside and submit the playlists again")
