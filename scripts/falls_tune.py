"""How the fall cue's thresholds (pipeline/falls.py) were chosen: a grid of settings, cross-validated
across people, so that no threshold is judged on the people it was picked on.

    python scripts/falls_tune.py                          # the grid below; skeletons kept in runs/falls_bench
    python scripts/falls_tune.py --grid pause=0.2,0.3     # one threshold's values, the rest as shipped

Each setting reads every clip by geometry alone (the cue on the frames a live buffer holds, every
frame; a fall is read at or after the labelled start, less 0.25 s): GMDCSA24's 14 falls and 9 daily
activities as four cameras show them (the original and the benchmark's three; `--camera` for more of
scripts/camera_study.py's), and HDM05's 11 motions of 5 actors through 7 virtual cameras a take (none
a fall). Five folds pair a GMDCSA24 subject with an HDM05 actor (the
fifth actor alone); each fold picks the setting that scores best on the other four, by falls caught
less the mean of the daily-activity and motion-capture alarm rates, and is scored with it. Prints each
setting's figures on all data, then the cross-validated ones.
"""

import argparse
import itertools
import statistics
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path

import camera_study
import falls_bench as bench
import numpy as np
import train_builtin as builtin

from actionlstm import mocap
from actionlstm.builtin import resolve_checkpoint
from actionlstm.checkpoint import load_checkpoint
from pipeline.buffers import TrackBuffers
from pipeline.falls import FallCue, read_fall

FOLDS = [("S1", "bd"), ("S2", "bk"), ("S3", "dg"), ("S4", "mm"), (None, "tr")]
GRID = {"stay": (0.7, 0.8, 0.9), "short": (0.55, 0.65), "pause": (0.2, 0.3), "floor": (0.5, 0.7)}
CAMERAS_PER_TAKE = 7


def read_anywhere(clip: dict, person: int, cue: FallCue, window) -> float | None:
    """The first time the cue reads a fall in one person of a clip, as a live buffer feeds it."""
    fps = float(clip["fps"])
    keypoint, score = clip["keypoint"][person].astype(np.float32), clip["keypoint_score"][person].astype(np.float32)
    buffers = TrackBuffers(window, fps, tuple(clip["img_shape"]))
    for frame in range(len(keypoint)):
        seen = slice(frame, frame + 1) if score[frame].max() > 0 else slice(0, 0)  # this frame's person, or nobody
        buffers.update(frame / fps, np.ones(seen.stop - seen.start, int), keypoint[seen], score[seen])
        if 1 in buffers and read_fall(*buffers[1].frames(), cue).fell is not None:
            return frame / fps
    return None


def alarmed(job: tuple) -> bool:
    """Of a fall clip: whether the fall was read; of any other: whether anything was."""
    cue, clip, start, window = job
    firsts = [t for m in range(clip["keypoint"].shape[0]) if (t := read_anywhere(clip, m, cue, window)) is not None]
    return bool(builtin.after_start(firsts, start)) if start is not None else bool(firsts)


def score(outcomes: dict[str, bool], groups: dict[str, str]) -> tuple[float, float, float, float]:
    """The choice's score (falls caught less the mean alarm rate), then the three rates."""
    rate = {kind: [outcomes[k] for k in outcomes if groups[k] == kind] for kind in ("fall", "adl", "mocap")}
    recall, adl, renders = (statistics.mean(rate[kind]) if rate[kind] else 0.0 for kind in ("fall", "adl", "mocap"))
    return recall - (adl + renders) / 2, recall, adl, renders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=bench.ROOT / "runs" / "falls_bench")
    parser.add_argument("--camera", action="append", choices=list(camera_study.CAMERAS), help="repeatable; default: the benchmark's")
    parser.add_argument("--grid", action="append", metavar="NAME=V1,V2", help="FallCue settings to try instead of GRID (repeatable)")
    args = parser.parse_args()
    pairs = [item.split("=") for item in args.grid or []]
    grid = {name: tuple(float(v) for v in values.split(",")) for name, values in pairs} or GRID
    window = load_checkpoint(resolve_checkpoint("falls")).preprocess
    annotations = builtin.read_annotations(bench.DATA / "falls" / "annotations")
    clips, groups, folds_of = {}, {}, {}
    for camera in args.camera or ["original", *bench.CAMERAS]:
        for clip in bench.gmdcsa_skeletons(args.work, camera):
            name = Path(clip["frame_dir"]).name
            key = f"{camera}/{name}"
            clips[key], groups[key], folds_of[key] = clip, "fall" if "_Fall_" in name else "adl", name.split("_")[0]
    takes = mocap.list_takes(bench.DATA / "mocap" / "hdm05")
    rng = np.random.default_rng(0)
    cameras = {take.key: mocap.random_cameras(CAMERAS_PER_TAKE, int(rng.integers(1 << 30))) for take in takes}
    for clip in mocap.render_dataset(takes, lambda take: cameras[take.key], lambda take, camera: "all")["annotations"]:
        key = clip["frame_dir"]
        clips[key], groups[key], folds_of[key] = clip, "mocap", key.split("_")[1]
    starts = {k: builtin.fall_start(annotations.get(k.split("/")[-1], [])) if groups[k] == "fall" else None for k in clips}
    settings = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    results = {}
    with Pool(2) as pool:
        for setting in settings:
            cue = replace(FallCue("fall"), **setting)
            outcomes = pool.map(alarmed, [(cue, clips[k], starts[k], window) for k in clips], chunksize=8)
            results[str(setting)] = dict(zip(clips, outcomes))
            _, recall, adl, renders = score(results[str(setting)], groups)
            print(f"{setting}: falls {recall:.3f}, daily activities {adl:.3f}, motion capture {renders:.4f}", flush=True)
    held: dict[str, bool] = {}
    for fold in FOLDS:
        outside = [k for k in clips if folds_of[k] not in fold]
        best = max(results, key=lambda name: score({k: results[name][k] for k in outside}, groups)[0])
        print(f"fold {fold[0] or '-'}/{fold[1]} chooses {best}")
        held.update({k: v for k, v in results[best].items() if folds_of[k] in fold})
    _, recall, adl, renders = score(held, groups)
    print(f"cross-validated: falls caught {recall:.3f}, daily activities alarmed {adl:.3f}, motion capture alarmed {renders:.4f}")


if __name__ == "__main__":
    main()
