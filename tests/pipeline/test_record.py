"""`actionlstm record`: clips of the asked length at the measured rate, raw frames only, no countdown
frames, atomic files, early ends that keep finished clips, one-line errors. The shared video is
played live as the camera (10 fps, 384x288, 393 frames)."""

import re
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionlstm.errors import UserError
from pipeline.record import Recording, record_clips, recording_summary
from pipeline.sources import Frame, FrameSource
from tests.helpers import CLI, ROOT, assert_user_error, read_video, run_cli, shared_video

NAME = re.compile(r"\d{8}-\d{6}-\d{3}\.mp4")


def _record(out: Path, *options) -> subprocess.CompletedProcess:
    return run_cli("record", "wave", "--out", out, "--source", shared_video("exercise_3people.avi"), "--no-show", *options)


@pytest.fixture(scope="module")
def source_frames() -> list[np.ndarray]:
    """The first 50 frames of the shared video, to find where a clip begins."""
    capture = cv2.VideoCapture(str(shared_video("exercise_3people.avi")))
    frames = [capture.read()[1] for _ in range(50)]
    capture.release()
    return frames


def _source_index(image: np.ndarray, source_frames: list[np.ndarray]) -> tuple[int, float]:
    """The source frame the (re-encoded) image is closest to, and its mean absolute difference."""
    diffs = [float(np.abs(image.astype(np.int16) - frame.astype(np.int16)).mean()) for frame in source_frames]
    best = int(np.argmin(diffs))
    return best, diffs[best]


def _clips(folder: Path) -> list[Path]:
    """The clips in a folder, after checking that nothing else (no temporary file) is there."""
    entries = sorted(folder.iterdir())
    assert all(NAME.fullmatch(p.name) for p in entries), [p.name for p in entries]
    return entries


@pytest.mark.video
def test_records_raw_clips_of_the_asked_length(tmp_path, source_frames):
    proc = _record(tmp_path, "--countdown", "0", "--clips", "3", "--seconds", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    clips = _clips(tmp_path / "wave")
    assert len(clips) == 3
    assert proc.stdout.count("saved ") == 3 and f"3 clips of wave in {tmp_path / 'wave'}" in proc.stdout
    for clip in clips:
        frames, fps = read_video(clip)
        assert 17 <= len(frames) <= 23, (clip.name, len(frames))
        assert all(frame.shape == (288, 384, 3) for frame in frames)
        assert abs(fps - 10.0) < 0.7, fps  # written at the rate the frames came, so it plays for ~2 s
    first, _ = read_video(clips[0])
    index, diff = _source_index(first[0], source_frames)
    assert index <= 2 and diff < 3.0, (index, diff)  # the very start of the source, undrawn


@pytest.mark.video
def test_countdown_frames_are_not_saved(tmp_path, source_frames):
    proc = _record(tmp_path, "--countdown", "1", "--clips", "1", "--seconds", "1")
    assert proc.returncode == 0, proc.stderr
    (clip,) = _clips(tmp_path / "wave")
    frames, _ = read_video(clip)
    assert 8 <= len(frames) <= 12
    index, diff = _source_index(frames[0], source_frames)
    assert 9 <= index <= 14 and diff < 3.0, (index, diff)  # ~10 frames (1 s at 10 fps) went to the countdown


@pytest.mark.video
def test_source_ending_early_keeps_finished_clips(tmp_path, source_frames):
    """3 clips of 3 s from a 5 s cut of the real video: the first is saved, the second is cut short
    and discarded."""
    cut = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(cut), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (384, 288))
    for frame in source_frames:
        writer.write(frame)
    writer.release()
    out = tmp_path / "out"
    proc = run_cli("record", "wave", "--out", out, "--source", cut, "--no-show", "--countdown", "0", "--clips", "3", "--seconds", "3")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (clip,) = _clips(out / "wave")
    frames, fps = read_video(clip)
    assert 27 <= len(frames) <= 33 and abs(fps - 10.0) < 0.7
    assert "1 of 3 clips of wave" in proc.stdout and "the source ended during clip 2" in proc.stdout


