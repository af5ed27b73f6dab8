"""The Python API (`from actionlstm import ActionRecognizer`) on a real video with real pose, and the
"uncertain" marking it shares with `actionlstm run`."""

import json
import threading
import time

import cv2
import numpy as np
import pytest
import torch

from actionlstm import ActionRecognizer
from actionlstm.pickle_io import load_pickle
from pipeline.buffers import TrackBuffers
from pipeline.recognizer import SAMPLE_MODEL_NOTE
from pipeline.settings import RecognizerSettings
from pipeline.sources import open_source
from tests.helpers import read_video, run_cli

pytestmark = pytest.mark.video


@pytest.fixture(scope="module")
def clip40(short_video):
    """The 40-frame clip (10 fps) and its frames, decoded here."""
    return short_video, read_video(short_video)[0]


@pytest.fixture(scope="module")
def recognizer(trained_checkpoint):
    return ActionRecognizer(trained_checkpoint, device="cpu")


def test_stream_yields_one_result_per_frame_for_each_source_in_turn(recognizer, clip40):
    path, raw = clip40
    results = [(r.frame, r.time, r.image.copy(), r.persons) for r in recognizer.stream([path, str(path)])]
    assert [frame for frame, *_ in results] == list(range(40)) * 2
    assert [round(t, 6) for _, t, *_ in results[:40]] == [round(k / 10, 6) for k in range(40)]
    first, second = results[:40], results[40:]
    for (_, _, _, a), (_, _, _, b) in zip(first, second):  # each source from scratch: ids and labels repeat exactly
        assert [(p.id, p.box, p.top5) for p in a] == [(p.id, p.box, p.top5) for p in b]
    assert sorted(p.id for p in first[0][3]) == [1, 2, 3]
    assert all(p.top5 is None for p in first[0][3])  # one frame is not enough to classify
    late = first[-1][3]
    assert late and all(p.top5 is not None and len(p.top5) == 4 for p in late)
    assert all(len(p.box) == 4 and p.box[0] < p.box[2] and p.box[1] < p.box[3] for p in late)
    assert all(p.keypoints.shape == (17, 2) and p.scores.shape == (17,) for p in late)
    for p in late:
        assert p.uncertain == (p.top5[0].prob < recognizer.pipeline.actions.min_prob)
    assert not np.array_equal(first[0][2], raw[0])  # annotated


def test_draw_false_leaves_frames_untouched(trained_checkpoint, clip40):
    path, raw = clip40
    plain = ActionRecognizer(trained_checkpoint, device="cpu", draw=False)
    results = [(r.image.copy(), r.persons) for r in plain.stream(path)]
    assert len(results) == len(raw) == 40  # a frame for every frame: nothing can pass unseen
    assert sum(p.top5 is not None for _, persons in results for p in persons) > 40  # people and panels a drawing would show
    assert all(np.array_equal(image, original) for (image, _), original in zip(results, raw))


