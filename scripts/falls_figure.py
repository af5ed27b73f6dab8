"""docs/falls_cue.png: what the fall cue (pipeline/falls.py) reads in a real fall, a real sit-down on a
bed, and lying down on the floor on purpose (HDM05 motion capture through a camera a metre high).

    python scripts/falls_figure.py            # skeletons extracted as scripts/falls_bench.py does, kept in runs/falls_bench

Per clip: the hips' height over the floor in torso lengths (the floor and the length of the last frame
the person was up), the torso's angle from vertical, the thresholds that read them, and when the
built-in model's `fall` label is 1 when played through the live runtime (`pipeline.replay`).
"""

import falls_bench as bench
import matplotlib.pyplot as plt
import numpy as np
import torch

from actionlstm import mocap
from actionlstm.builtin import resolve_checkpoint
from actionlstm.checkpoint import load_checkpoint
from pipeline.actions import ActionRuntime
from pipeline.falls import FallCue, fall_cue, torso, up_frames
from pipeline.replay import replay

OUT = bench.ROOT / "docs" / "falls_cue.png"
VIDEOS = {
    "a fall backwards (GMDCSA24 S1_Fall_13)": "fall/S1_Fall_13.mp4",
    "bending, then sitting on a bed (S4_ADL_19)": "adl/S4_ADL_19.mp4",
}
LYING_DOWN = ("mm", "lieDownFloor")  # HDM05 actor and motion


def geometry(clip: dict, cue: FallCue) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times, hips over the floor (torso lengths of the last frame up) and torso angle of person 0."""
    keypoint, score = clip["keypoint"][0].astype(np.float32), clip["keypoint_score"][0].astype(np.float32)
    t = np.arange(len(keypoint)) / float(clip["fps"])
    angle, hip, length, ok = reading = torso(keypoint, score, cue.min_score)
    _, floor, up = up_frames(keypoint, score, t, reading, cue)
    last = np.maximum.accumulate(np.where(up, np.arange(len(t)), 0))
    over = np.where(ok, (floor[last] - hip) / length[last], np.nan)
    return t, over, np.where(ok, angle, np.nan)


def fall_prob(runtime: ActionRuntime, clip: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per frame of person 0 (track 1): time and the `fall` probability the runtime gives (nan: none)."""
    times, probs = [], []
    for result in replay(runtime, clip["keypoint"], clip["keypoint_score"], float(clip["fps"]), tuple(clip["img_shape"])):
        person = next((p for p in [*result.persons, *result.unseen] if p.id == 1 and p.top5), None)
        times.append(result.time)
        probs.append(next((item.prob for item in person.top5 if item.label == "fall"), 0.0) if person else np.nan)
    return np.array(times), np.array(probs)


def main() -> None:
    torch.set_num_threads(1)
    clf = load_checkpoint(resolve_checkpoint("falls"))
    cue = fall_cue(clf.meta, clf.class_names)[0]
    runtime = ActionRuntime(clf, torch.device("cpu"), top_k=len(clf.class_names))
    work = bench.ROOT / "runs" / "falls_bench"
    work.mkdir(parents=True, exist_ok=True)
    videos = [bench.DATA / "falls" / path for path in VIDEOS.values()]
    clips = dict(zip(VIDEOS, bench.skeletons(videos, work / "figure.pkl", bench.MAX_PERSONS["GMDCSA24"])))
    take = next(t for t in mocap.list_takes(bench.DATA / "mocap" / "hdm05") if (t.actor, t.motion) == LYING_DOWN)
    rendered = mocap.render_dataset([take], [bench.SHELF[1]], lambda take, camera: "test")["annotations"][0]
    clips["lying down on the floor (HDM05 mm, camera 1 m high)"] = rendered
    figure, axes = plt.subplots(2, len(clips), figsize=(5 * len(clips), 6), sharex="col", squeeze=False)
    for column, (title, clip) in enumerate(clips.items()):
        t, over, angle = geometry(clip, cue)
        times, prob = fall_prob(runtime, clip)
        fired = times[np.nan_to_num(prob) >= 0.7]
        top, bottom = axes[0, column], axes[1, column]
        top.plot(t, over, color="tab:blue")
        top.axhline(cue.high, color="tab:green", ls="--", lw=1, label=f"up: {cue.high:g}+")
        top.axhline(cue.floor, color="tab:red", ls="--", lw=1, label=f"on the floor: {cue.floor:g} or less")
        top.set_title(title, fontsize=10)
        top.set_ylim(-0.5, 2.5)
        bottom.plot(t, angle, color="tab:purple")
        bottom.axhline(cue.upright, color="tab:green", ls="--", lw=1, label=f"upright: {cue.upright:g} or less")
        bottom.axhline(cue.lying, color="tab:red", ls="--", lw=1, label=f"lying: {cue.lying:g}+")
        bottom.set_ylim(0, 180)
        bottom.set_xlabel("seconds")
        for axis in (top, bottom):
            if len(fired):
                axis.axvspan(fired[0], fired[-1], color="tab:red", alpha=0.15, label="fall read (alert)" if axis is top else None)
            axis.grid(alpha=0.3)
        top.text(0.02, 0.95, f"fall alert at {fired[0]:.1f} s" if len(fired) else "no fall alert", transform=top.transAxes, va="top")
    axes[0, 0].set_ylabel("hips over the floor\n(torso lengths)")
    axes[1, 0].set_ylabel("torso from vertical (degrees)")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[1, 0].legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(OUT, dpi=90)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
