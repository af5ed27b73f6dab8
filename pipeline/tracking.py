"""The tracking stage: the pose stage's detections in, people with stable ids (`Poses`) out.

It runs ultralytics' own ByteTrack or BoT-SORT, configured from ultralytics' own YAML files, on
boxes alone. ultralytics counts the time a lost track is kept in frames (`track_buffer`); here it is
set in seconds (`lost_seconds`) and turned into frames with each source's frame rate, so a person
hidden for 1.5 s keeps their id at 10 fps as at 30 fps. The per-person buffers forget a person at
the same frame as the tracker (`TrackBuffers(forget_seconds=tracker.lost_time)`), so an id the
tracker still holds never comes back to an emptied buffer.
"""

import math
from dataclasses import dataclass

import numpy as np

from actionlstm.errors import UserError
from actionlstm.skeleton import NUM_JOINTS
from pipeline.pose import Detections
from pipeline.settings import LOST_SECONDS, TRACKER

TRACKERS = ("bytetrack", "botsort")


@dataclass
class Poses:
    """The tracked people of one frame."""

    track_ids: np.ndarray  # [N] int
    boxes: np.ndarray  # [N, 4] x1, y1, x2, y2 pixels
    keypoints: np.ndarray  # [N, 17, 2] pixels
    scores: np.ndarray  # [N, 17]

    @classmethod
    def empty(cls) -> "Poses":
        return cls(
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros((0, NUM_JOINTS, 2), np.float32),
            np.zeros((0, NUM_JOINTS), np.float32),
        )

    def __len__(self) -> int:
        return len(self.track_ids)


class Tracker:
    """ultralytics' `kind` tracker ("bytetrack" or "botsort") keeping a lost person's id for `lost_seconds`.

    Call it on consecutive frames of one source, and `reset(fps)` before each source: ids start again
    at 1 and the lost time is counted in that source's frames. BoT-SORT runs without ReID (which needs
    the detector's internal features or a second model to download) but with its global motion
    compensation, which follows a moving camera from the frame itself.
    """

    def __init__(self, kind: str = TRACKER, lost_seconds: float = LOST_SECONDS, fps: float = 30.0):
        from ultralytics.utils import YAML
        from ultralytics.utils.checks import check_yaml

        if kind not in TRACKERS:
            raise UserError(f"unknown tracker '{kind}' (choose from {', '.join(TRACKERS)})")
        if not (math.isfinite(lost_seconds) and lost_seconds > 0):
            raise UserError(f"the time a lost person keeps their id must be a number of seconds above 0, not {lost_seconds:g}")
        self.kind = kind
        self.lost_seconds = lost_seconds
        self._config = {**YAML.load(check_yaml(f"{kind}.yaml")), "with_reid": False}
        self.reset(fps)

    def reset(self, fps: float) -> None:
        """Forget every track and start ids again at 1, for a new source delivering `fps` frames per second."""
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import IterableSimpleNamespace

        # Frames a person may go undetected and keep their id. ultralytics removes a lost track `track_buffer`
        # frames after its last sighting but still matches it in the frame it removes it in, so a track outlives
        # `track_buffer` missing frames by one, and any lost track lives at least 2 frames.
        self.lost_frames = max(round(self.lost_seconds * fps), 2)
        self.fps = fps
        args = IterableSimpleNamespace(**{**self._config, "track_buffer": self.lost_frames - 1})
        self._tracker = TRACKER_MAP[self.kind](args)

    @property
    def lost_time(self) -> float:
        """Seconds of the current source after which a missing person's track is gone: `lost_frames`
        frames plus half a frame, so that rounding in the frames' timestamps never ends a person's
        buffer one frame before the tracker lets them go."""
        return (self.lost_frames + 0.5) / self.fps

    def __call__(self, detections: Detections, image: np.ndarray) -> Poses:
        """The tracked people among `detections` of `image` (BoT-SORT estimates camera motion from it).

        A detection too weak to start or continue a track is left out; a track's box is the tracker's
        estimate for this frame, its keypoints are those of the detection it was matched with.
        """
        from ultralytics.engine.results import Boxes

        classes = np.zeros((len(detections), 1), np.float32)  # every detection is a person (class 0)
        boxes = Boxes(np.hstack([detections.boxes, detections.confidences[:, None], classes]), image.shape[:2])
        tracks = self._tracker.update(boxes, image)  # rows: x1 y1 x2 y2 id score cls index
        if len(tracks) == 0:
            return Poses.empty()
        index = tracks[:, -1].astype(int)
        return Poses(
            track_ids=tracks[:, 4].astype(np.int64),
            boxes=tracks[:, :4].astype(np.float32),
            keypoints=detections.keypoints[index],
            scores=detections.scores[index],
        )
