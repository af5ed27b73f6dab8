"""The web app: one page, a JSON API, video and event streams, metrics; every route behind a token.

    GET /                              the page (takes ?token= once, then keeps it in a cookie)
    GET /static/{app.js,style.css}     what the page loads (nothing comes from elsewhere)
    GET /api/status                    version, uptime, sources (state, fps, frames, persons ...), sinks
    GET /api/events?since=ID&limit=N   events with an id above ID, newest last
    GET /api/events/stream             the same, pushed as server-sent events as they fire
    GET /api/events/{id}/snapshot.jpg  the frame that fired event `id`
    GET /api/events/{id}/clip.mp4      the seconds before and after event `id` (H.264 MP4; 503 while recorded)
    GET /api/sources/{i}/snapshot.jpg  source i's newest annotated frame
    GET /api/sources/{i}/stream.mjpg   source i's annotated video (MJPEG, newest frame first)
    GET /api/timeline                  per source, the action segments of the last minutes
    GET /metrics                       Prometheus text format
    GET /healthz                       ok or not, and nothing else: no token needed (`pipeline.serve.health`)

A token comes as `Authorization: Bearer T`, the page's cookie, or once as `/?token=T`; it is
compared in constant time. Requests carry no body (413), only GET and HEAD (405), and video and
event streams are bounded in number (503). A stream client that stops reading holds only its own
socket: frames are not queued for it, it gets the newest when it reads again.
"""

import asyncio
import contextlib
import hmac
import json
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.serve.clips import ClipRecorder
from pipeline.serve.health import HealthRoute
from pipeline.serve.hub import Hub
from pipeline.serve.metrics import CONTENT_TYPE

COOKIE = "actionlstm_token"
STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
BOUNDARY = "frame"
MAX_EVENTS = 1000
MAX_HEAD_BYTES = 16 * 1024  # headers and query string of one request
NO_STORE = {"Cache-Control": "no-store"}


class Guard:
    """ASGI middleware in front of every route: only GET / HEAD without a body, and the token."""

    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request.method not in ("GET", "HEAD"):
            await PlainTextResponse("only GET is served\n", 405, {"Allow": "GET, HEAD"})(scope, receive, send)
            return
        if request.headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in request.headers:
            await PlainTextResponse("requests carry no body\n", 413)(scope, receive, send)
            return
        if sum(len(name) + len(value) for name, value in scope["headers"]) + len(scope.get("query_string", b"")) > MAX_HEAD_BYTES:
            await PlainTextResponse("request head too large\n", 431)(scope, receive, send)
            return
        if self.token is not None:
            given = self._presented(request)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                await self._refuse(request)(scope, receive, send)
                return
            if request.url.path == "/" and "token" in request.query_params:  # the printed URL: keep the token in a cookie
                response = RedirectResponse("/", 303)
                response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict", max_age=30 * 24 * 3600)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _presented(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        if request.url.path == "/" and "token" in request.query_params:
            return request.query_params["token"]
        return request.cookies.get(COOKIE)

    @staticmethod
    def _refuse(request: Request) -> Response:
        headers = {"WWW-Authenticate": "Bearer"}
        if request.url.path == "/":
            page = (
                "<!doctype html><title>ActionLSTM</title>"
                "<p>Open the URL the service printed when it started (it ends in <code>?token=...</code>).</p>"
            )
            return HTMLResponse(page, 401, headers)
        return JSONResponse({"error": "a valid token is needed (Authorization: Bearer TOKEN)"}, 401, headers)


def _int_param(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}")
    return value


