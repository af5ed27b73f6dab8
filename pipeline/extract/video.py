"""One video in, one annotation of a UCF101 / PYSKL skeleton pickle out, seen by the live stages.

Every frame goes through the same pose stage (`PoseEstimator`) and tracking stage (`Tracker`) that
`actionlstm run` uses, so a model trained on the result meets the same skeletons and scores live.
Frame t of the arrays is frame t of the video: a frame without a person holds zeros there, nothing is
dropped or shifted. A person who is gone for longer than the tracker's `lost_seconds` comes back
under a new track id; tracks that never overlap in time are joined back into one person
(`join_tracks`).
"""

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from actionlstm.errors import UserError
from actionlstm.skeleton import NUM_JOINTS
from pipeline.pose import Detections, PoseEstimator
from pipeline.sources import Frame, VideoFileSource
from pipeline.tracking import Tracker


@dataclass
class Track:
    """One tracker id over the frames it was reported in."""

    frames: np.ndarray  # [n] int, increasing
    keypoints: np.ndarray  # [n, 17, 2] pixels
    scores: np.ndarray  # [n, 17]

    @property
    def first(self) -> int:
        return int(self.frames[0])

    @property
    def last(self) -> int:
        return int(self.frames[-1])

    def centre(self, end: bool) -> np.ndarray:
        """Score-weighted centre of the joints in the first (or last) frame of the track."""
        k = -1 if end else 0
        weights = np.maximum(self.scores[k], 1e-6)
        return (self.keypoints[k] * weights[:, None]).sum(0) / weights.sum()


def join_tracks(tracks: list[Track]) -> list[list[Track]]:
    """Group tracks into persons: a track that starts after a person's last frame continues that
    person (the nearest one, if several qualify), so a subject who walks out and back in stays one.

    Tracks that overlap in time are always different persons. Taking tracks in order of their first
    frame makes the result independent of the tracker's id numbering.
    """
    persons: list[list[Track]] = []
    for track in sorted(tracks, key=lambda t: (t.first, t.last)):
        free = [p for p in persons if p[-1].last < track.first]
        if free:
            start = track.centre(end=False)
            nearest = min(free, key=lambda p: float(np.linalg.norm(p[-1].centre(end=True) - start)))
            nearest.append(track)
        else:
            persons.append([track])
    return persons


def person_arrays(persons: list[list[Track]], total_frames: int, max_persons: int) -> tuple[np.ndarray, np.ndarray]:
    """`keypoint` [M, T, 17, 2] and `keypoint_score` [M, T, 17] (float16) of the `max_persons` persons
    with the highest total keypoint score, strongest first; zeros where a person was not seen."""
    ranked = sorted(persons, key=lambda p: -sum(float(t.scores.sum()) for t in p))[:max_persons]
    keypoint = np.zeros((len(ranked), total_frames, NUM_JOINTS, 2), np.float32)
    score = np.zeros((len(ranked), total_frames, NUM_JOINTS), np.float32)
    for m, person in enumerate(ranked):
        for track in person:
            keypoint[m, track.frames] = track.keypoints
            score[m, track.frames] = track.scores
    return keypoint.astype(np.float16), score.astype(np.float16)


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of `size` items (the last one shorter); itertools.batched from Python 3.12."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def detected(frames: Iterable[Frame], pose: PoseEstimator) -> Iterator[tuple[Frame, Detections]]:
    """Each frame with its untracked detections, in order.

    A file is not live (nothing waits for a frame's answer), so the pose stage gets `pose.file_batch`
    frames at a time and runs one batch ahead on a thread of its own: while the network works on a
    batch, this thread decodes the next one and the caller tracks the last, instead of the three
    taking turns.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="pose") as pool:
        ahead = None
        for batch in batched(frames, pose.file_batch):
            running = (batch, pool.submit(pose.batch, [frame.image for frame in batch]))
            if ahead is not None:
                yield from zip(ahead[0], ahead[1].result())
            ahead = running
        if ahead is not None:
            yield from zip(ahead[0], ahead[1].result())


def extract_video(path: Path, pose: PoseEstimator, tracker: Tracker, max_persons: int, on_frame: Callable[[], None] | None = None) -> dict:
    """The annotation of one video (without `frame_dir` and `label`, which belong to the data set).

    The tracker is reset for the video, at its frame rate, so a video's skeletons never depend on the
    videos extracted before it. Raises `UserError` for a file OpenCV cannot decode. `fps` is the
    video's frame rate: the pickle's arrays are in video frames, and training resamples them to its
    own rate with it.
    """
    observed: dict[int, tuple[list[int], list[np.ndarray], list[np.ndarray]]] = {}
    with VideoFileSource(path) as source:
        tracker.reset(source.fps)
        total = 0
        for frame, detections in detected(source, pose):
            poses = tracker(detections, frame.image)
            for i, track_id in enumerate(poses.track_ids.tolist()):
                frames, keypoints, scores = observed.setdefault(track_id, ([], [], []))
                frames.append(frame.index)
                keypoints.append(poses.keypoints[i])
                scores.append(poses.scores[i])
            total = frame.index + 1
            if on_frame is not None:
                on_frame()
        width, height = source.size
        fps = source.fps
    if total == 0:
        raise UserError(f"{path}: no decodable frame")
    tracks = [Track(np.asarray(f, np.int64), np.asarray(k, np.float32), np.asarray(s, np.float32)) for f, k, s in observed.values()]
    keypoint, score = person_arrays(join_tracks(tracks), total, max_persons)
    return {
        "img_shape": (height, width),
        "original_shape": (height, width),
        "total_frames": total,
        "keypoint": keypoint,
        "keypoint_score": score,
        "fps": float(fps),
    }
