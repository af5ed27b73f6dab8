"""Frame sources: video files frame by frame, live cameras and streams newest-frame-first.

A file is read in order and no frame is skipped; its timestamps come from its frame rate. A URL
whose capture reports a frame count is a file too (read in order, ends at its end). A live source
(camera, stream URL, or a file played at its real rate with `realtime=True`) is read by a capture
thread that keeps only the newest frame, so however slow the consumer is, it always gets the latest
picture and latency never builds up; the frames it never saw are counted as dropped.

Stream URLs carry passwords (`rtsp://admin:pass@camera/stream`): anything shown names a source
through `redact`.
"""

import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from actionlstm.errors import UserError

# FFmpeg's own log lines ("moov atom not found") would interleave with the progress bar; an unreadable
# file is reported by the caller in one line instead. Read by OpenCV when it opens a capture.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # nor OpenCV's "stream timeout triggered"

# How long opening or reading a network stream may block before it counts as failed.
NETWORK_TIMEOUT_SECONDS = 5.0
# The ports of the stream schemes a camera speaks, for `redact` and `probe_stream`.
DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}
# A file may hold a frame or two fewer than its header promises; more than this is called truncated.
TRUNCATION_SLACK = 0.01


def redact(spec: str | int, path: bool = True) -> str:
    """A source or URL as it may be shown or logged (the one masking function of the project): a
    URL's user and password become `***`, so does every query value (IP cameras take credentials
    as `?user=admin&pwd=...`), and a fragment goes. With `path` False only `scheme://host:port/…`
    is left: a webhook's path is its secret (Slack, Discord, Home Assistant `/api/webhook/<id>`).
    A file path is shown as it is; a URL too malformed to read is shown as its scheme alone."""
    spec = str(spec)
    if not is_url(spec):
        return spec
    scheme = spec.split("://", 1)[0]
    try:
        parts = urlsplit(spec)
        host = parts.netloc.rsplit("@", 1)[-1]
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return f"{scheme}://***"
    if not path:
        name = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or ""
        return f"{parts.scheme}://{name}{f':{port}' if port else ''}/…"
    netloc = ("***@" if "@" in parts.netloc else "") + host
    query = "&".join(f"{piece.split('=', 1)[0]}=***" if "=" in piece else "***" for piece in parts.query.split("&") if piece)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def is_url(spec: str) -> bool:
    return "://" in spec


@dataclass
class Frame:
    index: int  # position in the source (capture count for live sources)
    timestamp: float  # seconds since the source started: file position for files, capture time since opening for live sources
    image: np.ndarray  # BGR
    lap: int = 0  # a looped file's replays so far (`LiveSource(loop=True)`)


class Signal(Enum):
    """What a source that outlives its device (`pipeline.serve.supervised.SupervisedSource`) yields instead of
    a frame. Plain sources yield frames only."""

    IDLE = "idle"  # no new frame just now: the other sources go on without this one for a step
    RESTART = "restart"  # the source starts over (a reopened camera, a replayed file): new ids, buffers and labels


