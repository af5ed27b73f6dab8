"""Extraction joins a tracker's tracks into persons: a track that never overlaps another continues
it, the nearest free person takes a returning track, and the strongest persons are kept in place."""

import numpy as np

from pipeline.extract.video import Track, join_tracks, person_arrays


def _track(first: int, last: int, x: float, score: float = 0.9) -> Track:
    frames = np.arange(first, last + 1)
    keypoints = np.zeros((len(frames), 17, 2), np.float32)
    keypoints[..., 0] = x
    keypoints[..., 1] = 100.0
    return Track(frames, keypoints, np.full((len(frames), 17), score, np.float32))


def test_tracks_that_never_overlap_are_one_person_and_overlapping_ones_are_not():
    a1, b, a2 = _track(0, 39, x=100), _track(10, 99, x=400), _track(60, 99, x=110)
    persons = join_tracks([a2, b, a1])  # the order the tracker reports them in does not matter
    assert sorted([sorted(t.first for t in p) for p in persons]) == [[0, 60], [10]]


def test_a_returning_track_joins_the_nearest_free_person():
    left, right = _track(0, 29, x=100), _track(0, 29, x=500)
    back_right = _track(50, 79, x=480)
    persons = join_tracks([left, right, back_right])
    joined = next(p for p in persons if len(p) == 2)
    assert joined[0] is right and joined[1] is back_right


def test_person_arrays_keep_frames_in_place_and_rank_by_total_score():
    weak = _track(0, 9, x=50, score=0.2)
    strong = [_track(0, 3, x=300), _track(7, 9, x=310)]
    keypoint, score = person_arrays([[weak], strong], total_frames=12, max_persons=2)
    assert keypoint.shape == (2, 12, 17, 2) and keypoint.dtype == score.dtype == np.float16
    assert np.all(keypoint[0, :4, :, 0] == 300) and np.all(keypoint[0, 7:10, :, 0] == 310)
    assert np.all(score[0, 4:7] == 0) and np.all(keypoint[0, 4:7] == 0) and np.all(score[0, 10:] == 0)
    assert np.all(keypoint[1, :10, :, 0] == 50)
    top, _ = person_arrays([[weak], strong], total_frames=12, max_persons=1)
    assert top.shape[0] == 1 and np.all(top[0, :4, :, 0] == 300)
