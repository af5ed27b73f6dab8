"""HDM05 motion capture (ASF/AMC) seen through virtual cameras as YOLO-pose-like COCO-17 skeletons.

Recorded videos rarely show one movement from many heights, angles, distances, frame sizes and rates;
real 3D motion can. Each take runs through forward kinematics once, its 31 joints become the 17 COCO
joints (the face estimated from the head's pose), a pinhole camera projects them to pixels, and a
`NoiseModel` (actionlstm/detector_noise.py) measured on real YOLO-pose output adds the jitter, dropouts,
missed frames and scores the pose stage really makes. Each render is an annotation of the UCF101 /
PYSKL skeleton pickle, as `actionlstm extract` writes it. Data: HDM05, CC BY-SA 3.0 (docs/mocap.md).
"""

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionlstm.detector_noise import NoiseModel

MOCAP_FPS = 120.0
# `:units length 0.45` is the Acclaim convention (CMU's too): a file unit is 1/0.45 inch, so metres =
# value * 0.0254 / 0.45. With it the five actors' shoulders stand 1.33-1.49 m above the balls of their
# feet, statures of 1.63-1.82 m by the anthropometric shoulder height of 0.818 x stature, and their leg
# bones (femur + tibia) measure 0.79-0.92 m; the head bone ends a few cm below the crown.
INCH = 0.0254
UP = np.array([0.0, 1.0, 0.0])  # Y is up in these files; the rest pose faces +Z, the actor's left at +X


@dataclass(frozen=True)
class Bone:
    parent: str  # "root" or a bone
    direction: np.ndarray  # [3] unit vector in the rest pose, world axes
    length: float  # metres
    axis: np.ndarray  # [3] degrees: the bone's local frame C as XYZ Euler angles
    dofs: tuple[str, ...]  # its AMC channels in file order, e.g. ("rx", "ry", "rz")


@dataclass(frozen=True)
class Skeleton:
    bones: dict[str, Bone]  # parents before children
    root_order: tuple[str, ...]  # the root's AMC channels, e.g. ("tx", "ty", "tz", "rx", "ry", "rz")
    scale: float  # metres per file unit (root translations are in file units too)


def parse_asf(path: Path) -> Skeleton:
    """An ASF skeleton: bone geometry in metres, local axes, degrees of freedom and the hierarchy."""
    parts = re.split(r"^:(\w+)", Path(path).read_text(encoding="latin-1"), flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2]))
    units = {words[0]: words[1] for words in map(str.split, sections["units"].splitlines()) if len(words) >= 2}
    if units.get("angle", "deg") != "deg":
        raise ValueError(f"{path}: angles in {units['angle']}; only degrees are read")
    scale = INCH / float(units.get("length", 1.0))
    parents = {}
    for parent, *children in filter(None, map(str.split, sections["hierarchy"].splitlines())):
        parents.update(dict.fromkeys(children, parent))
    fields = {}
    for body in re.findall(r"\bbegin\b(.*?)\bend\b", sections["bonedata"], flags=re.DOTALL):
        entry = {words[0]: words[1:] for words in map(str.split, body.strip().splitlines()) if words}
        fields[entry["name"][0]] = entry
    order: list[str] = []
    while len(order) < len(fields):  # parents first, whatever the file's order
        order += [name for name in fields if name not in order and (parents[name] == "root" or parents[name] in order)]
    bones = {}
    for name, entry in ((name, fields[name]) for name in order):
        direction, axis, dofs = (
            np.array(entry["direction"], float),
            np.array(entry["axis"][:3], float),
            tuple(map(str.lower, entry.get("dof", []))),
        )
        bones[name] = Bone(parents[name], direction / np.linalg.norm(direction), float(entry["length"][0]) * scale, axis, dofs)
    root_order = tuple(re.search(r"order\s+(.*)", sections["root"])[1].lower().split())
    return Skeleton(bones, root_order, scale)


def parse_amc(path: Path, skeleton: Skeleton) -> dict[str, np.ndarray]:
    """An AMC motion: each moving bone's (and the root's) channel values [T, channels], in file order."""
    rows: dict[str, list[str]] = {"root": [], **{name: [] for name, bone in skeleton.bones.items() if bone.dofs}}
    for line in Path(path).read_text(encoding="latin-1").splitlines():
        name, _, values = line.partition(" ")
        if name in rows:
            rows[name].append(values)
    return {name: np.array(" ".join(lines).split(), float).reshape(len(lines), -1) for name, lines in rows.items()}


