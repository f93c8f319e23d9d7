"""transcription beat grid

Each transcription keeps its tracked beat times, meter and bar phase (``grid``), which training
quantises notes against. Rows made before this revision have none; ``transcribe.catalogue.backfill_grids``
re-derives them from the audio on disk (or from the MIDI when the audio is gone), with no download.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transcriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grid", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transcriptions", schema=None) as batch_op:
        batch_op.drop_column("grid")
