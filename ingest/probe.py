"""What a downloaded file really holds, asked of ffprobe (the same ffmpeg that decodes it later)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from db.models import Reason
from ingest.errors import DownloadError


@dataclass(frozen=True)
class AudioProbe:
    duration: float  # seconds


def probe_audio(path: Path, *, timeout: float = 60.0) -> AudioProbe:
    """The first audio stream of ``path`` and the container's duration.

    Raises:
        DownloadError: ``not_audio`` when ffprobe finds no decodable audio stream (an HTML error
            page saved as .mp3, an image, a file cut off inside its header).
    """
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise RuntimeError("ffprobe not found: install ffmpeg (the README's first command does)")
    command = [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        info = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        info = {}
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if result.returncode != 0 or not streams:
        why = (result.stderr or "no audio stream").strip().splitlines()[-1:] or ["no audio stream"]
        raise DownloadError(f"{path.name} is not audio: {why[0]}", reason=Reason.NOT_AUDIO)
    duration = _packet_duration(ffprobe, path, timeout)
    if duration is None or duration <= 0:
        raise DownloadError(f"{path.name}: ffprobe found an audio stream with no duration", reason=Reason.NOT_AUDIO)
    return AudioProbe(duration=duration)


def _packet_duration(ffprobe: str, path: Path, timeout: float) -> float | None:
    """The end of the last audio packet actually in the file.

    The container's own duration can come from a header written before the file was cut short
    (an MP3's Xing frame), so a truncated upload would pass as whole; packets cannot lie.
    """
    command = [ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pts_time,duration_time"]
    result = subprocess.run([*command, "-of", "csv=p=0", str(path)], capture_output=True, text=True, timeout=timeout)
    ends = []
    for line in result.stdout.splitlines():
        start, _, length = line.partition(",")
        if (begin := _float(start)) is not None:
            ends.append(begin + (_float(length) or 0.0))
    return max(ends) if ends else None


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
