"""Skeletons through the live runtime without a video: a clip of a skeleton pickle played as a camera
would have shown it, one `FrameResult` per frame.

The pose and tracking stages are the only ones left out: the clip's persons are the tracks (person m
is track m + 1), seen in the frames where any of their joints is, with the box around those joints.
Buffers, labels, the fall cue and alerts run as they do live, so studies and tests can read what the
runtime makes of skeletons no camera recorded (motion capture through virtual cameras,
`actionlstm.mocap`) or that someone else extracted.

    for result in replay(recognizer.pipeline.actions, clip["keypoint"], clip["keypoint_score"], clip["fps"], clip["img_shape"]):
        events += alerts.update(result)
"""

from collections.abc import Iterator

import numpy as np

from pipeline.actions import ActionRuntime
from pipeline.buffers import TrackBuffers
from pipeline.predictor import FrameResult, people
from pipeline.settings import LOST_SECONDS
from pipeline.tracking import Poses


def poses_of(keypoint: np.ndarray, score: np.ndarray) -> Poses:
    """One frame's persons ([M, 17, 2] keypoints, [M, 17] scores) as tracked poses: those with a joint
    seen, as tracks 1..M, each boxed by its seen joints."""
    seen = score > 0
    present = np.flatnonzero(seen.any(axis=1))
    boxes = np.array([[*keypoint[m][seen[m]].min(axis=0), *keypoint[m][seen[m]].max(axis=0)] for m in present], np.float32)
    return Poses(present + 1, boxes.reshape(-1, 4), keypoint[present], score[present])


def replay(
    actions: ActionRuntime,
    keypoint: np.ndarray,
    score: np.ndarray,
    fps: float,
    img_shape: tuple[int, int],
    lost_seconds: float = LOST_SECONDS,
) -> Iterator[FrameResult]:
    """Every frame of a clip ([M, T, 17, 2] keypoints, [M, T, 17] scores, in pixels of an `img_shape`
    (height, width) frame at `fps`), labelled as the live pipeline labels a file: each frame's labels
    from the frames up to it. The runtime starts afresh; a person unseen for `lost_seconds` is let go."""
    actions.reset()
    keypoint, score = np.asarray(keypoint, np.float32), np.asarray(score, np.float32)
    buffers = TrackBuffers(actions.clf.preprocess, fps, tuple(img_shape), forget_seconds=lost_seconds)
    for frame in range(keypoint.shape[1]):
        time = frame / fps
        poses = poses_of(keypoint[:, frame], score[:, frame])
        buffers.update(time, poses.track_ids, poses.keypoints, poses.scores, poses.boxes, keep=actions.state.down)
        labels = actions.update(buffers, set(poses.track_ids.tolist()))
        uncertain = {tid for tid, top in labels.items() if actions.is_uncertain(top)}
        persons, unseen = people(poses, labels, uncertain, actions.state, buffers, time)
        yield FrameResult(frame, time, None, persons, fps, unseen=unseen, size=(img_shape[1], img_shape[0]))
