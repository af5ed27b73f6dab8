"""Training throughput and the share of each step spent outside the model.

    python scripts/bench_train.py [PKL] [--steps 40] [--batch-size 64]

Without PKL it generates a UCF101-sized pickle (101 classes x 94 clips, about 180 frames each).
Times `--steps` training steps: batch making (window sampling, augmentation, preprocessing) versus the
model (forward, backward, optimiser step); prints clips/s and the projected epoch time.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from actionlstm.augment import AugmentConfig, SpatialAugment
from actionlstm.dataset import holdout_by_group, load_dataset
from actionlstm.device import resolve_device
from actionlstm.epochs import make_batch
from actionlstm.preprocess import PreprocessConfig
from actionlstm.synthetic import write_sample_pickle
from actionlstm.train import initial_model, members_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pkl", nargs="?")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="bench_train.json")
    args = parser.parse_args()
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.pkl) if args.pkl else Path(tmp) / "ucf101_sized.pkl"
        if not args.pkl:
            start = time.perf_counter()
            write_sample_pickle(path, num_classes=101, clips_per_class=94, frames=(60, 300), seed=0)
            print(f"generated {path.stat().st_size / 2**20:.0f} MiB UCF101-sized pickle in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        dataset = load_dataset(path, use_cache=False)
        parse_seconds = time.perf_counter() - start

    train_indices, _ = holdout_by_group(dataset, dataset.split_indices("train1"), 0.1, 0)
    pre, aug = PreprocessConfig(), AugmentConfig()
    rng = np.random.default_rng(0)
    spatial = SpatialAugment(aug, rng, pre.fps)
    model = initial_model([str(c) for c in range(int(dataset.labels.max()) + 1)], pre, None).to(device)  # the default model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)

    data_time, model_time = [], []
    for step in range(args.steps + 3):
        start = time.perf_counter()
        batch = rng.choice(train_indices, args.batch_size, replace=False)
        x, lengths, y = make_batch(dataset, batch, pre, aug, spatial, rng)
        made = time.perf_counter()
        loss = members_loss(criterion, model(x.to(device), lengths.to(device), each_member=True), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 3:  # warm-up steps are not counted
            data_time.append(made - start)
            model_time.append(time.perf_counter() - made)

    step_time = np.mean(data_time) + np.mean(model_time)
    clips_per_s = args.batch_size / step_time
    figures = {
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "clips": len(dataset),
        "train_clips_per_epoch": int(len(train_indices)),
        "parse_seconds": round(parse_seconds, 1),
        "batch_size": args.batch_size,
        "data_ms_per_step": round(float(np.mean(data_time)) * 1000, 1),
        "model_ms_per_step": round(float(np.mean(model_time)) * 1000, 1),
        "outside_model_share": round(float(np.mean(data_time) / step_time), 3),
        "clips_per_s": round(clips_per_s, 1),
        "projected_epoch_s": round(len(train_indices) / clips_per_s, 1),
    }
    print(json.dumps(figures, indent=2))
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
