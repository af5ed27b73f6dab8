"""Shared fixtures: generated pickles in the exact mmcv format, a small trained checkpoint, real videos."""

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionlstm.synthetic import write_sample_pickle

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
VIDEOS = SHARED_DATA / "videos"
ACTIONS = SHARED_DATA / "actions"

# A test run started in the background (`pytest &`, `nohup pytest`) ignores Ctrl-C, and so would every
# command the tests start, since an ignored signal stays ignored across exec: the tests that press
# Ctrl-C on a command would see it run to its end. A handled signal is reset to the default at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _private_cache(_session_cache, monkeypatch):
    """Caches (parsed pickles, exported pose models) live in a folder of this test session, never
    in the user's; entries are keyed by file path, size and time, so tests cannot see each other's."""
    monkeypatch.setenv("ACTIONLSTM_CACHE_DIR", str(_session_cache))


CLI = [sys.executable, "-c", "from actionlstm.cli import main; main()"]
# The command as torchrun launches it in 2 processes on this machine (`torchrun --standalone --nproc-per-node 2 -m actionlstm`).
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "actionlstm"]


def run_cli(*args, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real console command, as a user runs it."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=dict(os.environ), cwd=cwd)


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


@pytest.fixture
def single_thread(monkeypatch):
    """One intra-op thread and plain terminal output for CLI runs on tiny data: tiny models gain
    nothing from more threads, and on a busy 2-core machine oversubscribed threads make a 0.1 s
    epoch take 10 s or more."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def sample_pickle(tmp_path_factory) -> Path:
    """4 learnable classes, 40 clips each, in the exact ucf101_2d.pkl format."""
    path = tmp_path_factory.mktemp("data") / "sample.pkl"
    write_sample_pickle(path, num_classes=4, clips_per_class=40, frames=(30, 160), seed=3)
    return path


@pytest.fixture(scope="session")
def trained_checkpoint(sample_pickle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "model.pth"
    # One member: the model that many tests run, not the recipe (five members train several times as long).
    result = run_cli("train", "--data", sample_pickle, "--epochs", "12", "--batch-size", "32", "--members", "1", "--out", out, "--device", "cpu", "--no-cache")
    assert result.returncode == 0, result.stderr
    return out


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


@pytest.fixture(scope="session")
def short_video(tmp_path_factory) -> Path:
    """The first 40 frames of the 3-person exercise video (10 fps), as an MJPG .avi: real people for
    runs that need a few seconds of video, not a whole clip."""
    frames, fps = read_video(shared_video("exercise_3people.avi"))
    path = tmp_path_factory.mktemp("short") / "short.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for image in frames[:40]:
        writer.write(image)
    writer.release()
    return path


def free_port() -> int:
    """A loopback port nobody listens on now."""
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


@pytest.fixture
def receiver():
    """A real HTTP server on loopback that takes webhooks: `.received`, `.hang` (set: it stops answering)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received, server.hang, server.hang_released = [], threading.Event(), threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.hang_released.set()
    server.shutdown()
    server.server_close()
