"""What the service knows now, shared by the pipeline loop (which writes it, one frame at a time)
and the web app (which reads it): per source the newest annotated frame, its persons and counts,
the recent events, the timeline of the last minutes, and the metrics.

The pipeline never waits for a reader: a frame is kept by reference and made into a JPEG only
when someone asks, once per frame however many clients ask (`SourceFeed.jpeg`). Readers on the
event loop are woken through `loop.call_soon_threadsafe`.
"""

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np

from actionlstm import __version__
from pipeline.alerts import Alerts, Event
from pipeline.clock import iso_time
from pipeline.predictor import FrameResult
from pipeline.segments import SegmentBuilder
from pipeline.serve.metrics import Metrics
from pipeline.serve.snapshots import SnapshotStore, encode_jpeg, mark_unseen
from pipeline.serve.supervised import SupervisedSource
from pipeline.serve.transports import EventSink, Mqtt

STREAM_WIDTH = 960  # wider frames are scaled down for the page's video


def fit_width(image: np.ndarray, width: int = STREAM_WIDTH) -> np.ndarray:
    if image.shape[1] <= width:
        return image
    height = round(image.shape[0] * width / image.shape[1])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class Timeline:
    """One source's action segments (`SegmentBuilder`) of the last `seconds`, for the page."""

    def __init__(self, seconds: float, min_segment: float):
        self.seconds = seconds
        self.min_segment = min_segment
        self.session = 0
        self.builder = SegmentBuilder(min_segment)
        self.closed: deque[dict] = deque()
        self.first: float | None = None  # the first frame's time: a young service shows what it has seen
        self.now = 0.0
        self._lock = threading.Lock()

    def add(self, result: FrameResult, persons: list[dict]) -> None:
        with self._lock:
            if result.session != self.session:  # ids begin again: close the old ones under their session
                self._keep(self.builder.finish())
                self.builder, self.session = SegmentBuilder(self.min_segment), result.session
            self._keep(self.builder.add(result.time, persons))
            self.now = result.time
            self.first = result.time if self.first is None else self.first
            while self.closed and self.closed[0]["end"] < self.now - self.seconds:
                self.closed.popleft()

    def _keep(self, segments: list[dict]) -> None:
        self.closed.extend({**s, "session": self.session} for s in sorted(segments, key=lambda s: s["end"]))

    def view(self) -> dict:
        with self._lock:
            current = [{**s, "session": self.session} for s in self.builder.open_segments()]
            start = max(self.now - self.seconds, self.now if self.first is None else self.first)
            return {
                "now": round(self.now, 3),
                "start": round(start, 3),
                "segments": [s for s in [*self.closed, *current] if s["end"] >= start],
            }


def down_persons(result: FrameResult, origin: float) -> list[dict]:
    """Who is down now (on the floor after a fall, not up again; `PersonResult.down`), seen or not:
    someone lying out of the pose model's sight is the case that matters most. `since` is when they
    reached the floor (ISO 8601), `seconds` how long ago that was."""
    return [
        {"id": p.id, "seconds": round(p.down, 1), "since": iso_time(origin + result.time - p.down), "seen": seen}
        for seen, persons in ((True, result.persons), (False, result.unseen))
        for p in persons
        if p.down is not None
    ]


class SourceFeed:
    """One source as the page and the API see it."""

    def __init__(self, index: int, source: SupervisedSource, timeline: Timeline):
        self.index = index
        self.source = source
        self.timeline = timeline
        self.frames = 0
        self.fps = 0.0
        self.persons: list[dict] = []
        self.down: list[dict] = []  # `down_persons`
        self.last_frame: float | None = None  # wall clock
        self.version = 0  # frames published; streams send a frame when it changes
        self.changed: asyncio.Event | None = None  # set on the event loop when a frame comes
        self._image: np.ndarray | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._lock = threading.Lock()
        self._encoding = threading.Lock()
        # Wall-clock time of source time 0 (frame times count from the source's start).
        self.origin = time.time() - (time.monotonic() - source.started)

    def publish(self, result: FrameResult, persons: list[dict], down: list[dict]) -> None:
        with self._lock:
            self._image = result.image
            self.version += 1
            self.persons = persons
            self.down = down
            self.frames += 1
            self.fps = result.fps
            self.last_frame = self.origin + result.time

    def jpeg(self) -> tuple[int, bytes] | None:
        """The newest frame as (version, JPEG), encoded at most once per frame; None before the first."""
        with self._encoding:
            with self._lock:
                version, image = self.version, self._image
            if image is None:
                return None
            if self._jpeg is None or self._jpeg[0] != version:
                self._jpeg = (version, encode_jpeg(fit_width(image)))
            return self._jpeg

    def status(self) -> dict:
        with self._lock:
            frames, fps, persons, down, last = self.frames, self.fps, self.persons, self.down, self.last_frame
        return {
            "index": self.index,
            "name": self.source.name,
            "source": self.source.shown,
            **self.source.status(),
            "frames": frames,
            "fps": round(fps, 2) if math.isfinite(fps) else 0.0,
            "last_frame": None if last is None else iso_time(last),
            "persons": persons,
            "down": down,
        }


