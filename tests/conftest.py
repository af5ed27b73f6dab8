"""Shared fixtures: generated pickles in the exact mmcv format, a small trained checkpoint, real videos."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actionlstm.synthetic import write_sample_pickle

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
VIDEOS = SHARED_DATA / "videos"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test parses pickles afresh unless it shares a cache folder on purpose."""
    monkeypatch.setenv("ACTIONLSTM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def run_cli(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real console command, as a user runs it."""
    command = [sys.executable, "-c", "from actionlstm.cli import main; main()", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT)


@pytest.fixture(scope="session")
def sample_pickle(tmp_path_factory) -> Path:
    """4 learnable classes, 40 clips each, in the exact ucf101_2d.pkl format."""
    path = tmp_path_factory.mktemp("data") / "sample.pkl"
    write_sample_pickle(path, num_classes=4, clips_per_class=40, frames=(30, 160), seed=3)
    return path


@pytest.fixture(scope="session")
def trained_checkpoint(sample_pickle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "model.pth"
    result = run_cli("train", "--data", sample_pickle, "--epochs", "12", "--batch-size", "32", "--out", out, "--device", "cpu", "--no-cache")
    assert result.returncode == 0, result.stderr
    return out


def shared_video(name: str) -> Path:
    path = VIDEOS / name
    if not path.exists():
        pytest.skip(f"test video {path} is not there (tests read ../shared/data/videos)")
    return path
