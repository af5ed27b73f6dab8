"""`GET /healthz`: whether the pipeline is alive, for a container's or systemd's health check. It
needs no token (the one path `pipeline.serve.guard.Guard` lets through without one; the Host check and
the headers still apply) and tells nothing else: `ok` (200) or `stalled` / `stopping` (503), as plain text.

Alive means the service is not stopping and every source that is delivering frames (state
`running`) had one through the pipeline within `STALE_SECONDS`: a camera that is down is the
camera's outage (in /api/status), not a dead pipeline, but a pipeline that stopped taking the
frames its sources deliver is.
"""

import time

from pipeline.serve.hub import Hub

PATH = "/healthz"
STALE_SECONDS = 30.0


def health(hub: Hub) -> tuple[bool, str]:
    """Whether the pipeline is alive, and the word that says so."""
    if hub.closing:
        return False, "stopping"
    now = time.time()
    for feed in hub.feeds:
        if feed.source.state != "running":
            continue
        last = feed.last_frame if feed.last_frame is not None else hub.started_wall
        if now - max(last, hub.started_wall) > STALE_SECONDS:
            return False, "stalled"
    return True, "ok"
