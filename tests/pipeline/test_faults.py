"""Faults a careless or hostile user meets: shared output paths, full disks, finite URLs, truncated
files, FIFOs and stdout, passwords in stream URLs. Real pose, real OpenCV writers. (SIGTERM ending a
run as Ctrl-C does is tested beside Ctrl-C, in test_run.py.)"""

import http.server
import json
import os
import resource
import signal
import socket
import stat
import subprocess
import threading
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionlstm.errors import UserError
from pipeline.outputs import JsonlOutput, VideoOutput, finish_outputs
from pipeline.sources import VideoFileSource, _open_capture, open_source, redact
from tests.helpers import CLI, ROOT, read_video, run_cli, shared_video, spawn_cli

KNOWN = b"an earlier result that must survive"


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


# --- 1. two outputs on one path ------------------------------------------------------------------


@pytest.mark.video
def test_save_and_jsonl_on_one_path_is_refused_before_any_work(trained_checkpoint, short_video, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(KNOWN)
    proc = run_cli("run", short_video, "--checkpoint", trained_checkpoint, "--save", out, "--jsonl", out, "--no-show", "--device", "cpu")
    assert proc.returncode == 1 and "same file" in proc.stderr, proc.stderr
    assert "pose model" not in proc.stderr  # refused before the run started
    assert out.read_bytes() == KNOWN
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_temporary_names_are_unique_per_run(tmp_path):
    first, second = JsonlOutput(tmp_path / "a.jsonl"), JsonlOutput(tmp_path / "a.jsonl")
    assert first.partial != second.partial and first.partial.parent == second.partial.parent == tmp_path
    first.write({"run": 1})
    second.write({"run": 2})
    finish_outputs([first])
    assert _records((tmp_path / "a.jsonl").read_text()) == [{"run": 1}]
    second.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]


# --- 2. write failures --------------------------------------------------------------------------


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


