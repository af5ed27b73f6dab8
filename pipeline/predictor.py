"""The streaming predictor: frames in, one `FrameResult` per frame out (poses, labels, overlay, timings).

    pipeline = ActionPipeline(PoseEstimator(None, device), Tracker(), ActionRuntime(classifier, device), Overlay())
    pipeline = ActionPipeline(PoseEstimator(None, device), Tracker("botsort", 3.0), ActionRuntime(classifier, device, stride=2))
    for result in pipeline.stream(open_source("video.mp4")):
        ...  # result.image is annotated; result.persons hold ids, boxes and Top-5

Each frame passes through small stages, each timed here: decode, pose (detections), track (ids),
buffer (per-person ring buffers), classify, overlay. Decoding and pose run one frame ahead on a
thread of their own, so the network is busy while the rest of the frame's work is done. The
tracker's lost time also sets how long the buffers keep a person who is not seen, so both let a
person go at the same frame.

Files are labelled deterministically: frame t's labels come from the buffers up to frame t. When
every source is live, the frame loop does not wait for the classifier: it runs on a thread of its
own and a frame shows the labels of the newest pass that has finished (made from frames up to about
two passes, tens of ms, back), so a frame reaches the screen as soon as its poses are tracked and drawn.
"""

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from actionlstm.background import in_background
from pipeline.actions import ActionRuntime, LabelProb, LabelState
from pipeline.buffers import TrackBuffers
from pipeline.motion import MotionGate
from pipeline.overlay import Overlay
from pipeline.pose import Detections, PoseEstimator
from pipeline.privacy import plain_canvas
from pipeline.sources import Frame, FrameSource, Signal
from pipeline.tracking import Poses, Tracker

# Live sources may deliver faster than they report; buffers are sized for at least this rate.
LIVE_FPS_CEILING = 60.0
# When no source has a new frame (all `Signal.IDLE`), the pose thread looks again after this long.
IDLE_POLL_SECONDS = 0.005


@dataclass
class PersonResult:
    """One tracked person in one frame."""

    id: int  # the tracker's id, stable while the person stays in view
    box: list[float]  # x1, y1, x2, y2 in pixels of the frame
    top5: list[LabelProb] | None  # best first; None until the person's buffer spans the minimum window
    uncertain: bool = False  # top-1 probability below the recognizer's `min_prob`: none of the known actions, likely
    keypoints: np.ndarray | None = None  # [17, 2] pixels (COCO order)
    scores: np.ndarray | None = None  # [17] keypoint confidences
    down: float | None = None  # seconds since they reached the floor in a fall, until seen up again (`pipeline.falls`)

    def to_json(self, keypoints: bool = False) -> dict:
        top5 = None if self.top5 is None else [{"label": item.label, "prob": round(item.prob, 4)} for item in self.top5]
        record = {"id": self.id, "box": [round(v, 1) for v in self.box], "top5": top5}
        if self.uncertain:
            record["uncertain"] = True
        if self.down is not None:
            record["down"] = round(self.down, 2)
        if keypoints and self.keypoints is not None:
            record["keypoints"] = np.round(self.keypoints.astype(np.float64), 1).tolist()
            record["scores"] = np.round(self.scores.astype(np.float64), 3).tolist()
        return record


@dataclass
class FrameResult:
    """Everything the pipeline knows about one frame."""

    frame: int  # index in the source (capture count for live sources)
    time: float  # seconds since the source started: position in a file, capture time for live sources
    image: np.ndarray | None  # BGR, annotated in place when the pipeline draws; None in a skeleton replay (`pipeline.replay`)
    persons: list[PersonResult]
    fps: float  # processing rate, smoothed
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage for this frame
    source: int = 0  # which of the run's sources the frame came from (see `ActionPipeline.stream_many`)
    session: int = 0  # how often that source has started over (`Signal.RESTART`): ids begin again with each
    # Labelled persons not detected in this frame whose buffer is still kept (the tracker's lost time,
    # `--lost-seconds`): they keep their last labels (`ActionRuntime.update`), at the box they were last
    # seen in. Alerts go on watching them, so someone who falls and then lies unseen (on the floor,
    # behind furniture) still raises the fall; the overlay and the JSONL show only people seen.
    unseen: list[PersonResult] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)  # width, height of the source's frames, in pixels (a zone's fractions are of these)

    def to_json(self, keypoints: bool = False) -> dict:
        return {"frame": self.frame, "time": round(self.time, 4), "persons": [p.to_json(keypoints) for p in self.persons]}


