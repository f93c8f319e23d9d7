"""Scheduled retraining against a real catalogue: skip when nothing changed, warm-start, promote only if not worse."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from db.catalogue import Catalogue
from db.models import ModelVersion, Playlist, PlaylistEntry, Source, SourceState, Transcription
from generate.batch import model_measures, training_pieces
from generate.guards import GuardSettings
from train.base import BASE_NAME, base_model_folder
from train.model import SavedModel
from train.pieces import PIECES_FILE, load_pieces_file
from train.tokens import decode
from train.training import TrainingError, TrainSettings, accepted_pieces, piece_tokens, train_from_catalogue

pytestmark = pytest.mark.slow

SETTINGS = TrainSettings(
    epochs=3, units=(32,), embedding=16, seq_len=48, stride=12, prototype_epochs=0, learning_rate=1e-2
)


def _accept(catalogue: Catalogue, midis: list[Path], style: str) -> None:
    """Accepted pieces as transcription leaves them (no beat grid stored: derived from the notes), one playlist."""
    with catalogue.sessions.begin() as session:
        playlist = Playlist(url=f"https://example.org/{style}", title=style, style=style)
        session.add(playlist)
        session.flush()
        for position, midi in enumerate(midis):
            source = Source(key=f"test:{style}:{midi.name}", url=f"https://example.org/{midi.name}")
            source.state = SourceState.ACCEPTED
            session.add(source)
            session.flush()
            session.add(Transcription(source_id=source.id, midi_path=str(midi), settings={}, note_count=100, tempo=90))
            session.add(PlaylistEntry(playlist_id=playlist.id, source_id=source.id, position=position))


def _current(catalogue: Catalogue) -> int | None:
    with catalogue.sessions() as session:
        return session.scalar(select(ModelVersion.id).where(ModelVersion.is_current.is_(True)))


def test_retraining_skips_warm_starts_and_promotes_only_a_model_that_is_not_worse(
    catalogue: Catalogue, chorale_midis: list[Path]
) -> None:
    models = catalogue.home.models_dir
    _accept(catalogue, chorale_midis[:3], "hymns")
    tokens = catalogue.home.tokens_dir
    first = train_from_catalogue(catalogue.sessions, models, SETTINGS, tokens_dir=tokens)
    assert len(list(tokens.rglob("*.tokens.gz"))) == 3  # each piece's tokens kept for the next run
    assert first.trained and first.promoted and _current(catalogue) == first.model_id
    assert first.metrics and first.metrics["warm_start_tokens"] == 0 and "current_model" not in first.metrics
    assert first.metrics["started_from"] is None  # the base model's layers differ from these settings'
    folder = Path(next(models.iterdir()))
    assert len(load_pieces_file(folder / PIECES_FILE)) == 3  # the index's pieces: exactly what it saw
    assert (folder / "train_settings.json").is_file() and (folder / "tokenizer.json").is_file()

    again = train_from_catalogue(catalogue.sessions, models, SETTINGS)
    assert not again.trained and "nothing to train" in again.message

    # New pieces arrive; a candidate that cannot learn (tiny learning rate, no warm start) must not replace it.
    _accept(catalogue, chorale_midis[3:5], "organ")
    with catalogue.sessions() as session:
        assert {p.style for p in accepted_pieces(session)} == {"hymns", "organ"}
    hopeless = TrainSettings(**{**SETTINGS.to_dict(), "learning_rate": 1e-7, "warm_start": False})
    worse = train_from_catalogue(catalogue.sessions, models, hopeless, tokens_dir=tokens)
    assert len(list(tokens.rglob("*.tokens.gz"))) == 5
    assert worse.trained and not worse.promoted and "kept model" in worse.message
    assert worse.metrics and worse.metrics["nll_per_note"] > worse.metrics["current_model"]["nll_per_note"]
    assert worse.metrics["current_model"]["notes"] == worse.metrics["notes"]  # the same notes, each model its tokens
    assert _current(catalogue) == first.model_id
    assert len(list(models.iterdir())) == 2  # its files are kept, for inspection

    # A batch made now, with no retrain that took the new pieces in, checks originality against the pieces
    # its model was trained on: the index saved beside the model, not whatever is accepted now.
    with catalogue.sessions() as session:
        version = session.get_one(ModelVersion, first.model_id)
        saved = SavedModel.load(Path(version.path))
        measures = model_measures(saved, Path(version.path))
    assert (Path(version.path) / "originality" / "suffixes.npy").is_file() and measures.index.pieces == 3
    assert measures.reference["pitch_range"].shape[0] == 3  # the quality report's side, from the same pieces
    trained, arrived = (decode(piece_tokens(m, None, saved.tokenizer), saved.tokenizer) for m in chorale_midis[2:4])
    assert measures.index.longest_copy(trained) == len({n.step for n in trained.notes})  # all of it, a copy
    assert measures.index.longest_copy(arrived) < GuardSettings().max_copy  # not trained on: not in the index

    # The same pieces again: that candidate already tried them, so the schedule does not retrain.
    assert not train_from_catalogue(catalogue.sessions, models, SETTINGS).trained

    # Forced, warm-started from the current model: it starts where the current model is, so after
    # three more epochs on the same validation pieces it is not worse, and it is promoted.
    better = train_from_catalogue(catalogue.sessions, models, SETTINGS, force=True)
    assert better.trained and better.metrics and better.metrics["warm_start_tokens"] > 100
    assert better.metrics["current_model"]["id"] == first.model_id
    assert better.metrics["nll_per_note"] < worse.metrics["nll_per_note"]
    assert better.promoted and _current(catalogue) == better.model_id


def test_a_small_catalogue_fine_tunes_the_shipped_base_model(catalogue: Catalogue, chorale_midis: list[Path]) -> None:
    """With no model yet, a few pieces start from the base model, whose pieces the originality guard then covers."""
    assert (base_model_folder() / "weights.h5").is_file(), "the base model ships in the repository"
    _accept(catalogue, chorale_midis[:4], "hymns")
    settings = TrainSettings(epochs=1, prototype_epochs=0, stride=96)  # the base model's layer sizes
    outcome = train_from_catalogue(catalogue.sessions, catalogue.home.models_dir, settings)
    assert outcome.metrics and outcome.metrics["started_from"] == BASE_NAME
    assert outcome.metrics["warm_start_tokens"] > 100 and outcome.metrics["lineage"] == [BASE_NAME]
    with catalogue.sessions() as session:
        version = session.get_one(ModelVersion, outcome.model_id)
        own, behind = training_pieces(Path(version.path), version.config["lineage"])
    assert len(own) == 4 and len(behind) > 1000  # the base's corpus pieces are checked against too
    measures = model_measures(SavedModel.load(Path(version.path)), Path(version.path))
    assert measures.index.pieces == len(behind)  # saved at training, with the base's pieces in it
    scratch = TrainSettings(epochs=1, prototype_epochs=0, stride=96, base_below=0)
    assert (
        train_from_catalogue(catalogue.sessions, catalogue.home.models_dir, scratch, force=True).metrics["started_from"]
        == outcome.model_id
    )  # once a model exists, the next warm-starts from it, not from the base


def test_settings_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="validation_share"):
        TrainSettings(validation_share=5)
    with pytest.raises(ValueError, match="LSTM layer"):
        TrainSettings(units=())
    with pytest.raises(TrainingError, match="at least 2"):
        from train.training import fit

        fit([], SETTINGS)
