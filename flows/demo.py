"""The demo: the built-in sample playlist through every stage, as one Prefect flow run."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from db.home import Home
from flows.pipeline import SubmitRequest, batch_flow, ingest_flow, retrain_flow
from sample.corpus import hammered_note, render_pieces, render_score
from sample.feed import LOOPBACK_INGEST, FeedItem, serve


def build_sample(folder: Path, pieces: int) -> list[FeedItem]:
    """Render the sample once (corpus chorales plus one hammered-note piece the filter must reject)."""
    rendered = render_pieces(folder, count=pieces)
    items = [
        FeedItem(p.audio_path.name, p.title, guid=f"tunesmith-sample:{p.name}", duration=p.duration) for p in rendered
    ]
    audio, _midi, seconds = render_score(hammered_note(), folder, "hammered-note")
    items.append(FeedItem(audio.name, "One note, hammered (should be rejected)", "tunesmith-sample:hammered", seconds))
    return items


@flow(name="demo", log_prints=True)
def demo_flow(feed_url: str, tracks: int, minutes: float) -> str:
    logger = get_run_logger()
    submitted = ingest_flow(SubmitRequest(urls=[feed_url], settings=LOOPBACK_INGEST))
    logger.info("submitted: %s", submitted)
    logger.info("retrain: %s", retrain_flow(baseline_epochs=1)["message"])  # the demo: a quick baseline
    batch = batch_flow(count=tracks, minutes=minutes)
    return batch["folder"]


def run_demo(home: Home, *, pieces: int, tracks: int, minutes: float) -> str:
    sample_dir = home.ensure().root / "sample"
    items = build_sample(sample_dir, pieces)
    with serve(sample_dir) as server:
        feed_url = server.write_feed("feed.xml", "tunesmith sample: Bach chorales", items)
        return demo_flow(feed_url, tracks, minutes)
