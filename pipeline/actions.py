"""Action labels of tracked persons: every ready buffer of a frame in one batched forward pass, smoothed over time."""

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field

import numpy as np
import torch

from actionlstm.checkpoint import Classifier
from actionlstm.errors import UserError
from actionlstm.inference import predict_windows
from pipeline.buffers import PersonBuffer, TrackBuffers, window_of
from pipeline.falls import FallReading, apply_cue, fall_cue, read_fall
from pipeline.settings import MIN_PROB


@dataclass
class LabelProb:
    """One entry of a Top-k list: a class name and its (smoothed) probability."""

    label: str
    prob: float


@dataclass
class LabelState:
    """One source's smoothed probabilities per person, the time each person who fell reached the
    floor (kept until they are seen up again), the ids whose down state went to a new track
    (`handed`), and its frame count (for the stride)."""

    probs: dict[int, np.ndarray] = field(default_factory=dict)
    down: dict[int, float] = field(default_factory=dict)
    handed: set[int] = field(default_factory=set)
    calls: int = 0


class ActionRuntime:
    """Classifies tracked persons continuously.

    A person is classified once their buffer spans `min_seconds` (default: the checkpoint's
    `min_frames` at its frame rate, 1 s for UCF101 models); every `stride` frames all ready persons
    go through the model together. Probabilities are smoothed with an exponential moving average
    (`smoothing` is the weight of the past, 0 turns it off), so labels don't flicker.

    For live sources the frame loop need not wait for the model (`update_many(..., wait=False)`):
    the ready persons' frames are copied and classified on a thread of its own while the loop goes
    on, and each frame shows the labels of the newest pass that has finished. A pass starts when the
    one before has finished, so those labels describe frames up to about two passes (plus a stride) back.
    """

    def __init__(
        self,
        clf: Classifier,
        device: torch.device,
        stride: int = 1,
        smoothing: float = 0.6,
        min_seconds: float | None = None,
        min_prob: float = MIN_PROB,
        top_k: int = 5,
    ):
        if stride < 1:
            raise UserError(f"stride must be 1 or more, not {stride}")
        if not 0.0 <= smoothing < 1.0:
            raise UserError(f"smoothing must be in [0, 1), not {smoothing:g}")
        if not 0.0 <= min_prob <= 1.0:
            raise UserError(f"min_prob must be in [0, 1], not {min_prob:g}")
        self.clf = clf
        self.device = device
        self.stride = stride
        self.smoothing = smoothing
        self.min_seconds = (clf.preprocess.min_frames - 1) / clf.preprocess.fps if min_seconds is None else min_seconds
        self.min_prob = min_prob
        self.top_k = top_k
        self.fall = fall_cue(clf.meta, clf.class_names)  # a fall read from geometry, where the checkpoint carries it
        self._worker: ThreadPoolExecutor | None = None
        self._running: Future | None = None
        self.reset()

    def reset(self) -> None:
        """Forget every person's probabilities: a new source starts with nobody. A pass still running
        for the last source is waited for (one model, one pass at a time) and dropped with its labels."""
        if self._running is not None:
            wait_for([self._running])
        self._running = None
        self.state = LabelState()

    def update(self, buffers: TrackBuffers, visible: set[int]) -> dict[int, list[LabelProb]]:
        """Top-k labels of every person that has a prediction. On stride frames the `visible` persons
        (detected in this frame) whose buffers span `min_seconds` are classified; persons briefly
        out of sight keep their last labels until their buffer is freed."""
        return self.update_many([(buffers, visible, self.state)])[0]

    def update_many(
        self, sources: list[tuple[TrackBuffers, set[int], "LabelState"]], wait: bool = True
    ) -> list[dict[int, list[LabelProb]]]:
        """`update` for one frame of each of several sources (each with its own buffers and state), with
        the ready persons of all of them in one forward pass.

        With `wait` False the pass runs in the background and this returns at once: a pass still
        running when the next stride frame comes makes that frame's persons wait for a later one, so
        the model never falls behind the frames and labels trail them by about two passes at most."""
        if self._running is not None and (wait or self._running.done()):
            self._smooth(self._running.result())
            self._running = None
        ready: list[tuple[LabelState, PersonBuffer]] = []
        for buffers, visible, state in sources:
            for track_id in [t for t in state.probs if t not in buffers]:
                del state.probs[track_id]
                state.down.pop(track_id, None)
                state.handed.discard(track_id)
            self._follow_down(buffers, visible, state)
            if state.calls % self.stride == 0:
                candidates = (buffers[t] for t in visible if t in buffers)
                ready += [(state, b) for b in candidates if self.is_ready(b)]
                self._watch_unseen(buffers, visible, state)
            state.calls += 1
        if ready and self._running is None:
            persons = [(state, b.track_id, b.frames()) for state, b in ready]  # copies: the buffers move on
            if wait:
                self._smooth(self._classify(persons))
            else:
                self._worker = self._worker or ThreadPoolExecutor(1, thread_name_prefix="classify")
                self._running = self._worker.submit(self._classify, persons)
        return [{track_id: self.top(p) for track_id, p in state.probs.items()} for _, _, state in sources]

    def is_ready(self, buffer: PersonBuffer) -> bool:
        """Whether a person's buffer spans `min_seconds`, so that they are classified on stride frames."""
        return buffer.span() >= self.min_seconds - 1e-6

    def classify(self, frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, list[FallReading | None]]:
        """Class probabilities [N, C] of each person's buffered frames (`PersonBuffer.frames`), in one
        forward pass, and what the checkpoint's fall cue read in them (None without a cue): the
        cue's label is then read from geometry alone (`pipeline.falls`)."""
        windows = [window_of(person, self.clf.preprocess) for person in frames]
        probs = predict_windows(self.clf.model, self.clf.preprocess, windows, self.device)
        readings: list[FallReading | None] = [None] * len(frames)
        if self.fall is not None:
            cue, label = self.fall
            for row, person in enumerate(frames):
                readings[row] = read_fall(*person, cue)
                probs[row] = apply_cue(probs[row], label, readings[row])
        return probs, readings

    def _classify(self, persons: list[tuple[LabelState, int, tuple]]) -> list[tuple[LabelState, int, np.ndarray, FallReading | None]]:
        probs, readings = self.classify([frames for _, _, frames in persons])
        return [(state, track_id, p, reading) for (state, track_id, _), p, reading in zip(persons, probs, readings)]

    def _smooth(self, results: list[tuple[LabelState, int, np.ndarray, FallReading | None]]) -> None:
        for state, track_id, p, reading in results:
            fell = reading is not None and reading.fell is not None
            state.probs[track_id] = smooth(state.probs.get(track_id), p, self.smoothing, fell)
            if reading is not None:
                note_down(state, track_id, reading)

    def _watch_unseen(self, buffers: TrackBuffers, visible: set[int], state: LabelState) -> None:
        """The fall cue read for the labelled persons not detected in this frame, whose buffers are
        still kept: the pose model often loses someone lying on the floor, and being out of sight
        after going down is part of what a fall looks like (`pipeline.falls`). Geometry alone,
        without the model: cheap enough for every frame."""
        if self.fall is None:
            return
        cue, label = self.fall
        for track_id in [t for t in state.probs if t not in visible and t in buffers]:
            reading = read_fall(*buffers[track_id].frames(), cue)
            if reading.fell is not None:
                state.probs[track_id] = apply_cue(state.probs[track_id], label, reading)
            note_down(state, track_id, reading)

    @staticmethod
    def _follow_down(buffers: TrackBuffers, visible: set[int], state: LabelState) -> None:
        """A person down and out of sight whom the tracker finds again under a new id, where they lay
        (the new track's box overlaps the last one they were seen in), stays down under that id until
        they are seen up: the tracker lets an id go after `--lost-seconds`, a fall does not end there."""
        lost = [t for t in state.down if t not in visible and t in buffers and buffers[t].last_box is not None]
        for new in [t for t in visible if t in buffers and t not in state.probs and t not in state.down]:
            if (box := buffers[new].last_box) is None:
                continue
            found = next((t for t in lost if overlap(box, buffers[t].last_box) > 0.0), None)
            if found is not None:  # the same person: the old id keeps its last labels (its fall alert) but is down no more
                state.down[new] = state.down.pop(found)
                state.handed.add(found)
                lost.remove(found)

    def is_uncertain(self, top: list[LabelProb]) -> bool:
        """A top-1 below `min_prob`: most likely none of the actions the model knows."""
        return top[0].prob < self.min_prob

    def top(self, probs: np.ndarray) -> list[LabelProb]:
        order = np.argsort(-probs)[: self.top_k]
        return [LabelProb(self.clf.class_names[int(c)], float(probs[c])) for c in order]


