"""Own-action quality, end to end: extract -> train (default settings) -> evaluate on held-out groups
-> run the live pipeline on every held-out video.

    python scripts/own_data_eval.py ../shared/data/actions --group 'P(\\d)T'
    python scripts/own_data_eval.py ../shared/data/falls --group '/S(\\d+)_' --test-fraction 0.25

Prints clip top-1 and mean class accuracy (`actionlstm evaluate`) and the live per-frame top-1: the
share of frames whose label (once the buffer is ready) names the true action, for the main person
(the track seen in most frames), pooled over the test videos. Writes everything to --out and a JSON
summary to <out>/own_data_eval.json.
"""

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CLI = [sys.executable, "-m", "actionlstm"]


def actionlstm(*args: object) -> str:
    """Run one `actionlstm` command as a user would; stop with its error if it fails."""
    proc = subprocess.run([*CLI, *map(str, args)], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"actionlstm {args[0]} failed (exit {proc.returncode})")
    return proc.stdout


def live_frame_accuracy(checkpoint: Path, videos: list[tuple[Path, str]], device: str, pose_backend: str) -> dict:
    """Run the live pipeline over each video, with the pose stage `run` builds (INT8 under `auto` on
    the CPU when nncf is installed); per-frame top-1 of its main person against the true label."""
    from actionlstm.checkpoint import load_checkpoint
    from actionlstm.device import resolve_device
    from pipeline.actions import ActionRuntime
    from pipeline.pose import PoseEstimator
    from pipeline.predictor import ActionPipeline
    from pipeline.sources import VideoFileSource
    from pipeline.tracking import Tracker

    dev = resolve_device(device)
    clf = load_checkpoint(checkpoint, dev)
    pose = PoseEstimator(None, dev, backend=pose_backend, int8=True)
    pipeline = ActionPipeline(pose, Tracker(), ActionRuntime(clf, dev))
    per_video = []
    for path, truth in videos:
        with VideoFileSource(path) as source:
            frames = [[(p.id, p.top5[0].label if p.top5 else None) for p in r.persons] for r in pipeline.stream(source)]
        seen = Counter(tid for persons in frames for tid, _ in persons)
        if not seen:
            per_video.append({"video": path.name, "truth": truth, "labelled": 0, "correct": 0, "frames": len(frames)})
            continue
        main = seen.most_common(1)[0][0]
        labels = [label for persons in frames for tid, label in persons if tid == main and label is not None]
        correct = sum(label == truth for label in labels)
        per_video.append({"video": path.name, "truth": truth, "labelled": len(labels), "correct": correct, "frames": len(frames)})
    labelled = sum(v["labelled"] for v in per_video)
    return {
        "pose_backend": pose.backend,
        "frame_top1": sum(v["correct"] for v in per_video) / max(labelled, 1),
        "labelled_frames": labelled,
        "frames": sum(v["frames"] for v in per_video),
        "videos": per_video,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="one subfolder of videos per action")
    parser.add_argument("--group", help="regex whose first group names the actor (held out as a whole)")
    parser.add_argument("--test", help="regex of the test videos (instead of --group)")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=Path("runs/own_data_eval"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pose-backend", default="auto", help="of the live run (extraction keeps its own FP32 default)")
    parser.add_argument("--train-args", default="", help="extra `actionlstm train` options, e.g. '--epochs 30'")
    args = parser.parse_args()

    from actionlstm.pickle_io import load_pickle
    from actionlstm.videoset import find_videos, frame_dirs

    args.out.mkdir(parents=True, exist_ok=True)
    data, checkpoint = args.out / "skeletons.pkl", args.out / "model.pth"
    split = ["--test", args.test] if args.test else ["--group", args.group] if args.group else []
    timings = {}
    started = time.perf_counter()
    print(actionlstm("extract", args.folder, "--out", data, *split, "--test-fraction", args.test_fraction, "--device", args.device), end="")
    timings["extract_s"] = time.perf_counter() - started

    started = time.perf_counter()
    # --out is this script's own folder: a rerun replaces the model it trained last time.
    print(
        actionlstm("train", "--data", data, "--out", checkpoint, "--overwrite", "--device", args.device, *args.train_args.split()), end=""
    )
    timings["train_s"] = time.perf_counter() - started

    metrics = json.loads(actionlstm("evaluate", "--data", data, "--checkpoint", checkpoint, "--device", args.device, "--json"))

    videoset = find_videos(args.folder)  # the clip names extract gave each video, to find the test videos again
    video_of = dict(zip(frame_dirs(videoset.videos, videoset.class_names), videoset.videos))
    test_videos = [(video_of[name].path, videoset.class_names[video_of[name].label]) for name in load_pickle(data)["split"]["test1"]]
    started = time.perf_counter()
    live = live_frame_accuracy(checkpoint, test_videos, args.device, args.pose_backend)
    timings["live_s"] = time.perf_counter() - started

    for v in live["videos"]:
        share = v["correct"] / v["labelled"] if v["labelled"] else float("nan")
        print(f"  live {v['video']:<24} true {v['truth']:<12} {v['correct']:>4}/{v['labelled']:<4} labelled frames right ({share:.0%})")
    result = {
        "clip_top1": metrics["top1"],
        "mean_class_acc": metrics["mean_class_acc"],
        "test_clips": metrics["n"],
        "live_frame_top1": live["frame_top1"],
        "live_labelled_frames": live["labelled_frames"],
        "live_worst_video": min((v["correct"] / v["labelled"] for v in live["videos"] if v["labelled"]), default=None),
        **{k: round(v, 1) for k, v in timings.items()},
    }
    (args.out / "own_data_eval.json").write_text(json.dumps({**result, "live": live}, indent=2))
    print(
        f"clip top-1 {result['clip_top1']:.3f}  mean class {result['mean_class_acc']:.3f} ({result['test_clips']} test clips)  "
        f"live per-frame top-1 {result['live_frame_top1']:.3f} over {result['live_labelled_frames']} labelled frames"
    )


if __name__ == "__main__":
    main()