def test_classify_equals_predict_for_a_pickle_clip(recognizer, sample_pickle, trained_checkpoint):
    proc = run_cli("predict", "--data", sample_pickle, "--checkpoint", trained_checkpoint, "--idx", "3", "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    clip = next(a for a in load_pickle(sample_pickle)["annotations"] if a["frame_dir"] == printed["frame_dir"])
    top5 = recognizer.classify(clip["keypoint"], clip["keypoint_score"], fps=recognizer.classifier.preprocess.fps)
    assert [t.label for t in top5] == [t["label"] for t in printed["top5"]]
    assert np.allclose([t.prob for t in top5], [t["prob"] for t in printed["top5"]], atol=1e-5)
    one_person = recognizer.classify(clip["keypoint"][0], clip["keypoint_score"][0], fps=recognizer.classifier.preprocess.fps)
    assert [t.label for t in one_person] == [t.label for t in top5]  # [T, 17, 2] is the one-person layout


@pytest.mark.parametrize("min_prob, marked", [(1.0, "all"), (0.0, "none")])
def test_min_prob_marks_uncertain_frames(trained_checkpoint, clip40, tmp_path, min_prob, marked):
    path, _ = clip40
    proc = run_cli(
        "run",
        path,
        "--checkpoint",
        trained_checkpoint,
        "--jsonl",
        tmp_path / "r.jsonl",
        "--min-prob",
        min_prob,
        "--no-show",
        "--device",
        "cpu",
    )
    assert proc.returncode == 0, proc.stderr
    labelled = [p for line in (tmp_path / "r.jsonl").read_text().splitlines() for p in json.loads(line)["persons"] if p["top5"]]
    assert len(labelled) > 30
    flags = [p.get("uncertain", False) for p in labelled]
    assert all(flags) if marked == "all" else not any(flags)
    assert ("uncertain throughout" in proc.stdout) == (marked == "all")


def test_run_segments_and_timeline_equal_those_of_its_jsonl(trained_checkpoint, clip40, tmp_path):
    """The live run's segments (built frame by frame) are the ones `actionlstm timeline` finds in
    its JSONL afterwards; both pictures are written, and the summary lists the segments."""
    path, _ = clip40
    proc = run_cli(
        "run",
        path,
        "--checkpoint",
        trained_checkpoint,
        "--jsonl",
        tmp_path / "r.jsonl",
        "--segments",
        tmp_path / "live.json",
        "--timeline",
        tmp_path / "live.png",
        "--min-prob",
        "0",
        "--min-segment",
        "0.3",
        "--no-show",
        "--device",
        "cpu",
    )
    assert proc.returncode == 0, proc.stderr
    live = json.loads((tmp_path / "live.json").read_text())
    assert live and {s["id"] for s in live} <= {1, 2, 3}
    assert all(0.0 <= s["start"] < s["end"] <= 4.0 + 1e-6 and s["end"] - s["start"] >= 0.3 - 1e-6 for s in live)
    proc = run_cli(
        "timeline", tmp_path / "r.jsonl", "--out", tmp_path / "later.png", "--segments", tmp_path / "later.json", "--min-segment", "0.3"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "later.json").read_text()) == live
    assert cv2.imread(str(tmp_path / "live.png")) is not None and cv2.imread(str(tmp_path / "later.png")) is not None


def test_outputs_of_one_run_on_one_path_are_refused(trained_checkpoint, clip40, tmp_path):
    path, _ = clip40
    proc = run_cli(
        "run", path, "--checkpoint", trained_checkpoint, "--jsonl", tmp_path / "x.json", "--segments", tmp_path / "x.json", "--no-show"
    )
    assert proc.returncode == 1 and "--jsonl and --segments are the same file" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_model_trained_on_the_generated_sample_says_so_on_the_video(recognizer, trained_checkpoint, clip40, tmp_path):
    """The checkpoint records its data; a sample-trained model's overlay carries a warning, a model
    trained on real skeletons (same weights, data not synthetic) none."""
    path, _ = clip40
    assert recognizer.classifier.synthetic and recognizer.pipeline.note == SAMPLE_MODEL_NOTE
    assert "sample.pkl" in recognizer.classifier.describe() and "SYNTHETIC" in recognizer.classifier.describe()
    payload = torch.load(trained_checkpoint, weights_only=True)
    payload["meta"]["data"] = {**payload["meta"]["data"], "file": "ucf101_2d.pkl", "synthetic": False}
    real = tmp_path / "real.pth"
    torch.save(payload, real)
    plain = ActionRecognizer(real, device="cpu")
    assert not plain.classifier.synthetic and plain.pipeline.note == ""
    assert "SYNTHETIC" not in plain.classifier.describe()
    warned = next(iter(recognizer.stream(path))).image
    unwarned = next(iter(plain.stream(path))).image
    header = (slice(0, 40), slice(None))  # the overlay's header line, where the note goes
    assert not np.array_equal(warned[header], unwarned[header])