class Hub:
    """The service's state: its sources' feeds, the alert engine, the event sinks and snapshots, and
    the newest `history` events (`earlier`: those of earlier runs, `pipeline.serve.history`)."""

    def __init__(
        self,
        feeds: list[SourceFeed],
        alerts: Alerts | None,
        sinks: list[EventSink],
        snapshots: SnapshotStore,
        model: dict,
        history: int = 500,
        earlier: Sequence[dict] = (),
    ):
        self.feeds = feeds
        self.alerts = alerts
        self.sinks = sinks
        self.snapshots = snapshots
        self.model = model  # what the action model is, for the status
        self.events: deque[dict] = deque(sorted(earlier, key=lambda e: e["id"]), maxlen=history)  # the newest, for the API and the page
        self.fired = 0
        self.clients = 0  # open video and event streams
        self.closing = False
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.events_changed: asyncio.Event | None = None
        self._lock = threading.Lock()
        self.metrics = Metrics(lambda: [f.source for f in self.feeds], lambda: self.sinks)
        self.brokers = [s for s in sinks if isinstance(s, Mqtt)]
        # What else follows every frame and event (clips, arming, Home Assistant): each has
        # frame(source name, result), fired(event, result) (before the event goes out) and status() -> dict.
        self.watchers: list = []
        self.extra: dict = {}  # more of the status (privacy)

    # --- the pipeline's side -------------------------------------------------------------------

    def add(self, result: FrameResult) -> None:
        """One frame's result: shown, counted, drawn on the timeline, and checked for events."""
        feed = self.feeds[result.source]
        name = feed.source.name
        persons = [{**p.to_json(), "uncertain": p.uncertain} for p in result.persons]
        down = down_persons(result, feed.origin)
        feed.publish(result, persons, down)
        feed.timeline.add(result, persons)
        m = self.metrics
        m.frames.labels(name).inc()
        m.fps.labels(name).set(result.fps if math.isfinite(result.fps) else 0.0)
        m.persons.labels(name).set(len(persons))
        m.pose.labels(name).observe(result.timings.get("pose", 0.0))
        m.classify.labels(name).observe(result.timings.get("classify", 0.0))
        m.latency.labels(name).observe(max(time.monotonic() - feed.source.started - result.time, 0.0))
        if self.alerts is not None:
            for event in self.alerts.update(result, name, feed.origin):
                self._fire(event, result)
        for broker in self.brokers:
            broker.publish_state(name, feed.source.state, iso_time(feed.origin + result.time), result.persons, down)
        for watcher in self.watchers:
            watcher.frame(name, result)
        self._wake(feed)

    def _fire(self, event: Event, result: FrameResult) -> None:
        image = result.image
        if all(person.id != event.person for person in result.persons):  # fired for someone out of sight
            image = mark_unseen(image, event.box, f"#{event.person} {event.label}, last seen here")
        self.snapshots.save(event.id, image)
        event.snapshot = f"/api/events/{event.id}/snapshot.jpg"
        for watcher in self.watchers:
            watcher.fired(event, result)
        record = event.to_json()
        with self._lock:
            self.events.append(record)
            self.fired += 1
        self.metrics.events.labels(event.source, event.label).inc()
        for sink in self.sinks:
            sink.send(record)
        self._wake(None)

    # --- the event loop's side -----------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on the event loop when the app starts: from now on readers are woken."""
        self.loop = loop
        self.events_changed = asyncio.Event()
        for feed in self.feeds:
            feed.changed = asyncio.Event()

    def _wake(self, feed: SourceFeed | None) -> None:
        if self.loop is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self._notify, feed)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _notify(self, feed: SourceFeed | None) -> None:
        """On the loop: wake whoever waits, and give the next waiters a fresh event."""
        if feed is None:
            self.events_changed.set()
            self.events_changed = asyncio.Event()
        else:
            feed.changed.set()
            feed.changed = asyncio.Event()

    def close_streams(self) -> None:
        """Every stream ends at its next step (the service is stopping)."""
        self.closing = True
        for feed in [None, *self.feeds]:
            self._wake(feed)

    def events_after(self, since: int | None, limit: int) -> list[dict]:
        """Events with an id above `since` (all kept, without it), oldest first, at most the newest `limit`."""
        with self._lock:
            kept = list(self.events)
        if since is not None:
            kept = [e for e in kept if e["id"] > since]
        return kept[-limit:] if limit else []

    @property
    def last_event_id(self) -> int:
        with self._lock:
            return self.events[-1]["id"] if self.events else 0

    def status(self) -> dict:
        return {
            "version": __version__,
            "started": iso_time(self.started_wall),
            "uptime": round(time.monotonic() - self.started, 1),
            "model": self.model,
            "sources": [feed.status() for feed in self.feeds],
            "events": {"fired": self.fired, "last_id": self.last_event_id},
            "sinks": [sink.status() for sink in self.sinks],
            "stream_clients": self.clients,
            **self.extra,
            **{key: value for watcher in self.watchers for key, value in watcher.status().items()},
        }
