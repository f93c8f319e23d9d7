"""The catalogue's pieces most like a given one, by their audio features (cosine similarity).

Each piece's stored features become one vector (``transcribe.features.similarity_vector``);
every dimension is standardised across the catalogue's pieces so that none dominates by its
units, then pieces are ranked by cosine similarity to the query piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Source, Transcription
from transcribe.features import similarity_vector


class SimilarityError(Exception):
    """The piece asked about is not in the catalogue or has no features yet."""


@dataclass(frozen=True)
class Neighbour:
    source_id: int
    title: str | None
    state: str
    similarity: float


def most_similar(session: Session, source_id: int, n: int = 5) -> list[Neighbour]:
    """The ``n`` pieces most similar to ``source_id`` (accepted or not), best first.

    Raises:
        SimilarityError: ``source_id`` is unknown or was never transcribed.
    """
    rows = session.execute(select(Source, Transcription).join(Transcription)).all()
    vectors: dict[int, np.ndarray] = {}
    sources: dict[int, Source] = {}
    for source, transcription in rows:
        audio = (transcription.features or {}).get("audio")
        if audio:
            vectors[source.id] = similarity_vector(audio)
            sources[source.id] = source
    if source_id not in vectors:
        known = session.get(Source, source_id)
        why = (
            "is not in the catalogue (`tunesmith sources` lists them)"
            if known is None
            else f"has no audio features yet (state {known.state.value}): a transcribed source has them"
        )
        raise SimilarityError(f"source {source_id} {why}")
    ids = sorted(vectors)
    matrix = np.stack([vectors[i] for i in ids])
    spread = matrix.std(axis=0)
    matrix = (matrix - matrix.mean(axis=0)) / np.where(spread > 1e-9, spread, 1.0)
    norms = np.linalg.norm(matrix, axis=1)
    query = matrix[ids.index(source_id)]
    scores = matrix @ query / np.maximum(norms * np.linalg.norm(query), 1e-12)
    ranked = sorted((i for i in range(len(ids)) if ids[i] != source_id), key=lambda i: -scores[i])[:n]
    return [
        Neighbour(ids[i], sources[ids[i]].title, sources[ids[i]].state.value, round(float(scores[i]), 4))
        for i in ranked
    ]
