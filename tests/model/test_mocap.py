"""actionlstm.mocap: HDM05 motion capture seen through virtual cameras, written as skeleton pickles.

The geometry is checked against what a body and a camera must do (bones keep their lengths, a front
view puts the actor's left on the image's right, a pinhole maps a known point to a known pixel), the
noise against the rates it is configured with, and the output against the project's own pickle
writer and reader.
"""

import re

import numpy as np
import pytest

from actionlstm.dataset import load_dataset, parse_annotations
from actionlstm.detector_noise import NoiseModel
from actionlstm.mocap import (
    Camera,
    camera_pose,
    coco_joints,
    facing,
    list_takes,
    load_motion,
    parse_asf,
    project,
    random_cameras,
    render_dataset,
    render_take,
)
from actionlstm.pickle_io import dump_pickle_like_mmcv, load_pickle
from actionlstm.synthetic import TEMPLATE
from actionlstm.videoset import UCF101_GROUP, group_of
from tests.helpers import SHARED_DATA

HDM05 = SHARED_DATA / "mocap" / "hdm05"
ACTORS = ("bd", "bk", "dg", "mm", "tr")


@pytest.fixture(scope="module")
def takes():
    if not HDM05.is_dir():
        pytest.skip(f"the HDM05 motion capture is not in {HDM05} (tests read ../shared/data/mocap/hdm05)")
    return list_takes(HDM05)


@pytest.fixture(scope="module")
def first_takes(takes):
    """The first take of every actor and motion (55 takes), standing at their start."""
    chosen = {}
    for take in takes:
        chosen.setdefault((take.actor, take.motion), take)
    return list(chosen.values())


def take_named(takes, key):
    return next(t for t in takes if t.key == key)


def test_the_data_folder_lists_every_take(takes):
    assert len(takes) == 287
    assert {t.actor for t in takes} == set(ACTORS)
    assert len({t.motion for t in takes}) == 11
    assert all(t.asf.is_file() for t in takes)


def test_forward_kinematics_keeps_every_bone_length(takes):
    for actor in ACTORS:
        take = next(t for t in takes if t.actor == actor and t.motion == "lieDownFloor")
        skeleton, motion = parse_asf(take.asf), load_motion(take)
        for name, bone in skeleton.bones.items():
            span = np.linalg.norm(motion.joint(name) - motion.joint(bone.parent), axis=-1)
            np.testing.assert_allclose(span, bone.length, rtol=1e-9, atol=1e-9, err_msg=f"{take.key} {name}")


def test_a_standing_actor_is_head_over_hips_over_ankles_and_of_human_size(takes, first_takes):
    for take in first_takes:
        coco = coco_joints(load_motion(take))[0]
        assert coco[0, 1] > coco[5:7, 1].max() > coco[11:13, 1].max() > coco[13:15, 1].max() > coco[15:17, 1].max(), take.key
        limb = {
            name: np.linalg.norm(coco[a] - coco[b], axis=-1)
            for name, a, b in (("upper", 5, 7), ("fore", 7, 9), ("thigh", 11, 13), ("shin", 13, 15))
        }
        assert 0.8 < limb["fore"] / limb["upper"] < 1.2, take.key  # the radius alone would end the forearm at 0.6
        assert 0.85 < limb["shin"] / limb["thigh"] < 1.25 and 0.35 < limb["thigh"] < 0.5, take.key
    for actor in ACTORS:
        statures = []
        for take in (t for t in takes if t.actor == actor and t.motion == "squat1Reps"):
            motion = load_motion(take)
            floor = min(motion.joint(name)[0, 1] for name in ("lfoot", "rfoot", "ltoes", "rtoes"))
            shoulders = (motion.joint("lclavicle")[0, 1] + motion.joint("rclavicle")[0, 1]) / 2
            statures.append((shoulders - floor) / 0.818)  # shoulder height is 0.818 x stature
        assert 1.6 < np.median(statures) < 1.9, (actor, np.median(statures))


def test_front_view_shows_the_actors_left_on_the_right_and_a_side_view_overlaps_the_shoulders(first_takes):
    ratios = []
    for take in first_takes:
        motion = load_motion(take)
        front = render_take(take, Camera(yaw=0), 0, noise=None, motion=motion)["keypoint"][0, 0].astype(float)
        side = render_take(take, Camera(yaw=90), 0, noise=None, motion=motion)["keypoint"][0, 0].astype(float)
        width = front[5, 0] - front[6, 0]  # left shoulder minus right shoulder
        assert width > 20, (take.key, width)
        assert front[11, 0] > front[12, 0] and front[0, 1] < front[11, 1] < front[15, 1], take.key  # left hip right; head up
        ratios.append(abs(side[5, 0] - side[6, 0]) / width)
    # a torso turned at the start (elbowToKnee, a throw, a jog's stride) keeps the shoulders apart: 0.39 at most
    assert np.median(ratios) < 0.15 and max(ratios) < 0.45, (np.median(ratios), max(ratios))