def test_pipelined_stream_gives_what_one_stage_at_a_time_gives(recognizer, clip40):
    """Pose runs a frame ahead on its own thread; every frame's ids, boxes and Top-5 must still be those
    of the plain loop: decode, pose, track, buffer, classify, one frame after the other."""
    path, _ = clip40
    pipelined = [(r.frame, [(p.id, p.box, p.top5, p.uncertain) for p in r.persons]) for r in recognizer.stream(path)]

    stages = recognizer.pipeline
    serial = []
    with open_source(str(path)) as source:
        stages.tracker.reset(source.fps)
        stages.actions.reset()
        buffers = TrackBuffers(stages.actions.clf.preprocess, source.fps, source.size[::-1], forget_seconds=stages.tracker.lost_time)
        for frame in source:
            poses = stages.tracker(stages.pose(frame.image), frame.image)
            buffers.update(frame.timestamp, poses.track_ids, poses.keypoints, poses.scores)
            labels = stages.actions.update(buffers, set(poses.track_ids.tolist()))
            persons = [
                (tid, poses.boxes[i].tolist(), labels.get(tid), tid in labels and stages.actions.is_uncertain(labels[tid]))
                for i, tid in enumerate(poses.track_ids.tolist())
            ]
            serial.append((frame.index, persons))
    assert len(pipelined) == 40 and pipelined == serial
    assert sum(p[2] is not None for _, persons in serial for p in persons) > 40  # labels were compared, not only Nones