def test_no_clip_recorded_is_an_error(tmp_path):
    short = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (96, 64))
    for i in range(10):
        writer.write(np.full((64, 96, 3), 20 * i, np.uint8))
    writer.release()
    proc = run_cli(
        "record", "wave", "--out", tmp_path / "out", "--source", short, "--no-show", "--countdown", "0", "--clips", "1", "--seconds", "5"
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert lines[-1].startswith("error: no clip recorded"), proc.stderr
    assert not list((tmp_path / "out" / "wave").iterdir())


@pytest.mark.video
@pytest.mark.parametrize("stop, code, name", [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")])
def test_interrupt_keeps_finished_clips(tmp_path, stop, code, name):
    command = [
        *CLI,
        "record",
        "wave",
        "--out",
        str(tmp_path),
        "--source",
        str(shared_video("exercise_3people.avi")),
        "--no-show",
        "--countdown",
        "0",
        "--clips",
        "3",
        "--seconds",
        "2",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = tmp_path / "wave"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (folder.is_dir() and any(NAME.fullmatch(p.name) for p in folder.iterdir())):
        time.sleep(0.05)
    time.sleep(0.5)  # into the second clip
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert len(_clips(folder)) == 1
    assert "1 of 3 clips of wave" in stdout and f"stopped by {name} during clip 2" in stdout


@pytest.mark.parametrize("label", ["../x", "..", ""])
def test_invalid_label(tmp_path, label):
    proc = run_cli("record", label, "--out", tmp_path / "videos", "--no-show", cwd=tmp_path)
    assert_user_error(proc, "not a valid folder name")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("option", [("--seconds", "0"), ("--countdown", "-1"), ("--countdown", "nan")])
def test_bad_durations(tmp_path, option):
    proc = run_cli("record", "wave", "--out", tmp_path / "videos", "--no-show", *option, cwd=tmp_path)
    assert_user_error(proc, option[0])


# --- in process: exact timestamps, a window that records what it is shown -------------------------


class _Frames(FrameSource):
    """`count` frames at exactly 10 fps; frame i is filled with the grey level 4 * i."""

    is_live = True
    fps, size, frame_count = 10.0, (96, 64), None

    def __init__(self, count: int):
        self.count = count

    def __iter__(self):
        for i in range(self.count):
            yield Frame(i, 100.0 + i / self.fps, np.full((64, 96, 3), 4 * i, np.uint8))

    def close(self) -> None:
        pass


class _Window:
    """A display that keeps the previews and answers q after `quit_after` of them."""

    enabled = True

    def __init__(self, quit_after: int | None = None):
        self.shown: list[np.ndarray] = []
        self.quit_after = quit_after

    def show(self, image: np.ndarray) -> bool:
        self.shown.append(image)
        return self.quit_after is None or len(self.shown) < self.quit_after


def test_preview_is_drawn_but_clips_are_raw(tmp_path):
    window = _Window()
    recording = record_clips(_Frames(60), "wave", tmp_path, clips=1, seconds=2, countdown=1, display=window)
    assert recording == Recording(recording.clips, 1, "done", partial=False)
    frames, fps = read_video(recording.clips[0])
    assert len(frames) == 20 and fps == pytest.approx(10.0, abs=0.01)  # frames 10..29; frame 30 ends the clip
    levels = np.array([f.mean() for f in frames])  # the codec shifts grey levels by a few units
    assert np.allclose(levels - levels[0], 4 * np.arange(20), atol=1.0) and 34 <= levels[0] <= 44  # from frame 10, none skipped
    assert all(f.std() < 2.0 for f in frames)  # plain grey: nothing drawn on what is saved
    assert len(window.shown) == 30
    assert all(image.std() > 0 for image in window.shown)  # countdown number, then the REC marker
    red = [bool((image[..., 2].astype(int) > image[..., 0].astype(int) + 100).any()) for image in window.shown]
    assert red == [False] * 10 + [True] * 20  # the red REC marker only while recording


def test_quit_discards_the_clip_under_way(tmp_path):
    recording = record_clips(_Frames(60), "wave", tmp_path, clips=2, seconds=2, countdown=0, display=_Window(quit_after=25))
    assert len(recording.clips) == 1 and recording.ended_by == "quit" and recording.partial
    assert [p.name for p in (tmp_path / "wave").iterdir()] == [recording.clips[0].name]
    summary = recording_summary(recording, "wave", tmp_path / "wave")
    assert summary.startswith("1 of 2 clips of wave") and "stopped by q during clip 2, which was discarded" in summary


def test_clip_names_never_collide(tmp_path):
    """Clips recorded within the same millisecond (0.1 s clips at a simulated 10 fps take no real time)."""
    recording = record_clips(_Frames(60), "wave", tmp_path, clips=5, seconds=0.1, countdown=0, display=_Window())
    assert len({p.name for p in recording.clips}) == 5 == len(list((tmp_path / "wave").iterdir()))


def test_end_of_source_before_any_clip_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no clip recorded"):
        recording_summary(Recording([], 3, "end of source", partial=True), "wave", tmp_path)
