"""Outputs of a run: the annotated video and the per-frame JSONL, published only when complete.

Each file is written under a temporary name unique to this run (mkstemp, beside the final name) and
renamed at the end, all outputs together (`finish_outputs`): a failed write, a failed close or a
video that does not read back whole fails the run with one line and publishes nothing, removing
every partial file. A stream that is not a regular file (`-` for stdout, a FIFO, `/dev/stdout`) is
written to directly instead: it cannot be replaced, and a reader may be waiting on it.
"""

import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from actionlstm.errors import UserError

VIDEO_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
STDOUT = Path("-")
# A live video's frame rate is measured over its first frames (held back until then) ...
RATE_PROBE_SECONDS = 1.0
RATE_PROBE_FRAMES = 30
# ... and kept to the clock afterwards: frames are repeated or left out as capture times say.
MAX_LIVE_FPS = 60.0


def check_video_path(path: Path) -> None:
    """Fail before any work on a video name OpenCV cannot write."""
    if path.suffix.lower() not in VIDEO_FOURCC:
        raise UserError(f"cannot write {path}: use a .mp4, .avi, .mkv or .mov file name")


def is_stream(path: Path) -> bool:
    """`-` (stdout) or an existing path that is not a regular file: a FIFO, a terminal, /dev/stdout."""
    if path == STDOUT:
        return True
    try:
        return not stat.S_ISREG(path.stat().st_mode) and not path.is_dir()
    except OSError:
        return False


def _write_error(path: Path, exc: OSError) -> UserError:
    return UserError(f"cannot write {path}: {exc.strerror or exc}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _AtomicOutput:
    """A file written under a unique hidden name and renamed onto `path` by `publish`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=f".partial{self.path.suffix}")
            os.close(fd)
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        self.partial = Path(tmp)

    def close(self) -> None:
        """Flush and close; raises `UserError` when what was written is not whole."""
        raise NotImplementedError

    def _release(self) -> None:
        """Let go of the file without checking anything (used when the run fails)."""
        raise NotImplementedError

    def publish(self) -> None:
        try:
            os.chmod(self.partial, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            os.replace(self.partial, self.path)
        except OSError as exc:
            raise UserError(f"cannot save {self.path}: {exc.strerror or exc}") from None

    def discard(self) -> None:
        """Close and remove the partial file, leaving any earlier output untouched. Never raises."""
        try:
            self._release()
        except Exception:
            pass
        try:
            self.partial.unlink(missing_ok=True)
        except OSError:
            pass


class VideoSink(_AtomicOutput):
    """The annotated video. Its size is the first frame's (later frames of another size are resized).

    A file source is written at its own frame rate, frame for frame. A live source (`live=True`) is
    written at the rate measured over its first second and kept to the capture clock, so a 10 s
    capture plays for 10 s however fast the pipeline ran.
    """

    def __init__(self, path: Path, fps: float, live: bool = False):
        check_video_path(Path(path))
        super().__init__(path)
        self.fps = fps
        self.live = live
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None  # width, height
        self.frames = 0  # frames written to the file
        self._held: list[tuple[float, np.ndarray]] = []  # live frames held back while the rate is measured
        self._start = 0.0  # capture time of the first frame

    def write(self, image: np.ndarray, timestamp: float = 0.0) -> None:
        if not self.live:
            self._encode(image, 1)
            return
        if self.writer is None:
            self._held.append((timestamp, image.copy()))
            span = timestamp - self._held[0][0]
            if span >= RATE_PROBE_SECONDS or len(self._held) >= RATE_PROBE_FRAMES:
                self._flush_held()
            return
        due = round((timestamp - self._start) * self.fps) + 1  # frames the video should hold by now
        if due > self.frames:
            self._encode(image, due - self.frames)

    def _flush_held(self) -> None:
        """Fix the live rate from the held frames, then write them to the clock."""
        held, self._held = self._held, []
        span = held[-1][0] - held[0][0]
        if len(held) > 1 and span > 0:
            self.fps = float(np.clip(round((len(held) - 1) / span, 1), 1.0, MAX_LIVE_FPS))
        self._start = held[0][0]
        self._open(held[0][1])
        for timestamp, image in held:
            self.write(image, timestamp)

    def _open(self, image: np.ndarray) -> None:
        self.size = (image.shape[1], image.shape[0])
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
        self.writer = cv2.VideoWriter(str(self.partial), fourcc, self.fps, self.size)
        if not self.writer.isOpened():
            raise UserError(f"cannot write video {self.path}")

    def _encode(self, image: np.ndarray, copies: int) -> None:
        if self.writer is None:
            self._open(image)
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        for _ in range(copies):
            self.writer.write(image)
        self.frames += copies

    def close(self) -> None:
        if self._held:
            self._flush_held()
        self._release()
        self._check_written()

    def _check_written(self) -> None:
        """OpenCV's writer reports no write errors: read the file back. A full disk or an I/O error
        shows as a file that does not open or holds fewer frames than were written."""
        capture = cv2.VideoCapture(str(self.partial))
        try:
            readable = capture.isOpened()
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if readable else 0
        finally:
            capture.release()
        if not readable or count < self.frames:
            held = f"{count} of {self.frames} frames" if readable else "an unreadable file"
            raise UserError(f"writing {self.path} failed: the video came out as {held} (disk full?)")

    def _release(self) -> None:
        if self.writer is not None:
            self.writer.release()


class JsonlSink(_AtomicOutput):
    """One JSON object per line, flushed per frame; a stream (`-`, FIFO) is written to in place."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.direct = is_stream(self.path)
        if self.direct:
            self.partial = None
            try:
                self.file: IO[str] = sys.stdout if self.path == STDOUT else open(self.path, "w", encoding="utf-8")
            except OSError as exc:
                raise _write_error(self.path, exc) from None
            return
        super().__init__(path)
        try:
            self.file = open(self.partial, "w", encoding="utf-8")
        except OSError as exc:
            self.partial.unlink(missing_ok=True)
            raise _write_error(self.path, exc) from None

    def write(self, record: dict) -> None:
        try:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        except OSError as exc:
            raise _write_error(self.path, exc) from None

    def close(self) -> None:
        try:
            self._release()
        except OSError as exc:
            raise _write_error(self.path, exc) from None

    def _release(self) -> None:
        if self.file is sys.stdout:
            self.file.flush()
        else:
            self.file.close()

    def publish(self) -> None:
        if not self.direct:
            super().publish()

    def discard(self) -> None:
        if self.direct:  # what a reader has received cannot be taken back
            try:
                self._release()
            except OSError:
                pass
            return
        super().discard()


Output = VideoSink | JsonlSink


def finish_outputs(outputs: list[Output]) -> None:
    """Close every output, then publish them all; if any close or rename fails, the files not yet
    published are removed (each, whatever happens to the others) and the error is raised."""
    pending = list(outputs)
    try:
        for output in outputs:
            output.close()
        while pending:
            pending[0].publish()
            pending.pop(0)
    except BaseException:
        discard_outputs(pending)
        raise


def discard_outputs(outputs: list[Output]) -> None:
    for output in outputs:
        output.discard()