def euler_xyz(degrees: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] for ASF's `XYZ` order: Rz @ Ry @ Rx (x applied first)."""
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    one, zero = np.ones_like(c[..., 0]), np.zeros_like(c[..., 0])
    shape = c.shape[:-1] + (3, 3)
    rx = np.stack([one, zero, zero, zero, c[..., 0], -s[..., 0], zero, s[..., 0], c[..., 0]], -1).reshape(shape)
    ry = np.stack([c[..., 1], zero, s[..., 1], zero, one, zero, -s[..., 1], zero, c[..., 1]], -1).reshape(shape)
    rz = np.stack([c[..., 2], -s[..., 2], zero, s[..., 2], c[..., 2], zero, zero, zero, one], -1).reshape(shape)
    return rz @ ry @ rx


def _channels(names: tuple[str, ...], values: np.ndarray, kind: str) -> np.ndarray:
    """The x, y, z channels of one kind ("r" rotation, "t" translation) as [T, 3], zero where absent."""
    out = np.zeros((len(values), 3))
    for i, name in enumerate(names):
        if name[0] == kind:
            out[:, "xyz".index(name[1])] = values[:, i]
    return out


@dataclass(frozen=True)
class Motion:
    """One take after forward kinematics: the root and every bone's end, in metres, Y up."""

    names: tuple[str, ...]  # "root", then the bones, parents first
    positions: np.ndarray  # [T, 31, 3]
    rotations: np.ndarray  # [T, 31, 3, 3] global rotations (rest pose -> world)

    def joint(self, name: str) -> np.ndarray:
        return self.positions[:, self.names.index(name)]


def forward_kinematics(skeleton: Skeleton, motion: dict[str, np.ndarray]) -> Motion:
    """Every joint, the standard ASF/AMC way: a bone's local rotation is C·M(dof)·C⁻¹ (C from its `axis`),
    its global rotation its parent's times that, and its end lies at its parent's end plus global
    rotation · direction · length."""
    root = motion["root"]
    index = {"root": 0}
    positions = [_channels(skeleton.root_order, root, "t") * skeleton.scale]
    rotations = [euler_xyz(_channels(skeleton.root_order, root, "r"))]
    for name, bone in skeleton.bones.items():
        c = euler_xyz(bone.axis)
        local = c @ euler_xyz(_channels(bone.dofs, motion[name], "r")) @ c.T if bone.dofs else np.eye(3)
        k = index[bone.parent]
        rotations.append(rotations[k] @ local)
        positions.append(positions[k] + rotations[-1] @ (bone.direction * bone.length))
        index[name] = len(index)
    return Motion(tuple(index), np.stack(positions, 1), np.stack(rotations, 1))


# COCO joints 5-16 (shoulders, elbows, wrists, hips, knees, ankles; left first) as the END of a mocap bone:
# a shoulder is the humerus root (the clavicle's end), a hip the femur root (the hip joint's end). The
# forearm is two bones, radius and `wrist` (which carries its twist), so the wrist is the `wrist` bone's
# end, 24-33 cm from the elbow; the ankle is the tibia's end, the foot bone running on to the ball.
ARMS = ("lclavicle", "rclavicle", "lhumerus", "rhumerus", "lwrist", "rwrist")
LEGS = ("lhipjoint", "rhipjoint", "lfemur", "rfemur", "ltibia", "rtibia")
# Nose, eyes, ears in the head's frame (metres left, up, forward) from the head bone's root at the skull's
# base. Standing, the eyes come 0.19-0.22 m above the shoulder line (the anthropometric 0.118 x stature:
# 0.20-0.22 m for these actors), the nose 4 cm and the ears 1-3 cm below them; one face serves all.
FACE = np.array([[0.0, 0.03, 0.10], [0.032, 0.07, 0.08], [-0.032, 0.07, 0.08], [0.075, 0.045, -0.01], [-0.075, 0.045, -0.01]])


