"""Scheduled retraining against a real catalogue: skip when nothing changed, warm-start, promote only if not worse."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from db.catalogue import Catalogue
from db.models import ModelVersion, Playlist, PlaylistEntry, Source, SourceState, Transcription
from train.training import TrainSettings, accepted_pieces, train_from_catalogue

pytestmark = pytest.mark.slow

SETTINGS = TrainSettings(epochs=3, units=32, embedding=16, seq_len=32, stride=8, min_count=1, prototype_epochs=0)


def _accept(catalogue: Catalogue, midis: list[Path], style: str) -> None:
    """Accepted pieces as transcription leaves them, listed by one playlist of ``style``."""
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
    first = train_from_catalogue(catalogue.sessions, models, SETTINGS)
    assert first.trained and first.promoted and _current(catalogue) == first.model_id
    assert first.metrics and first.metrics["warm_start_tokens"] == 0 and "current_model" not in first.metrics

    again = train_from_catalogue(catalogue.sessions, models, SETTINGS)
    assert not again.trained and "nothing to train" in again.message

    # New pieces arrive; a candidate that cannot learn (tiny learning rate, no warm start) must not replace it.
    _accept(catalogue, chorale_midis[3:5], "organ")
    with catalogue.sessions() as session:
        assert {p.style for p in accepted_pieces(session)} == {"hymns", "organ"}
    hopeless = TrainSettings(**{**SETTINGS.to_dict(), "learning_rate": 1e-7, "warm_start": False})
    worse = train_from_catalogue(catalogue.sessions, models, hopeless)
    assert worse.trained and not worse.promoted and "kept model" in worse.message
    assert worse.metrics and worse.metrics["val_loss"] > worse.metrics["current_model"]["val_loss"]
    assert _current(catalogue) == first.model_id
    assert Path(models).is_dir() and len(list(models.iterdir())) == 2  # its files are kept, for inspection

    # The same pieces again: that candidate already tried them, so the schedule does not retrain.
    assert not train_from_catalogue(catalogue.sessions, models, SETTINGS).trained

    # Forced, warm-started from the current model: promoted when not worse on the same validation pieces.
    better = train_from_catalogue(catalogue.sessions, models, SETTINGS, force=True)
    assert better.trained and better.metrics and better.metrics["warm_start_tokens"] > 10
    assert better.metrics["current_model"]["id"] == first.model_id
    assert better.promoted == (better.metrics["val_loss"] <= better.metrics["current_model"]["val_loss"] + 1e-6)
    assert _current(catalogue) == (better.model_id if better.promoted else first.model_id)