def test_a_pinhole_maps_a_known_point_to_its_pixel():
    camera = Camera(yaw=0, height=1.0, distance=2.0, tilt=0, hfov=90, width=640, image_height=480)
    centre, rotation = camera_pose(camera, np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(centre, [0.0, 1.0, 2.0])
    points = np.array([[0.0, 1.0, 0.0], [0.5, 1.0, 0.0], [0.0, 1.5, 0.0]])  # ahead; 0.5 m to the actor's left; 0.5 m up
    pixels, seen = project(points, camera, centre, rotation)
    np.testing.assert_allclose(pixels, [[320, 240], [400, 240], [320, 160]], atol=1e-9)  # focal 320 px at 90 degrees
    assert seen.all()
    rolled = Camera(yaw=0, height=1.0, distance=2.0, tilt=0, roll=90, hfov=90, width=640, image_height=480)
    pixels, _ = project(points[1], rolled, *camera_pose(rolled, np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])))
    np.testing.assert_allclose(pixels, [320, 160], atol=1e-9)  # the picture turned counter-clockwise


def test_a_point_outside_the_image_or_behind_the_camera_is_missing(takes):
    camera = Camera(yaw=0, height=1.0, distance=2.0, tilt=0, hfov=90, width=640, image_height=480)
    centre, rotation = camera_pose(camera, np.zeros(3), np.array([0.0, 0.0, 1.0]))
    pixels, seen = project(np.array([[5.0, 1.0, 0.0], [0.0, 1.0, 3.0], [0.0, 1.2, 0.0]]), camera, centre, rotation)
    assert seen.tolist() == [False, False, True]
    assert (pixels[:2] == 0).all()
    take = take_named(takes, "HDM_bd_squat1Reps_001")
    near = render_take(take, Camera(yaw=0, height=1.5, distance=0.8, tilt=0), 0, noise=None)  # too near for the feet
    assert (near["keypoint"][0, :, 15:] == 0).all() and (near["keypoint_score"][0, :, 15:] == 0).all()
    assert (near["keypoint_score"][0, 0, 5:7] == 1).all()  # the shoulders, until the squat takes them down


def test_lying_down_on_the_floor_ends_with_the_hips_far_lower(takes):
    lying = [t for t in takes if t.motion == "lieDownFloor"]
    assert len(lying) == 20
    for take in lying:
        hips = coco_joints(load_motion(take))[:, 11:13, 1].mean(1)
        assert hips[0] > 0.75 and hips[-1] < 0.25, (take.key, hips[0], hips[-1])


def test_facing_agrees_with_where_the_feet_point(first_takes):
    for take in first_takes:  # all 287 takes: 6 degrees apart in the median, 30 at most (a jog started mid-stride)
        motion = load_motion(take)
        feet = (motion.joint("lfoot") - motion.joint("ltibia") + motion.joint("rfoot") - motion.joint("rtibia"))[:30].mean(0) * [1, 0, 1]
        assert np.dot(facing(coco_joints(motion)), feet / np.linalg.norm(feet)) > np.cos(np.deg2rad(35)), take.key


def test_an_annotation_round_trips_through_the_projects_writer_and_reader(takes, tmp_path):
    chosen = [take_named(takes, "HDM_bd_lieDownFloor_001"), take_named(takes, "HDM_mm_squat1Reps_037")]
    cameras = [Camera(yaw=0, fps=30), Camera(yaw=90, height=2.5, width=320, image_height=240, fps=12.5)]
    data = render_dataset(chosen, cameras, lambda take, camera: "test1" if take.actor == "mm" else "train1", seed=3)
    path = tmp_path / "hdm05.pkl"
    dump_pickle_like_mmcv(data, path)
    loaded = load_pickle(path)
    assert sorted(loaded["split"]) == ["test1", "train1"] and len(loaded["annotations"]) == 4
    for ann, camera in zip(loaded["annotations"], cameras * 2):
        frames = ann["total_frames"]
        assert re.fullmatch(r"HDM_(bd|mm)_(lieDownFloor|squat1Reps)_g\d{3}_c0[01]_y\d{3}h.*fps", ann["frame_dir"])
        assert ann["img_shape"] == ann["original_shape"] == (camera.image_height, camera.width)
        assert ann["keypoint"].dtype == np.float16 and ann["keypoint"].shape == (1, frames, 17, 2)
        assert ann["keypoint_score"].dtype == np.float16 and ann["keypoint_score"].shape == (1, frames, 17)
        assert isinstance(ann["label"], int) and ann["fps"] == camera.fps
    dataset = parse_annotations(loaded)
    assert dataset.fps.tolist() == [30.0, 12.5, 30.0, 12.5]
    assert [dataset.num_frames(i) for i in range(4)] == [a["total_frames"] for a in loaded["annotations"]]
    assert dataset.labels.tolist() == [0, 0, 1, 1]  # lieDownFloor, squat1Reps (sorted)
    assert len(dataset.split_indices("test1")) == 2
    assert {group_of(name, UCF101_GROUP) for name in dataset.frame_dirs} == {"001", "037"}  # a take's views: one group
    cached = load_dataset(path, use_cache=False)
    np.testing.assert_array_equal(cached.keypoint, dataset.keypoint)
    duration = (len(load_motion(chosen[0]).positions) - 1) / 120
    assert loaded["annotations"][1]["total_frames"] == int(duration * 12.5) + 1  # 120 fps resampled to the camera's


