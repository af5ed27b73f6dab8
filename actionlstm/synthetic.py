"""Learnable sample pickles in the exact `ucf101_2d.pkl` format, for tests, benchmarks and the demo.

Each class is a fixed mix of one or two body movements (arm raises, squats, kicks, sways...) at its
own tempo; each clip varies the person's size, place, image size, speed, phase and noise, and some
clips carry a second, static person, missing joints, empty frames or nobody at all, as real
annotations do. Arrays are float16 and labels numpy integers, as mmcv wrote them. One top-level key
is added, `actionlstm_sample: True` (other readers of the format ignore it), so a model trained on
these generated movements says so in its checkpoint and when it is run.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionlstm.dataset import SAMPLE_KEY
from actionlstm.errors import UserError
from actionlstm.pickle_io import dump_pickle_like_mmcv
from actionlstm.skeleton import NUM_JOINTS

# A standing person, hips at the origin, about one unit tall, y pointing down.
TEMPLATE = np.array(
    [
        [0.0, -0.85],
        [-0.03, -0.88],
        [0.03, -0.88],
        [-0.06, -0.86],
        [0.06, -0.86],
        [-0.18, -0.65],
        [0.18, -0.65],
        [-0.25, -0.40],
        [0.25, -0.40],
        [-0.28, -0.15],
        [0.28, -0.15],
        [-0.10, 0.0],
        [0.10, 0.0],
        [-0.11, 0.45],
        [0.11, 0.45],
        [-0.12, 0.90],
        [0.12, 0.90],
    ],
    np.float32,
)

_UPPER = dict.fromkeys(range(13), 1.0)
_ALL = dict.fromkeys(range(NUM_JOINTS), 1.0)
# name -> (joint weights, direction, waveform)
PRIMITIVES = {
    "left-arm-raise": ({7: 0.5, 9: 1.0}, (0.0, -1.0), "rise"),
    "right-arm-raise": ({8: 0.5, 10: 1.0}, (0.0, -1.0), "rise"),
    "left-arm-swing": ({7: 0.5, 9: 1.0}, (-1.0, 0.0), "sine"),
    "right-arm-swing": ({8: 0.5, 10: 1.0}, (1.0, 0.0), "sine"),
    "squat": ({**_UPPER, 13: 0.5, 14: 0.5}, (0.0, 1.0), "rise"),
    "jump": (_ALL, (0.0, -1.0), "bounce"),
    "sway": (_ALL, (1.0, 0.0), "sine"),
    "left-kick": ({13: 0.5, 15: 1.0}, (-1.0, -0.6), "rise"),
    "right-kick": ({14: 0.5, 16: 1.0}, (1.0, -0.6), "rise"),
    "nod": ({0: 1.0, 1: 1.0, 2: 1.0, 3: 0.7, 4: 0.7}, (0.0, 1.0), "sine"),
    "bow": ({**dict.fromkeys(range(11), 1.0)}, (0.4, 1.0), "rise"),
}
IMAGE_SHAPES = ((240, 320), (360, 480), (480, 640), (1080, 1920))
FREQUENCIES = tuple(round(0.4 + 0.1 * k, 1) for k in range(17))  # 0.4 .. 2.0 Hz


def _wave(kind: str, phase: np.ndarray) -> np.ndarray:
    if kind == "sine":
        return np.sin(phase)
    if kind == "rise":
        return (1 - np.cos(phase)) / 2
    return np.abs(np.sin(phase))


@dataclass(frozen=True)
class ClassMotion:
    primitives: tuple[str, ...]
    amplitudes: tuple[float, ...]
    phases: tuple[float, ...]
    frequency: float  # Hz

    @property
    def name(self) -> str:
        return "+".join(self.primitives) + f"@{self.frequency:.1f}Hz"


def class_motions(num_classes: int, seed: int) -> list[ClassMotion]:
    """One distinct movement recipe per class, reproducible from the seed."""
    names = list(PRIMITIVES)
    possible = (len(names) + len(names) * (len(names) - 1) // 2) * len(FREQUENCIES)
    if num_classes > possible // 2:  # random draws would take ever longer to find unused recipes
        raise UserError(f"the sample generator makes at most {possible // 2} distinct classes")
    rng = np.random.default_rng(seed)
    motions, seen = [], set()
    while len(motions) < num_classes:
        k = 1 if rng.random() < 0.4 else 2
        chosen = tuple(sorted(rng.choice(names, size=k, replace=False).tolist()))
        frequency = float(rng.choice(FREQUENCIES))
        if (chosen, frequency) in seen:
            continue
        seen.add((chosen, frequency))
        motions.append(
            ClassMotion(
                primitives=chosen,
                amplitudes=tuple(float(a) for a in rng.uniform(0.15, 0.45, k)),
                phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, k)),
                frequency=frequency,
            )
        )
    return motions


def _pose_sequence(motion: ClassMotion, frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Body-unit joint positions [T, 17, 2] for one performance of a class."""
    t = np.arange(frames) / fps
    frequency = motion.frequency * rng.uniform(0.85, 1.15)
    start = rng.uniform(0, 2 * np.pi)
    pose = np.repeat(TEMPLATE[None], frames, axis=0)
    for name, amplitude, phase in zip(motion.primitives, motion.amplitudes, motion.phases):
        weights, direction, kind = PRIMITIVES[name]
        wave = _wave(kind, 2 * np.pi * frequency * t + phase + start) * amplitude * rng.uniform(0.8, 1.2)
        joint_weight = np.zeros(NUM_JOINTS, np.float32)
        joint_weight[list(weights)] = list(weights.values())
        pose = pose + wave[:, None, None] * joint_weight[None, :, None] * np.asarray(direction, np.float32)
    return pose


