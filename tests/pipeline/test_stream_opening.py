"""Sources that open without holding each other up: a camera that hangs while opening costs its own
time only (OpenCV's FFmpeg open holds one lock for the whole process), and a looped file rewinds
instead of opening again. Real OpenCV, real sockets, a real video."""

import contextlib
import socket
import threading
import time

import pytest

from actionlstm.errors import UserError
from pipeline.serve.supervised import SupervisedSource
from pipeline.sources import LiveSource, Signal, VideoFileSource, open_source, probe_stream
from tests.helpers import read_video, write_video


@pytest.fixture
def silent_camera():
    """A TCP server that accepts every connection and never says a word: a camera hung in its boot."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                held.append(server.accept())

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for sock, _ in held:
        sock.close()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory, short_video):
    """Eight real frames at 20 fps: a file that ends, and so loops, every 0.4 s."""
    frames, _ = read_video(short_video)
    return write_video(tmp_path_factory.mktemp("tiny") / "tiny.avi", frames[:8], 20.0)


def test_a_camera_that_hangs_while_opening_holds_up_no_other_source(silent_camera, short_video, monkeypatch):
    monkeypatch.setattr("pipeline.sources.NETWORK_TIMEOUT_SECONDS", 2.0)
    url = f"rtsp://admin:S3cret@127.0.0.1:{silent_camera}/live?pwd=S3cret"
    failed = []

    def open_camera():
        try:
            open_source(url)
        except UserError as exc:
            failed.append((str(exc), time.monotonic()))

    started = time.monotonic()
    camera = threading.Thread(target=open_camera)
    camera.start()
    time.sleep(0.3)  # the camera's opening is under way
    opened = time.monotonic()
    VideoFileSource(short_video).close()
    took = time.monotonic() - opened
    camera.join(10)
    assert took < 1.0, f"a file took {took:.1f} s to open beside a hanging camera"
    message, ended = failed[0]
    assert 1.8 < ended - started < 3.5 and "no answer from 127.0.0.1" in message and "S3cret" not in message
    assert probe_stream(f"http://127.0.0.1:{silent_camera}/", timeout=0.3).startswith("no answer")


def test_nobody_listening_is_said_at_once(silent_camera):
    with socket.socket() as sock:  # a port bound, not listening: refused
        sock.bind(("127.0.0.1", 0))
        started = time.monotonic()
        why = probe_stream(f"rtsp://127.0.0.1:{sock.getsockname()[1]}/live")
    assert "refused" in why.lower() and time.monotonic() - started < 1.0


def test_a_looped_file_rewinds_instead_of_opening_again(tiny_clip):
    source = LiveSource(str(tiny_clip), realtime_file=True, loop=True)
    capture = source.capture
    frames = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and (frame := source.newest(timeout=0.5)) is not None:
        frames.append(frame)
    source.close()
    laps = [f.lap for f in frames]
    assert laps == sorted(laps) and laps[-1] >= 2, laps  # three laps in 1.5 s of a 0.4 s file
    assert source.capture is capture  # the same capture: rewound, never reopened
    first_of_lap = next(f for f in frames if f.lap == 1)
    assert abs(first_of_lap.timestamp - 8 / 20.0) < 0.15  # paced on as one stream: no jump, no pause


def test_a_supervised_looped_file_starts_afresh_each_lap(tiny_clip):
    source = SupervisedSource(str(tiny_clip), "loop", loop=True, idle_wait=0.05, log=lambda line: None)
    restarts, frames = 0, []
    deadline = time.monotonic() + 1.5
    for item in source:
        restarts += item is Signal.RESTART
        if not isinstance(item, Signal):
            frames.append(item)
        if time.monotonic() > deadline:
            break
    source.close()
    assert restarts >= 3 and source.replays >= 2 and source.status()["reconnects"] == 0
    times = [f.timestamp for f in frames]
    assert times == sorted(times)  # the service's frame times never go back across laps
