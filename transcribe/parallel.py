"""Pieces transcribed in parallel: one worker process per core, each loading basic-pitch's model once.

Workers are started with ``spawn`` (no inherited TensorFlow or database handles) and never import
TensorFlow: basic-pitch's package imports it when installed, and a transcription worker only
needs onnxruntime. Results stream back in completion order, so the caller can record each
piece as soon as it is done.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import lru_cache

from transcribe.analysis import FilterSettings
from transcribe.basic_pitch import Transcriber, TranscriptionSettings
from transcribe.piece import PieceJob, PieceResult, process_piece

_worker: tuple[Transcriber, FilterSettings] | None = None


def default_workers() -> int:
    """One worker per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _start_worker(settings: TranscriptionSettings, filter_settings: FilterSettings) -> None:
    global _worker
    sys.modules.setdefault("tensorflow", None)  # type: ignore[arg-type]  # makes `import tensorflow` fail fast
    _worker = (Transcriber(settings, threads=1), filter_settings)


def _run_in_worker(job: PieceJob) -> PieceResult:
    assert _worker is not None, "worker not initialised"
    transcriber, filter_settings = _worker
    return process_piece(job, transcriber, filter_settings)


@lru_cache(maxsize=4)
def _local_transcriber(settings: TranscriptionSettings) -> Transcriber:
    return Transcriber(settings)


def run_pieces(
    jobs: Sequence[PieceJob],
    settings: TranscriptionSettings,
    filter_settings: FilterSettings,
    *,
    workers: int = 1,
) -> Iterator[PieceResult]:
    """Process ``jobs``; yield each result as it completes.

    With ``workers <= 1`` (or a single job) everything runs in this process with a cached model.
    At most ``2 * workers`` jobs are in flight, so a 500-piece playlist queues no more than that.
    """
    if workers <= 1 or len(jobs) <= 1:
        transcriber = _local_transcriber(settings)
        for job in jobs:
            yield process_piece(job, transcriber, filter_settings)
        return
    context = multiprocessing.get_context("spawn")
    workers = min(workers, len(jobs))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(settings, filter_settings)
    ) as pool:
        queue = iter(jobs)
        running: set[Future[PieceResult]] = set()
        for job in queue:
            running.add(pool.submit(_run_in_worker, job))
            if len(running) >= 2 * workers:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                next_job = next(queue, None)
                if next_job is not None:
                    running.add(pool.submit(_run_in_worker, next_job))
