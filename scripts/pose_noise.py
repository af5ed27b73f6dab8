"""Measure the noise of YOLO-pose on real footage, for the defaults of `actionlstm.detector_noise.NoiseModel`.

    actionlstm extract ../shared/data/falls --out /work/ext/falls.pkl --test '^$'
    python scripts/pose_noise.py /work/ext/falls.pkl /work/ext/actions.pkl --json pose_noise.json

There is no ground truth, so only what the output itself shows is measured, per person track (the
main person of each clip, the one `preprocess` picks; `--all-persons` takes every person):

- missed frames: the share of frames between a person's first and last detection with no detection;
- dropouts: per joint, the share of a person's detected frames whose score is at or below 0.05 (the
  threshold under which training and the live pipeline count a joint as missing);
- scores: per joint, the median and robust spread of logit(score) over detected frames, and quantiles
  of the scores of seen joints; their persistence as a time constant from the lag-1 rank
  autocorrelation (a Gaussian copula: Pearson = 2 sin(pi * Spearman / 6), rho = exp(-dt / tau));
- jitter: per joint, from the second difference d = x[t+1] - 2 x[t] + x[t-1] of positions seen in
  three consecutive frames, divided by the person's size (the larger side of the box around the seen
  joints: the height when upright). White noise of std s gives std(d) = sqrt(6) s; the robust std
  (1.4826 x the median absolute deviation) keeps real motion, a minority of frames, from dominating,
  so the figure is an upper bound on the noise. The lag-1 autocorrelation of d says whether the noise
  is white (-2/3) or correlated (towards -1/2);
- separately for upright (torso within 30 degrees of the image's vertical) and lying (over 60) frames.
"""

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from actionlstm.pickle_io import load_pickle
from actionlstm.skeleton import NUM_JOINTS

THRESHOLD = 0.05
JOINT_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
POSTURES = ("all", "upright", "lying")


def tracks(paths: list[Path], all_persons: bool) -> list[tuple[np.ndarray, np.ndarray, float, tuple[int, int]]]:
    """(keypoint [T, 17, 2], score [T, 17], fps, image (height, width)) of each person track, cut to its
    first..last detection."""
    found = []
    for path in paths:
        for ann in load_pickle(path)["annotations"]:
            keypoint, score = np.asarray(ann["keypoint"], np.float64), np.asarray(ann["keypoint_score"], np.float64)
            if len(score) and not all_persons:
                main = int(np.argmax(score.sum(axis=(1, 2))))
                keypoint, score = keypoint[main : main + 1], score[main : main + 1]
            for kp, sc in zip(keypoint, score):
                detected = np.flatnonzero((sc > 0).any(-1))
                if len(detected) >= 3:
                    span = slice(detected[0], detected[-1] + 1)
                    found.append((kp[span], sc[span], float(ann.get("fps", 25.0)), tuple(int(v) for v in ann["img_shape"])))
    return found


