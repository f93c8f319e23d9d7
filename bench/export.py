"""Export benchmark: `tunesmith export` of a catalogue of 1,000 and 10,000 accepted pieces, in bounded memory.

Each catalogue is built as ``bench/scale.py`` builds it (a loopback playlist expanded by the real yt-dlp,
every entry recorded as an accepted transcription with a MIDI file from a transposed, re-timed Bach
chorale). The export runs in a fresh process, as the command does; printed per size: the first export's
time and peak memory (target: peak at 10,000 within 1.2x of that at 1,000), and a second export's time and
files written (target: none).

Run: ``.venv/bin/python bench/export.py [--sizes 1000 10000]``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from db.catalogue import open_catalogue  # noqa: E402
from db.export import export_dataset  # noqa: E402
from db.home import Home  # noqa: E402
from sample.feed import serve  # noqa: E402


def child(root: str, url: str, folder: str) -> dict[str, float]:
    """One export in this process: its seconds, files written and peak resident memory."""
    catalogue = open_catalogue(Home(Path(root), url))
    started = time.perf_counter()
    summary = export_dataset(catalogue.sessions, Path(folder))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "written": len(summary.written), "pieces": summary.pieces, "peak_mb": peak}


def export_once(home: Home, folder: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(home.root), home.database_url, str(folder)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    from bench.scale import build, material  # TensorFlow and the rest: not in the export's own process

    pieces = material()
    work = Path(tempfile.mkdtemp(prefix="tunesmith-export-"))
    rows = []
    try:
        (work / "feeds").mkdir()
        with serve(work / "feeds") as server:
            for size in args.sizes:
                root = work / f"home-{size}"
                home = Home(root, f"sqlite:///{root / 'catalogue.sqlite'}")
                started = time.perf_counter()
                build(open_catalogue(home), server, size, pieces)
                built = time.perf_counter() - started
                first = export_once(home, work / f"dataset-{size}")
                second = export_once(home, work / f"dataset-{size}")
                rows.append((size, built, first, second))
                print(json.dumps({"size": size, "build_s": round(built, 1), "first": first, "second": second}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'pieces':>7} {'first export s':>14} {'peak MB':>8} {'files':>6} {'again s':>8} {'files':>6}")
    for size, _, first, second in rows:
        print(f"{size:>7} {first['seconds']:>14} {first['peak_mb']:>8.0f} {first['written']:>6} "
              f"{second['seconds']:>8} {second['written']:>6}")  # fmt: skip


if __name__ == "__main__":
    main()
