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

Every request passes `pipeline.serve.guard.Guard` first (its Host, method, size and token; the
security headers of every answer). Video and event streams are bounded in number (503). A stream
client that stops reading holds only its own socket: frames are not queued for it, it gets the
newest when it reads again. Ids in a path, a query or `Last-Event-ID` are ASCII digits, at most
18 of them (400 otherwise).
"""

import asyncio
import contextlib
import json
from collections.abc import Callable
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.serve.clips import ClipRecorder
from pipeline.serve.guard import Guard, HostCheck
from pipeline.serve.health import PATH as HEALTH_PATH
from pipeline.serve.health import health
from pipeline.serve.history import MAX_ID
from pipeline.serve.hub import Hub
from pipeline.serve.metrics import CONTENT_TYPE

STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
BOUNDARY = "frame"
MAX_EVENTS = 1000
NO_STORE = {"Cache-Control": "no-store"}


def whole_number(text: str, name: str, high: int = MAX_ID) -> int:
    """`text` as a whole number from 0 to `high`: ASCII digits only (int() takes '²', '١' and
    '1_0', and a 4,400-digit string raises), so a hostile id is a 400, never a 500."""
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(high))) or int(text) > high:
        raise ValueError(f"{name} must be a whole number from 0 to {high}")
    return int(text)


def _int_param(request: Request, name: str, default: int | None, high: int = MAX_ID) -> int | None:
    text = request.query_params.get(name)
    return default if text is None else whole_number(text, name, high)


def _bad(exc: ValueError) -> Response:
    return JSONResponse({"error": str(exc)}, 400)


def create_app(
    hub: Hub,
    token: str | None,
    hosts: HostCheck,
    cookie: str = "actionlstm_session",
    max_clients: int = 32,
    stream_fps: float = 15.0,
    log: Callable[[str], None] = print,
) -> Guard:
    static = resources.files("pipeline.serve") / "static"
    page = (static / "index.html").read_text(encoding="utf-8")
    assets = {name: (static / name).read_bytes() for name in STATIC}

    def feed_of(request: Request):
        index = whole_number(request.path_params["index"], "a source's index")
        return hub.feeds[index] if index < len(hub.feeds) else None

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
            since = _int_param(request, "since", None)
            limit = _int_param(request, "limit", 100, MAX_EVENTS)
        except ValueError as exc:
            return _bad(exc)
        return JSONResponse(hub.events_after(since, limit), headers=NO_STORE)

    async def event_snapshot(request: Request) -> Response:
        try:
            path = hub.snapshots.path(whole_number(request.path_params["id"], "an event id"))
        except ValueError as exc:
            return _bad(exc)
        if path is None or not path.is_file():
            return JSONResponse({"error": "no snapshot kept for that event"}, 404)
        return FileResponse(path, media_type="image/jpeg", headers=NO_STORE)

    async def event_clip(request: Request) -> Response:
        try:
            event_id = whole_number(request.path_params["id"], "an event id")
        except ValueError as exc:
            return _bad(exc)
        clips = next((w for w in hub.watchers if isinstance(w, ClipRecorder)), None)
        recording = clips is not None and clips.recording(event_id)  # asked first: a clip is published before it is done
        path = None if clips is None else clips.store.path(event_id)
        if path is None and recording:
            return JSONResponse({"error": "the clip is still being recorded"}, 503, {"Retry-After": str(round(clips.after) + 1)})
        if path is None:
            return JSONResponse({"error": "no clip kept for that event"}, 404)
        return FileResponse(path, media_type="video/mp4", headers=NO_STORE)

    async def source_snapshot(request: Request) -> Response:
        try:
            feed = feed_of(request)
        except ValueError as exc:
            return _bad(exc)
        if feed is None:
            return JSONResponse({"error": "no such source"}, 404)
        frame = await run_in_threadpool(feed.jpeg)
        if frame is None:
            return JSONResponse({"error": "no frame yet"}, 503, {"Retry-After": "1"})
        return Response(frame[1], media_type="image/jpeg", headers=NO_STORE)

    async def timeline(request: Request) -> Response:
        return JSONResponse([{"index": f.index, "name": f.source.name, **f.timeline.view()} for f in hub.feeds], headers=NO_STORE)

    async def healthz(request: Request) -> Response:
        alive, word = health(hub)
        return PlainTextResponse(word + "\n", 200 if alive else 503, headers=NO_STORE)

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
        try:
            feed = feed_of(request)
        except ValueError as exc:
            return _bad(exc)
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
        # A reconnecting EventSource sends the last id it saw: that, before the `since` of the URL it
        # was opened with (which would replay everything since the page loaded), else from now on.
        last = request.headers.get("last-event-id")
        try:
            since = whole_number(last.strip(), "Last-Event-ID") if last else _int_param(request, "since", None)
        except ValueError as exc:
            return _bad(exc)
        since = hub.last_event_id if since is None else since

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
        Route("/api/events/{id}/snapshot.jpg", event_snapshot),
        Route("/api/events/{id}/clip.mp4", event_clip),
        Route("/api/sources/{index}/snapshot.jpg", source_snapshot),
        Route("/api/sources/{index}/stream.mjpg", video),
        Route(HEALTH_PATH, healthz),
        Route("/api/timeline", timeline),
        Route("/metrics", metrics),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        hub.attach(asyncio.get_running_loop())
        yield

    return Guard(Starlette(routes=routes, lifespan=lifespan), token, hosts, cookie, max_clients + 64, log, public={HEALTH_PATH})