@pytest.mark.video
def test_failed_write_publishes_nothing_and_leaves_no_partials(trained_checkpoint, short_video, tmp_path):
    """Files may not grow past 20 kB in the run: what cannot be written whole is not published, and
    an earlier result under the same name survives. Three runs, each in a process of its own (the
    limit is the process's), side by side: a video, a JSONL, both."""
    cases = {"video": ("--save", "out.mp4"), "jsonl": ("--jsonl", "out.jsonl"), "both": ("--save", "out.avi", "--jsonl", "out.jsonl")}
    runs = {}
    for name, outputs in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        args = [option if option.startswith("--") else folder / option for option in outputs]
        for path in args[1::2]:
            path.write_bytes(KNOWN)
        command = [*CLI, "run", short_video, "--checkpoint", trained_checkpoint, *args, "--no-show", "--device", "cpu"]
        command += ["--pose-backend", "torch"]  # no pose export to write first
        process = subprocess.Popen(  # one torch thread each: three processes share the cores
            [str(part) for part in command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=_file_size_limit(20_000),
        )  # fmt: skip
        runs[name] = (folder, args, process)
    for name, (folder, args, process) in runs.items():
        _, stderr = process.communicate(timeout=300)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert process.returncode == 1, (name, stderr)
        assert "Traceback" not in stderr and lines[-1].startswith("error:"), (name, stderr)
        assert "cannot write" in lines[-1] or "failed" in lines[-1], (name, lines[-1])
        for path in args[1::2]:
            assert path.read_bytes() == KNOWN, name
        assert _partials(folder) == [], name


def test_one_output_failing_to_close_removes_the_others(tmp_path):
    video = VideoOutput(tmp_path / "v.mp4", 10.0)  # no frame written: it cannot be read back whole
    records = JsonlOutput(tmp_path / "r.jsonl")
    records.write({"frame": 0})
    with pytest.raises(UserError, match="v.mp4"):
        finish_outputs([video, records])
    assert list(tmp_path.iterdir()) == []


def test_output_that_cannot_be_replaced_at_the_end(tmp_path):
    records = JsonlOutput(tmp_path / "r.jsonl")
    records.write({"frame": 0})
    (tmp_path / "r.jsonl").mkdir()  # something took the name while the run went on
    (tmp_path / "r.jsonl" / "keep").write_text("x")
    with pytest.raises(UserError, match="cannot save"):
        finish_outputs([records])
    assert _partials(tmp_path) == []
    assert (tmp_path / "r.jsonl" / "keep").read_text() == "x"


# --- 3. sources -----------------------------------------------------------------------------------


@pytest.fixture
def http_folder(tmp_path):
    """A local HTTP server over `tmp_path` (a stand-in for a video linked on the web)."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_of_a_finite_file_is_read_once_in_order(short_video, http_folder):
    folder, base = http_folder
    (folder / "clip.avi").write_bytes(short_video.read_bytes())
    with open_source(f"{base}/clip.avi") as source:
        assert not source.is_live
        indices = [frame.index for frame in source]
    assert indices == list(range(40))  # not replayed: 40 frames, once


def test_truncated_file_says_so():
    video = shared_video("exercise_3people.avi")
    data = video.read_bytes()
    cut = Path(os.environ.get("TMPDIR", "/tmp")) / f"truncated-{os.getpid()}.avi"
    cut.write_bytes(data[: len(data) * 3 // 10])
    try:
        with open_source(str(cut)) as source:
            frames = sum(1 for _ in source)
    finally:
        cut.unlink()
    assert 0 < frames < 393
    assert source.warning.endswith(f"ended at frame {frames} of 393: the file looks truncated")
    with open_source(str(video)) as whole:
        assert sum(1 for _ in whole) == 393 and whole.warning == ""


def test_stream_that_never_answers_times_out():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never says a word
    try:
        started = time.monotonic()
        assert _open_capture(f"http://127.0.0.1:{silent.getsockname()[1]}/live", timeout=1.0) is None
        assert time.monotonic() - started < 10  # without a timeout FFmpeg waits for ever
    finally:
        silent.close()


def test_file_named_like_a_camera_index_is_a_file(short_video, tmp_path, monkeypatch):
    (tmp_path / "0.mp4").write_bytes(short_video.read_bytes())  # an MJPG stream under an .mp4 name still decodes
    monkeypatch.chdir(tmp_path)
    with open_source("0.mp4") as source:
        assert isinstance(source, VideoFileSource) and source.frame_count == 40
    with pytest.raises(UserError, match="video file not found: 1.mp4"):
        open_source("1.mp4")


# --- 4. live saving -------------------------------------------------------------------------------


def _video_seconds(path: Path) -> float:
    capture = cv2.VideoCapture(str(path))
    frames, fps = capture.get(cv2.CAP_PROP_FRAME_COUNT), capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames / fps


def test_live_video_plays_as_long_as_the_capture(tmp_path):
    """Frames processed at an uneven 4-6 fps from a camera that claims 30 fps: 10 s of capture
    plays for 10 s, and a frame of another size is resized into the video, not dropped."""
    output = VideoOutput(tmp_path / "live.mp4", fps=30.0, live=True)
    rng = np.random.default_rng(0)
    t, k = 100.0, 0
    while t < 110.0:
        size = (240, 320) if k % 10 == 5 else (480, 640)
        output.write(np.full((*size, 3), k % 255, np.uint8), t)
        t, k = t + rng.uniform(1 / 6, 1 / 4), k + 1
    finish_outputs([output])
    assert 4.0 <= output.fps <= 6.0  # measured, not the camera's claim
    assert abs(_video_seconds(tmp_path / "live.mp4") - 10.0) < 0.5
    frames, _ = read_video(tmp_path / "live.mp4")
    assert {f.shape for f in frames} == {(480, 640, 3)}


@pytest.mark.video
def test_realtime_run_saves_a_video_as_long_as_the_source(trained_checkpoint, tmp_path):
    """A 10 s, 30 fps video played as a camera: the pipeline keeps up with fewer frames than that
    on this CPU, and the saved video still plays for 10 s, at the rate it measured."""
    video = shared_video("basketball_2people.mp4")
    proc = run_cli(
        "run", video, "--checkpoint", trained_checkpoint, "--save", tmp_path / "live.mp4", "--realtime", "--no-show", "--device", "cpu"
    )
    assert proc.returncode == 0, proc.stderr
    assert abs(_video_seconds(tmp_path / "live.mp4") - 10.0) < 1.0


def test_file_video_keeps_every_frame_even_of_another_size(tmp_path):
    output = VideoOutput(tmp_path / "file.avi", fps=10.0)
    for k in range(10):
        output.write(np.full((120, 160, 3) if k != 4 else (60, 200, 3), 20 * k, np.uint8))
    finish_outputs([output])
    frames, fps = read_video(tmp_path / "file.avi")
    assert len(frames) == 10 and fps == 10.0
    assert abs(int(frames[4].mean()) - 80) <= 3  # the odd-sized frame is there, resized


# --- 5. FIFOs and stdout --------------------------------------------------------------------------


@pytest.mark.video
def test_jsonl_to_stdout_and_to_a_fifo(trained_checkpoint, short_video, tmp_path):
    # A process of its own: whatever any library prints on the real stdout would be caught here too.
    proc = spawn_cli("run", short_video, "--checkpoint", trained_checkpoint, "--jsonl", "-", "--no-show", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert [r["frame"] for r in _records(proc.stdout)] == list(range(40))  # stdout holds the JSONL only
    assert "40 frames in" in proc.stderr  # the summary went to stderr

    fifo = tmp_path / "frames.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.extend(open(fifo, encoding="utf-8").read().splitlines()), daemon=True)
    reader.start()
    proc = run_cli("run", short_video, "--checkpoint", trained_checkpoint, "--jsonl", fifo, "--no-show", "--device", "cpu")
    reader.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert [r["frame"] for r in map(json.loads, received)] == list(range(40))
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # written to, not replaced by a regular file
    assert _partials(tmp_path) == []


# --- 6. outputs checked first; 7. passwords -------------------------------------------------------


@pytest.mark.parametrize("option, name, message", [("--save", "out.gif", "use a .mp4"), ("--jsonl", "file/out.jsonl", "is a file")])
def test_outputs_are_checked_before_the_pose_model_loads(trained_checkpoint, short_video, tmp_path, option, name, message):
    (tmp_path / "file").write_text("a file where a folder should be")
    proc = run_cli(
        "run",
        short_video,
        "--checkpoint",
        trained_checkpoint,
        option,
        tmp_path / name,
        "--pose-model",
        tmp_path / "missing.pt",
        "--no-show",
    )
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr  # not "pose model not found"


@pytest.mark.parametrize(
    "spec, shown",
    [
        ("rtsp://admin:S3cretPass@camera.local:554/stream", "rtsp://***@camera.local:554/stream"),
        ("http://user@host/v.mp4", "http://***@host/v.mp4"),
        ("rtsp://camera.local/stream", "rtsp://camera.local/stream"),
        ("http://cam.local/video.cgi?user=admin&pwd=S3cret&resolution=640", "http://cam.local/video.cgi?user=***&pwd=***&resolution=***"),
        ("rtsp://a:b@[fd00::5]:8554/live?token#frag", "rtsp://***@[fd00::5]:8554/live?***"),
        ("http://[::1/broken?pwd=S3cret", "http://***"),
        ("videos/a@b.mp4", "videos/a@b.mp4"),
        ("0", "0"),
    ],
)
def test_redact_hides_credentials_and_query_values(spec, shown):
    assert redact(spec) == shown


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://hooks.slack.com/services/T0/B0/S3cret", "https://hooks.slack.com:443/…"),
        ("http://u:p@homeassistant.local:8123/api/webhook/S3cret?x=1", "http://homeassistant.local:8123/…"),
        ("http://[::1]/S3cret", "http://[::1]:80/…"),
    ],
)
def test_a_webhook_shows_only_where_it_goes(url, shown):
    assert redact(url, path=False) == shown


def test_stream_password_is_never_printed(trained_checkpoint):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once closed
    proc = run_cli(
        "run", f"rtsp://admin:S3cretPass@127.0.0.1:{port}/stream", "--checkpoint", trained_checkpoint, "--no-show", "--device", "cpu"
    )
    assert proc.returncode == 1
    assert f"cannot open stream rtsp://***@127.0.0.1:{port}/stream" in proc.stderr
    assert "S3cretPass" not in proc.stderr + proc.stdout
