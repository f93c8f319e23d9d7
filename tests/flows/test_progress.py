"""The live display a person sees at a terminal while a command runs."""

from __future__ import annotations

import io

from rich.console import Console

from flows.progress import listening, live, report


def test_the_live_display_shows_each_stage_reported_inside_it() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120, color_system=None)
    with live(console):
        for done in range(1, 4):
            report("downloads", done, 3, f"source {done}: downloaded")
        report("transcription", 1, 3, "source 1: accepted")
    shown = screen.getvalue()
    assert "downloads" in shown and "3/3" in shown and "source 3: downloaded" in shown
    assert "transcription" in shown and "1/3" in shown
    report("downloads", 4, 4)  # after the block nothing listens, and nothing fails


def test_without_a_terminal_nothing_is_drawn(capsys: object) -> None:
    seen: list[tuple[str, int, int, str]] = []
    with live(), listening(lambda *event: seen.append(event)):  # pytest's stderr is not a terminal
        report("tracks", 1, 2, "track 1")
    assert seen == [("tracks", 1, 2, "track 1")]
    assert capsys.readouterr().err == ""  # type: ignore[attr-defined]