def overlap(a: list[float], b: list[float]) -> float:
    """The area two (x1, y1, x2, y2) boxes share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def note_down(state: LabelState, track_id: int, reading: FallReading) -> None:
    """Keep when a person who fell reached the floor, until they are seen up again (an id whose down
    state went to a new track is not read again: its frames still show the fall)."""
    if track_id in state.handed:
        return
    if reading.fell is not None:
        state.down.setdefault(track_id, reading.fell)
    elif reading.up:
        state.down.pop(track_id, None)


def smooth(previous: np.ndarray | None, probs: np.ndarray, smoothing: float, fell: bool = False) -> np.ndarray:
    """A person's running average of probabilities after one more pass (`smoothing` is the weight of
    the past); a fall read from geometry replaces it.

    The average moves a share per pass, so it rises slower in seconds at a lower frame rate:
    GMDCSA24's clips at half their frame rate (scripts/camera_study.py) lost 4 of the 12 falls
    caught, as where the pose model lost the person two passes after the cue fired and the average
    never reached an alert's 0.7 (S3_Fall_16 at 7.5 fps). The cue is a verdict, not a noisy reading
    to average: it counts at once, at any frame rate (2 of the 4 caught again)."""
    return probs if previous is None or fell else smoothing * previous + (1 - smoothing) * probs