def people(
    poses: Poses, labels: dict[int, list[LabelProb]], uncertain: set[int], state: LabelState, buffers: TrackBuffers, time: float
) -> tuple[list[PersonResult], list[PersonResult]]:
    """One frame's persons: those detected in it, and those labelled but not detected whose buffers
    are still kept (`FrameResult.unseen`), at the box they were last seen in."""
    down = {tid: time - since for tid, since in state.down.items()}
    track_ids = poses.track_ids.tolist()
    persons = [
        PersonResult(tid, poses.boxes[i].tolist(), labels.get(tid), tid in uncertain, poses.keypoints[i], poses.scores[i], down.get(tid))
        for i, tid in enumerate(track_ids)
    ]
    unseen = [  # labels are kept only while the person's buffer is: each has one
        PersonResult(tid, buffers[tid].last_box, top, tid in uncertain, down=down.get(tid))
        for tid, top in labels.items()
        if tid not in track_ids and buffers[tid].last_box is not None
    ]
    return persons, unseen


class ActionPipeline:
    """The stages, built by the caller, over one source at a time: pose, tracker, per-person buffers,
    action labels and (unless `overlay` is None) the drawing. Each source starts the stateful
    stages afresh (`reset`), so one pipeline serves many sources in turn.

    The tracker's lost time is counted in the frames it sees at the source's rate; a live source that
    drops frames because processing is slower than the camera stretches it in seconds by the same factor.

    `private` (privacy mode, `pipeline.privacy`): each result's image is a plain canvas of the
    frame's size with the overlay drawn on it; the camera's frame goes to pose and tracking only.

    `idle_fps` (live sources only; 0 = off): a camera where nothing moves and nobody is in view runs
    the pose network that many times a second (`pipeline.motion`); the frames held back give no
    result. `gates[k]` counts source k's frames checked and held back.
    """

    def __init__(
        self,
        pose: PoseEstimator,
        tracker: Tracker,
        actions: ActionRuntime,
        overlay: Overlay | None = None,
        note: str = "",
        private: bool = False,
        idle_fps: float = 0.0,
    ):
        self.pose = pose
        self.tracker = tracker
        self.actions = actions
        self.overlay = overlay
        self.note = note
        self.private = private
        self.idle_fps = idle_fps
        self.gates: dict[int, MotionGate] = {}

    def stream(self, source: FrameSource) -> Iterator[FrameResult]:
        """One result per frame of `source`."""
        for results in self.stream_many([source]):
            yield results[0]

    def stream_many(self, sources: list[FrameSource]) -> Iterator[list[FrameResult]]:
        """Several sources side by side: per step, a result for the next frame of each source that
        has not ended (`result.source` says which). Each source has its own tracker, buffers and
        labels; the pose network sees their frames as one batch and the classifier their ready
        persons in one pass. A source that ends or drops leaves the others running.

        A source may also yield a `Signal`: IDLE (no new frame yet) leaves it out of a step, RESTART
        gives it a new tracker, buffers and labels from its next frame on (`result.session` counts up).

        Several live sources are polled (`FrameSource.polled`): a step takes the newest frame of
        each source that has one, so a slow or silent camera never holds up the others, and every
        source with a frame (and, with `idle_fps`, a reason for pose) is served in every step."""
        self.gates = {}
        wait = not all(source.is_live for source in sources)  # files: labels exactly as of their own frame
        poll = not wait and len(sources) > 1
        lanes = [self._lane(k, source, source.polled() if poll else None) for k, source in enumerate(sources)]
        fps = math.nan
        last = time.perf_counter()
        # Step t+1 is decoded and run through the pose network while step t is tracked, labelled
        # and drawn (and, by the caller, saved). Detections depend on their own frame only, so every
        # result is what a one-stage-at-a-time loop gives.
        for step in in_background(self._detect(lanes), ahead=1, name="pose"):
            if not step.frames:  # every source idle
                continue
            tracked, track_seconds, buffer_seconds = [], 0.0, 0.0
            for lane, frame, detections in step.frames:
                t2 = time.perf_counter()
                poses = lane.tracker(detections, frame.image)
                t3 = time.perf_counter()
                lane.buffers.update(frame.timestamp, poses.track_ids, poses.keypoints, poses.scores, poses.boxes, keep=lane.labels.down)
                track_seconds, buffer_seconds = track_seconds + t3 - t2, buffer_seconds + time.perf_counter() - t3
                tracked.append((lane, frame, poses))
            t4 = time.perf_counter()
            every_label = self.actions.update_many(
                [(lane.buffers, set(poses.track_ids.tolist()), lane.labels) for lane, _, poses in tracked], wait
            )
            t5 = time.perf_counter()
            rate_now = 1.0 / max(t5 - last, 1e-6)
            fps = rate_now if math.isnan(fps) else 0.9 * fps + 0.1 * rate_now
            last = t5
            results = []
            for (lane, frame, poses), labels in zip(tracked, every_label):
                uncertain = {tid for tid, top in labels.items() if self.actions.is_uncertain(top)}
                image = plain_canvas(frame.image) if self.private else frame.image
                if self.overlay is not None:
                    self.overlay.draw(image, poses, labels, fps, self.note, uncertain)
                persons, unseen = people(poses, labels, uncertain, lane.labels, lane.buffers, frame.timestamp)
                size = (frame.image.shape[1], frame.image.shape[0])
                results.append(
                    FrameResult(
                        frame.index,
                        frame.timestamp,
                        image,
                        persons,
                        fps,
                        source=lane.index,
                        session=lane.session,
                        unseen=unseen,
                        size=size,
                    )
                )
            t6 = time.perf_counter()
            share = 1.0 / len(results)  # per-frame times: a batched stage's time is split over its frames
            for result in results:
                result.timings = {
                    "decode": step.decode_seconds[result.source],
                    "pose": step.pose_seconds * share,
                    "track": track_seconds * share,
                    "buffer": buffer_seconds * share,
                    "classify": (t5 - t4) * share,
                    "overlay": (t6 - t5) * share,
                }
            yield results

    def _lane(self, index: int, source: FrameSource, frames: Iterator[Frame | Signal] | None = None, session: int = 0) -> "_Lane":
        """A source's own tracker, buffers and label state. The first source of a run uses the
        pipeline's tracker and label state (reset), so a one-source pipeline is what the caller built;
        a source that starts over (`session` > 0) gets new ones, made on the pose thread while the
        frames before are still being labelled with the old."""
        first = index == 0 and session == 0
        tracker = self.tracker if first else Tracker(self.tracker.kind, self.tracker.lost_seconds)
        tracker.reset(source.fps)  # track ids start afresh with each source, lost time in its frames
        rate = max(source.fps, LIVE_FPS_CEILING) if source.is_live else source.fps
        width, height = source.size
        buffers = TrackBuffers(self.actions.clf.preprocess, rate, (height, width), forget_seconds=tracker.lost_time)
        if first:
            self.actions.reset()
        labels = self.actions.state if first else LabelState()
        gate = self.gates.setdefault(index, MotionGate(self.idle_fps if source.is_live else 0.0))
        gate.previous = None  # a new session's first frame always goes to pose
        return _Lane(index, source, iter(source) if frames is None else frames, tracker, buffers, labels, gate, session)

    def _detect(self, lanes: list["_Lane"]) -> Iterator["_Step"]:
        """The next frame of every running source and their detections, until every source has ended;
        an empty step when every running source is idle."""
        running = list(lanes)
        while running:
            frames, decode_seconds = [], {}
            for lane in list(running):
                t0 = time.perf_counter()
                frame = next(lane.frames, None)
                decode_seconds[lane.index] = time.perf_counter() - t0
                if frame is None:
                    running.remove(lane)
                elif frame is Signal.RESTART:
                    running[running.index(lane)] = self._lane(lane.index, lane.source, lane.frames, lane.session + 1)
                elif frame is not Signal.IDLE and lane.gate.needs_pose(frame.image, frame.timestamp, len(lane.buffers) > 0):
                    frames.append((lane, frame))
            if not frames:
                if running:  # handed over empty, so the consumer can stop the thread while all are idle
                    time.sleep(IDLE_POLL_SECONDS)
                    yield _Step([], {}, 0.0)
                continue
            t1 = time.perf_counter()
            detections = self.pose.batch([frame.image for _, frame in frames])
            pose_seconds = time.perf_counter() - t1
            yield _Step([(lane, frame, found) for (lane, frame), found in zip(frames, detections)], decode_seconds, pose_seconds)


@dataclass
class _Lane:
    """One source's state within a run of several."""

    index: int
    source: FrameSource
    frames: Iterator[Frame | Signal]
    tracker: Tracker
    buffers: TrackBuffers
    labels: LabelState
    gate: MotionGate
    session: int = 0


@dataclass
class _Step:
    """One frame of each running source with its detections, and what reading and detecting cost."""

    frames: list[tuple[_Lane, Frame, Detections]]
    decode_seconds: dict[int, float]
    pose_seconds: float
