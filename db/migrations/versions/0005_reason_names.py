"""one name per rejection rule

"noise" named two filter rules (spectral flatness and note density), and "too_short" both a file
shorter than the ingest minimum and one holding under half a second of audio. Each rule now has its
own name (``db.models.Reason``); a source rejected under an old name is renamed by the rule its stored
detail shows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (old name, the detail's pattern, new name); the details are what transcribe.analysis.judge and
# transcribe.basic_pitch wrote.
RENAMES = [
    ("noise", "spectral flatness %", "noisy_spectrum"),
    ("noise", "% notes/s", "too_dense"),
    ("too_short", "% holds less than half a second of audio", "empty_audio"),
]


def upgrade() -> None:
    for old, detail, new in RENAMES:
        op.execute(f"UPDATE sources SET reason = '{new}' WHERE reason = '{old}' AND reason_detail LIKE '{detail}'")


def downgrade() -> None:
    for old, _, new in RENAMES:
        op.execute(f"UPDATE sources SET reason = '{old}' WHERE reason = '{new}'")
