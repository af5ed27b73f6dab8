"""Classifier latency per frame for 1, 4 and 16 persons (one batched pass), split into preprocess and model.

    python scripts/bench_classifier.py [--device auto] [--repeats 200] [--backend all]

Uses the default model (five one-layer BiLSTMs of 64, 101 classes) with random weights on full 120-frame windows of
sample skeletons: the cost does not depend on what the weights are. `--backend` times the PyTorch
model, its ONNX Runtime and OpenVINO exports (`actionlstm export`), or all three in one run.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from actionlstm.checkpoint import Classifier, save_checkpoint
from actionlstm.device import resolve_device
from actionlstm.export import FORMATS, load_classifier
from actionlstm.inference import model_input, predict_windows
from actionlstm.preprocess import PreprocessConfig
from actionlstm.synthetic import make_sample_annotations
from actionlstm.train import initial_model


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
    parser.add_argument("--backend", default="torch", choices=["torch", *FORMATS, "all"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    pre = PreprocessConfig()
    names = [f"class_{c}" for c in range(101)]
    model = initial_model(names, pre, None).eval()  # the default model, untrained
    data, _ = make_sample_annotations(num_classes=4, clips_per_class=4, frames=(130, 150), seed=0)
    clips = [
        (a["keypoint"][0].astype(np.float32)[:120], a["keypoint_score"][0].astype(np.float32)[:120])
        for a in data["annotations"]
        if len(a["keypoint"])
    ]

    figures = {"device": str(device), "torch_threads": torch.get_num_threads(), "backends": {}}
    backends = ["torch", *FORMATS] if args.backend == "all" else [args.backend]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "random.pth"
        save_checkpoint(checkpoint, model, names, pre, {})
        for backend in backends:
            clf: Classifier = load_classifier(checkpoint, device if backend == "torch" else torch.device("cpu"), backend)
            print(f"{backend}:")
            figures["backends"][backend] = bench(clf, clips, device if backend == "torch" else torch.device("cpu"), args.repeats)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


def bench(clf: Classifier, clips: list, device: torch.device, repeats: int) -> dict:
    pre = clf.preprocess
    figures: dict = {"persons": {}}
    for persons in (1, 4, 16):
        windows = [clips[i % len(clips)] for i in range(persons)]
        total = timed(lambda windows=windows: predict_windows(clf.model, pre, windows, device), repeats)
        prep = timed(lambda windows=windows: model_input(windows, pre), repeats)
        row = {
            "total_p50_ms": round(float(np.percentile(total, 50)) * 1000, 3),
            "total_p95_ms": round(float(np.percentile(total, 95)) * 1000, 3),
            "preprocess_p50_ms": round(float(np.percentile(prep, 50)) * 1000, 3),
        }
        figures["persons"][persons] = row
        latency = f"p50 {row['total_p50_ms']:.2f} ms  p95 {row['total_p95_ms']:.2f} ms"
        print(f"  {persons:>2} persons: {latency}  (preprocess p50 {row['preprocess_p50_ms']:.2f} ms)")
    one, sixteen = figures["persons"][1]["total_p50_ms"], figures["persons"][16]["total_p50_ms"]
    figures["batch16_over_single"] = round(sixteen / one, 2)
    print(f"  16 persons batched cost {figures['batch16_over_single']:.1f}x one person (16x if unbatched)")
    return figures


if __name__ == "__main__":
    main()