def coco_joints(motion: Motion) -> np.ndarray:
    """The 17 COCO joints [T, 17, 3] in metres, the face placed by the head's global rotation."""
    head = motion.rotations[:, motion.names.index("head")]  # columns: the head's left, up and forward
    face = motion.joint("upperneck")[:, None] + np.einsum("tij,fj->tfi", head, FACE)
    return np.concatenate([face, np.stack([motion.joint(name) for name in ARMS + LEGS], 1)], 1)


def face_normals(motion: Motion) -> np.ndarray:
    """[T, 5, 3] the directions the nose, eyes (30 degrees out from straight ahead) and ears face."""
    head = motion.rotations[:, motion.names.index("head")]
    left, ahead = head[..., 0], head[..., 2]
    return np.stack([ahead, 0.87 * ahead + 0.5 * left, 0.87 * ahead - 0.5 * left, left, -left], 1)


def facing(coco: np.ndarray, frames: int = 30) -> np.ndarray:
    """The horizontal unit vector the actor's pelvis faces over the first `frames` frames (a quarter
    second): square to the line from the right hip to the left, forward = left × up. The shoulders
    would say otherwise where a take starts with the torso turned (elbowToKnee: up to 30 degrees)."""
    forward = np.cross((coco[:frames, 11] - coco[:frames, 12]).mean(0), UP) * [1, 0, 1]
    return forward / np.linalg.norm(forward)


@dataclass(frozen=True)
class Camera:
    """A fixed pinhole camera placed relative to where the actor starts.

    `yaw` (degrees, counter-clockwise seen from above) turns it around the vertical through the actor's
    starting root from straight ahead: 0 is a front view, 90 shows the actor's left side, 180 the back.
    `height` and the horizontal `distance` are in metres; `tilt` (degrees down) defaults to looking at
    the starting root (the pelvis); a positive `roll` (degrees) turns the picture counter-clockwise.
    """

    yaw: float = 0.0
    height: float = 1.2
    distance: float = 3.5
    tilt: float | None = None
    roll: float = 0.0
    hfov: float = 60.0  # horizontal field of view, degrees
    width: int = 640
    image_height: int = 480
    fps: float = 30.0

    @property
    def name(self) -> str:
        """E.g. `y090h1.2d3.5v60_640x480_30fps`, with `t<tilt>` and `r<roll>` where set."""
        tilt = "" if self.tilt is None else f"t{self.tilt:.0f}"
        roll = f"r{self.roll:.0f}" if self.roll else ""
        place = f"y{self.yaw % 360:03.0f}h{self.height:.1f}d{self.distance:.1f}{tilt}{roll}"
        return f"{place}v{self.hfov:.0f}_{self.width}x{self.image_height}_{self.fps:g}fps"


def camera_pose(camera: Camera, origin: np.ndarray, forward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The camera's centre [3] and rotation [3, 3] (rows: the image's right, its down, the viewing axis)."""
    c, s = np.cos(np.deg2rad(camera.yaw)), np.sin(np.deg2rad(camera.yaw))
    out = np.array([c * forward[0] + s * forward[2], 0.0, c * forward[2] - s * forward[0]])  # forward turned by yaw
    centre = np.array([origin[0], camera.height, origin[2]]) + camera.distance * out
    tilt = np.arctan2(camera.height - origin[1], camera.distance) if camera.tilt is None else np.deg2rad(camera.tilt)
    axis = -out * np.cos(tilt) - UP * np.sin(tilt)
    right = np.cross(axis, UP) / np.linalg.norm(np.cross(axis, UP))
    down = np.cross(axis, right)
    c, s = np.cos(np.deg2rad(camera.roll)), np.sin(np.deg2rad(camera.roll))
    return centre, np.stack([c * right + s * down, c * down - s * right, axis])


def project(points: np.ndarray, camera: Camera, centre: np.ndarray, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels [..., 2] of world points [..., 3] and whether each is seen: 10 cm or more in front of the
    camera and inside the image. Unseen points are (0, 0), as the pickle marks missing joints."""
    local = (points - centre) @ rotation.T
    ahead = local[..., 2] > 0.1
    focal = camera.width / 2 / np.tan(np.deg2rad(camera.hfov) / 2)
    pixels = focal * local[..., :2] / np.where(ahead, local[..., 2], 1.0)[..., None] + [camera.width / 2, camera.image_height / 2]
    seen = ahead & (pixels >= 0).all(-1) & (pixels[..., 0] < camera.width) & (pixels[..., 1] < camera.image_height)
    return np.where(seen[..., None], pixels, 0.0), seen