def create_app(hub: Hub, token: str | None, max_clients: int = 32, stream_fps: float = 15.0) -> Starlette:
    static = resources.files("pipeline.serve") / "static"
    page = (static / "index.html").read_text(encoding="utf-8")
    assets = {name: (static / name).read_bytes() for name in STATIC}

    def feed_of(request: Request):
        index = request.path_params["index"]
        return hub.feeds[index] if 0 <= index < len(hub.feeds) else None

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers=NO_STORE)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return PlainTextResponse("not found\n", 404)
        return Response(assets[name], media_type=STATIC[name], headers=NO_STORE)

    async def status(request: Request) -> Response:
        return JSONResponse(hub.status(), headers=NO_STORE)

    async def events(request: Request) -> Response:
        try:
            since = _int_param(request, "since", None, 0, 2**62)
            limit = _int_param(request, "limit", 100, 0, MAX_EVENTS)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(hub.events_after(since, limit), headers=NO_STORE)

    async def event_snapshot(request: Request) -> Response:
        path = hub.snapshots.path(request.path_params["id"])
        if path is None or not path.is_file():
            return JSONResponse({"error": "no snapshot kept for that event"}, 404)
        return FileResponse(path, media_type="image/jpeg", headers=NO_STORE)

    async def event_clip(request: Request) -> Response:
        clips, event_id = next((w for w in hub.watchers if isinstance(w, ClipRecorder)), None), request.path_params["id"]
        recording = clips is not None and clips.recording(event_id)  # asked first: a clip is published before it is done
        path = None if clips is None else clips.store.path(event_id)
        if path is None and recording:
            return JSONResponse({"error": "the clip is still being recorded"}, 503, {"Retry-After": str(round(clips.after) + 1)})
        if path is None:
            return JSONResponse({"error": "no clip kept for that event"}, 404)
        return FileResponse(path, media_type="video/mp4", headers=NO_STORE)

    async def source_snapshot(request: Request) -> Response:
        feed = feed_of(request)
        if feed is None:
            return JSONResponse({"error": "no such source"}, 404)
        frame = await run_in_threadpool(feed.jpeg)
        if frame is None:
            return JSONResponse({"error": "no frame yet"}, 503, {"Retry-After": "1"})
        return Response(frame[1], media_type="image/jpeg", headers=NO_STORE)

    async def timeline(request: Request) -> Response:
        return JSONResponse([{"index": f.index, "name": f.source.name, **f.timeline.view()} for f in hub.feeds], headers=NO_STORE)

    async def metrics(request: Request) -> Response:
        hub.metrics.clients.set(hub.clients)
        return Response(hub.metrics.text(), media_type=CONTENT_TYPE)

    def stream(body, media_type: str) -> Response:
        """A long-lived response, counted against `max_clients`."""
        if hub.clients >= max_clients:
            return JSONResponse({"error": f"too many open streams (at most {max_clients})"}, 503, {"Retry-After": "5"})
        hub.clients += 1

        async def counted():
            try:
                async for part in body:
                    yield part
            finally:
                hub.clients -= 1

        return StreamingResponse(counted(), media_type=media_type, headers={**NO_STORE, "X-Accel-Buffering": "no"})

    async def video(request: Request) -> Response:
        feed = feed_of(request)
        if feed is None:
            return JSONResponse({"error": "no such source"}, 404)
        loop = asyncio.get_running_loop()
        interval = 1.0 / stream_fps

        async def frames():
            sent, due = -1, 0.0
            while not hub.closing:
                changed = feed.changed
                if feed.version == sent:
                    try:
                        await asyncio.wait_for(changed.wait(), 1.0)
                    except asyncio.TimeoutError:
                        pass
                    continue
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                frame = await run_in_threadpool(feed.jpeg)
                if frame is None:
                    continue
                sent, due = frame[0], loop.time() + interval
                yield (
                    b"--"
                    + BOUNDARY.encode()
                    + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                    + str(len(frame[1])).encode()
                    + b"\r\n\r\n"
                    + frame[1]
                    + b"\r\n"
                )

        return stream(frames(), f"multipart/x-mixed-replace; boundary={BOUNDARY}")

    async def event_stream(request: Request) -> Response:
        try:
            since = _int_param(request, "since", None, 0, 2**62)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        if since is None:
            last = request.headers.get("last-event-id", "")
            since = int(last) if last.isdigit() else hub.last_event_id  # from now on, or from where a reconnecting client left off

        async def lines():
            sent = since
            yield b"retry: 2000\n\n"
            while not hub.closing:
                changed = hub.events_changed
                fresh = hub.events_after(sent, MAX_EVENTS)
                for event in fresh:
                    sent = event["id"]
                    yield f"id: {sent}\nevent: alert\ndata: {json.dumps(event)}\n\n".encode()
                if not fresh:
                    try:
                        await asyncio.wait_for(changed.wait(), 15.0)
                    except asyncio.TimeoutError:
                        yield b": keep-alive\n\n"

        return stream(lines(), "text/event-stream")

    routes = [
        Route("/", index),
        Route("/static/{name}", asset),
        Route("/api/status", status),
        Route("/api/events", events),
        Route("/api/events/stream", event_stream),
        Route("/api/events/{id:int}/snapshot.jpg", event_snapshot),
        Route("/api/events/{id:int}/clip.mp4", event_clip),
        Route("/api/sources/{index:int}/snapshot.jpg", source_snapshot),
        Route("/api/sources/{index:int}/stream.mjpg", video),
        Route("/api/timeline", timeline),
        Route("/metrics", metrics),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        hub.attach(asyncio.get_running_loop())
        yield

    return HealthRoute(Guard(Starlette(routes=routes, lifespan=lifespan), token), hub)
