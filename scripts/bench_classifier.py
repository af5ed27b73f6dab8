"""Classifier latency per frame for 1, 4 and 16 persons (one batched pass), split into preprocess and model.

    python scripts/bench_classifier.py [--device auto] [--repeats 200]

Uses the default model (BiLSTM 2x128, 101 classes) with random weights on full 120-frame windows of
sample skeletons: the cost does not depend on what the weights are.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from actionlstm.device import resolve_device
from actionlstm.inference import model_input, predict_windows
from actionlstm.model import ActionLSTM, ModelConfig
from actionlstm.preprocess import PreprocessConfig
from actionlstm.synthetic import make_sample_annotations


def timed(fn, repeats: int) -> list[float]:
    for _ in range(10):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", default="bench_classifier.json")
    args = parser.parse_args()
    device = resolve_device(args.device)
    pre = PreprocessConfig()
    model = ActionLSTM(ModelConfig(num_features=pre.num_features, num_classes=101)).to(device).eval()

    data, _ = make_sample_annotations(num_classes=4, clips_per_class=4, frames=(130, 150), seed=0)
    clips = [(a["keypoint"][0].astype(np.float32)[:120], a["keypoint_score"][0].astype(np.float32)[:120]) for a in data["annotations"] if len(a["keypoint"])]

    figures = {"device": str(device), "torch_threads": torch.get_num_threads(), "persons": {}}
    for persons in (1, 4, 16):
        windows = [clips[i % len(clips)] for i in range(persons)]
        total = timed(lambda: predict_windows(model, pre, windows, device), args.repeats)
        prep = timed(lambda: model_input(windows, pre), args.repeats)
        row = {
            "total_p50_ms": round(float(np.percentile(total, 50)) * 1000, 3),
            "total_p95_ms": round(float(np.percentile(total, 95)) * 1000, 3),
            "preprocess_p50_ms": round(float(np.percentile(prep, 50)) * 1000, 3),
        }
        figures["persons"][persons] = row
        print(f"{persons:>2} persons: p50 {row['total_p50_ms']:.2f} ms  p95 {row['total_p95_ms']:.2f} ms  (preprocess p50 {row['preprocess_p50_ms']:.2f} ms)")
    one, sixteen = figures["persons"][1]["total_p50_ms"], figures["persons"][16]["total_p50_ms"]
    figures["batch16_over_single"] = round(sixteen / one, 2)
    print(f"16 persons batched cost {figures['batch16_over_single']:.1f}x one person (16x if unbatched)")
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
