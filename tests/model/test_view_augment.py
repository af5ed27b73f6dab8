"""View augmentation (issue 37): the numerics of a camera turned or tilted around the person, that it
changes nothing where it is off (older recipes, evaluation, live), and that training draws it."""

import numpy as np
import pytest

from actionlstm.augment import AugmentConfig, SpatialAugment, turned
from actionlstm.skeleton import FLIP_INDEX, NUM_JOINTS, PARENTS
from actionlstm.synthetic import TEMPLATE

LEFT_SHOULDER, RIGHT_SHOULDER, NOSE, LEFT_ANKLE = 5, 6, 0, 15
ONLY_VIEW = {"rotate_degrees": 0.0, "scale_range": (1.0, 1.0), "flip_prob": 0.0}  # nothing else moves


def _front_view(windows: int = 1, frames: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised coordinates [B, T, 17, 2] of an upright person facing the camera, still, all joints seen."""
    coords = np.repeat(TEMPLATE[None, None], frames, axis=1).repeat(windows, axis=0).astype(np.float32)
    return coords, np.ones(coords.shape[:3], np.float32), np.ones(coords.shape[:3], bool)


def _width(coords: np.ndarray) -> np.ndarray:
    return np.abs(coords[..., LEFT_SHOULDER, 0] - coords[..., RIGHT_SHOULDER, 0])


def _height(coords: np.ndarray) -> np.ndarray:
    return coords[..., LEFT_ANKLE, 1] - coords[..., NOSE, 1]


def _turned(yaw_degrees: float, pitch_degrees: float = 0.0, travel: float = 0.0, frames: int = 3) -> np.ndarray:
    coords, _, valid = _front_view(frames=frames)
    yaw, pitch = np.deg2rad([yaw_degrees]), np.deg2rad([pitch_degrees])
    return turned(coords, valid, yaw, pitch, np.array([travel]))


def test_a_quarter_turn_collapses_the_shoulders_onto_one_line_and_keeps_heights():
    """Seen from the side, the shoulders (and hips) overlap; how tall the person stands does not change."""
    side = _turned(90.0)
    assert _width(side).max() < 1e-6 and np.abs(side[..., 0]).max() < 1e-6
    np.testing.assert_allclose(_height(side), _height(_front_view()[0]), rtol=1e-6)


def test_turns_and_tilts_shorten_widths_and_heights_by_their_cosine():
    front = _front_view()[0]
    np.testing.assert_allclose(_width(_turned(60.0)), 0.5 * _width(front), rtol=1e-5)
    np.testing.assert_allclose(_height(_turned(60.0)), _height(front), rtol=1e-6)
    np.testing.assert_allclose(_height(_turned(0.0, 30.0)), np.cos(np.deg2rad(30)) * _height(front), rtol=1e-5)
    np.testing.assert_allclose(_width(_turned(0.0, 30.0)), _width(front), rtol=1e-6)
    assert np.allclose(_turned(-40.0), _turned(40.0))  # a turn either way shows the same outline in 2D


def test_travel_towards_the_camera_crosses_the_picture_at_the_sine_of_the_turn():
    """A person standing still as the front view shows them, walking towards the camera at 0.04 body
    sizes a frame (1 a second at 25 fps): from the side they cross the picture at that speed, from 30
    degrees at half of it, from the front not at all; about the middle of the frames that show them."""
    front = _front_view(frames=11)[0]
    side = _turned(90.0, travel=0.04, frames=11)
    np.testing.assert_allclose(side[..., 0], 0.04 * (np.arange(11) - 5.0)[None, :, None].repeat(NUM_JOINTS, 2), atol=1e-6)
    shift = _turned(30.0, travel=0.04, frames=11)[..., 0] - _turned(30.0, frames=11)[..., 0]
    np.testing.assert_allclose(shift, 0.02 * (np.arange(11) - 5.0)[None, :, None].repeat(NUM_JOINTS, 2), atol=1e-6)
    np.testing.assert_allclose(_turned(0.0, travel=0.04, frames=11), front, atol=1e-7)
    coords, _, valid = _front_view(frames=11)
    valid[:, 7:] = False  # the person is seen in frames 0-6 only: they cross about frame 3
    late = turned(coords, valid, np.deg2rad([90.0]), np.zeros(1), np.array([0.04]))
    np.testing.assert_allclose(late[0, 3, :, 0], 0.0, atol=1e-7)


def test_rolling_and_mirroring_keep_every_bone_length():
    """The picture rolled (up to 45 degrees here) and mirrored: a rigid motion of the skeleton."""
    coords, score, valid = _front_view(64)
    aug = SpatialAugment(
        AugmentConfig(rotate_degrees=45.0, scale_range=(1.0, 1.0), flip_prob=0.5, yaw_degrees=0.0, pitch_degrees=0.0),
        np.random.default_rng(0),
    )
    moved = aug(coords, score, valid)[0]

    def bones(c: np.ndarray) -> np.ndarray:
        return np.linalg.norm(c - c[..., list(PARENTS), :], axis=-1)

    assert not np.allclose(moved, coords, atol=1e-3)
    np.testing.assert_allclose(bones(moved), bones(coords), atol=1e-6)


def test_turns_tilts_and_travel_are_drawn_uniformly_per_window():
    """Widths shrink by cos of a turn uniform in [-90, 90] degrees (mean 2 / pi), heights by cos of a tilt
    uniform in [-30, 30] (mean sin 30 / (pi / 6)), and the body crosses the picture at sin of the turn
    times a speed uniform in [-1, 1] body sizes a second (mean size (2 / pi) / 2); one draw per window."""
    coords, score, valid = _front_view(20_000)
    cfg = AugmentConfig(**ONLY_VIEW, yaw_degrees=90.0, pitch_degrees=30.0, forward_speed=1.0)
    seen = SpatialAugment(cfg, np.random.default_rng(1), fps=25.0)(coords, score, valid)[0]
    speed = np.diff(seen[:, :, NOSE, 0], axis=1) * 25.0  # body sizes a second
    assert np.ptp(speed, axis=1).max() < 1e-5 and np.abs(speed).max() <= 1.0 and abs(np.abs(speed).mean() - 1 / np.pi) < 0.01
    widths, heights = _width(seen) / _width(coords), _height(seen) / _height(coords)
    assert np.ptp(widths, axis=1).max() < 1e-6 and np.ptp(heights, axis=1).max() < 1e-6
    assert widths.min() >= 0 and widths.max() <= 1 + 1e-6 and abs(widths.mean() - 2 / np.pi) < 0.01
    assert np.mean(widths < np.cos(np.deg2rad(60))) == pytest.approx(1 / 3, abs=0.015)  # turns beyond 60 degrees
    assert heights.min() >= np.cos(np.deg2rad(30)) - 1e-6 and abs(heights.mean() - 0.5 / (np.pi / 6)) < 0.003


def test_off_it_draws_nothing_so_pinned_recipes_train_as_before():
    """Yaw and pitch 0 leave the random stream and the result exactly as the rotation, scale and flip
    alone give them: a recipe that pins its augmentation (the built-in falls model's) is unchanged."""
    coords, score, valid = _front_view(8)
    cfg = AugmentConfig(yaw_degrees=0.0, pitch_degrees=0.0)
    rng = np.random.default_rng(3)
    moved = SpatialAugment(cfg, rng)(coords, score, valid)[0]

    alone = np.random.default_rng(3)
    angle = np.deg2rad(alone.uniform(-cfg.rotate_degrees, cfg.rotate_degrees, 8))
    scale = alone.uniform(*cfg.scale_range, size=(8, 2))
    flip = alone.random(8) < cfg.flip_prob
    assert rng.bit_generator.state == alone.bit_generator.state
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    x, y = np.where(flip[:, None, None], -coords[..., 0], coords[..., 0]), coords[..., 1]
    expected = np.stack([scale[:, None, None, 0] * (c * x - s * y), scale[:, None, None, 1] * (s * x + c * y)], -1)
    expected[flip] = expected[flip][:, :, list(FLIP_INDEX)]
    np.testing.assert_allclose(moved, expected, atol=1e-6)
