"""What the tests share besides fixtures: where the real material is, the `actionlstm` command run in
this process or in a fresh one, and checks of what a user sees."""

import contextlib
import http.server
import io
import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
VIDEOS = SHARED_DATA / "videos"
ACTIONS = SHARED_DATA / "actions"

TRAINED_EPOCHS = 8  # of `trained_checkpoint`, the model many tests run

# The command as a user starts it, in a process of its own ...
CLI = [sys.executable, "-m", "actionlstm"]
# ... and as torchrun launches it in 2 processes on this machine (`torchrun --standalone --nproc-per-node 2 -m actionlstm`).
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "actionlstm"]


def run_cli(*args: object, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`actionlstm ARGS` run to its end in this process (in `cwd`), with what it wrote on stdout and
    stderr and its exit code, as `subprocess.run` would give them: the command's own entry point
    (`actionlstm.cli.execute`), without a new interpreter's start-up and imports. What needs a
    process of its own (signals, their exit codes, torchrun, a limit on file sizes, a kill mid-write)
    starts `CLI` instead."""
    from actionlstm.cli import execute

    argv = [str(arg) for arg in args]
    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                execute(argv)
                code = 0  # execute always ends in SystemExit; this is never reached
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["actionlstm", *argv], code, out.getvalue(), err.getvalue())


@contextmanager
def one_thread():
    """One intra-op thread, in this process and in the commands it starts: tiny models gain nothing
    from more, and on a busy 2-core machine oversubscribed threads make a 0.1 s epoch take 10 s or more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OMP_NUM_THREADS", "1")
            yield
    finally:
        torch.set_num_threads(threads)


def spawn_cli(*args: object, cwd: Path = ROOT, env: dict | None = None, timeout: float = 600, **popen) -> subprocess.CompletedProcess:
    """`actionlstm ARGS` in a process of its own, as a user runs it."""
    command = [*CLI, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env or dict(os.environ), **popen)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 1, exactly one non-empty stderr line, starting with 'error:', no traceback anywhere."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:"), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def shared_video(name: str) -> Path:
    path = VIDEOS / name
    if not path.exists():
        pytest.skip(f"test video {path} is not there (tests read ../shared/data/videos)")
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    """Every frame of a video decoded straight with OpenCV (not by the code under test), and its fps."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """`frames` as an MJPG video (what the tests cut from the real clips)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for image in frames:
        writer.write(image)
    writer.release()
    return path


def free_port() -> int:
    """A loopback port nobody listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Records each POSTed JSON body (and its Authorization header); hangs while `hang` is set."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.hang.is_set():
            self.server.hang_released.wait(10)
        self.server.received.append((json.loads(body), self.headers.get("Authorization")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def start_receiver() -> http.server.ThreadingHTTPServer:
    """A real HTTP server on loopback that takes webhooks: `.received`, `.hang` (set: it stops answering)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received, server.hang, server.hang_released = [], threading.Event(), threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ReplayedPose:
    """A pose stage that hands out, in order, detections the real one (`PoseEstimator`) made of a
    video's frames: two runs over the same video then pay for its pose network once. A
    `PoseEstimator` keeps no state from frame to frame, so the second run sees what it would have."""

    file_batch = 1

    def __init__(self, detections: list):
        self.detections = list(detections)
        self.given = 0

    def batch(self, images: list) -> list:
        found = self.detections[self.given : self.given + len(images)]
        assert len(found) == len(images), "more frames than the detections were made of"
        self.given += len(images)
        return found

    def __call__(self, image):
        return self.batch([image])[0]


def detections_of(video: Path, pose) -> list:
    """The pose stage's detections of every frame of `video`, as `run` makes them (one frame a call)."""
    return [pose(image) for image in read_video(video)[0]]


def camera_likeness(picture: np.ndarray, frames: list[np.ndarray]) -> float:
    """How much of a camera's frame a picture holds: the highest correlation of its grey levels with
    those of any of the source's `frames` (scaled to the frame's size); 1 for the frame itself, about
    0 for a drawing on a plain background (privacy mode)."""
    grey = cv2.cvtColor(cv2.resize(picture, frames[0].shape[1::-1], interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY).ravel()
    return max(
        float(np.corrcoef(grey.astype(np.float64), cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).ravel().astype(np.float64))[0, 1]) for f in frames
    )
