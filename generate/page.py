"""A batch's page: ``index.html`` beside its tracks, to listen and choose without any other tool.

Every track gets its audio player, piano roll, key, tempo, meter, length, instruments (and why), energy and style
(and its form, when the manifest plans one) and its downloads (MIDI, MP3, WAV, stems); the batch its
licence and model. Only relative links to files in the folder and inline CSS: the page works opened
from disk (file://), from any static server, and after ``tunesmith pull`` copies the folder elsewhere.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

PAGE = "index.html"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
header p { margin: 0.2rem 0; }
article { border-top: 1px solid #ccc; padding: 1rem 0; }
article h2 { font-size: 1.1rem; margin: 0 0 0.5rem; }
audio { width: 100%; }
img { width: 100%; height: auto; border: 1px solid #eee; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0.5rem 0; }
dt { color: #666; }
dd { margin: 0; }
"""


def _length(seconds: float) -> str:
    minutes, rest = divmod(round(float(seconds)), 60)
    return f"{minutes}:{rest:02d}"


def _form(form: dict[str, Any] | None) -> str | None:
    """The plan with each section's bars, e.g. ``A (4) A' (4) B (6) A (4)``; a loop says so."""
    if not form:
        return None
    sections = " ".join(f"{s['label']} ({s['bars']})" for s in form.get("sections", []))
    return f"{sections}, looping" if form.get("loop") else sections


def _instruments(track: dict[str, Any]) -> str | None:
    """The palette's name, and why it was chosen (asked for, or what the style's sources sound like)."""
    name = (track.get("instruments") or {}).get("name")
    why = track.get("instruments_why")
    return f"{name} ({why})" if name and why else name


def _track(track: dict[str, Any]) -> str:
    facts = {
        "key": track.get("key"),
        "tempo": f"{track['tempo']:g} bpm" if track.get("tempo") else None,
        "meter": f"{track['meter']} beats a bar" if track.get("meter") else None,
        "length": f"{_length(track['duration'])} ({track['bars']} bars)" if track.get("duration") else None,
        "form": _form(track.get("form")),
        "instruments": _instruments(track),
        "energy": track.get("energy"),
        "style": track.get("style"),
    }
    rows = "".join(f"<dt>{escape(name)}</dt><dd>{escape(str(value))}</dd>" for name, value in facts.items() if value)
    mp3, png, mid = (escape(str(track[k]), quote=True) for k in ("mp3", "pianoroll", "midi"))
    return (
        f'<article id="track-{int(track["position"])}">'
        f"<h2>{escape(str(track['title']))}</h2>"
        f'<audio controls preload="none" src="{mp3}"></audio>'
        f"<dl>{rows}</dl>"
        f'<img src="{png}" alt="piano roll of {escape(str(track["title"]), quote=True)}">'
        f'<p><a href="{mp3}" download>MP3</a> · <a href="{mid}" download>MIDI</a>{_downloads(track)}</p>'
        "</article>"
    )


def _downloads(track: dict[str, Any]) -> str:
    """The mix's WAV and each stem (MP3, and WAV when made), as download links after the mix's own."""
    links = f' · <a href="{escape(str(track["wav"]), quote=True)}" download>WAV</a>' if track.get("wav") else ""
    wavs = track.get("stems_wav") or {}
    for name, mp3 in (track.get("stems") or {}).items():
        links += f' · stem {escape(str(name))}: <a href="{escape(str(mp3), quote=True)}" download>MP3</a>'
        if name in wavs:
            links += f' <a href="{escape(str(wavs[name]), quote=True)}" download>WAV</a>'
    return links


def render_page(manifest: dict[str, Any], name: str) -> str:
    """The page's HTML for a batch ``manifest`` (as written to manifest.json) in the folder ``name``."""
    tracks = "".join(_track(track) for track in manifest["tracks"])
    return (
        "<!doctype html>"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(name)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body>"
        f"<header><h1>{escape(name)}</h1>"
        f"<p><strong>Licence:</strong> {escape(str(manifest['licence']))}</p>"
        f"<p>{len(manifest['tracks'])} tracks by model version {escape(str(manifest['model_id']))}, "
        f'made {escape(str(manifest["created"]))}; details in <a href="manifest.json">manifest.json</a>.</p>'
        f"</header><main>{tracks}</main></body></html>\n"
    )


def write_page(folder: Path, manifest: dict[str, Any], name: str) -> Path:
    path = folder / PAGE
    path.write_text(render_page(manifest, name), encoding="utf-8")
    return path
