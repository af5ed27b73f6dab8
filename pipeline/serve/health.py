"""`GET /healthz`: whether the pipeline is alive, for a container's or systemd's health check. It
needs no token and tells nothing else: `ok` (200) or `stalled` / `stopping` (503), as plain text.

Alive means the service is not stopping and every source that is delivering frames (state
`running`) had one through the pipeline within `STALE_SECONDS`: a camera that is down is the
camera's outage (in /api/status), not a dead pipeline, but a pipeline that stopped taking the
frames its sources deliver is.
"""

import time

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.serve.hub import Hub

PATH = "/healthz"
STALE_SECONDS = 30.0


def health(hub: Hub) -> tuple[bool, str]:
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


class HealthRoute:
    """ASGI middleware in front of everything else (the token included): answers `PATH` itself."""

    def __init__(self, app: ASGIApp, hub: Hub):
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] in ("GET", "HEAD"):
            alive, word = health(self.hub)
            await PlainTextResponse(word + "\n", 200 if alive else 503, {"Cache-Control": "no-store"})(scope, receive, send)
            return
        await self.app(scope, receive, send)
