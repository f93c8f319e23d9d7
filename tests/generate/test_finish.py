"""The finishing chain on the shipped base model's own samples: each step can be switched off, and does what
it names when it is on."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from generate.draft import Draft, plan_draft, sample_material, styles_to_draw
from generate.finish import Finished, Finishing, finish
from generate.guards import GuardSettings
from train.chords import in_use
from train.model import SavedModel
from train.originality import CopyIndex
from train.sampler import TOP_P
from train.tokens import PITCH_NAMES, key_name

BASE = Path(__file__).resolve().parents[2] / "train" / "base_model"


@pytest.fixture(scope="module")
def drafted() -> tuple[SavedModel, list[Draft]]:
    saved = SavedModel.load(BASE)
    rng = random.Random(7)
    drafts = [plan_draft(styles_to_draw(saved, None), minutes=0.3, loop=False, rng=rng) for _ in range(4)]
    sample_material(saved, drafts, [], temperature=1.0, top_p=TOP_P, rng=rng, loop=False)
    return saved, [d for d in drafts if d.form is not None]


def _finished(saved: SavedModel, draft: Draft, steps: Finishing) -> Finished:
    return finish(draft, saved, CopyIndex.build([], saved.tokenizer), GuardSettings(), steps)


def test_each_step_switches_off_by_name_and_the_default_leaves_select_and_fold_off() -> None:
    assert Finishing().on() == ["register", "lift", "form", "harmony", "cadence"]
    assert Finishing.plain().on() == []
    for step in Finishing.steps():
        assert step not in dataclasses.replace(Finishing(), **{step: False}).on()
        assert Finishing.of([step]).on() == [step]
    with pytest.raises(ValueError, match="no finishing step louder"):
        Finishing.of(["louder"])


def test_harmony_names_chords_of_the_styles_vocabulary_only_when_on(drafted: tuple[SavedModel, list[Draft]]) -> None:
    saved, drafts = drafted
    assert drafts, "the base model wrote no draft long enough"
    for draft in drafts:
        on = _finished(saved, draft, Finishing.of(["harmony"]))
        assert len(on.chords) >= draft.bars and {c.quality for c in on.chords} <= set(
            in_use(saved.config.style(draft.style).chords)
        )
        assert _finished(saved, draft, Finishing.plain()).chords == []


def test_the_cadence_ends_on_the_tonic_of_the_key_the_track_names(drafted: tuple[SavedModel, list[Draft]]) -> None:
    saved, drafts = drafted
    names = {name: pc for pc, name in enumerate(PITCH_NAMES)}
    ends_on_tonic = []
    for draft in drafts:
        with_cadence, without = (_finished(saved, draft, Finishing(cadence=on)) for on in (True, False))
        tonic_name, mode = key_name(with_cadence.key).split()
        last = max(n.step for n in with_cadence.piece.notes)
        classes = {(n.pitch - names[tonic_name]) % 12 for n in with_cadence.piece.notes if n.step == last}
        assert 0 in classes and (4 if mode == "minor" else 3) not in classes  # its tonic, in its mode
        assert with_cadence.key == without.key  # one key estimate, read before the last bar
        ends_on_tonic.append(with_cadence.piece != without.piece)
    assert any(ends_on_tonic)  # the cadence changed something: the model alone does not end on the tonic
