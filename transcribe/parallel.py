"""Pieces transcribed in parallel: one worker process per core, each loading basic-pitch's model once.

Workers are forked from a fork server (a clean process: no TensorFlow, database handles or threads
of the caller) and never import TensorFlow: basic-pitch's package imports it when installed, and a
transcription worker only needs onnxruntime. The server loads what every worker needs once
(``transcribe.worker_preload``; librosa alone takes ~2 s), so the workers start together and at once,
where spawned workers each loaded it, one after the other under the numba cache's lock; a second
batch in the same process starts warm, and a flow can start the server early (``warm_up``) so that its
imports happen while the flow downloads. The longest pieces go first, so the run does not end on one
long piece with the other cores idle. Results stream back in completion order, so the caller can record
each piece as soon as it is done.
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


def _worker_context() -> multiprocessing.context.BaseContext:
    """A fork server preloaded with what workers need; ``spawn`` where there is no fork server (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["transcribe.worker_preload"])  # type: ignore[attr-defined]
    return context


def warm_up(workers: int) -> None:
    """Start the workers' fork server now, in the background, so that its imports (~1.3 s on one core) are done
    by the time ``run_pieces`` needs it: a flow calls this before its downloads. Returns at once; does nothing
    where ``run_pieces`` would not fork workers (one worker, or no fork server on this platform)."""
    if workers <= 1 or "forkserver" not in multiprocessing.get_all_start_methods():
        return
    from multiprocessing import forkserver

    _worker_context()  # sets the preload before the server starts
    forkserver.ensure_running()


def _audio_size(job: PieceJob) -> int:
    try:
        return job.audio_path.stat().st_size
    except OSError:
        return 0


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
    At most ``2 * workers`` jobs are in flight, so a 500-piece playlist queues no more than that. With
    several workers the largest audio files are started first.
    """
    if workers <= 1 or len(jobs) <= 1:
        transcriber = _local_transcriber(settings)
        for job in jobs:
            yield process_piece(job, transcriber, filter_settings)
        return
    context = _worker_context()
    workers = min(workers, len(jobs))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(settings, filter_settings)
    ) as pool:
        queue = iter(sorted(jobs, key=_audio_size, reverse=True))
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
