"""Submitting playlists to a running server: a run of the ``ingest`` deployment, executed by a worker."""

from __future__ import annotations

from typing import Any

DEPLOYMENT = "ingest/ingest"  # flow name / deployment name (prefect.yaml)


def submit_to_server(
    api_url: str, *, urls: list[str], style: str | None, settings: dict[str, Any], workers: int = 0
) -> dict[str, Any]:
    """Create a flow run of the ingest deployment and return at once with where to watch it."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):  # whatever settings this process began with
        run = run_deployment(  # the sync API outside a flow: a FlowRun
            DEPLOYMENT,
            parameters={"request": {"urls": urls, "style": style, "settings": settings}, "workers": workers},
            timeout=0,  # do not wait: the worker runs it; the UI shows it
        )
    assert isinstance(run, FlowRun)
    ui = api_url.removesuffix("/api")
    return {"flow_run": run.name, "id": str(run.id), "state": run.state_name, "ui": f"{ui}/runs/flow-run/{run.id}"}
