"""Recording training clips of one action from a live source: countdown, record, save, repeat.

Each clip is `seconds` of capture time, measured with the frames' own timestamps, and is written at
the rate the frames actually arrived, so it plays for as long as it was recorded however many
frames the camera (or a slow preview) delivered. Saved frames are the raw ones, never the preview's
drawings: they are what `actionlstm extract` reads later. A clip is published under its final name
only when complete, so a stop (q, Ctrl-C, end of source) never leaves a truncated clip behind.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from rich.markup import escape

from actionlstm import console
from actionlstm.atomic import atomic_path
from actionlstm.errors import UserError, interrupt_exit_code, interrupt_name
from pipeline.display import Display
from pipeline.overlay import FONT, Overlay
from pipeline.pose import PoseEstimator
from pipeline.sources import Frame, FrameSource
from pipeline.tracking import Poses, Tracker

_RED = (40, 40, 230)  # BGR


@dataclass
class Recording:
    clips: list[Path]  # saved clips, in order
    wanted: int  # clips asked for
    ended_by: str  # "done", "end of source", "quit", "Ctrl-C" or "SIGTERM"
    partial: bool  # a clip was being recorded when it ended (and was discarded)
    exit_code: int = 0  # 130 after Ctrl-C, 143 after SIGTERM: the recording did not end by itself


def check_label(label: str) -> None:
    """The label becomes a folder name: it must name one folder inside `--out`, never another place."""
    if not label.strip() or label in (".", "..") or any(c in label for c in "/\\\0"):
        raise UserError(f"label '{label}' is not a valid folder name (it must not be empty, '.' or '..', or contain '/' or '\\')")


def clip_path(folder: Path, started: datetime) -> Path:
    """`folder/<YYYYmmdd-HHMMSS-mmm>.mp4` for the clip's start time, moved on by 1 ms while the name is
    taken, so that no clip replaces another, even from an earlier run or a clock set back."""
    while True:
        path = folder / f"{started:%Y%m%d-%H%M%S}-{started.microsecond // 1000:03d}.mp4"
        if not path.exists():
            return path
        started += timedelta(milliseconds=1)


def completes_clip(take: list[Frame], timestamp: float, seconds: float) -> bool:
    """Whether a frame at `timestamp` lies beyond the clip that began with `take[0]`, to the nearest
    frame: capture times jitter, and a frame due exactly at the end but captured a hair early must
    close the clip rather than make it one frame longer than asked."""
    elapsed = timestamp - take[0].timestamp
    return elapsed >= seconds - elapsed / len(take) / 2


def write_clip(path: Path, frames: list[Frame], span: float) -> float:
    """Write the raw frames as mp4v at their measured rate (frames per second of capture time spanned);
    returns that rate. Written under a temporary name, so an interrupted write leaves nothing."""
    fps = len(frames) / span
    height, width = frames[0].image.shape[:2]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise UserError(f"cannot write video {path}")
        try:
            for frame in frames:
                writer.write(frame.image)
        finally:
            writer.release()
    return fps


def draw_preview(image: np.ndarray, people: Poses | None, overlay: Overlay, status: str, recording: bool) -> np.ndarray:
    """A copy of the frame with the people's skeletons, and either the big countdown number or a red REC marker."""
    preview = image.copy()
    if people is not None:
        overlay.draw(preview, people, {}, None)
    height, width = preview.shape[:2]
    unit = max(height / 480.0, 0.5)
    if recording:
        scale, thickness = 0.8 * unit, max(1, round(2 * unit))
        (_, text_h), _ = cv2.getTextSize(status, FONT, scale, thickness)
        radius = max(4, round(9 * unit))
        centre = (round(12 * unit) + radius, round(12 * unit) + radius)
        cv2.circle(preview, centre, radius, _RED, -1, cv2.LINE_AA)
        origin = (centre[0] + radius + round(8 * unit), centre[1] + text_h // 2)
        cv2.putText(preview, status, origin, FONT, scale, _RED, thickness, cv2.LINE_AA)
    else:
        scale, thickness = 5.0 * unit, max(2, round(10 * unit))
        (text_w, text_h), _ = cv2.getTextSize(status, FONT, scale, thickness)
        origin = ((width - text_w) // 2, (height + text_h) // 2)
        cv2.putText(preview, status, origin, FONT, scale, (0, 0, 0), thickness + max(2, round(4 * unit)), cv2.LINE_AA)  # outline
        cv2.putText(preview, status, origin, FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return preview


def record_clips(
    source: FrameSource,
    label: str,
    out_dir: Path,
    clips: int,
    seconds: float,
    countdown: float,
    display: Display,
    stages: tuple[PoseEstimator, Tracker] | None = None,
) -> Recording:
    """Record up to `clips` clips of `seconds` each into `out_dir/label`, each after a `countdown`.

    A clip holds the frames within `seconds` of its first one; the first frame beyond completes it
    (see `completes_clip`), and the time between them is the span the clip is written for.
    The next countdown (or clip) starts with the frame read after the save, since the frames that
    arrived while saving were dropped by the live source. Stops early on q / Esc, Ctrl-C or the end
    of the source; the clip under way is then discarded and the finished ones are kept.
    With `stages` (pose, tracker: `PoseSettings.build`), the preview shows the skeletons, tracked so
    each person keeps a colour.
    """
    folder = out_dir / label
    overlay = Overlay()
    pose, tracker = stages if stages is not None else (None, None)
    if tracker is not None:
        tracker.reset(source.fps)
    saved: list[Path] = []
    take: list[Frame] = []  # frames of the clip being recorded
    started = datetime.now()  # wall-clock start of the clip being recorded, for its name
    phase_start: float | None = None  # timestamp of the first frame of the current countdown
    ended_by = "end of source"
    try:
        for frame in source:
            if take and completes_clip(take, frame.timestamp, seconds):
                path = clip_path(folder, started)
                span = frame.timestamp - take[0].timestamp
                fps = write_clip(path, take, span)
                saved.append(path)
                console.out.print(
                    f"saved {escape(str(path))} (clip {len(saved)}/{clips}: {len(take)} frames, {span:.1f} s at {fps:.1f} fps)",
                    soft_wrap=True,
                )
                take = []
                phase_start = None
                if len(saved) == clips:
                    ended_by = "done"
                    break
                continue
            if phase_start is None:
                phase_start = frame.timestamp
            remaining = countdown - (frame.timestamp - phase_start)
            if take or remaining <= 0:
                if not take:
                    started = datetime.now()
                    console.err.print(f"recording clip {len(saved) + 1}/{clips}")
                take.append(frame)
                status = f"REC {len(saved) + 1}/{clips}"
            else:
                status = str(math.ceil(remaining))
            if display.enabled:
                people = tracker(pose(frame.image), frame.image) if pose is not None else None
                if not display.show(draw_preview(frame.image, people, overlay, status, recording=bool(take))):
                    ended_by = "quit"
                    break
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the finished clips are kept
        return Recording(saved, clips, interrupt_name(stop), partial=bool(take), exit_code=interrupt_exit_code(stop))
    return Recording(saved, clips, ended_by, partial=bool(take))


def recording_summary(recording: Recording, label: str, folder: Path) -> str:
    """One line: how many clips were saved where and, when fewer than asked, why.

    A source that ended before the first clip was complete is an error: nothing was recorded.
    """
    count = len(recording.clips)
    if recording.ended_by == "done":
        return f"{count} clip{'s' if count != 1 else ''} of {label} in {folder}"
    if count == 0 and recording.ended_by == "end of source":
        raise UserError(f"no clip recorded: the source ended before the first clip of {label} was complete")
    cause = {"end of source": "the source ended", "quit": "stopped by q"}.get(recording.ended_by, f"stopped by {recording.ended_by}")
    when = f"during clip {count + 1}, which was discarded" if recording.partial else f"before clip {count + 1}"
    return f"{count} of {recording.wanted} clips of {label} in {folder} ({cause} {when})"
