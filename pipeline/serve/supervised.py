"""Sources that outlive their device: the service's cameras, streams and files.

A camera or stream that drops (or is not there yet) is reopened for as long as the service runs,
1, 2, 4 ... up to 30 s apart; each outage is one line in the log and an entry in the status. A file
is played at its own frame rate, as a camera would deliver it, and with `loop` replayed forever (it
rewinds, so a replay never waits for another source's opening: `pipeline.sources.probe_stream`).
Every new opening and every replay starts the source afresh for the pipeline (`Signal.RESTART`:
new ids, buffers, labels, episodes); frame times run on from the service's start, so they never go back.
"""

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from actionlstm.errors import UserError
from pipeline.clock import iso_time
from pipeline.sources import Frame, FrameSource, LiveSource, Signal, is_url, open_source, redact

BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
OUTAGES_KEPT = 20


@dataclass
class Outage:
    start: float  # wall clock, seconds since the epoch
    reason: str
    end: float | None = None


class SupervisedSource(FrameSource):
    """One source of the service, opened and reopened on a thread of its own.

    Iterating it (the pipeline's pose thread does) never blocks for longer than `idle_wait`: without
    a new frame it yields `Signal.IDLE`, so one source that is down never holds up the others.
    """

    is_live = True
    frame_count = None

    def __init__(self, spec: str, name: str, loop: bool = False, idle_wait: float = 0.1, log: Callable[[str], None] = print):
        self.spec = spec
        self.name = name
        self.shown = redact(spec)
        self.is_file = not (spec.isdigit() or is_url(spec))
        self.loop = loop
        self.idle_wait = idle_wait
        self.log = log
        self.fps, self.size = 30.0, (640, 480)  # until the first opening says
        self.state = "connecting"
        self.reconnects = 0  # openings after an outage
        self.replays = 0  # a looped file starting over
        self.outages: deque[Outage] = deque(maxlen=OUTAGES_KEPT)
        self.started = time.monotonic()  # frame times count from here, across openings
        self._live: LiveSource | None = None
        self._session = 0  # openings so far
        self._index_base = 0  # frames of earlier openings, so frame indices keep counting up
        self._shift = 0.0  # the current opening's start in the service's time
        self._dropped_before = 0
        self._finished = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"source-{name}", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._dropped_before + (self._live.dropped if self._live is not None else 0)

    def _supervise(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                live = open_source(self.spec, realtime=True, reconnect_seconds=0.0, loop=self.loop)
            except UserError as exc:
                self._begin_outage(str(exc))
                wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
                attempt += 1
                self.state = "reconnecting" if self._session else "connecting"
                if self._stop.wait(wait):
                    break
                continue
            attempt = 0
            self._end_outage()
            with self._lock:
                self.fps, self.size = live.fps, live.size
                self._live, self._session = live, self._session + 1
                self._shift = live.started - self.started
            self.state = "running"
            while not self._stop.is_set() and not live.ended:
                self._stop.wait(0.1)
            with self._lock:
                self._live = None
                self._dropped_before += live.dropped
                self._index_base += live.captured
            live.close()
            if self._stop.is_set():
                break
            if self.is_file:
                if not self.loop:
                    self.state = "ended"
                    self.log(f"source {self.name} ({self.shown}) ended (a file is played once; --loop replays it)")
                    break
                self.replays += 1
                continue
            self._begin_outage("the source stopped delivering frames")
        self._finished = True

    def _begin_outage(self, reason: str) -> None:
        if self.outages and self.outages[-1].end is None:
            return  # the same outage, still going on
        self.outages.append(Outage(time.time(), reason))
        self.log(f"source {self.name} ({self.shown}) is down: {reason}; reopening (up to {BACKOFF_SECONDS[-1]:.0f} s apart)")

    def _end_outage(self) -> None:
        if self.outages and self.outages[-1].end is None:
            outage = self.outages[-1]
            outage.end = time.time()
            self.reconnects += 1
            self.log(f"source {self.name} ({self.shown}) is back after {outage.end - outage.start:.1f} s")

    def __iter__(self) -> Iterator[Frame | Signal]:
        return self._frames(self.idle_wait)

    def polled(self) -> Iterator[Frame | Signal]:
        return self._frames(0.0)

    def _frames(self, wait: float) -> Iterator[Frame | Signal]:
        """Frames, RESTART at each new opening or replay, and IDLE after `wait` seconds without a frame."""
        seen = lap = 0
        while True:
            with self._lock:
                live, session, shift, base = self._live, self._session, self._shift, self._index_base
            if session != seen:
                seen, lap = session, 0
                yield Signal.RESTART
                continue
            if live is None:
                if self._finished or self._stop.wait(wait):
                    return
                yield Signal.IDLE
                continue
            frame = live.newest(timeout=wait)
            if frame is None:
                yield Signal.IDLE
                continue
            if frame.lap != lap:  # a looped file rewound: it starts over as a reopened one would
                lap = frame.lap
                self.replays += 1
                yield Signal.RESTART
            yield Frame(base + frame.index, shift + frame.timestamp, frame.image)

    def status(self) -> dict:
        return {
            "state": self.state,
            "size": list(self.size),
            "source_fps": round(self.fps, 2),
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "replays": self.replays,
            "outages": [
                {"start": iso_time(o.start), "end": None if o.end is None else iso_time(o.end), "reason": o.reason} for o in self.outages
            ],
        }

    def stop(self) -> None:
        """Ask the supervising thread to end (`close` waits for it); several sources stop side by side."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3.0)
        with self._lock:
            live = self._live
        if live is not None:
            live.close()
