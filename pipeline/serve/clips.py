"""A clip per event: the seconds before and after it (5 and 5 by default), as an H.264 MP4 that
browsers, phones and Home Assistant play.

Each source's annotated frames of the last `before` seconds are kept in memory (scaled to at most
`CLIP_WIDTH` pixels wide, at most `CLIP_FPS` a second: about 50 MB a source at 5 s, whatever the
camera's size); an event takes a copy of them and the frames of the next `after` seconds, then a
thread of its own encodes them (one thread of x264, so the pipeline keeps the other cores) and
publishes the file by renaming it: never half a file under a clip's name. Each frame keeps its
own time in the file, so a source that drops frames gives a clip that plays at the right speed.

Why PyAV: its wheels bundle FFmpeg with libx264, and H.264 in MP4 (`yuv420p`, `faststart`) is what
every browser's `<video>` plays; OpenCV's `mp4v` (MPEG-4 part 2) plays in none.

The folder is bounded by count and by age over every run's clips in it (`ClipStore.prune`).
"""

import math
import queue
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from actionlstm.atomic import atomic_path
from actionlstm.errors import UserError
from pipeline.alerts import Event
from pipeline.predictor import FrameResult

CLIP_WIDTH = 640  # wider frames are scaled down for clips
CLIP_FPS = 15.0  # frames kept a second at most
CODEC = "libx264"
ENCODE_OPTIONS = {"preset": "veryfast", "crf": "26", "threads": "1"}
PENDING_MAX = 8  # clips a source may be recording at once; an event beyond that gets none
TIME_BASE = Fraction(1, 1000)  # frame times in the file, in milliseconds
MAX_CLIP_SECONDS = 60.0  # before and after each: what is kept in memory grows with it
CLIP_NAME = re.compile(r"^event-\d+\.mp4$")


def parse_clip_seconds(text: str) -> tuple[float, float]:
    """`BEFORE:AFTER` seconds (`5:5`), each from 0 to `MAX_CLIP_SECONDS`, not both 0."""
    parts = text.split(":")
    try:
        before, after = (float(part) for part in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        before = after = math.nan
    if not (0 <= before <= MAX_CLIP_SECONDS and 0 <= after <= MAX_CLIP_SECONDS and before + after > 0):
        raise UserError(f"--clip-seconds {text} is not BEFORE:AFTER, seconds from 0 to {MAX_CLIP_SECONDS:g} (e.g. 5:5)")
    return before, after


def check_encoder() -> None:
    """PyAV with libx264 is there: refused at start, not at the first event."""
    try:
        import av

        av.codec.Codec(CODEC, "w")
    except ImportError:
        raise UserError("clips need PyAV (pip install av); or serve with --no-clips") from None
    except Exception:
        raise UserError(f"this PyAV's FFmpeg has no {CODEC} encoder for clips (pip install -U av); or serve with --no-clips") from None


def write_clip(path: Path, frames: list[tuple[float, np.ndarray]], cancelled: Callable[[], bool] = lambda: False) -> None:
    """`frames` (time in seconds, BGR image) as an H.264 MP4 at `path`, each frame at its own time
    from the first; written beside it and renamed, so `path` is whole or absent."""
    import av

    height, width = (d - d % 2 for d in frames[0][1].shape[:2])  # 4:2:0 needs even sides
    start = frames[0][0]
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream(CODEC, rate=round(CLIP_FPS))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.time_base = TIME_BASE
            stream.options = ENCODE_OPTIONS
            last = -1
            for when, image in frames:
                if cancelled():
                    raise InterruptedError("the service is stopping")
                pts = max(round((when - start) / TIME_BASE), last + 1)  # strictly increasing
                if image.shape[:2] != (height, width):
                    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
                frame.pts, frame.time_base, last = pts, TIME_BASE, pts
                container.mux(stream.encode(frame))
            container.mux(stream.encode())


class ClipStore:
    """The clips, named by event id, in `folder` (None: a temporary folder, removed by `close`),
    which every start shares: event ids never repeat (`pipeline.serve.history`), so an earlier run's
    clip stays reachable beside its event. At most `keep` clips and none older than `max_age`
    seconds: the oldest go first."""

    def __init__(self, folder: Path | None, keep: int = 100, max_age: float = 7 * 24 * 3600.0):
        if keep < 1 or max_age <= 0:
            raise ValueError("keep at least one clip, for some time")
        self.keep = keep
        self.max_age = max_age
        self.owned = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="actionlstm-clips-")) if folder is None else Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write clips to {self.folder}: {exc.strerror or exc}") from None
        self.prune()

    def file(self, event_id: int) -> Path:
        return self.folder / f"event-{int(event_id)}.mp4"

    def path(self, event_id: int) -> Path | None:
        """Event `event_id`'s clip, if it is written and still kept."""
        path = self.file(event_id)
        return path if path.is_file() else None

    def prune(self) -> None:
        """The oldest clips beyond `keep`, and those older than `max_age`, removed (by modification time)."""
        clips = []
        for path in self.folder.glob("event-*.mp4"):
            try:
                clips.append((path.stat().st_mtime, path))
            except OSError:  # removed meanwhile
                pass
        clips.sort(reverse=True)
        now = time.time()
        for k, (mtime, path) in enumerate(clips):
            if (k >= self.keep or now - mtime > self.max_age) and CLIP_NAME.match(path.name):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class _Clip:
    event_id: int
    source: str
    end: float  # source time after which no frame belongs to it
    deadline: float  # monotonic: finished then even if the source sends nothing more (an outage)
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)


