"""`actionlstm extract` on real labelled clips with real YOLO-pose: the exact pickle format, frame t
equal to the live pose stage on frame t, re-entering persons joined, bad files skipped and named,
reruns that redo nothing, and an interrupted run that ends as one uninterrupted run."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionlstm.dataset import load_dataset
from actionlstm.pickle_io import load_pickle
from pipeline.extract.video import extract_video
from pipeline.pose import PoseEstimator
from pipeline.tracking import Tracker
from tests.helpers import ACTIONS, CLI, ROOT, TORCHRUN, ReplayedPose, assert_user_error, detections_of, read_video, run_cli, write_video

pytestmark = pytest.mark.video

CLIPS = {"A1": ["PS7A1P1T1.avi", "PS7A1P2T1.avi"], "A2": ["PS7A2P1T1.avi", "PS7A2P2T1.avi"]}
KEYS = {"frame_dir", "label", "img_shape", "original_shape", "total_frames", "keypoint", "keypoint_score", "fps"}


FRAMES = 40  # of each clip: all any check here needs, and under half of what the four whole clips hold (318)


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory) -> Path:
    """Two actions, two actors, as a user's class-per-folder tree: the first `FRAMES` frames of the real
    clips, at their frame rate."""
    if not ACTIONS.exists():
        pytest.skip(f"{ACTIONS} is not there (tests read ../shared/data/actions)")
    root = tmp_path_factory.mktemp("videos")
    for label, names in CLIPS.items():
        (root / label).mkdir()
        for name in names:
            frames, fps = read_video(ACTIONS / label / name)
            write_video(root / label / name, frames[:FRAMES], fps)
    return root


@pytest.fixture(scope="module")
def extracted(video_folder, tmp_path_factory, _session_cache):
    out = tmp_path_factory.mktemp("extracted") / "my_actions.pkl"
    with pytest.MonkeyPatch.context() as patch:  # module fixtures run before the per-test private cache is set
        patch.setenv("ACTIONLSTM_CACHE_DIR", str(_session_cache))
        result = run_cli("extract", video_folder, "--out", out, "--group", r"P(\d)T", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    return out, result


def test_extract_writes_the_exact_pickle_format(extracted, video_folder):
    out, result = extracted
    data = load_pickle(out)  # the project's safe loader reads it
    assert set(data) == {"split", "annotations"}
    names = {a["frame_dir"] for a in data["annotations"]}
    assert names == {Path(n).stem for ns in CLIPS.values() for n in ns}
    # Held-out actor: one actor's clips are all in test1, the other's all in train1.
    test_actors = {n[5:7] for n in data["split"]["test1"]}
    train_actors = {n[5:7] for n in data["split"]["train1"]}
    assert len(test_actors) == 1 and len(train_actors) == 1 and test_actors != train_actors
    assert sorted(data["split"]["train1"] + data["split"]["test1"]) == sorted(names)
    for ann in data["annotations"]:
        assert set(ann) == KEYS
        video = video_folder / ann["frame_dir"][3:5] / f"{ann['frame_dir']}.avi"
        frames = read_video(video)[0]
        assert ann["label"] == {"A1": 0, "A2": 1}[ann["frame_dir"][3:5]]
        assert ann["total_frames"] == len(frames)
        assert ann["img_shape"] == ann["original_shape"] == frames[0].shape[:2] == (480, 640)
        keypoint, score = ann["keypoint"], ann["keypoint_score"]
        assert keypoint.dtype == score.dtype == np.float16
        assert keypoint.shape[1:] == (len(frames), 17, 2) and score.shape == keypoint.shape[:3]
        assert 1 <= keypoint.shape[0] <= 2
        totals = score.astype(np.float64).sum(axis=(1, 2))
        assert list(totals) == sorted(totals, reverse=True)  # strongest person first
        assert (score[0].sum(-1) > 0).mean() > 0.95  # the actor is found in (nearly) every frame
    assert out.with_suffix(".classes.txt").read_text().split() == ["A1", "A2"]
    assert "4 clips of 2 classes" in result.stdout


def test_frame_t_equals_the_live_pose_stage_on_frame_t(extracted, video_folder, pose_stage):
    out, _ = extracted
    ann = next(a for a in load_pickle(out)["annotations"] if a["frame_dir"] == "PS7A2P1T1")
    pose = pose_stage()
    frames, fps = read_video(video_folder / "A2" / "PS7A2P1T1.avi")  # decoded here, not by the code under test
    tracker = Tracker(fps=fps)
    assert len(frames) == ann["total_frames"]
    for t, image in enumerate(frames):
        live = tracker(pose(image), image).keypoints.astype(np.float16).astype(np.float32)
        stored = ann["keypoint"][0, t].astype(np.float32)
        assert ann["keypoint_score"][0, t].astype(np.float32).sum() > 0, t
        assert np.any(np.abs(live - stored).max(axis=(1, 2)) <= 0.5), t  # float16 rounding at most


def test_the_extracted_pickle_trains_and_evaluates(extracted, tmp_path, single_thread):
    out, _ = extracted
    dataset = load_dataset(out, use_cache=False)
    assert np.allclose(dataset.fps, 29.97, atol=0.01)
    checkpoint = tmp_path / "mine.pth"
    # One member, not the recipe's five: what is tested is that the pickle trains, not how well.
    result = run_cli("train", "--data", out, "--epochs", "1", "--members", "1", "--out", checkpoint, "--device", "cpu", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert "too few to hold out a validation part" in result.stdout
    result = run_cli("evaluate", "--data", out, "--checkpoint", checkpoint, "--device", "cpu", "--json", "--no-cache")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "test1" and metrics["n"] == len(dataset.split_indices("test1")) == 2  # the held-out actor's 2 clips
    # The class names beside the pickle reach the checkpoint, so `run` shows them.
    from actionlstm.checkpoint import load_checkpoint

    assert load_checkpoint(checkpoint).class_names == ["A1", "A2"]


def test_rerun_redoes_no_video_and_gives_the_same_pickle(extracted, video_folder, tmp_path):
    out, _ = extracted
    again = tmp_path / "again.pkl"
    result = run_cli("extract", video_folder, "--out", again, "--group", r"P(\d)T", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "0 videos extracted now" in result.stdout
    assert again.read_bytes() == out.read_bytes()


def test_batched_extraction_equals_one_frame_at_a_time(monkeypatch, pose_stage):
    """Frames reach the pose stage in batches, one batch ahead on a thread: the annotation is the same
    bits as when every frame goes alone, in turn with the tracker."""
    if not ACTIONS.exists():
        pytest.skip("no shared clips")
    video = ACTIONS / "A1" / "PS7A1P2T2.avi"
    pose, tracker = pose_stage(), Tracker()
    assert pose.file_batch > 1
    batched = extract_video(video, pose, tracker, max_persons=2)
    monkeypatch.setattr(PoseEstimator, "file_batch", property(lambda self: 1))
    alone = extract_video(video, pose, tracker, max_persons=2)
    assert batched.keys() == alone.keys()
    for key, value in batched.items():
        assert np.array_equal(value, alone[key]) and np.asarray(value).dtype == np.asarray(alone[key]).dtype, key


def test_a_person_who_leaves_and_comes_back_stays_one_person(tmp_path, pose_stage):
    """Frames 35-79 of a real clip are blanked: the tracker loses the actor for 1.5 s, longer than its
    1 s lost time, so the actor comes back under a new id; extraction joins both tracks into one person."""
    if not ACTIONS.exists():
        pytest.skip("no shared clips")
    frames = read_video(ACTIONS / "A1" / "PS7A1P1T1.avi")[0]
    gone = range(35, 80)
    video = tmp_path / "leaves.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 29.97, (640, 480))
    for t, image in enumerate(frames):
        writer.write(np.full_like(image, 128) if t in gone else image)
    writer.release()

    detections = detections_of(video, pose_stage())  # made once, for the tracker alone and for extraction
    tracker = Tracker(lost_seconds=1.0, fps=29.97)
    ids = set()
    for image, found in zip(read_video(video)[0], detections):
        ids.update(tracker(found, image).track_ids.tolist())
    assert len(ids) >= 2  # the tracker really did lose the actor

    ann = extract_video(video, ReplayedPose(detections), tracker, max_persons=2)
    assert ann["keypoint"].shape[:2] == (1, len(frames))
    present = ann["keypoint_score"][0].astype(np.float32).sum(-1) > 0
    assert not present[list(gone)].any()  # frames without the person are zeros, not shifted poses
    assert present[:35].mean() > 0.95 and present[80:].mean() > 0.95


def test_bad_files_are_skipped_and_named_and_strict_fails(video_folder, tmp_path):
    """Its two good videos are `video_folder`'s, extracted already: only the bad files are new here."""
    root = tmp_path / "videos"
    (root / "A1").mkdir(parents=True)
    (root / "A1" / "PS7A1P1T1.avi").symlink_to(video_folder / "A1" / "PS7A1P1T1.avi")
    (root / "A1" / "broken.mp4").write_bytes(os.urandom(5000))
    (root / "A1" / "empty.avi").write_bytes(b"")
    (root / "A2").mkdir()
    (root / "A2" / "PS7A2P1T1.avi").symlink_to(video_folder / "A2" / "PS7A2P1T1.avi")
    (root / "A2" / "notes.txt").write_text("not a video")
    (root / "A3").mkdir()  # a class folder with no videos
    (root / "0_annotations").mkdir()  # one with files but no video (sorted first: the classes after it move up)
    (root / "0_annotations" / "segments.csv").write_text("clip,start,end\n")
    out = tmp_path / "out.pkl"
    result = run_cli("extract", root, "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for name in ("A1/broken.mp4", "A1/empty.avi", "A2/notes.txt", "A3/", "0_annotations/segments.csv"):
        assert any(line.startswith("skipped") and name in line for line in result.stdout.splitlines()), (name, result.stdout)
    assert "5 skipped" in result.stdout and "class 0_annotations: no usable video (class left out)" in result.stdout + result.stderr
    data = load_pickle(out)
    assert sorted((a["frame_dir"], a["label"]) for a in data["annotations"]) == [("PS7A1P1T1", 0), ("PS7A2P1T1", 1)]
    assert out.with_suffix(".classes.txt").read_text().split() == ["A1", "A2"]
    (root / "0_annotations" / "segments.csv").unlink()
    (root / "0_annotations").rmdir()

    strict_out = tmp_path / "strict.pkl"
    result = run_cli("extract", root, "--out", strict_out, "--strict", "--device", "cpu")
    assert_user_error(result, "--strict", "A3/")  # a folder problem is known before any video is read
    assert not strict_out.exists()
    (root / "A3").rmdir()
    result = run_cli("extract", root, "--out", strict_out, "--strict", "--device", "cpu")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --strict: 3 skipped")
    assert not strict_out.exists()


def test_video_list_and_bad_arguments(video_folder, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"{video_folder / 'A1' / 'PS7A1P1T1.avi'} 1\n{video_folder / 'A2' / 'PS7A2P1T1.avi'} 0\n"
        f"{tmp_path / 'gone.mp4'} 0\n{video_folder / 'A2' / 'PS7A2P1T1.avi'} 0\n"
    )
    out = tmp_path / "list.pkl"
    result = run_cli("extract", listing, "--out", out, "--test", "A2", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "gone.mp4: file not found" in result.stdout and "listed more than once" in result.stdout
    data = load_pickle(out)
    assert {a["frame_dir"]: a["label"] for a in data["annotations"]} == {"PS7A1P1T1": 1, "PS7A2P1T1": 0}
    assert data["split"] == {"train1": ["PS7A1P1T1"], "test1": ["PS7A2P1T1"]}

    assert_user_error(run_cli("extract", tmp_path / "missing", "--out", out), "no such folder")
    assert_user_error(run_cli("extract", listing, "--out", tmp_path / "x.json"), ".pkl")
    assert_user_error(run_cli("extract", listing, "--out", out, "--group", "(["), "--group")


def _fresh_cache(tmp_path: Path) -> tuple[Path, dict]:
    """An empty extraction cache that still reuses this session's exported pose model."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shared_pose = Path(os.environ["ACTIONLSTM_CACHE_DIR"]) / "pose"
    if shared_pose.exists():
        (cache / "pose").symlink_to(shared_pose)
    return cache, {**os.environ, "ACTIONLSTM_CACHE_DIR": str(cache)}


def _finished(cache: Path) -> list[Path]:
    """The cache's finished videos: not the hidden temporary files they are written as (a Ctrl-C while
    one is being written removes it)."""
    return [p for p in (cache / "extract").glob("*.npz") if not p.name.startswith(".")]


@pytest.mark.slow
def test_two_workers_write_the_same_pickle_as_one(extracted, video_folder, tmp_path):
    reference, _ = extracted
    cache, env = _fresh_cache(tmp_path)
    out = tmp_path / "workers.pkl"
    args = [*CLI, "extract", str(video_folder), "--out", str(out), "--group", r"P(\d)T", "--device", "cpu", "--workers", "2"]
    result = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "4 videos extracted now" in result.stdout
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.slow
def test_torchrun_shards_the_videos_and_rank_0_writes_the_same_pickle_as_one_process(extracted, video_folder, tmp_path):
    reference, _ = extracted
    cache, env = _fresh_cache(tmp_path)
    out = tmp_path / "sharded.pkl"
    args = [*TORCHRUN, "extract", str(video_folder), "--out", str(out), "--group", r"P(\d)T", "--device", "cpu"]
    result = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("wrote ") == 1  # one process writes and reports
    assert "2 in this process, one of 2" in result.stderr
    assert len(_finished(cache)) == 4  # each video extracted once, by one of the two
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.slow
def test_interrupted_run_then_rerun_equals_one_run(extracted, video_folder, tmp_path, monkeypatch):
    """Ctrl-C after the first finished video (a process of its own): the existing output is untouched;
    the rerun (in this process) extracts only the rest and writes exactly what one uninterrupted run wrote."""
    reference, _ = extracted
    cache, env = _fresh_cache(tmp_path)
    out = tmp_path / "out.pkl"
    out.write_bytes(b"an earlier pickle")
    args = [*CLI, "extract", str(video_folder), "--out", str(out), "--group", r"P(\d)T", "--device", "cpu"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not _finished(cache) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.rstrip().endswith("stopped by Ctrl-C")
    assert out.read_bytes() == b"an earlier pickle"
    done = len(_finished(cache))
    assert 1 <= done < 4

    monkeypatch.setenv("ACTIONLSTM_CACHE_DIR", str(cache))
    result = run_cli(*args[len(CLI) :])
    assert result.returncode == 0, result.stderr
    assert f"{4 - done} videos extracted now" in result.stdout
    assert out.read_bytes() == reference.read_bytes()
