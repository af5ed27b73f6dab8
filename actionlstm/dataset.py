"""A skeleton pickle parsed once into flat arrays: one main-person sequence per clip.

The real `ucf101_2d.pkl` holds ~13k annotations of float16 arrays; turning them into contiguous
float32 arrays takes a while, so the result is cached (as a plain .npz, never a pickle) keyed by the
file's path, size and modification time. Epochs then slice arrays instead of walking Python objects.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionlstm.atomic import atomic_path
from actionlstm.errors import UserError
from actionlstm.paths import cache_root, file_identity
from actionlstm.pickle_io import load_pickle
from actionlstm.preprocess import PreprocessConfig, resample, select_main_person
from actionlstm.skeleton import NUM_JOINTS
from actionlstm.videoset import UCF101_GROUP, group_of

CACHE_VERSION = 2
MAX_CLASSES = 100_000  # far above any action dataset; a label beyond it is damage, not a class


@dataclass
class SkeletonDataset:
    frame_dirs: np.ndarray  # [N] str
    labels: np.ndarray  # [N] int64
    offsets: np.ndarray  # [N + 1] int64: clip i is frames offsets[i]:offsets[i+1]
    keypoint: np.ndarray  # [sum T, 17, 2] float32, pixels
    score: np.ndarray  # [sum T, 17] float32
    img_shapes: np.ndarray  # [N, 2] int64 (height, width)
    fps: np.ndarray  # [N] float64: each clip's frame rate, NaN where the pickle doesn't say (UCF101: 25)
    splits: dict[str, np.ndarray]  # split name -> clip indices

    def __len__(self) -> int:
        return len(self.labels)

    def clip(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = self.offsets[index], self.offsets[index + 1]
        return self.keypoint[start:stop], self.score[start:stop]

    def clip_rate(self, index: int, default: float) -> float:
        """Frames per second of clip `index`: as recorded in the pickle, else `default` (the training rate)."""
        rate = float(self.fps[index])
        return default if np.isnan(rate) else rate

    def clip_at(self, index: int, pre: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
        """Clip `index` at the training rate `pre.fps`, resampled when the pickle recorded another rate."""
        keypoint, score = self.clip(index)
        rate = self.clip_rate(index, pre.fps)
        if abs(rate - pre.fps) < 1e-6 or len(keypoint) < 2:
            return keypoint, score
        return resample(keypoint, score, np.arange(len(keypoint)) / rate, pre.fps, score_threshold=pre.score_threshold)

    def num_frames(self, index: int) -> int:
        return int(self.offsets[index + 1] - self.offsets[index])

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def split_indices(self, name: str) -> np.ndarray:
        """Clip indices of a split; a split that is missing or names no known clip is an error."""
        if name not in self.splits:
            known = ", ".join(sorted(self.splits)) or "none"
            raise UserError(f"split '{name}' is not in the data (splits: {known})")
        if len(self.splits[name]) == 0:
            raise UserError(f"split '{name}' names no clip that is in the annotations")
        return self.splits[name]

    def index_of(self, frame_dir: str) -> int:
        hits = np.flatnonzero(self.frame_dirs == frame_dir)
        if len(hits) == 0:
            raise UserError(f"no clip named '{frame_dir}' in the data")
        return int(hits[0])


def _check_annotation(ann: object, position: int) -> dict:
    if not isinstance(ann, dict):
        raise UserError(f"annotation {position} is a {type(ann).__name__}, expected a dict")
    for key in ("frame_dir", "label", "keypoint"):
        if key not in ann:
            raise UserError(f"annotation {position} has no '{key}'")
    return ann


def _as_array(value: object, what: str, name: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError:
        raise UserError(f"clip '{name}': {what} is not a regular array") from None


def _as_int(value: object, what: str, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise UserError(f"clip '{name}': {what} {value!r} is not an integer")
    return int(value)


def _image_shape(ann: dict, name: str) -> tuple[int, int]:
    shape = ann.get("img_shape", (0, 0))
    if not isinstance(shape, (tuple, list)) or len(shape) < 2:
        raise UserError(f"clip '{name}': img_shape {shape!r} is not (height, width)")
    return _as_int(shape[0], "img_shape height", name), _as_int(shape[1], "img_shape width", name)


def _clip_arrays(ann: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    keypoint = _as_array(ann["keypoint"], "keypoint", name)
    if keypoint.ndim != 4 or keypoint.shape[2] != NUM_JOINTS or keypoint.shape[3] not in (2, 3):
        raise UserError(
            f"clip '{name}': keypoint has shape {tuple(keypoint.shape)}, expected M x T x {NUM_JOINTS} x 2"
        )
    if not np.issubdtype(keypoint.dtype, np.number):
        raise UserError(f"clip '{name}': keypoint holds {keypoint.dtype}, expected numbers")
    if "keypoint_score" in ann:
        score = _as_array(ann["keypoint_score"], "keypoint_score", name)
        if score.shape != keypoint.shape[:3] or not np.issubdtype(score.dtype, np.number):
            raise UserError(
                f"clip '{name}': keypoint_score has shape {tuple(score.shape)}, expected {tuple(keypoint.shape[:3])}"
            )
    elif keypoint.shape[3] == 3:
        score = keypoint[..., 2]
    else:
        raise UserError(f"clip '{name}' has no keypoint_score")
    total = _as_int(ann.get("total_frames", keypoint.shape[1]), "total_frames", name)
    return select_main_person(keypoint[..., :2], score, total)


def _fps_of(ann: dict, name: str) -> float:
    """The optional `fps` that `actionlstm extract` records; pickles without it give NaN."""
    if "fps" not in ann:
        return float("nan")
    value = ann["fps"]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 < float(value) < 1000:
        raise UserError(f"clip '{name}': fps {value!r} is not a frame rate")
    return float(value)


def _label_of(ann: dict, name: str) -> int:
    label = _as_int(ann["label"], "label", name)
    if not 0 <= label < MAX_CLASSES:
        raise UserError(f"clip '{name}': label {label} is outside 0..{MAX_CLASSES - 1}")
    return label


def parse_annotations(data: object) -> SkeletonDataset:
    """Validate a loaded pickle and flatten it; every problem names the clip it was found in."""
    if not isinstance(data, dict):
        raise UserError(f"expected a dict with 'split' and 'annotations' at the top level, got a {type(data).__name__}")
    for key in ("split", "annotations"):
        if key not in data:
            raise UserError(f"the pickle has no '{key}' entry (keys: {', '.join(map(str, data))})")
    split, annotations = data["split"], data["annotations"]
    if not isinstance(split, dict):
        raise UserError(f"'split' is a {type(split).__name__}, expected a dict of name -> clip names")
    if not isinstance(annotations, list) or not annotations:
        raise UserError("'annotations' must be a non-empty list")

    names, labels, shapes, rates, keypoints, scores = [], [], [], [], [], []
    for position, ann in enumerate(annotations):
        ann = _check_annotation(ann, position)
        name = str(ann["frame_dir"])
        kp, sc = _clip_arrays(ann, name)
        labels.append(_label_of(ann, name))
        names.append(name)
        shapes.append(_image_shape(ann, name))
        rates.append(_fps_of(ann, name))
        keypoints.append(kp)
        scores.append(sc)

    frame_dirs = np.array(names)
    lookup = {name: i for i, name in enumerate(names)}
    splits = {}
    for split_name, members in split.items():
        if not isinstance(members, (list, tuple)):
            raise UserError(f"split '{split_name}' is a {type(members).__name__}, expected a list of clip names")
        indices = [lookup[str(m)] for m in members if str(m) in lookup]
        splits[str(split_name)] = np.asarray(indices, np.int64)
    lengths = np.array([len(k) for k in keypoints], np.int64)
    return SkeletonDataset(
        frame_dirs=frame_dirs,
        labels=np.asarray(labels, np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        keypoint=np.concatenate(keypoints).astype(np.float32),
        score=np.concatenate(scores).astype(np.float32),
        img_shapes=np.asarray(shapes, np.int64).reshape(-1, 2),
        fps=np.asarray(rates, np.float64),
        splits=splits,
    )


def _cache_path(path: Path) -> Path:
    key = f"{CACHE_VERSION}:{file_identity(path)}"
    return cache_root() / f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _save_cache(dataset: SkeletonDataset, cache: Path) -> None:
    """Best effort: a read-only cache folder only costs the next run a re-parse."""
    arrays = {f"split/{name}": idx for name, idx in dataset.splits.items()}
    arrays.update(
        frame_dirs=dataset.frame_dirs, labels=dataset.labels, offsets=dataset.offsets,
        keypoint=dataset.keypoint, score=dataset.score, img_shapes=dataset.img_shapes, fps=dataset.fps,
    )
    try:
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    except OSError:
        pass


def _load_cache(cache: Path) -> SkeletonDataset | None:
    try:
        with np.load(cache, allow_pickle=False) as z:
            splits = {k.removeprefix("split/"): z[k] for k in z.files if k.startswith("split/")}
            return SkeletonDataset(
                frame_dirs=z["frame_dirs"], labels=z["labels"], offsets=z["offsets"], keypoint=z["keypoint"],
                score=z["score"], img_shapes=z["img_shapes"], fps=z["fps"], splits=splits,
            )
    except Exception:  # a damaged cache is re-made from the pickle
        return None


def load_dataset(path: Path, use_cache: bool = True) -> SkeletonDataset:
    """Parse a PYSKL / MMAction2 skeleton pickle (or reuse its cached arrays)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    cache = _cache_path(path)
    if use_cache and cache.exists():
        dataset = _load_cache(cache)
        if dataset is not None:
            return dataset
    dataset = parse_annotations(load_pickle(path))
    if use_cache:
        _save_cache(dataset, cache)
    return dataset


def holdout_by_group(dataset: SkeletonDataset, indices: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split training clips into train / validation by UCF101 group, so one actor's clips never
    sit on both sides; names without a group are held out clip by clip."""
    groups = np.array([group_of(str(dataset.frame_dirs[i]), UCF101_GROUP) for i in indices])
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    count = max(1, int(round(len(unique) * fraction))) if len(unique) > 1 else 0
    held = set(rng.choice(unique, size=count, replace=False).tolist()) if count else set()
    is_val = np.array([g in held for g in groups], bool)
    return indices[~is_val], indices[is_val]