def resample_positions(points: np.ndarray, fps: float) -> np.ndarray:
    """[T, ...] taken at 120 fps, linearly interpolated to frames at `fps` over the same span."""
    at = np.arange(int((len(points) - 1) / MOCAP_FPS * fps + 1e-9) + 1) * MOCAP_FPS / fps
    low = np.minimum(at.astype(int), len(points) - 1)
    w = (at - low).reshape(-1, *([1] * (points.ndim - 1)))
    return (1 - w) * points[low] + w * points[np.minimum(low + 1, len(points) - 1)]


@dataclass(frozen=True)
class Take:
    """One AMC file of the data folder: `<train|test>/<motion>/HDM_<actor>_<motion>_<take>_120.amc`."""

    motion: str  # the class folder's name
    actor: str
    take: str  # "001"
    amc: Path
    asf: Path

    @property
    def key(self) -> str:
        return f"HDM_{self.actor}_{self.motion}_{self.take}"


def list_takes(root: Path) -> list[Take]:
    """Every take under `root` (the hdm05 folder), sorted by path."""
    takes = []
    for amc in sorted(Path(root).glob("*/*/HDM_*_120.amc")):
        if found := re.fullmatch(r"HDM_([a-z]+)_(.+)_(\d+)_120\.amc", amc.name):
            takes.append(Take(amc.parent.name, found[1], found[3], amc, amc.parent / f"HDM_{found[1]}.asf"))
    return takes


def load_motion(take: Take) -> Motion:
    skeleton = parse_asf(take.asf)
    return forward_kinematics(skeleton, parse_amc(take.amc, skeleton))


def clip_name(take: Take, camera: Camera, index: int = 0) -> str:
    """`HDM_<actor>_<motion>_g<take>_c<camera index>_<camera name>`, UCF101's `v_<class>_gXX_cYY` pattern:
    training's validation hold-out keeps a `_gNN_` group together, so all views of a take stay on one side."""
    return f"HDM_{take.actor}_{take.motion}_g{take.take}_c{index:02d}_{camera.name}"


def render_take(
    take: Take,
    camera: Camera,
    label: int,
    noise: NoiseModel | None = NoiseModel(),
    rng: np.random.Generator | None = None,
    motion: Motion | None = None,
    frame_dir: str | None = None,
) -> dict:
    """One take through one camera as one pickle annotation, in the format `actionlstm extract` writes.

    `noise=None` gives the perfect projection (score 1 where seen); `rng` seeds the noise (default: 0). A face point turned away from the
    camera (nose and eyes over 120 degrees, ears over 150) is hidden (dropped), as YOLO-pose loses the
    face of a person seen from behind; with these angles, renders seen from the front lose eyes and ears
    about as often as YOLO-pose did on real footage (0.7% and 5%; measured 0.1% and 4%). No joint is
    hidden by the body (a limit of this model)."""
    motion = load_motion(take) if motion is None else motion
    coco = coco_joints(motion)
    centre, rotation = camera_pose(camera, motion.positions[0, 0], facing(coco))
    points = resample_positions(coco, camera.fps)
    pixels, seen = project(points, camera, centre, rotation)
    towards, normals = centre - points[:, :5], resample_positions(face_normals(motion), camera.fps)
    hidden = np.zeros_like(seen)
    cosine = (normals * towards).sum(-1) / np.linalg.norm(towards, axis=-1) / np.linalg.norm(normals, axis=-1)
    hidden[:, :5] = cosine < [-0.5, -0.5, -0.5, -0.87, -0.87]  # 120 and 150 degrees
    torso = (points[:, [5, 6]].mean(1) - points[:, [11, 12]].mean(1)) @ rotation.T
    if noise is None:
        keypoint, score = pixels, (seen & ~hidden).astype(float)
    else:
        tilt = np.degrees(np.arctan2(np.abs(torso[:, 0]), -torso[:, 1]))
        keypoint, score = noise.apply(pixels, seen, hidden, tilt, camera, np.random.default_rng(0) if rng is None else rng)
    shape = (camera.image_height, camera.width)
    return {
        "frame_dir": frame_dir or clip_name(take, camera),
        "label": int(label),
        "img_shape": shape,
        "original_shape": shape,
        "total_frames": len(points),
        "keypoint": keypoint[None].astype(np.float16),
        "keypoint_score": score[None].astype(np.float16),
        "fps": float(camera.fps),
    }