def robust_sd(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else float("nan")


def robust_corr(u: np.ndarray, v: np.ndarray) -> float:
    """Gnanadesikan-Kettenring correlation from robust spreads of the standardised sum and difference."""
    u, v = (u - np.median(u)) / robust_sd(u), (v - np.median(v)) / robust_sd(v)
    plus, minus = robust_sd(u + v) ** 2, robust_sd(u - v) ** 2
    return (plus - minus) / (plus + minus)


def runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def posture(kp: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per frame 'upright', 'lying' or '' from the torso's angle to the image's vertical."""
    ok = seen[:, [5, 6, 11, 12]].all(-1)
    torso = kp[:, [5, 6]].mean(1) - kp[:, [11, 12]].mean(1)
    angle = np.degrees(np.arctan2(np.abs(torso[:, 0]), -torso[:, 1]))
    return np.where(ok & (angle < 30), "upright", np.where(ok & (angle > 60), "lying", ""))


def size(kp: np.ndarray, seen: np.ndarray) -> np.ndarray:
    low = np.where(seen[..., None], kp, np.inf).min(1)
    high = np.where(seen[..., None], kp, -np.inf).max(1)
    extent = (high - low).max(-1)
    return np.where(seen.sum(-1) >= 2, extent, np.nan)


def logit(score: np.ndarray) -> np.ndarray:
    p = np.clip(score, 1e-4, 1 - 1e-3)
    return np.log(p / (1 - p))


def rank_autocorr(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Pearson correlation of normal scores behind a Spearman lag-1 correlation (Gaussian copula)."""
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    if len(a) < 10:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    spearman = np.corrcoef(ra, rb)[0, 1]
    return float(2 * np.sin(np.pi * spearman / 6))


def tau(rho: float, dt: float) -> float:
    """The time constant (s) of an AR(1) process with lag-1 correlation rho at frame spacing dt."""
    return float(-dt / np.log(rho)) if 0 < rho < 1 else 0.0


def still(kp: np.ndarray, person: np.ndarray, fps: float) -> np.ndarray:
    """[T, 17] joints that moved under 1% of the person's size between the means of the ~0.1 s before
    and after each frame: second differences there show the detector's noise more than the motion (on
    renders of motion capture with white noise of known size, this recovers the size within 7% and a
    lag-1 correlation of 0.03; at 3% motion shows as a correlation of 0.19)."""
    half = max(1, round(0.1 * fps))
    out = np.zeros(kp.shape[:2], bool)
    for t in range(half, len(kp) - half):
        moved = np.linalg.norm(kp[t + 1 : t + 1 + half].mean(0) - kp[t - half : t].mean(0), axis=-1)
        out[t] = moved < 0.01 * person[t]
    return out


def frame_facts(kp: np.ndarray, sc: np.ndarray, fps: float, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Per-frame facts of one track that every figure needs."""
    seen = sc > THRESHOLD
    person = size(kp, seen)
    height, width = shape
    margin = 0.03 * np.array([width, height])
    inside = ((kp >= margin) & (kp <= np.array([width, height]) - margin)).all(-1)
    facing = seen[:, 5] & seen[:, 6] & (kp[:, 5, 0] - kp[:, 6, 0] > 0.05 * person)  # left shoulder on the image's right
    counted = (sc > 0).any(-1)[:, None] & (seen | inside)  # a dropout at the picture's edge is a joint out of view
    counted[:, :5] &= facing[:, None]  # face points only where the face is towards the camera
    return {"seen": seen, "person": person, "kind": posture(kp, seen), "counted": counted, "still": still(kp, person, fps)}


def jitter_of(d2: list[float], rho: float) -> float:
    """The std of AR(1) noise (lag-1 correlation rho) behind second differences: their robust std over
    sqrt(2 (1 - rho) (3 - rho)), which is sqrt(6) for white noise."""
    return robust_sd(np.asarray(d2)) / np.sqrt(2 * (1 - rho) * (3 - rho)) if len(d2) >= 20 else float("nan")


def rho_from_d2_corr(r1: float) -> float:
    """The lag-1 correlation of AR(1) noise whose second differences have lag-1 correlation r1."""
    grid = np.linspace(0.0, 0.99, 100)
    curve = (-4 + 7 * grid - 4 * grid**2 + grid**3) / (6 - 8 * grid + 2 * grid**2)
    return float(np.interp(r1, curve, grid))


def measure(found: list[tuple[np.ndarray, np.ndarray, float, tuple[int, int]]]) -> dict:
    span = missed = 0
    missed_runs, drop_runs, dts = [], [], []
    counted = {p: np.zeros(NUM_JOINTS) for p in POSTURES}
    dropped = {p: np.zeros(NUM_JOINTS) for p in POSTURES}
    d2 = {(p, s): [[] for _ in range(NUM_JOINTS)] for p in POSTURES for s in ("any", "still")}
    d2_pairs: list[np.ndarray] = []
    seen_scores = [[] for _ in range(NUM_JOINTS)]
    score_pairs: dict[int, list[list]] = {}  # frame rate (rounded to 5 fps) -> per joint, (score, next score) pairs
    size_bins = np.array([0, 100, 150, 200, 300, np.inf])  # the person's size in the network's input (640 wide)
    by_size = [[] for _ in range(len(size_bins) - 1)]
    network_sizes = []
    for kp, sc, fps, shape in found:
        f = frame_facts(kp, sc, fps, shape)
        detected = (sc > 0).any(-1)
        span, missed = span + len(sc), missed + int((~detected).sum())
        missed_runs += list(runs(~detected) / fps)
        both = detected[1:] & detected[:-1]
        dts.append(np.full(int(both.sum()), 1 / fps))
        second = (kp[2:] - 2 * kp[1:-1] + kp[:-2]) / f["person"][1:-1, None, None]
        three = f["seen"][2:] & f["seen"][1:-1] & f["seen"][:-2] & np.isfinite(f["person"][1:-1, None])
        for p in POSTURES:
            rows = np.ones(len(sc), bool) if p == "all" else f["kind"] == p
            counted[p] += (f["counted"] & rows[:, None]).sum(0)
            dropped[p] += (f["counted"] & rows[:, None] & ~f["seen"]).sum(0)
            for s in ("any", "still"):
                ok = three & rows[1:-1, None] & (f["still"][1:-1] if s == "still" else True)
                for j in range(NUM_JOINTS):
                    d2[p, s][j] += list(second[ok[:, j], j].ravel())
        ok = three & (f["kind"][1:-1] == "upright")[:, None] & f["still"][1:-1]
        network = np.digitize(f["person"][1:-1] * 640 / max(shape), size_bins) - 1
        network_sizes += list(np.repeat(f["person"][1:-1] * 640 / max(shape), ok[:, 5:].sum(1)))
        for b in range(len(by_size)):
            by_size[b] += list(second[:, 5:][ok[:, 5:] & (network == b)[:, None]].ravel())
        pair = ok[1:] & ok[:-1]
        d2_pairs.append(np.stack([second[:-1][pair], second[1:][pair]], -1).reshape(-1, 2))
        for j in range(NUM_JOINTS):
            seen_scores[j] += list(sc[f["seen"][:, j] & f["counted"][:, j], j])
            drop_runs += list(runs(f["counted"][:, j] & ~f["seen"][:, j]) / fps)
            score_pairs.setdefault(int(5 * round(fps / 5)), [[] for _ in range(NUM_JOINTS)])[j].append((sc[:-1][both, j], sc[1:][both, j]))
    dt = float(np.median(np.concatenate(dts)))
    pairs = np.concatenate(d2_pairs)
    r1 = robust_corr(pairs[:, 0], pairs[:, 1])
    jitter_rho = rho_from_d2_corr(r1)
    # Scores, per frame rate: a lag-1 correlation is per frame; the median over joints of each rate's tau.
    score_tau = {
        rate: float(np.median([tau(rank_autocorr(per_joint[j]), 1 / rate) for j in range(NUM_JOINTS)]))
        for rate, per_joint in score_pairs.items()
    }
    joints = {}
    for j, name in enumerate(JOINT_NAMES):
        joints[name] = {
            "seen_score_q10_25_50_75_90": [round(float(q), 3) for q in np.quantile(seen_scores[j], [0.1, 0.25, 0.5, 0.75, 0.9])],
            **{f"dropout_{p}": float(dropped[p][j] / max(counted[p][j], 1)) for p in POSTURES},
            **{f"jitter_{p}_{s}": jitter_of(d2[p, s][j], jitter_rho) for p in POSTURES for s in ("any", "still")},
        }
    upright = np.array([joints[n]["jitter_upright_still"] for n in JOINT_NAMES])
    lying = np.array([joints[n]["jitter_lying_still"] for n in JOINT_NAMES])
    sizes = np.asarray(network_sizes)
    centres = [
        np.median(sizes[(sizes >= lo) & (sizes < hi)]) if ((sizes >= lo) & (sizes < hi)).any() else np.nan
        for lo, hi in itertools.pairwise(size_bins)
    ]
    jitters = [jitter_of(values, jitter_rho) for values in by_size]
    ok = np.isfinite(centres) & np.isfinite(jitters) & (np.asarray(jitters) > 0)
    weights = np.sqrt([len(values) for values in by_size])[ok]
    exponent = -np.polyfit(np.log(np.asarray(centres)[ok]), np.log(np.asarray(jitters)[ok]), 1, w=weights)[0]
    drop_up = dropped["upright"].sum() / counted["upright"].sum()
    drop_lying = dropped["lying"].sum() / max(counted["lying"].sum(), 1)
    return {
        "tracks": len(found),
        "span_frames": span,
        "detected_frames": span - missed,
        "counted_joint_frames": {p: int(counted[p].sum()) for p in POSTURES},
        "missed_share": missed / span,
        "missed_run_s": float(np.mean(missed_runs)) if missed_runs else 0.0,
        "dropout_run_s": float(np.mean(drop_runs)) if drop_runs else 0.0,
        "frame_s": dt,
        "score_tau_s_by_fps": score_tau,
        "jitter_d2_lag1_corr": r1,
        "jitter_lag1_rho": jitter_rho,
        "jitter_tau_s": tau(jitter_rho, dt),
        "lying_jitter_ratio": float(np.nanmedian(lying / upright)),
        "lying_jitter_ratio_any": float(
            np.nanmedian([joints[n]["jitter_lying_any"] / joints[n]["jitter_upright_any"] for n in JOINT_NAMES])
        ),
        "jitter_samples": {f"{p}_{s}": sum(len(v) for v in d2[p, s]) for p in POSTURES for s in ("any", "still")},
        "body_jitter_by_network_size": {
            f"{size_bins[b]:.0f}-{size_bins[b + 1]:.0f}": [jitters[b], len(by_size[b]), float(centres[b])] for b in range(len(by_size))
        },
        # relative jitter ~ (size / reference) ** -exponent: 0 is a fixed fraction of the size, 1 a fixed number of pixels
        "jitter_size_exponent": float(exponent),
        "jitter_reference_size": float(np.median(sizes)),
        "dropout_upright": float(drop_up),
        "dropout_lying": float(drop_lying),
        "joints": joints,
    }


def report(figures: dict) -> None:
    f = figures
    print(f"{f['tracks']} person tracks, {f['span_frames']} frames from first to last detection, {f['detected_frames']} detected")
    print(f"joint-frames counted for dropouts: {f['counted_joint_frames']}")
    print(f"missed frames: {f['missed_share']:.4f} of the spans, runs of {f['missed_run_s']:.3f} s on average")
    dropouts = f"{f['dropout_upright']:.4f} upright, {f['dropout_lying']:.4f} lying (all joints)"
    print(f"dropouts: {dropouts}; runs of {f['dropout_run_s']:.3f} s on average")
    print(f"scores: time constant (median over joints) by frame rate {f['score_tau_s_by_fps']} s")
    print(
        f"jitter: second differences' lag-1 correlation {f['jitter_d2_lag1_corr']:.3f} (white noise: -0.667), "
        f"AR(1) rho {f['jitter_lag1_rho']:.3f}, tau {f['jitter_tau_s']:.3f} s; lying / upright {f['lying_jitter_ratio']:.2f} "
        f"(all frames, not only still ones: {f['lying_jitter_ratio_any']:.2f})"
    )
    print(f"jitter samples (coordinates): {f['jitter_samples']}")
    head = "dropout all / upright / lying    jitter (fraction of size) upright still / any, lying still / any    "
    head += "seen score q10 q25 q50 q75 q90"
    print(
        "body joints' jitter (upright, still) by the person's size in the network's 640 input: "
        + ", ".join(f"{k} px {v[0]:.4f} ({v[1]} samples)" for k, v in f["body_jitter_by_network_size"].items())
        + f"; fit: ~ size ** -{f['jitter_size_exponent']:.2f}, "
        + f"joints' figures at the median size {f['jitter_reference_size']:.0f} px"
    )
    print(f"{'joint':15s} {head}")
    for name, e in f["joints"].items():
        q = " ".join(f"{v:.3f}" for v in e["seen_score_q10_25_50_75_90"])
        print(
            f"{name:15s} {e['dropout_all']:.4f} {e['dropout_upright']:.4f} {e['dropout_lying']:.4f}    "
            f"{e['jitter_upright_still']:.4f} {e['jitter_upright_any']:.4f}  "
            f"{e['jitter_lying_still']:.4f} {e['jitter_lying_any']:.4f}    {q}"
        )


def model_rows(figures: dict) -> list[str]:
    """Per joint (jitter upright and still, dropout, seen-score quantiles), left and right averaged:
    which way the people in these clips turned is not the detector's noise. `NoiseModel`'s table."""
    mirror = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
    joints = list(figures["joints"].values())
    rows = []
    for j, name in enumerate(JOINT_NAMES):
        pair = (joints[j], joints[mirror[j]])
        values = [np.mean([e["jitter_upright_still"] for e in pair]), np.mean([e["dropout_all"] for e in pair])]
        values += list(np.mean([e["seen_score_q10_25_50_75_90"] for e in pair], axis=0))
        rows.append("(" + ", ".join(f"{v:.4f}" if i < 2 else f"{v:.3f}" for i, v in enumerate(values)) + f"),  # {name}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pickles", nargs="+", type=Path, help="skeleton pickles written by actionlstm extract")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--all-persons", action="store_true", help="every person of a clip, not only its main one")
    args = parser.parse_args()
    figures = measure(tracks(args.pickles, args.all_persons))
    report(figures)
    print("NoiseModel table (jitter, dropout, seen-score quantiles; left and right averaged):")
    print("\n".join(model_rows(figures)))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