class FrameSource:
    """Common interface: iterate frames, `close()`, `fps`, `size`, `frame_count` (None if unknown)."""

    fps: float
    size: tuple[int, int]  # width, height
    frame_count: int | None
    is_live: bool
    skipped: int = 0  # unreadable frames in a file
    dropped: int = 0  # live frames replaced by a newer one before being read
    warning: str = ""  # set when the source ended in a way worth telling (a truncated file)
    started: float = 0.0  # time.monotonic() at which timestamp 0 was; live sources set it when they open

    def __iter__(self) -> Iterator[Frame | Signal]:
        raise NotImplementedError

    def polled(self) -> Iterator[Frame | Signal]:
        """The frames as iterating gives them, but never waiting for one: `Signal.IDLE` while no new
        frame has come (live sources), so a run of several sources can go on with the others."""
        return iter(self)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_capture(spec: str | int, timeout: float = NETWORK_TIMEOUT_SECONDS) -> cv2.VideoCapture | None:
    """An opened capture, or None. Network streams get open and read timeouts, so that neither a
    first open nor a reconnect can block past its window."""
    if isinstance(spec, str) and is_url(spec):
        ms = max(int(timeout * 1000), 1)
        capture = cv2.VideoCapture(spec, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    else:
        capture = cv2.VideoCapture(spec)
    if not capture.isOpened():
        capture.release()
        return None
    return capture


def _geometry(capture: cv2.VideoCapture) -> tuple[float, tuple[int, int]]:
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return (fps if 0 < fps < 1000 else 30.0), size


def probe_stream(url: str, timeout: float | None = None) -> str | None:
    """None when the server of a stream URL answers within `timeout` seconds, else why it did not.

    Made before OpenCV opens a stream, because OpenCV's FFmpeg open holds one lock for the whole
    process while it waits: a camera that accepts and never answers would hold up every other
    source's opening (a looped file's, a reconnecting camera's) for as long as its own timeout.
    Here the wait is this source's alone. RTSP and HTTP(S) get a request and must send a byte back
    (any answer, 401 included: the server is alive); other schemes a TCP connection; UDP nothing.
    `timeout` None is `NETWORK_TIMEOUT_SECONDS`."""
    timeout = NETWORK_TIMEOUT_SECONDS if timeout is None else timeout
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return "the URL cannot be read"
    if not host or port is None:
        return None  # udp://, srt:// ...: nothing to ask before OpenCV does
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock = raw
            if scheme in ("https", "rtsps"):  # cameras' certificates are their own: only liveness is asked here
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                sock = context.wrap_socket(raw, server_hostname=host)
            if scheme.startswith(("http", "rtsp")):
                if scheme.startswith("rtsp"):
                    hello = f"OPTIONS {parts.scheme}://{where}{parts.path or '/'} RTSP/1.0\r\nCSeq: 1\r\n\r\n"
                else:
                    hello = f"HEAD / HTTP/1.0\r\nHost: {where}\r\n\r\n"
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                sock.sendall(hello.encode())
                if not sock.recv(1):
                    return f"{where} closed the connection without answering"
    except socket.gaierror:
        return f"cannot resolve {host}"
    except TimeoutError:
        return f"no answer from {where} within {timeout:g} s"
    except OSError as exc:
        return f"{where}: {exc.strerror or exc}"
    return None


class VideoFileSource(FrameSource):
    """Every frame of a file (a path, or a URL of a file), in order. Frames that fail to decode are
    skipped and counted; a file that ends well before its promised frame count says so."""

    is_live = False

    def __init__(self, spec: str | Path, max_consecutive_failures: int = 25, capture: cv2.VideoCapture | None = None):
        self.name = redact(spec)
        self.capture = capture or _open_capture(str(spec))
        if self.capture is None:
            raise UserError(f"cannot read video file {self.name} (not a video OpenCV can decode)")
        self.fps, self.size = _geometry(self.capture)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self.max_consecutive_failures = max_consecutive_failures
        ok, first = self.capture.read()
        if not ok:
            self.capture.release()
            raise UserError(f"cannot read video file {self.name} (no decodable frame)")
        self._first = first
        self.size = (first.shape[1], first.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        image, self._first = self._first, None
        failures = 0  # reads failed since the last good frame; only counted once a good frame follows
        while True:
            if image is not None:
                self.skipped += failures
                index += failures
                failures = 0
                yield Frame(index, index / self.fps, image)
                index += 1
            else:
                failures += 1
                at_end = self.frame_count is None or index + failures > self.frame_count
                if at_end or failures >= self.max_consecutive_failures:
                    self._check_complete(index)
                    return
            ok, image = self.capture.read()
            image = image if ok else None

    def _check_complete(self, frames: int) -> None:
        if self.frame_count is not None and frames < self.frame_count * (1 - TRUNCATION_SLACK) - 1:
            self.warning = f"{self.name} ended at frame {frames} of {self.frame_count}: the file looks truncated"

    def close(self) -> None:
        self.capture.release()


class LiveSource(FrameSource):
    """A capture thread that keeps only the newest frame; `__iter__` waits for a newer one.

    When the device stops delivering, the thread reopens it for up to `reconnect_seconds`, then
    the source ends (iteration stops) instead of hanging. A file played at its rate
    (`realtime_file`) with `loop` rewinds at its end and plays again, each lap's frames numbered
    by `Frame.lap`: no new opening, so a replay never waits behind another source's (`probe_stream`).
    """

    is_live = True
    frame_count = None

    def __init__(
        self,
        spec: str | int,
        reconnect_seconds: float = 5.0,
        realtime_file: bool = False,
        loop: bool = False,
        capture: cv2.VideoCapture | None = None,
    ):
        self.spec = spec
        self.capture = capture or _open_capture(spec)
        if self.capture is None:
            what = f"camera {spec}" if isinstance(spec, int) else f"stream {redact(spec)}"
            raise UserError(f"cannot open {what}")
        self.fps, self.size = _geometry(self.capture)
        self.reconnect_seconds = reconnect_seconds
        self.realtime_file = realtime_file  # pace a file at its frame rate, as a camera would deliver it
        self.loop = loop and realtime_file
        self.lap = 0
        self._latest: Frame | None = None
        self._consumed = -1
        self._ended = False
        self._stop = threading.Event()
        self._ready = threading.Condition()
        self.captured = 0
        self.started = time.monotonic()  # frame timestamps count from here
        self._thread = threading.Thread(target=self._capture_loop, name="capture", daemon=True)
        self._thread.start()

    def _reopen(self) -> bool:
        if self.realtime_file:
            return False  # a file that ended has ended
        deadline = time.monotonic() + self.reconnect_seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            self.capture.release()
            left = deadline - time.monotonic()
            try:
                alive = not is_url(str(self.spec)) or probe_stream(str(self.spec), left) is None
                capture = _open_capture(self.spec, timeout=deadline - time.monotonic()) if alive else None
            except cv2.error:
                capture = None
            if capture is not None:
                self.capture = capture
                return True
            self._stop.wait(0.5)
        return False

    def _rewind(self, lap_start: int) -> bool:
        """A looped file back at its first frame; False if it cannot seek or gave no frame this lap."""
        if not self.loop or self.captured == lap_start:
            return False
        try:
            return bool(self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0))
        except cv2.error:
            return False

    def _read(self) -> tuple[bool, np.ndarray | None]:
        """One read; a backend that raises counts as a failed read (and so is retried)."""
        try:
            return self.capture.read()
        except cv2.error:
            return False, None

    def _capture_loop(self) -> None:
        try:
            self._capture_frames()
        finally:  # however the thread ends, the consumer must not wait for ever
            if self._stop.is_set():
                self.capture.release()
            with self._ready:
                self._ended = True
                self._ready.notify_all()

    def _capture_frames(self) -> None:
        lap_start = 0  # frames captured before this lap
        while not self._stop.is_set():
            ok, image = self._read()
            if not ok:
                if self._rewind(lap_start):
                    self.lap, lap_start = self.lap + 1, self.captured
                    continue
                if self._reopen():
                    continue
                break
            now = time.monotonic()
            if self.realtime_file:
                due = self.started + self.captured / self.fps
                if due > now:
                    self._stop.wait(due - now)
                now = time.monotonic()
            with self._ready:
                if self._latest is not None and self._latest.index > self._consumed:
                    self.dropped += 1
                self._latest = Frame(self.captured, now - self.started, image, self.lap)
                self.captured += 1
                self._ready.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.newest()) is not None:
            yield frame

    def polled(self) -> Iterator[Frame | Signal]:
        while True:
            frame = self.newest(timeout=0.0)
            if frame is not None:
                yield frame
            elif self.ended:
                return
            else:
                yield Signal.IDLE

    def _fresh(self) -> bool:
        return self._latest is not None and self._latest.index > self._consumed

    def newest(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not read yet, waiting for one up to `timeout` seconds (None: for as long
        as the source runs). None when none came in time or the source has ended (`ended` says which)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._ended and not self._fresh():
                left = 0.5 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    return None
                self._ready.wait(min(left, 0.5))
            if not self._fresh():
                return None
            self._consumed = self._latest.index
            return self._latest

    @property
    def ended(self) -> bool:
        """The capture has stopped and every frame it kept has been read."""
        with self._ready:
            return self._ended and not self._fresh()

    def close(self) -> None:
        """Stop the capture thread; it releases the device itself if a read is still blocking."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        if not self._thread.is_alive():
            self.capture.release()


def check_source(spec: str) -> None:
    """The checks that cost nothing (a file that is not there), made before the pose model loads."""
    if spec.isdigit() or is_url(spec):
        return
    path = Path(spec)
    if not path.exists():
        raise UserError(f"video file not found: {spec}")
    if not path.is_file():
        raise UserError(f"not a video file: {spec}")


def open_source(spec: str, realtime: bool = False, reconnect_seconds: float = 5.0, loop: bool = False) -> FrameSource:
    """`0`, `1`... open a camera; an existing path opens a file (`0.mp4` too); `scheme://...` opens a
    stream, or a file when its capture reports a frame count (an http:// link to a video, say).

    `realtime` plays a file at its own frame rate through the live path (newest frame wins), and
    with `loop` replays it forever (`LiveSource`). A camera or stream that drops is reopened for up
    to `reconnect_seconds` before it ends. A stream's server is asked first (`probe_stream`).
    """
    check_source(spec)
    if spec.isdigit():
        return LiveSource(int(spec), reconnect_seconds)
    if is_url(spec):
        if (why := probe_stream(spec)) is not None:
            raise UserError(f"cannot open stream {redact(spec)}: {why}")
        capture = _open_capture(spec)
        if capture is None:
            raise UserError(f"cannot open stream {redact(spec)}")
        if capture.get(cv2.CAP_PROP_FRAME_COUNT) <= 0:  # a live stream: its own capture thread reopens it
            return LiveSource(spec, reconnect_seconds, capture=capture)
        if realtime:
            return LiveSource(spec, realtime_file=True, loop=loop, capture=capture)
        return VideoFileSource(spec, capture=capture)
    if realtime:
        VideoFileSource(spec).close()  # validates the file with the same errors as a plain run
        return LiveSource(spec, realtime_file=True, loop=loop)
    return VideoFileSource(spec)
