"""The batch page: players, pictures and facts for every track, and nothing that needs the network."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from generate.page import render_page


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, list[str]] = {"audio": [], "img": [], "a": [], "link": [], "script": []}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        target = found.get("src") or found.get("href")
        if tag in self.links and target:
            self.links[tag].append(target)


def page_links(path: Path) -> dict[str, list[str]]:
    """What a batch page points at, by tag (audio and img sources, anchors, stylesheets, scripts)."""
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.links


def _manifest() -> dict:
    track = {
        "position": 1, "title": 'tunesmith <script>alert("x")</script> #1', "mp3": "01.mp3", "midi": "01.mid",
        "pianoroll": "01.png", "duration": 125.4, "tempo": 96.3, "key": "G major", "meter": 3, "bars": 64,
        "instruments": {"name": "strings"}, "style": "fiddle", "form": {
            "plan": "A B A", "theme_bars": 8, "loop": False,
            "sections": [{"label": "A", "start": 0, "bars": 8}, {"label": "B", "start": 8, "bars": 48},
                         {"label": "A", "start": 56, "bars": 8}],
        },
        "wav": "01.wav", "stems": {"melody": "stems/01-melody.mp3", "bass": "stems/01-bass.mp3"},
        "stems_wav": {"melody": "stems/01-melody.wav", "bass": "stems/01-bass.wav"},
    }  # fmt: skip
    return {"model_id": 7, "created": "20261123-081047", "licence": "CC0 1.0", "tracks": [track]}


def test_the_page_shows_every_fact_escapes_titles_and_links_only_to_its_own_files(tmp_path: Path) -> None:
    html = render_page(_manifest(), "batch-20261123-081047")
    for fact in ("G major", "96.3 bpm", "3 beats a bar", "2:05 (64 bars)", "A (8) B (48) A (8)", "strings", "CC0 1.0"):
        assert fact in html, fact
    assert "<script>" not in html and "&lt;script&gt;" in html
    (tmp_path / "index.html").write_text(html, encoding="utf-8")
    links = page_links(tmp_path / "index.html")
    assert links["audio"] == ["01.mp3"] and links["img"] == ["01.png"]
    assert links["a"] == ["manifest.json", "01.mp3", "01.mid", "01.wav", "stems/01-melody.mp3", "stems/01-melody.wav",
                          "stems/01-bass.mp3", "stems/01-bass.wav"]  # fmt: skip
    assert not links["link"] and not links["script"]  # no stylesheet or script from anywhere
    assert not any("//" in link for tag in links.values() for link in tag)  # nothing off the folder


def test_two_batches_finished_in_the_same_second_keep_their_own_folders(tmp_path: Path) -> None:
    from generate.batch import move_into_place

    folders = []
    for n in range(3):
        work = tmp_path / f".work-{n}"
        work.mkdir()
        (work / "manifest.json").write_text(str(n))
        folders.append(move_into_place(work, tmp_path, "batch-20261123-081047"))
    assert [f.name for f in folders] == ["batch-20261123-081047", "batch-20261123-081047-2", "batch-20261123-081047-3"]
    assert [(f / "manifest.json").read_text() for f in folders] == ["0", "1", "2"]
