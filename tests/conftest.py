"""Shared fixtures: generated pickles in the exact mmcv format, a small trained checkpoint made once per
session, a short cut of a real video, a real webhook receiver. Helpers live in tests/helpers.py.

The folders say what a test covers: `model/` the model side (`actionlstm`), `pipeline/` what runs on
frames, `serve/` the web service, `cli/` the command line as such; `test_layers.py` the imports.
Markers (pyproject.toml) pick parts: `-m "not slow"`, `-m video`, `-m serve`."""

import signal
from pathlib import Path

import pytest
import torch

from actionlstm.synthetic import write_sample_pickle
from tests.helpers import (
    SHARED_DATA,
    TRAINED_EPOCHS,
    detections_of,
    one_thread,
    read_video,
    run_cli,
    shared_video,
    start_receiver,
    write_video,
)

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


@pytest.fixture
def single_thread(monkeypatch):
    """`one_thread` for a test, with plain terminal output for the commands it runs."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    with one_thread():
        yield


@pytest.fixture(scope="session")
def sample_pickle(tmp_path_factory) -> Path:
    """4 learnable classes, 40 clips each, in the exact ucf101_2d.pkl format."""
    path = tmp_path_factory.mktemp("data") / "sample.pkl"
    write_sample_pickle(path, num_classes=4, clips_per_class=40, frames=(30, 160), seed=3)
    return path


@pytest.fixture(scope="session")
def trained_checkpoint(sample_pickle, tmp_path_factory, _session_cache) -> Path:
    """The model many tests run: trained once per session through the real `actionlstm train`."""
    out = tmp_path_factory.mktemp("ckpt") / "model.pth"
    # One member: the model that many tests run, not the recipe (five members train several times as long);
    # TRAINED_EPOCHS (8) score every test clip right, as the 12 of before did.
    args = ["--epochs", TRAINED_EPOCHS, "--batch-size", 32, "--members", 1, "--out", out, "--device", "cpu", "--no-cache"]
    with pytest.MonkeyPatch.context() as patch:  # session fixtures run before the per-test private cache is set
        patch.setenv("ACTIONLSTM_CACHE_DIR", str(_session_cache))
        result = run_cli("train", "--data", sample_pickle, *args)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def pose_stage():
    """The pose stage on the CPU (real YOLO-pose), made once per session for each backend and size and
    shared: `pose_stage()` is what `actionlstm run` builds by default, `pose_stage("torch", 384)` another.
    A `PoseEstimator` keeps no state between calls (the tracker does), so tests can share one."""
    made = {}

    def stage(backend: str = "auto", imgsz: int = 640):
        from pipeline.pose import PoseEstimator

        if (backend, imgsz) not in made:
            made[backend, imgsz] = PoseEstimator(None, torch.device("cpu"), imgsz=imgsz, backend=backend)
        return made[backend, imgsz]

    return stage


@pytest.fixture(scope="session")
def gmdcsa_detections(pose_stage):
    """`gmdcsa_detections("fall/S3_Fall_01.mp4")`: the default pose stage's detections of every frame
    of a GMDCSA24 clip (`detections_of`), made once per session and clip, for every test that plays
    it through the stages after pose (`ReplayedPose`); skipped where the clip is not there."""
    made = {}

    def detections(clip: str) -> list:
        video = SHARED_DATA / "falls" / clip
        if not video.exists():
            pytest.skip(f"{video} is not there")
        if clip not in made:
            made[clip] = detections_of(video, pose_stage())
        return made[clip]

    return detections


@pytest.fixture(scope="session")
def short_video(tmp_path_factory) -> Path:
    """The first 40 frames of the 3-person exercise video (10 fps), as an MJPG .avi: real people for
    runs that need a few seconds of video, not a whole clip."""
    frames, fps = read_video(shared_video("exercise_3people.avi"))
    return write_video(tmp_path_factory.mktemp("short") / "short.avi", frames[:40], fps)


@pytest.fixture
def receiver():
    """`start_receiver` for one test."""
    server = start_receiver()
    yield server
    server.hang_released.set()
    server.shutdown()
    server.server_close()