def test_two_sources_run_side_by_side_each_with_its_own_outputs(trained_checkpoint, clip40, tmp_path):
    """The 40-frame clip and its first 20 frames together: per-source files (o.0.mp4, o.1.mp4...), the
    shorter source ending leaves the other running, and each source is labelled as if run alone."""
    path, raw = clip40
    short = tmp_path / "first20.avi"
    writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (raw[0].shape[1], raw[0].shape[0]))
    for image in raw[:20]:
        writer.write(image)
    writer.release()

    alone = {}
    for name, video in (("long", path), ("short", short)):
        alone[name] = tmp_path / f"alone_{name}.jsonl"
        proc = run_cli("run", video, "--checkpoint", trained_checkpoint, "--jsonl", alone[name], "--no-show", "--device", "cpu")
        assert proc.returncode == 0, proc.stderr
    proc = run_cli(
        "run",
        path,
        short,
        "--checkpoint",
        trained_checkpoint,
        "--save",
        tmp_path / "o.mp4",
        "--jsonl",
        tmp_path / "o.jsonl",
        "--segments",
        tmp_path / "s.json",
        "--no-show",
        "--device",
        "cpu",
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.jsonl").exists()
    assert json.loads((tmp_path / "s.0.json").read_text()) and json.loads((tmp_path / "s.1.json").read_text())
    for k, frames in ((0, 40), (1, 20)):
        capture = cv2.VideoCapture(str(tmp_path / f"o.{k}.mp4"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        capture.release()
        assert len((tmp_path / f"o.{k}.jsonl").read_text().splitlines()) == frames
    assert "#0 " in proc.stdout and "#1 " in proc.stdout and "40 frames in" in proc.stdout and "20 frames in" in proc.stdout

    def labels(file):
        return [
            [(p["id"], p["box"], p["top5"] and [t["label"] for t in p["top5"]]) for p in json.loads(line)["persons"]]
            for line in file.read_text().splitlines()
        ]

    assert labels(tmp_path / "o.0.jsonl") == labels(alone["long"])
    assert labels(tmp_path / "o.1.jsonl") == labels(alone["short"])
    assert any(p[2] for frame in labels(alone["short"]) for p in frame)  # persons were labelled


def test_a_stream_takes_the_lines_of_one_source_only(trained_checkpoint, clip40):
    path, _ = clip40
    proc = run_cli("run", path, path, "--checkpoint", trained_checkpoint, "--jsonl", "-", "--no-show")
    assert proc.returncode == 1 and "takes the lines of one source" in proc.stderr and "Traceback" not in proc.stderr


def test_stream_together_gives_each_step_a_result_per_running_source(recognizer, clip40):
    path, _ = clip40
    steps = [[(r.source, r.frame, [p.id for p in r.persons]) for r in step] for step in recognizer.stream_together([path, path])]
    assert len(steps) == 40
    assert all([source for source, _, _ in step] == [0, 1] for step in steps)
    assert all(step[0][1:] == step[1][1:] for step in steps)  # the same video: same frames, same ids


class _SlowModel(torch.nn.Module):
    """The trained model, taking `seconds` longer per pass: a classifier far slower than the frames.
    It counts the most passes that were ever running at once."""

    def __init__(self, model: torch.nn.Module, seconds: float):
        super().__init__()
        self.model, self.seconds = model, seconds
        self.lock, self.running, self.most_at_once = threading.Lock(), 0, 0

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.seconds)
            return self.model(x, lengths)
        finally:
            with self.lock:
                self.running -= 1


def test_live_frames_do_not_wait_for_the_classifier_but_files_do(trained_checkpoint, clip40):
    """With a model that needs 0.4 s a pass, a live source's frames still come out in well under that
    (labels arrive from earlier passes), while a file's frames wait for theirs."""
    path, _ = clip40
    slow = ActionRecognizer(trained_checkpoint, device="cpu", draw=False)
    model = slow.pipeline.actions.clf.model = _SlowModel(slow.pipeline.actions.clf.model, 0.4)

    classify_seconds, latencies, labelled = [], [], 0
    with slow.open(path, realtime=True) as source:
        for result in slow.pipeline.stream(source):
            latencies.append(time.monotonic() - source.started - result.time)
            classify_seconds.append(result.timings["classify"])
            labelled += sum(p.top5 is not None and len(p.top5) == 4 for p in result.persons)
    assert len(latencies) >= 30 and labelled > 20  # passes finished and their labels were shown
    assert max(classify_seconds) < 0.2 and np.percentile(latencies, 90) < 0.35

    model.seconds = 0.1  # a file's frames wait as long as a pass takes, whatever it takes: 0.1 s (20x a pass) shows it
    file_classify = [r.timings["classify"] for r in slow.stream(path)]
    assert sum(t >= 0.1 for t in file_classify) >= 20  # every frame with a ready person waited for its pass


def test_a_live_stream_left_mid_pass_never_runs_the_model_twice_at_once(trained_checkpoint, clip40):
    """A live stream abandoned while a 2 s pass runs, then a file: the file's first pass waits for it."""
    path, _ = clip40
    rec = ActionRecognizer(trained_checkpoint, device="cpu", draw=False)
    slow = rec.pipeline.actions.clf.model = _SlowModel(rec.pipeline.actions.clf.model, 2.0)
    for result in rec.stream(path, realtime=True):
        if result.time >= 1.6:  # persons are ready after about 1 s: the first pass is under way
            break
    assert slow.running == 1
    slow.seconds = 0.0
    labelled = sum(p.top5 is not None for r in rec.stream(path) for p in r.persons)
    assert labelled > 20 and slow.most_at_once == 1


def test_events_of_a_list_of_sources_start_afresh_with_each(trained_checkpoint, clip40):
    """`rec.events` is `run --alert` in Python: the same clip twice fires the same events twice
    (each source starts afresh, ids go on), and a rule the model cannot satisfy is refused. The
    recognizer is built from a settings object, as `run` and `serve` build theirs."""
    from actionlstm.errors import UserError

    settings = RecognizerSettings(checkpoint=trained_checkpoint, device="cpu", min_prob=0.5, stride=2)
    rec = ActionRecognizer(settings, min_prob=0.0, draw=False)  # keywords replace the object's own
    assert rec.settings == RecognizerSettings(checkpoint=trained_checkpoint, device="cpu", min_prob=0.0, stride=2)
    assert (rec.pipeline.actions.min_prob, rec.pipeline.actions.stride) == (0.0, 2)
    path, _ = clip40
    events = list(rec.events([path, str(path)], ["*>=0:1s"]))
    half = len(events) // 2
    assert half > 0 and len(events) == 2 * half
    assert [e.id for e in events] == list(range(1, 2 * half + 1))
    assert [(e.person, e.label, e.time, e.box) for e in events[:half]] == [(e.person, e.label, e.time, e.box) for e in events[half:]]
    assert all(e.duration >= 1.0 - 1e-6 and e.rule == "*>=0:1s" for e in events)
    with pytest.raises(UserError, match="no class 'wave'"):
        rec.alerts(["wave:2"])
