"""The streaming predictor: frames in, one `FrameResult` per frame out (poses, labels, overlay, timings).

    pipeline = ActionPipeline(PoseEstimator(None, device), Tracker(), ActionRuntime(classifier, device), Overlay())
    pipeline = ActionPipeline(PoseEstimator(None, device), Tracker("botsort", lost_seconds=3.0), ActionRuntime(classifier, device, stride=2))
    for result in pipeline.stream(open_source("video.mp4")):
        ...  # result.image is annotated; result.persons hold ids, boxes and Top-5

Each frame passes through small stages, each timed here: decode, pose (detections), track (ids),
buffer (per-person ring buffers), classify, overlay. Decoding and pose run one frame ahead on a
thread of their own, so the network is busy while the rest of the frame's work is done. The tracker's lost time also sets how long the
buffers keep a person who is not seen, so both let a person go at the same frame.
"""

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from actionlstm.background import in_background
from pipeline.actions import ActionRuntime, LabelProb
from pipeline.buffers import TrackBuffers
from pipeline.overlay import Overlay
from pipeline.pose import Detections, PoseEstimator
from pipeline.sources import Frame, FrameSource
from pipeline.tracking import Tracker

# Live sources may deliver faster than they report; buffers are sized for at least this rate.
LIVE_FPS_CEILING = 60.0


@dataclass
class PersonResult:
    """One tracked person in one frame."""

    id: int  # the tracker's id, stable while the person stays in view
    box: list[float]  # x1, y1, x2, y2 in pixels of the frame
    top5: list[LabelProb] | None  # best first; None until the person's buffer spans the minimum window
    uncertain: bool = False  # top-1 probability below the recognizer's `min_prob`: none of the known actions, likely
    keypoints: np.ndarray | None = None  # [17, 2] pixels (COCO order)
    scores: np.ndarray | None = None  # [17] keypoint confidences

    def to_json(self, keypoints: bool = False) -> dict:
        top5 = None if self.top5 is None else [{"label": l.label, "prob": round(l.prob, 4)} for l in self.top5]
        record = {"id": self.id, "box": [round(v, 1) for v in self.box], "top5": top5}
        if self.uncertain:
            record["uncertain"] = True
        if keypoints and self.keypoints is not None:
            record["keypoints"] = np.round(self.keypoints.astype(np.float64), 1).tolist()
            record["scores"] = np.round(self.scores.astype(np.float64), 3).tolist()
        return record


@dataclass
class FrameResult:
    """Everything the pipeline knows about one frame."""

    frame: int  # index in the source (capture count for live sources)
    time: float  # seconds since the source started: position in a file, capture time for live sources
    image: np.ndarray  # BGR, annotated in place when the pipeline draws
    persons: list[PersonResult]
    fps: float  # processing rate, smoothed
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage for this frame

    def to_json(self, keypoints: bool = False) -> dict:
        return {"frame": self.frame, "time": round(self.time, 4), "persons": [p.to_json(keypoints) for p in self.persons]}


class ActionPipeline:
    """The stages, built by the caller, over one source at a time: pose, tracker, per-person buffers,
    action labels and (unless `overlay` is None) the drawing. Each source starts the stateful
    stages afresh (`reset`), so one pipeline serves many sources in turn.

    The tracker's lost time is counted in the frames it sees at the source's rate; a live source that
    drops frames because processing is slower than the camera stretches it in seconds by the same factor.
    """

    def __init__(self, pose: PoseEstimator, tracker: Tracker, actions: ActionRuntime, overlay: Overlay | None = None, note: str = ""):
        self.pose = pose
        self.tracker = tracker
        self.actions = actions
        self.overlay = overlay
        self.note = note

    def stream(self, source: FrameSource) -> Iterator[FrameResult]:
        self.tracker.reset(source.fps)  # track ids start afresh with each source, lost time in its frames
        rate = max(source.fps, LIVE_FPS_CEILING) if source.is_live else source.fps
        width, height = source.size
        buffers = TrackBuffers(self.actions.clf.preprocess, rate, (height, width), forget_seconds=self.tracker.lost_time)
        self.actions.reset()
        fps = math.nan
        last = time.perf_counter()
        # Frame t+1 is decoded and run through the pose network while frame t is tracked, labelled
        # and drawn (and, by the caller, saved). Detections depend on their own frame only, so every
        # result is what a one-stage-at-a-time loop gives.
        for frame, detections, decode_seconds, pose_seconds in in_background(self._detect(source), ahead=1, name="pose"):
            t2 = time.perf_counter()
            poses = self.tracker(detections, frame.image)
            t3 = time.perf_counter()
            buffers.update(frame.timestamp, poses.track_ids, poses.keypoints, poses.scores)
            t4 = time.perf_counter()
            labels = self.actions.update(buffers, set(poses.track_ids.tolist()))
            t5 = time.perf_counter()
            rate_now = 1.0 / max(t5 - last, 1e-6)
            fps = rate_now if math.isnan(fps) else 0.9 * fps + 0.1 * rate_now
            last = t5
            uncertain = {tid for tid, top in labels.items() if self.actions.is_uncertain(top)}
            if self.overlay is not None:
                self.overlay.draw(frame.image, poses, labels, fps, self.note, uncertain)
            t6 = time.perf_counter()
            persons = [
                PersonResult(tid, poses.boxes[i].tolist(), labels.get(tid), tid in uncertain, poses.keypoints[i], poses.scores[i])
                for i, tid in enumerate(poses.track_ids.tolist())
            ]
            timings = {"decode": decode_seconds, "pose": pose_seconds, "track": t3 - t2, "buffer": t4 - t3, "classify": t5 - t4, "overlay": t6 - t5}
            yield FrameResult(frame.index, frame.timestamp, frame.image, persons, fps, timings)

    def _detect(self, source: FrameSource) -> Iterator[tuple[Frame, Detections, float, float]]:
        """Each frame with its detections and the seconds spent decoding it and running the pose network."""
        frames = iter(source)
        while True:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            t1 = time.perf_counter()
            detections = self.pose(frame.image)
            yield frame, detections, t1 - t0, time.perf_counter() - t1