def render_dataset(
    takes: list[Take],
    cameras: list[Camera] | Callable[[Take], list[Camera]],
    split: Callable[[Take, Camera], str | None],
    labels: dict[str, int] | None = None,
    noise: NoiseModel | None = NoiseModel(),
    seed: int = 0,
) -> dict:
    """`{"split": ..., "annotations": ...}` of each take through each camera (a list, or a function of
    the take) that `split(take, camera)` names a split for (None leaves it out), ready for
    `actionlstm.pickle_io.dump_pickle_like_mmcv`. `labels` maps each motion to its label (default: its
    index among the sorted motions; another data set's classes, e.g. lieDownFloor as `lying`).
    A render's noise is seeded by `seed` and its own name, so it does not depend on the other renders.
    A render in which no joint is seen is left out, as `extract` leaves out videos with nobody in them."""
    labels = {motion: i for i, motion in enumerate(sorted({t.motion for t in takes}))} if labels is None else labels
    annotations, splits = [], {}
    for take in takes:
        motion = load_motion(take)
        for index, camera in enumerate(cameras(take) if callable(cameras) else cameras):
            if (name := split(take, camera)) is None:
                continue
            frame_dir = clip_name(take, camera, index)
            rng = np.random.default_rng([seed, zlib.crc32(frame_dir.encode())])
            annotation = render_take(take, camera, labels[take.motion], noise, rng, motion, frame_dir)
            if annotation["keypoint_score"].any():
                annotations.append(annotation)
                splits.setdefault(name, []).append(frame_dir)
    return {"split": splits, "annotations": annotations}


def random_cameras(
    count: int,
    seed: int,
    yaws: tuple[tuple[float, float], ...] = ((0.0, 360.0),),
    heights: tuple[float, float] = (0.5, 2.5),
    distances: tuple[float, float] = (2.0, 8.0),
    tilt_error: float = 5.0,
    rolls: tuple[float, float] = (-5.0, 5.0),
    hfovs: tuple[float, float] = (50.0, 90.0),
    widths: tuple[int, ...] = (320, 480, 640, 960, 1280),
    rates: tuple[float, ...] = (10, 12, 15, 20, 25, 30),
) -> list[Camera]:
    """`count` cameras drawn from `seed`: yaw uniform over the ranges `yaws` (e.g. ((-45, 45), (135, 225))),
    a 4:3 or 16:9 frame, no nearer than a 2.2 m tall view needs, aimed at a pelvis 1 m high up to
    `tilt_error` degrees off (0: exactly at the actor's starting pelvis)."""
    rng = np.random.default_rng(seed)
    spans = np.array([hi - lo for lo, hi in yaws], float)
    out = []
    for _ in range(count):
        lo, hi = yaws[int(rng.choice(len(yaws), p=spans / spans.sum()))]
        width, hfov = int(rng.choice(widths)), float(rng.uniform(*hfovs))
        image_height = int(round(width * float(rng.choice([3 / 4, 9 / 16])) / 2) * 2)
        nearest = 1.1 / (np.tan(np.deg2rad(hfov) / 2) * image_height / width)
        distance, height = float(rng.uniform(max(distances[0], nearest), max(distances[1], nearest))), float(rng.uniform(*heights))
        tilt = None if tilt_error == 0 else float(np.degrees(np.arctan2(height - 1.0, distance)) + rng.uniform(-tilt_error, tilt_error))
        yaw, roll, fps = float(rng.uniform(lo, hi)) % 360, float(rng.uniform(*rolls)), float(rng.choice(rates))
        out.append(Camera(yaw, height, distance, tilt, roll, hfov, width, image_height, fps))
    return out
