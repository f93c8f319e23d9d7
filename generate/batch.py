"""Make a batch: draft every track, sample them all at once, finish and guard each, render, catalogue."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db.models import Batch, Track
from db.queries import current_model
from generate.controls import Controls
from generate.draft import Draft, DraftError, plan_draft, prompt_head, prompt_ids, sample_material, styles_to_draw
from generate.finish import Finished, Finishing, finish
from generate.guards import GuardSettings
from generate.page import write_page
from generate.quality import quality_report
from generate.render import LICENCE, render_track
from train.model import ModelFormatError, SavedModel
from train.originality import CopyIndex
from train.pieces import PIECES_FILE, load_pieces_file, pieces_behind
from train.reference import REFERENCE_FILE, Reference, load_reference
from train.sampler import TOP_P
from train.tokens import GridPiece

log = logging.getLogger(__name__)

__all__ = ["LICENCE", "GenerateSettings", "GenerationError", "generate_batch"]


class GenerationError(Exception):
    """No model to generate with, a model or prompt that cannot be read, or no track passed the guards."""


@dataclass(frozen=True)
class GenerateSettings:
    count: int = 4
    minutes: float = 0.75
    temperature: float = 1.0
    top_p: float = TOP_P  # the sampler's lift is calibrated at this nucleus (train.calibrate)
    max_rounds: int = 6  # sampling rounds before giving up on the missing tracks
    seed: int | None = None
    style: str | None = None  # a playlist's style; None draws one per track, as often as the training data has it
    prompt_midi: str | None = None  # a MIDI file whose tokens start every track (the tracks continue it)
    loop: bool = False  # tracks whose last bar leads back into the first, cut to repeat without a seam
    stems: bool = True  # each track's parts also alone, summing to the mix (generate.render)
    wav: bool = False  # every track and stem also as a WAV
    candidates: int = 4  # drafts sampled per track when finishing selects among them (generate.finish)
    guards: GuardSettings = field(default_factory=GuardSettings)
    finishing: Finishing = field(default_factory=Finishing)  # which finishing steps run (generate.finish)
    controls: Controls = field(default_factory=Controls)  # a creator's tempo, key, meter, energy, instruments

    def __post_init__(self) -> None:
        if self.count < 1 or self.max_rounds < 1 or self.candidates < 1:
            raise ValueError("a batch needs at least one track, one sampling round and one draft per track")
        if not 0 < self.minutes <= 60 or self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise ValueError("minutes must lie in (0, 60], temperature above 0 and top_p in (0, 1]")

    @property
    def drafts_per_track(self) -> int:
        return self.candidates if self.finishing.select else 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BatchOutcome:
    batch_id: int
    folder: Path
    tracks: int
    rejected: dict[str, int]
    notes: list[str] = field(default_factory=list)  # what was asked that the style's own pieces never do


def move_into_place(work: Path, parent: Path, name: str) -> Path:
    """Rename the finished folder ``work`` to ``parent/name``, or ``name-2``, ``name-3``... if a batch took it.

    Two batches finished in the same second (a scheduled one and one typed by hand) each keep their
    folder: a rename onto an existing batch fails, and the next name is tried.
    """
    for attempt in range(1, 1000):
        target = parent / (name if attempt == 1 else f"{name}-{attempt}")
        if target.exists():
            continue
        try:
            work.rename(target)
        except OSError:
            if target.exists():  # taken between the check and the rename
                continue
            raise
        return target
    raise GenerationError(f"no free folder name for {name} in {parent}")


def training_pieces(model_folder: Path, lineage: list[str]) -> tuple[list[list[str]], list[Sequence[str]]]:
    """(the model's own catalogue pieces, every piece behind it): the originality guard reads the second, which
    adds the base model's pieces when the model descends from it."""
    own = load_pieces_file(model_folder / PIECES_FILE)
    return own, pieces_behind(own, lineage)


@dataclass(frozen=True)
class Measures:
    """What a batch checks and measures its tracks against, saved beside its model at training."""

    index: CopyIndex
    reference: Reference


def model_measures(saved: SavedModel, model_folder: Path) -> Measures:
    """The originality index and quality reference saved beside the model at training (memory-mapped, so a
    batch costs the same whatever the catalogue's size).

    Raises:
        GenerationError: either is missing or unreadable.
    """
    index = CopyIndex.load(model_folder, saved.tokenizer)
    reference = load_reference(model_folder / REFERENCE_FILE)
    if index is None or reference is None:
        missing = "originality index" if index is None else "quality reference"
        raise GenerationError(
            f"the model in {model_folder} has no readable {missing}: retrain with `tunesmith train --force`"
        )
    return Measures(index, reference)


def load_current(sessions: sessionmaker[Session]) -> tuple[int, Path, SavedModel, Measures]:
    """The current model's id, folder, weights and measures.

    Raises:
        GenerationError: there is none, or its files cannot be read.
    """
    with sessions.begin() as session:
        version = current_model(session)
        if version is None:
            raise GenerationError("no trained model yet: run `tunesmith train` first")
        model_id, folder = version.id, Path(version.path)
    try:
        saved = SavedModel.load(folder)
    except ModelFormatError as error:
        raise GenerationError(f"{error}: retrain with `tunesmith train --force`") from error
    return model_id, folder, saved, model_measures(saved, folder)


def generate_batch(
    sessions: sessionmaker[Session],
    batches_dir: Path,
    settings: GenerateSettings,
    *,
    on_track: Callable[[int, int, str], None] | None = None,
) -> BatchOutcome:
    """Sample, finish, guard and render ``settings.count`` tracks with the current model and record the batch.

    ``on_track(done, count, note)`` is called after each track is rendered. The batch folder is assembled
    under a temporary name and renamed when complete; the batch and its tracks are catalogued in one
    transaction.

    Raises:
        GenerationError: there is no current model, or the guards rejected too much.
    """
    model_id, _, saved, measures = load_current(sessions)
    if settings.seed is None:  # draw one and record it, so any batch can be made again
        settings = dataclasses.replace(settings, seed=random.SystemRandom().randrange(2**31))
    rng = random.Random(settings.seed)
    steps = settings.finishing
    controls = settings.controls
    try:
        styles = styles_to_draw(saved, settings.style)
        prompt = prompt_ids(saved, settings.prompt_midi, controls)
    except DraftError as error:
        raise GenerationError(str(error)) from error
    head = prompt_head(saved, prompt)
    notes = [note for record in styles.values() for note in controls.unusual(record)]
    for note in notes:
        log.info("%s", note)

    batches_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix=f".batch-{stamp}-", dir=batches_dir))
    manifest: list[dict[str, Any]] = []
    kept: list[GridPiece] = []
    rejected: Counter[str] = Counter()
    drafted = 0
    try:
        for round_number in range(settings.max_rounds):
            missing = settings.count - len(manifest)
            if missing <= 0:
                break
            temperature = settings.temperature * (1 + 0.1 * round_number)  # hotter after rejections
            tracks = [
                plan_draft(
                    styles, minutes=settings.minutes, loop=settings.loop, rng=rng, prompt_head=head, controls=controls
                )  # fmt: skip
                for _ in range(missing)
            ]
            per_track = settings.drafts_per_track
            drafts = [track.candidate() for track in tracks for _ in range(per_track)]  # sampled apart
            sample_material(
                saved, drafts, prompt, temperature=temperature, top_p=settings.top_p, rng=rng, loop=settings.loop,
                lifted=steps.lift, registered=steps.register, planned=steps.form, onsets=controls.level.onsets,
            )  # fmt: skip
            drafted += len(drafts)
            for number in range(len(tracks)):
                chosen = _choose(drafts[number * per_track : (number + 1) * per_track], saved, measures, settings,
                                 rejected)  # fmt: skip
                if chosen is None:
                    continue
                kept.append(chosen.piece)
                entry = render_track(work, len(manifest) + 1, chosen, saved, rng=rng, model_id=model_id, stamp=stamp,
                                     stems=settings.stems, wav=settings.wav, controls=controls)  # fmt: skip
                manifest.append(
                    entry
                    | {"style": chosen.draft.style, "chords": [c.name for c in chosen.chords],
                       "guards": chosen.report.to_dict(), "temperature": round(temperature, 3),
                       "aim": chosen.draft.aim.to_dict() if chosen.draft.aim else None,
                       "aim_distance": None if chosen.distance == np.inf else round(chosen.distance, 3)}
                )  # fmt: skip
                if on_track is not None:
                    on_track(len(manifest), settings.count, f"{manifest[-1]['title']} ({chosen.draft.style})")
        if not manifest:
            raise GenerationError(f"every sampled track was rejected ({dict(rejected)}); retrain on more pieces")
        quality = quality_report(measures.reference, kept, saved.tokenizer)
        summary = {
            "model_id": model_id,
            "created": stamp,
            "licence": LICENCE,
            "settings": settings.to_dict(),
            "finishing": steps.on(),
            "notes": notes,
            "drafts": drafted,
            "rejected": dict(rejected),
            "longest_copy": max(item["guards"]["longest_copy"] for item in manifest),
            "quality": quality,
            "tracks": manifest,
        }
        (work / "manifest.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        write_page(work, summary, f"tunesmith batch {stamp}")
        folder = move_into_place(work, batches_dir, f"batch-{stamp}")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    batch_id = _catalogue(sessions, folder, model_id, settings, summary)
    return BatchOutcome(batch_id, folder, len(manifest), dict(rejected), notes)


def _choose(
    drafts: list[Draft], saved: SavedModel, measures: Measures, settings: GenerateSettings, rejected: Counter[str]
) -> Finished | None:
    """Of a track's drafts, the finished one that passes the guards and lies nearest its aim (the first that
    passes when finishing does not select); None when none passes. Every rejection is counted by its reason."""
    chosen: Finished | None = None
    for draft in drafts:
        if draft.form is None:
            rejected["too_short"] += 1
            continue
        finished = finish(draft, saved, measures.index, settings.guards, settings.finishing,
                          key=settings.controls.key_number)  # fmt: skip
        if finished.report.reason:
            rejected[finished.report.reason] += 1
        elif chosen is None or finished.distance < chosen.distance:
            chosen = finished
    return chosen


def _catalogue(
    sessions: sessionmaker[Session], folder: Path, model_id: int, settings: GenerateSettings, summary: dict[str, Any]
) -> int:
    """The batch and its tracks in one transaction; the folder is removed if that fails (nothing half-made)."""
    try:
        with sessions.begin() as session:
            report = {k: summary[k] for k in ("rejected", "longest_copy", "quality", "finishing")}
            batch = Batch(model_id=model_id, folder=str(folder), params=settings.to_dict(), report=report)
            session.add(batch)
            session.flush()
            for item in summary["tracks"]:
                session.add(
                    Track(
                        batch_id=batch.id,
                        position=item["position"],
                        title=item["title"],
                        mp3_path=str(folder / item["mp3"]),
                        midi_path=str(folder / item["midi"]),
                        duration=item["duration"],
                        metrics=item,
                    )
                )
            return batch.id
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
