"""A whole `actionlstm run` of a video (start-up included) against a plain ultralytics YOLO-pose predict
loop over the same frames, as a user would write it first: wall seconds of each and their ratio.

    python scripts/bench_vs_ultralytics.py ../shared/data/videos/exercise_3people.avi --checkpoint CKPT
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2


def plain_ultralytics(video: str) -> float:
    """Load yolo11n-pose with ultralytics and predict every frame: the baseline, start-up included."""
    start = time.perf_counter()
    from ultralytics import YOLO

    from pipeline.pose import resolve_pose_model

    model = YOLO(resolve_pose_model(None), task="pose")
    capture = cv2.VideoCapture(video)
    ok, image = capture.read()
    while ok:
        model.predict(image, verbose=False)
        ok, image = capture.read()
    capture.release()
    return time.perf_counter() - start


def whole_run(video: str, checkpoint: str) -> float:
    """`actionlstm run VIDEO --no-show`, from process start to exit."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "actionlstm", "run", video, "--checkpoint", checkpoint, "--no-show"], check=True, capture_output=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", default="bench_vs_ultralytics.json")
    args = parser.parse_args()
    run_seconds = whole_run(args.video, args.checkpoint)
    plain_seconds = plain_ultralytics(args.video)
    figures = {
        "video": args.video,
        "actionlstm_run_s": round(run_seconds, 2),
        "plain_ultralytics_s": round(plain_seconds, 2),
        "speedup": round(plain_seconds / run_seconds, 2),
    }
    print(json.dumps(figures, indent=2))
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