class ClipRecorder:
    """Frames in (`add`, every result of every source), clips out: `start` begins an event's clip."""

    def __init__(self, store: ClipStore, before: float = 5.0, after: float = 5.0, log: Callable[[str], None] = print):
        self.store = store
        self.before = before
        self.after = after
        self.log = log
        self.written = 0
        self.failed = 0
        self.encode_seconds = 0.0  # spent encoding, over `written`
        self._rings: dict[str, deque[tuple[float, np.ndarray]]] = {}
        self._pending: list[_Clip] = []
        self._queue: queue.Queue[_Clip | None] = queue.Queue()
        self._encoding: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._encode_all, name="clips", daemon=True)
        self._thread.start()

    def add(self, source: str, when: float, image: np.ndarray) -> None:
        """One annotated frame of `source` at source time `when` (seconds)."""
        ring = self._rings.setdefault(source, deque())
        if ring and when - ring[-1][0] < 1.0 / CLIP_FPS - 1e-3:
            kept = False  # more frames than a clip keeps: this one is left out
        else:
            if image.shape[1] > CLIP_WIDTH:
                height = round(image.shape[0] * CLIP_WIDTH / image.shape[1])
                image = cv2.resize(image, (CLIP_WIDTH, height), interpolation=cv2.INTER_AREA)
            ring.append((when, image))
            kept = True
        while ring and ring[0][0] < when - self.before:
            ring.popleft()
        now = time.monotonic()
        with self._lock:
            for clip in list(self._pending):
                if clip.source == source and kept and when <= clip.end:
                    clip.frames.append(ring[-1])
                if (clip.source == source and when >= clip.end) or now > clip.deadline:
                    self._finish(clip)

    def start(self, event_id: int, source: str, when: float) -> str | None:
        """Begin event `event_id`'s clip (fired at source time `when`); its URL path, or None when
        the source has no frames yet or records too many clips already."""
        ring = self._rings.get(source)
        with self._lock:
            if not ring or sum(c.source == source for c in self._pending) >= PENDING_MAX:
                return None
            frames = [(t, image) for t, image in ring if t >= when - self.before - 1e-6]
            self._pending.append(_Clip(event_id, source, when + self.after, time.monotonic() + self.after + 2.0, frames))
        return f"/api/events/{event_id}/clip.mp4"

    def recording(self, event_id: int) -> bool:
        """Whether event `event_id`'s clip is still being recorded or encoded."""
        with self._lock:
            return event_id in self._encoding or any(c.event_id == event_id for c in self._pending)

    def _finish(self, clip: _Clip) -> None:
        """Hand a clip to the encoder (the lock held)."""
        self._pending.remove(clip)
        if clip.frames:
            self._encoding.add(clip.event_id)
            self._queue.put(clip)

    def _encode_all(self) -> None:
        while (clip := self._queue.get()) is not None:
            started = time.perf_counter()
            try:
                write_clip(self.store.file(clip.event_id), clip.frames, self._stop.is_set)
                self.written += 1
                self.encode_seconds += time.perf_counter() - started
                self.store.prune()
            except InterruptedError:
                pass
            except Exception as exc:  # a full disk, an encoder failure: said once per clip, the service goes on
                self.failed += 1
                self.log(f"clip of event {clip.event_id} not written: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            finally:
                with self._lock:
                    self._encoding.discard(clip.event_id)

    # --- as the hub's watcher ---------------------------------------------------------------------

    def frame(self, source: str, result: FrameResult) -> None:
        self.add(source, result.time, result.image)

    def fired(self, event: Event, result: FrameResult) -> None:
        event.clip = self.start(event.id, event.source, result.time)

    def status(self) -> dict:
        with self._lock:
            recording = len(self._pending) + len(self._encoding)
        mean = self.encode_seconds / self.written if self.written else None
        return {
            "clips": {
                "before": self.before,
                "after": self.after,
                "written": self.written,
                "failed": self.failed,
                "recording": recording,
                "encode_seconds": None if mean is None else round(mean, 3),
                "keep": self.store.keep,
                "max_age": self.store.max_age,
            }
        }

    def close(self, timeout: float) -> None:
        """Clips still recording are written with what they have, within `timeout` seconds; what is
        not done by then is given up (its partial file removed)."""
        with self._lock:
            for clip in list(self._pending):
                self._finish(clip)
        self._queue.put(None)
        self._thread.join(timeout=max(timeout, 0.0))
        if self._thread.is_alive():
            self._stop.set()  # the encoder stops at its next frame and removes its partial file
            self._thread.join(timeout=1.0)
