"""`torchrun --nproc-per-node 2 -m actionlstm train` on CPUs (gloo): one result, as good as one process's,
and an interrupted run resumed to exactly the weights of an uninterrupted one."""

import json
import signal
import subprocess
import time

import pytest
import torch

from actionlstm.synthetic import write_sample_pickle
from tests.helpers import ROOT, TORCHRUN, run_cli

# One to interrupt after, then resumed. Three, not two: the processes share each batch and draw its
# augmentation from random states of their own, so the two runs differ by their draws, and with the
# camera turned in training (issue 37) two epochs left them apart on this data (0.69 against 0.94;
# three: 0.94 and 0.94).
EPOCHS = 3


def _train_args(data, out, *extra):
    return [
        "train",
        "--data",
        str(data),
        "--epochs",
        str(EPOCHS),
        "--batch-size",
        "32",
        "--members",
        "1",
        "--out",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]


def _torchrun(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def _top1(data, checkpoint) -> float:
    proc = run_cli("evaluate", "--data", data, "--checkpoint", checkpoint, "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["top1"]


@pytest.mark.slow
def test_two_gloo_processes_train_one_checkpoint_as_good_as_one_process_and_resume_exactly(tmp_path):
    data = tmp_path / "small.pkl"
    write_sample_pickle(data, num_classes=4, clips_per_class=20, frames=(30, 120), seed=5)

    straight = _torchrun(*_train_args(data, tmp_path / "ddp.pth", "--json"))
    assert straight.returncode == 0, straight.stderr
    printed = [line for line in straight.stdout.splitlines() if line.strip()]
    assert len(printed) == 1  # rank 0 alone reports
    assert json.loads(printed[0])["world_size"] == 2
    assert straight.stderr.count("training on 48 clips") == 1

    single = run_cli(*_train_args(data, tmp_path / "single.pth"))
    assert single.returncode == 0, single.stderr
    ddp_top1, single_top1 = _top1(data, tmp_path / "ddp.pth"), _top1(data, tmp_path / "single.pth")
    assert ddp_top1 > 0.5 and abs(ddp_top1 - single_top1) <= 0.15, (ddp_top1, single_top1)  # 4 classes: chance 0.25

    # Interrupted after its first epoch, then resumed with the same command and --resume.
    out = tmp_path / "resumed.pth"
    process = subprocess.Popen([*TORCHRUN, *_train_args(data, out)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out.with_name(out.name + ".resume.pth")
    deadline = time.monotonic() + 300
    while not state.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert state.exists(), "no epoch finished"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert not out.exists()
    resumed = _torchrun(*_train_args(data, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    a, b = torch.load(out, weights_only=True), torch.load(tmp_path / "ddp.pth", weights_only=True)
    assert [h["epoch"] for h in a["meta"]["history"]] == list(range(1, EPOCHS + 1))
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])
