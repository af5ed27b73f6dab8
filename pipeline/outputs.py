"""Outputs of a run: the annotated video, the per-frame JSONL and the events, published only when
complete; the segments and the timeline picture written at the end; and the checks that refuse a
bad output before any work.

Each file a run writes frame by frame is written under a temporary name unique to this run
(`temporary_beside`) and renamed at the end, all outputs together (`finish_outputs`): a failed
write, a failed close or a video that does not read back whole fails the run with one line and
publishes nothing, removing every partial file. A stream that is not a regular file (`-` for
stdout, a FIFO, `/dev/stdout`) is written to directly instead: it cannot be replaced, and a reader
may be waiting on it.
"""

import json
import stat
import sys
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from actionlstm.atomic import publish, temporary_beside, write_json
from actionlstm.errors import UserError
from actionlstm.paths import check_output_file

TIMELINE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg")
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


class _AtomicOutput:
    """A file written under a unique hidden name and renamed onto `path` by `publish`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.partial = temporary_beside(self.path, "partial")
        except OSError as exc:
            raise _write_error(self.path, exc) from None

    def close(self) -> None:
        """Flush and close; raises `UserError` when what was written is not whole."""
        raise NotImplementedError

    def _release(self) -> None:
        """Let go of the file without checking anything (used when the run fails)."""
        raise NotImplementedError

    def publish(self) -> None:
        try:
            publish(self.partial, self.path)
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


class VideoOutput(_AtomicOutput):
    """The annotated video. Its size is the first frame's (later frames of another size are resized).

    A file source is written at its own frame rate, frame for frame. A live source (`live=True`) is
    written at the camera's rate measured over its first second (from the frames' capture numbers,
    which count the frames the pipeline dropped or the motion gate held back too) and kept to the
    capture clock, so a 10 s capture plays for 10 s however fast the pipeline ran, and a run that
    starts on an empty room (posed twice a second) still records people at the camera's rate.
    """

    def __init__(self, path: Path, fps: float, live: bool = False):
        check_video_path(Path(path))
        super().__init__(path)
        self.fps = fps
        self.live = live
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None  # width, height
        self.frames = 0  # frames written to the file
        self._held: list[tuple[float, int | None, np.ndarray]] = []  # live frames held back while the rate is measured
        self._start = 0.0  # capture time of the first frame

    def write(self, image: np.ndarray, timestamp: float = 0.0, index: int | None = None) -> None:
        """One frame; a live one with its capture time and, if known, its capture number."""
        if not self.live:
            self._encode(image, 1)
            return
        if self.writer is None:
            self._held.append((timestamp, index, image.copy()))
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
        numbered = all(index is not None for _, index, _ in held)
        frames = held[-1][1] - held[0][1] if numbered else len(held) - 1
        if frames > 0 and span > 0:
            self.fps = float(np.clip(round(frames / span, 1), 1.0, MAX_LIVE_FPS))
        self._start = held[0][0]
        self._open(held[0][2])
        for timestamp, _, image in held:
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


class JsonlOutput(_AtomicOutput):
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


Output = VideoOutput | JsonlOutput


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


def check_run_outputs(source: str, **outputs: Path | None) -> None:
    """Everything about the outputs (`save=`, `jsonl=`, `segments=`, `timeline=`, `events=`) that can
    be refused is refused before the pose model loads."""
    given = {name: path for name, path in outputs.items() if path is not None}
    if "save" in given:
        check_video_path(given["save"])
    if "segments" in given and given["segments"].suffix.lower() != ".json":
        raise UserError(f"{given['segments']}: segments are written as JSON, give a .json file name")
    if "timeline" in given and given["timeline"].suffix.lower() not in TIMELINE_SUFFIXES:
        raise UserError(f"{given['timeline']}: give the picture a {', '.join(TIMELINE_SUFFIXES)} file name")
    if "events" in given and given["events"].suffix.lower() != ".jsonl":
        raise UserError(f"{given['events']}: events are written as JSON lines, give a .jsonl file name")
    files = {name: path for name, path in given.items() if not (name == "jsonl" and is_stream(path))}
    for path in files.values():
        check_output_file(path, source)
    seen: dict[Path, str] = {}
    for name, path in files.items():
        other = seen.setdefault(path.resolve(), name)
        if other != name:
            raise UserError(f"--{other} and --{name} are the same file {path}; give each its own")


def per_source(path: Path | None, index: int, count: int) -> Path | None:
    """One source keeps the name given; with several, source k writes `name.k.ext` (o.mp4 -> o.0.mp4, o.1.mp4)."""
    if path is None or count == 1:
        return path
    return path.with_name(f"{path.stem}.{index}{path.suffix}")


def source_outputs(specs: list[str], **outputs: Path | None) -> list[dict[str, Path | None]]:
    """Each source's output files (`per_source`), checked (and refused) before the pose model loads."""
    if len(specs) > 1 and outputs.get("jsonl") is not None and is_stream(outputs["jsonl"]):
        raise UserError(
            f"--jsonl {outputs['jsonl']} is a stream, which takes the lines of one source; give a file name for several sources"
        )
    named = [{name: per_source(path, k, len(specs)) for name, path in outputs.items()} for k in range(len(specs))]
    for spec, files in zip(specs, named):
        check_run_outputs(spec, **files)
    return named


def write_segments(segments: list[dict], path: Path) -> None:
    """The action segments (`pipeline.segments`) as JSON, written atomically."""
    try:
        write_json(segments, path)
    except OSError as exc:
        raise _write_error(path, exc) from None


def write_timeline(segments: list[dict], path: Path, duration: float | None, title: str) -> None:
    """The segments as a timeline picture (`pipeline.timeline`), written atomically."""
    from pipeline.timeline import draw_timeline

    try:
        draw_timeline(segments, path, duration=duration, title=title)
    except OSError as exc:
        raise _write_error(path, exc) from None