def _place(pose: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, noise: float) -> np.ndarray:
    """Body units -> pixels: a random size and place in the image, a slow camera drift, jitter."""
    height, width = shape
    size = rng.uniform(0.3, 0.7) * height
    centre = np.array([rng.uniform(0.3, 0.7) * width, rng.uniform(0.45, 0.6) * height])
    drift = rng.normal(0, 0.02 * size, 2) * np.linspace(0, 1, len(pose))[:, None]
    pixels = centre + drift[:, None, :] + pose * size
    return pixels + rng.normal(0, noise * size, pixels.shape)


def make_sample_annotations(
    num_classes: int = 6,
    clips_per_class: int = 30,
    frames: tuple[int, int] = (40, 200),
    groups: int = 10,
    fps: float = 25.0,
    noise: float = 0.01,
    seed: int = 0,
) -> tuple[dict, list[str]]:
    """A pickle-format dict (`split`, `annotations`) plus a readable name for each class.

    Clips are named `v_<class>_gXX_cYY`; split k (1..3) tests on the groups g with (g - 1) % 3 == k - 1.
    """
    rng = np.random.default_rng(seed)
    motions = class_motions(num_classes, seed)
    class_tags = [f"Class{label:03d}" for label in range(num_classes)]
    annotations = []
    for label, motion in enumerate(motions):
        for clip in range(clips_per_class):
            group = clip % groups + 1
            length = int(rng.integers(frames[0], frames[1] + 1))
            shape = IMAGE_SHAPES[int(rng.integers(len(IMAGE_SHAPES)))]
            main = _place(_pose_sequence(motion, length, fps, rng), shape, rng, noise)
            main_score = rng.uniform(0.6, 1.0, (length, NUM_JOINTS))
            missing = rng.random((length, NUM_JOINTS)) < 0.03
            missing |= (rng.random(length) < 0.02)[:, None]  # frames where nobody was detected
            main[missing] = 0.0
            main_score[missing] = 0.0
            persons, scores = [main], [main_score]
            draw = rng.random()
            if draw < 0.15:  # a bystander standing still, less confidently detected
                still = np.repeat(TEMPLATE[None], length, axis=0)
                persons.append(_place(still, shape, rng, noise))
                scores.append(rng.uniform(0.2, 0.5, (length, NUM_JOINTS)))
            elif draw < 0.17:  # the detector found nobody in the whole clip
                persons, scores = [], []
            keypoint = np.asarray(persons, np.float16).reshape(len(persons), length, NUM_JOINTS, 2)
            keypoint_score = np.asarray(scores, np.float16).reshape(len(persons), length, NUM_JOINTS)
            annotations.append(
                {
                    "frame_dir": f"v_{class_tags[label]}_g{group:02d}_c{clip // groups + 1:02d}",
                    "label": np.int64(label) if clip % 2 else label,
                    "img_shape": shape,
                    "original_shape": shape,
                    "total_frames": length,
                    "keypoint": keypoint,
                    "keypoint_score": keypoint_score,
                }
            )
    split = {}
    for k in (1, 2, 3):
        is_test = [int(a["frame_dir"].split("_g")[1][:2]) % 3 == k % 3 for a in annotations]
        split[f"train{k}"] = [a["frame_dir"] for a, t in zip(annotations, is_test) if not t]
        split[f"test{k}"] = [a["frame_dir"] for a, t in zip(annotations, is_test) if t]
    return {"split": split, "annotations": annotations, SAMPLE_KEY: True}, [m.name for m in motions]


def write_sample_pickle(path: Path, **kwargs) -> list[str]:
    """Write a sample pickle the way mmcv wrote the real one; returns the class names."""
    data, names = make_sample_annotations(**kwargs)
    dump_pickle_like_mmcv(data, path)
    return names
