"""Progress of the stages as they run, for whoever watches.

Every flow reports each step it finishes (``report``): the Prefect UI shows it as a progress
artifact on the run's page, and a person who typed the command in a terminal sees it live
(``live``): one bar per stage (downloads, transcription, training epochs, tracks) with the last
step's note, then the command's summary.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Listener = Callable[[str, int, int, str], None]  # (stage, done, total, note)

_listeners: list[Listener] = []
_lock = threading.Lock()  # tasks report from the task runner's threads


def report(stage: str, done: int, total: int, note: str = "") -> None:
    """Tell every listener in this process that ``stage`` has done ``done`` of ``total`` steps."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(stage, done, total, note)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


@contextmanager
def live(console: Any = None) -> Iterator[None]:
    """A live display of every stage reported inside the block, on ``console`` (default: the terminal's stderr;
    nothing at all when stderr is not a terminal, so piped and logged output stays as it was)."""
    if console is None:
        if not sys.stderr.isatty():
            yield
            return
        from rich.console import Console

        console = Console(stderr=True)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    display = Progress(
        TextColumn("{task.description:<14}"), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"), console=console,
    )  # fmt: skip
    tasks: dict[str, Any] = {}

    def show(stage: str, done: int, total: int, note: str) -> None:
        if stage not in tasks:
            tasks[stage] = display.add_task(stage, total=total, note="")
        display.update(tasks[stage], completed=done, total=total, note=note[:48])

    with display, listening(show):
        yield