def test_renders_are_reproducible_from_the_seed(takes):
    chosen = [take_named(takes, "HDM_dg_depositFloorR_013")]
    cameras = random_cameras(3, seed=5)
    assert cameras == random_cameras(3, seed=5) and len({c.name for c in cameras}) == 3
    first, again, other = (render_dataset(chosen, cameras, lambda t, c: "train1", seed=s)["annotations"] for s in (1, 1, 2))
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a["keypoint"], b["keypoint"])
        np.testing.assert_array_equal(a["keypoint_score"], b["keypoint_score"])
        assert not np.array_equal(a["keypoint"], c["keypoint"])
    relabelled = render_dataset(chosen, cameras[:1], lambda t, c: "train1", labels={"depositFloorR": 7}, seed=1)["annotations"][0]
    assert relabelled["label"] == 7 and np.array_equal(relabelled["keypoint"], first[0]["keypoint"])


def test_random_cameras_stay_in_their_ranges():
    cameras = random_cameras(200, seed=0, yaws=((-45, 45), (135, 225)))
    yaws = np.array([c.yaw for c in cameras])
    assert (((yaws <= 45) | (yaws >= 315)) | ((yaws >= 135) & (yaws <= 225))).all()
    assert all(0.5 <= c.height <= 2.5 and 320 <= c.width <= 1280 and 10 <= c.fps <= 30 for c in cameras)
    assert {c.image_height * 16 // c.width for c in cameras} == {9, 12}


def noisy_still_person(model: NoiseModel, frames: int, seed: int, tilt: float = 0.0):
    """A standing person 300 px tall in a 640 x 480 frame at 30 fps, seen perfectly, through `model`."""
    pixels = np.repeat((TEMPLATE * 300 / 1.75 + [320, 240])[None], frames, 0).astype(np.float64)
    seen, hidden = np.ones((frames, 17), bool), np.zeros((frames, 17), bool)
    noisy, score = model.apply(pixels, seen, hidden, np.full(frames, tilt), Camera(), np.random.default_rng(seed))
    return pixels, noisy, score


def test_the_noise_model_reproduces_its_configured_rates():
    model = NoiseModel(dropout=(0.2,) * 17, score_tau=0.1, missed=0.1, missed_run=0.2, size_exponent=0.0)
    pixels, noisy, score = noisy_still_person(model, 6000, seed=7)
    caught = score.any(1)
    assert abs((~caught).mean() - 0.1) < 0.02  # missed frames
    assert (noisy[~caught] == 0).all() and (score[~caught] == 0).all()
    dropped = score[caught] <= 0.05
    assert abs(dropped.mean() - 0.2) < 0.02 and np.abs(dropped.mean(0) - 0.2).max() < 0.05
    size = np.ptp(pixels[0], axis=0).max()
    jitter = (noisy[caught] - pixels[caught]).std(axis=(0, 2)) / size
    np.testing.assert_allclose(jitter, model.jitter, rtol=0.1)
    seen_scores = score[caught][~dropped]
    assert abs(np.median(seen_scores) - np.median([q[2] for q in model.scores])) < 0.05
    _, _, again = noisy_still_person(model, 6000, seed=7)
    np.testing.assert_array_equal(score, again)


def test_jitter_stays_inside_the_picture_as_ultralytics_clips_it():
    pixels = np.repeat((TEMPLATE * 300 / 1.75 + [320, 240])[None], 500, 0).astype(np.float64)
    pixels[..., 0] -= pixels[0, :, 0].min() - 0.5  # the leftmost joint half a pixel from the edge
    seen = np.ones((500, 17), bool)
    noisy, score = NoiseModel().apply(pixels, seen, ~seen, np.zeros(500), Camera(), np.random.default_rng(0))
    caught = score.any(1)
    assert (noisy >= 0).all() and (noisy <= [640, 480]).all() and (noisy[caught, :, 0] == 0).any()


def test_the_default_noise_is_the_measured_one_and_grows_for_small_or_lying_people():
    model = NoiseModel()
    pixels, noisy, score = noisy_still_person(model, 3000, seed=1)
    caught = score.any(1)
    size = np.ptp(pixels[0], axis=0).max()
    upright = (noisy[caught] - pixels[caught]).std(axis=(0, 2)) / size
    expected = np.asarray(model.jitter) * (size / model.reference_size) ** -model.size_exponent
    np.testing.assert_allclose(upright, expected, rtol=0.15)
    _, lying_noisy, lying_score = noisy_still_person(model, 3000, seed=1, tilt=90.0)
    caught = lying_score.any(1)
    lying = (lying_noisy[caught] - pixels[caught]).std(axis=(0, 2)) / size
    np.testing.assert_allclose(lying / upright, model.lying_jitter, rtol=0.15)
    assert 0.01 < (~score.any(1)).mean() < 0.06  # measured: 2.8% of frames missed
