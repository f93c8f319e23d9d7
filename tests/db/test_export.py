"""The catalogue exported as a dataset: Parquet and JSONL that pyarrow and json read back, every MIDI file
re-opened, splits disjoint by source and the same on every export, and nothing rewritten when nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from db.catalogue import Catalogue
from db.export import ExportFilter, export_dataset, split_of
from db.models import Playlist, PlaylistEntry, Source, SourceState, Transcription
from transcribe.midi import read_midi


def _catalogue_of(catalogue: Catalogue, midis: list[Path]) -> None:
    with catalogue.sessions.begin() as session:
        playlist = Playlist(url="https://example.org/chorales", title="Chorales", style="chorales")
        session.add(playlist)
        session.flush()
        for i, midi in enumerate(midis):
            state = SourceState.REJECTED if i == 0 else SourceState.ACCEPTED
            source = Source(key=f"test:{i}", url=f"https://example.org/{i}", title=f"Chorale {i}", state=state,
                            reason="repetitive" if i == 0 else None, content_hash=f"{i:02d}" * 32,
                            license="Creative Commons Attribution license" if i % 2 else None)  # fmt: skip
            session.add(source)
            session.flush()
            session.add(Transcription(source_id=source.id, midi_path=str(midi), settings={"onset": 0.5},
                                      note_count=100 + i, tempo=90.0, features={"duration": 60.0 + i, "key": "G major"},
                                      grid={"meter": 4, "beats": [0.0, 0.6, 1.2]}))  # fmt: skip
            session.add(PlaylistEntry(playlist_id=playlist.id, source_id=source.id, position=i))


def test_the_export_loads_with_pyarrow_and_keeps_its_splits(
    catalogue: Catalogue, chorale_midis: list[Path], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    _catalogue_of(catalogue, chorale_midis)
    out = tmp_path / "dataset"
    first = export_dataset(catalogue.sessions, out)
    assert first.pieces == len(chorale_midis) - 1 and first.rejections == {"repetitive": 1}
    table = pq.read_table(out / "metadata.parquet").to_pylist()
    lines = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["id"] for r in table] == [r["id"] for r in lines] and len(table) == first.pieces
    row = table[0]
    assert row["styles"] == ["chorales"] and row["playlists"] == ["https://example.org/chorales"]
    assert (row["meter"], row["beats"], row["key"], row["tempo"]) == (4, 3, "G major", 90.0)
    for r in table:  # every MIDI file is there and reads back
        assert read_midi(out / r["midi"]) and r["split"] in ("train", "validation", "test")
    assert len({r["id"] for r in table}) == len(table)
    card = (out / "README.md").read_text()
    assert f"{first.pieces} pieces" in card and "| repetitive | 1 |" in card and "| chorales |" in card

    again = export_dataset(catalogue.sessions, out)
    assert again.written == []  # nothing changed: nothing written
    assert [r["split"] for r in pq.read_table(out / "metadata.parquet").to_pylist()] == [r["split"] for r in table]

    with catalogue.sessions.begin() as session:  # a duplicate shares its original's hash, so its split
        original = session.get_one(Source, 2)
        twin = Source(key="test:twin", url="https://example.org/twin", content_hash=original.content_hash)
        assert split_of(twin) == split_of(original)

    only = export_dataset(catalogue.sessions, tmp_path / "cc", ExportFilter(licence="creative commons"))
    assert only.pieces == sum(1 for i in range(1, len(chorale_midis)) if i % 2)
    with_rejected = export_dataset(catalogue.sessions, tmp_path / "all", ExportFilter(rejected=True))
    assert with_rejected.pieces == len(chorale_midis)


@pytest.mark.parametrize("share", [0.8])
def test_splits_take_their_stated_shares(share: float) -> None:
    sources = [Source(key=f"k{i}", url="u", content_hash=f"{i:064x}") for i in range(4000)]
    counts = {
        name: sum(split_of(s) == name for s in sources) / len(sources) for name in ("train", "validation", "test")
    }
    assert abs(counts["train"] - share) < 0.03 and abs(counts["validation"] - 0.1) < 0.02


def test_a_piece_whose_midi_file_is_gone_is_named_in_one_line(
    catalogue: Catalogue, chorale_midis: list[Path], tmp_path: Path
) -> None:
    import shutil
    import subprocess
    import sys

    copies = []
    for midi in chorale_midis[:3]:
        shutil.copy(midi, tmp_path / midi.name)
        copies.append(tmp_path / midi.name)
    _catalogue_of(catalogue, copies)
    copies[1].unlink()  # an accepted piece's file deleted by hand
    tunesmith = str(Path(sys.executable).with_name("tunesmith"))
    run = subprocess.run([tunesmith, "export", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: 1 catalogued pieces left out, their MIDI file is gone: {copies[1]} "
                        "(restore them from a backup)"]  # fmt: skip
    assert "Traceback" not in run.stderr and json.loads(run.stdout)["pieces"] == 1
