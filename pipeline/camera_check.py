"""`actionlstm check-camera`: a camera's everyday footage (no fall in it) replayed as `run` runs it,
to learn before relying on the camera how often it would raise a false alarm, how well the pose model
sees the people in that room, and what to change.

No model is right in every room, and a detector that alarms whenever someone sits down on the sofa
gets switched off on day two: false alarms are counted per hour, as deployed fall detectors are
judged, and each comes with its time and place so the user can look at the footage there. What the
pose model sees decides what any label can be: how often it finds someone, how sure it is of the
joints, how tall people are in its input, whether the torso (which the fall cue reads) and the
ankles (where it finds the floor) are in sight. `advise` turns the figures into changes to make.

Every figure is kept in fixed memory (`Reservoir`), so a day of footage costs what a minute does.
"""

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from actionlstm.builtin import builtin_name
from actionlstm.errors import UserError, interrupt_exit_code, interrupt_name
from pipeline.alerts import Alerts
from pipeline.falls import LEFT_ANKLE, LEFT_HIP, LEFT_SHOULDER, RIGHT_ANKLE, RIGHT_HIP, RIGHT_SHOULDER, fall_cue
from pipeline.predictor import FrameResult
from pipeline.recognizer import ActionRecognizer
from pipeline.rules import AlertRule
from pipeline.run import frame_progress
from pipeline.sources import is_url, open_source
from pipeline.summary import Reservoir

TORSO = [LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP]
ANKLES = [LEFT_ANKLE, RIGHT_ANKLE]
SEEN = 0.3  # a joint scored above this is seen: the fall cue's `min_score`, below which it ignores a joint
# People shorter than this in the pose network's input are seen with noisier joints: YOLO-pose's jitter
# is 2.8 times as large at 100-150 px as at 150-200 px (docs/mocap.md, measured on this project's footage).
SMALL_PERSON = 150.0
# A median joint score under this: the model is unsure of the joints. Measured (docs/camera-check.md):
# 0.95-0.98 on GMDCSA24's rooms, 0.91 on a clip darkened to 1/8 (people still found in 88% of its
# frames), 0.75 at 1/16 (in 59%).
LOW_CONFIDENCE = 0.85
FEW_PEOPLE = 0.5  # share of frames with a person under which the footage, or the pose model, may miss people
# A track whose joints score under this on average, for a second or more, is a phantom: something the
# pose model takes for a person with little confidence (a coat on a door, a curtain), or someone it
# barely sees. On GMDCSA24's daily activities people score 0.94-0.99, the phantoms at the frame's edge 0.16-0.43.
PHANTOM = 0.5
PHANTOM_SECONDS = 1.0
TORSO_SEEN = 0.8  # share of a person's frames with shoulders and hips seen, under which the torso is often hidden
FEET_SEEN = 0.5  # share with an ankle seen, under which the floor is mostly guessed
TRUSTED_SECONDS = 3600.0  # footage under an hour gives a rate per hour from a handful of events
STEP = 32  # --imgsz is rounded up to the network's stride


@dataclass
class Alarm:
    """One event of the check's rules: a false alarm, since the footage holds no real one."""

    video: str
    time: float  # seconds into the video
    person: int  # the tracker's id
    label: str
    prob: float
    box: list[float]  # x1, y1, x2, y2 pixels

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Phantom:
    """A track the pose model was unsure of all along (`PHANTOM`)."""

    video: str
    person: int  # the tracker's id
    seconds: float  # in view
    confidence: float  # its joints' mean score
    box: list[float]  # x1, y1, x2, y2 pixels: every box it had, together

    def to_json(self) -> dict:
        return asdict(self)


class Tracks:
    """Per track of one video: frames, summed joint confidence and the box it covered, to find the phantoms."""

    def __init__(self) -> None:
        self.frames: dict[int, int] = {}
        self.confidence: dict[int, float] = {}
        self.boxes: dict[int, list[float]] = {}

    def add(self, result: FrameResult) -> None:
        for person in result.persons:
            self.frames[person.id] = self.frames.get(person.id, 0) + 1
            self.confidence[person.id] = self.confidence.get(person.id, 0.0) + float(np.median(person.scores))
            x1, y1, x2, y2 = self.boxes.get(person.id, person.box)
            self.boxes[person.id] = [min(x1, person.box[0]), min(y1, person.box[1]), max(x2, person.box[2]), max(y2, person.box[3])]

    def phantoms(self, video: str, fps: float) -> list[Phantom]:
        found = []
        for track, frames in self.frames.items():
            confidence = self.confidence[track] / frames
            if confidence < PHANTOM and frames / fps >= PHANTOM_SECONDS:
                box = [round(v, 1) for v in self.boxes[track]]
                found.append(Phantom(video, track, round(frames / fps, 2), round(confidence, 3), box))
        return found


@dataclass
class Sight:
    """What the pose model saw over some footage (one video, or all of them) and the alarms raised."""

    frames: int = 0
    seconds: float = 0.0
    with_person: int = 0  # frames with at least one tracked person
    person_frames: int = 0  # persons summed over frames
    clear: int = 0  # person-frames with more than half the joints seen: what heights, torso and feet are counted over
    torso: int = 0  # clear person-frames with both shoulders and both hips seen
    feet: int = 0  # clear person-frames with an ankle seen
    heights: Reservoir = field(default_factory=Reservoir)  # box heights, frame pixels
    input_heights: Reservoir = field(default_factory=Reservoir)  # box heights in the pose network's input
    confidence: Reservoir = field(default_factory=Reservoir)  # per person-frame, the median of its 17 joint scores
    alarms: list[Alarm] = field(default_factory=list)

    def add(self, result: FrameResult, frame_seconds: float, scale: float) -> None:
        """One frame's persons; `scale` takes frame pixels to the network's input (its letterbox)."""
        self.frames += 1
        self.seconds += frame_seconds
        self.with_person += bool(result.persons)
        for person in result.persons:
            self.person_frames += 1
            scores = np.asarray(person.scores)
            confidence = float(np.median(scores))
            self.confidence.add(confidence)
            if confidence <= SEEN:  # a phantom's, or someone barely seen: their box and joints say little
                continue
            self.clear += 1
            height = person.box[3] - person.box[1]
            self.heights.add(height)
            self.input_heights.add(height * scale)
            self.torso += bool((scores[TORSO] > SEEN).all())
            self.feet += bool((scores[ANKLES] > SEEN).any())

    def to_json(self) -> dict:
        """The figures; those of footage without a person are None."""

        def share(count: int, of: int) -> float | None:
            return round(count / of, 4) if of else None

        def median(values: Reservoir, digits: int) -> float | None:
            return round(values.percentile(50), digits) if values.count else None

        hours = self.seconds / 3600.0
        return {
            "frames": self.frames,
            "seconds": round(self.seconds, 2),
            "person_share": share(self.with_person, self.frames),
            "keypoint_confidence": median(self.confidence, 3),
            "person_height": median(self.heights, 1),
            "person_height_input": median(self.input_heights, 1),
            "torso_seen": share(self.torso, self.clear),
            "feet_seen": share(self.feet, self.clear),
            "false_alarms": len(self.alarms),
            "false_alarms_per_hour": round(len(self.alarms) / hours, 2) if hours > 0 else None,
        }


@dataclass
class CameraCheck:
    """The check of one camera: per-video figures, their total, the alarms and the advice."""

    checkpoint: str
    rules: list[str]
    imgsz: int
    fall_cue: bool  # the checkpoint reads falls from geometry (`pipeline.falls`), which needs the torso and the floor
    videos: list[tuple[str, tuple[int, int], float, Sight]] = field(default_factory=list)  # name, (w, h), fps, sight
    total: Sight = field(default_factory=Sight)
    phantoms: list[Phantom] = field(default_factory=list)
    ended_by: str | None = None  # "Ctrl-C" or "SIGTERM" when stopped before the end of the footage
    exit_code: int = 0  # the shell's code for that stop

    def to_json(self) -> dict:
        figures = {
            "checkpoint": self.checkpoint,
            "rules": self.rules,
            "imgsz": self.imgsz,
            "fall_cue": self.fall_cue,
            "videos": [
                {"video": name, "size": list(size), "fps": round(fps, 3), **sight.to_json()} for name, size, fps, sight in self.videos
            ],
            "total": self.total.to_json(),
            "alarms": [alarm.to_json() for alarm in self.total.alarms],
            "phantoms": [phantom.to_json() for phantom in self.phantoms],
            "ended_by": self.ended_by,
        }
        return {**figures, "advice": advise(figures)}


def own_rules(recognizer: ActionRecognizer) -> list[AlertRule]:
    """The model's own alert rules (`--alert LABEL` for each label it records an operating point for):
    what the check watches when given none."""
    labels = list(recognizer.classifier.alert_defaults)
    if not labels:
        raise UserError(f"{recognizer.checkpoint.name} records no alert rule of its own: give the rules to check with --alert or --rules")
    return [AlertRule(label) for label in labels]


def check_videos(videos: list[str | Path]) -> None:
    """Every video a file that opens, checked before the long work starts (and before the models
    load, by the command): a camera or a stream would never end."""
    for video in videos:
        if str(video).isdigit() or is_url(str(video)):
            raise UserError(f"check-camera replays recorded footage, and {video} is a camera or a stream: record some footage first")
        open_source(str(video)).close()


def check_camera(
    recognizer: ActionRecognizer, videos: list[str | Path], rules: Iterable["str | AlertRule"] | None = None, progress: bool = True
) -> CameraCheck:
    """Replay `videos` (one camera's footage, without a real event in it) through `recognizer` as `run`
    would, each from scratch, counting the events of `rules` (default: the model's own) as false alarms."""
    check_videos(videos)
    alerts = recognizer.alerts(list(rules) if rules else own_rules(recognizer))
    clf = recognizer.classifier
    imgsz = recognizer.settings.imgsz
    name = builtin_name(recognizer.checkpoint) or str(recognizer.checkpoint)
    reads_falls = fall_cue(clf.meta, clf.class_names) is not None
    check = CameraCheck(name, [str(rule) for rule in alerts.rules], imgsz, reads_falls)
    with frame_progress(progress) as bar:
        try:
            for video in videos:
                alerts.reset()
                _check_video(recognizer, str(video), alerts, check, bar)
        except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the figures of the footage checked so far stand
            check.ended_by, check.exit_code = interrupt_name(stop), interrupt_exit_code(stop)
    return check


def _check_video(recognizer: ActionRecognizer, video: str, alerts: Alerts, check: CameraCheck, bar: Progress) -> None:
    """One video through the recognizer, into its own figures and the total."""
    with recognizer.open(video) as source:
        sight, tracks = Sight(), Tracks()
        check.videos.append((video, source.size, source.fps, sight))
        task = bar.add_task(Path(video).name, total=source.frame_count, status="")
        scale = check.imgsz / max(source.size)  # ultralytics letterboxes the long side to imgsz, up or down
        try:
            for result in recognizer.stream(source):
                for tally in (sight, check.total):
                    tally.add(result, 1.0 / source.fps, scale)
                tracks.add(result)
                for event in alerts.update(result):
                    alarm = Alarm(video, event.time, event.person, event.label, event.prob, event.box)
                    sight.alarms.append(alarm)
                    check.total.alarms.append(alarm)
                bar.update(task, advance=1, status=f"{len(sight.alarms)} false alarms")
        finally:
            check.phantoms += tracks.phantoms(video, source.fps)


def clock(seconds: float) -> str:
    """m:ss.s, as a player shows the time."""
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def places(items: list[dict], sizes: dict[str, tuple[int, int]]) -> list[list[dict]]:
    """Alarms (or phantoms) grouped by where they were: one whose box overlaps a group's, in a video of
    the same frame size (`sizes`: video -> (w, h); another size is another camera), joins it."""
    groups: list[tuple[tuple[int, int], list[float], list[dict]]] = []
    for item in items:
        x1, y1, x2, y2 = item["box"]
        size = tuple(sizes[item["video"]])
        for frame, union, members in groups:
            if frame == size and x1 < union[2] and union[0] < x2 and y1 < union[3] and union[1] < y2:
                union[:] = [min(union[0], x1), min(union[1], y1), max(union[2], x2), max(union[3], y2)]
                members.append(item)
                break
        else:
            groups.append((size, [x1, y1, x2, y2], [item]))
    return [members for _, _, members in groups]


def _around(members: list[dict]) -> tuple[float, float, float, float]:
    """The box around every member's box, within the frame's top left (a tracked box may stray past the edge)."""
    boxes = np.maximum(np.array([m["box"] for m in members]), 0.0)
    return boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()


def advise(figures: dict) -> list[str]:
    """What to change, read from the figures of `CameraCheck.to_json` (without its advice)."""
    total = figures["total"]
    minutes = f"{total['seconds'] / 60:.1f} min"
    advice = [f"stopped by {figures['ended_by']}: the figures are of the {minutes} checked before"] if figures["ended_by"] else []
    if not total["person_share"]:
        return advice + [
            f"no person was found in {minutes} of footage: check that the camera sees the room, and give footage with people in it"
        ]
    sizes = {video["video"]: video["size"] for video in figures["videos"]}
    for members in places(figures["alarms"], sizes):
        x1, y1, x2, y2 = _around(members)
        when = ", ".join(f"{Path(a['video']).name} at {clock(a['time'])}" for a in members)
        labels = " / ".join(sorted({a["label"] for a in members}))
        many = f"{len(members)} false alarms" if len(members) > 1 else "a false alarm"
        advice.append(
            f"{many} in the box x {x1:.0f}-{x2:.0f}, y {y1:.0f}-{y2:.0f} px ({when}): look at the footage there; "
            f"if someone sat or lay on furniture (a bed, a sofa), a zone over it keeps {labels} from firing there"
        )
    if not figures["alarms"]:
        advice.append(f"no false alarm in {minutes} of footage")
    for members in places(figures["phantoms"], sizes):
        x1, y1, x2, y2 = _around(members)
        seconds = sum(p["seconds"] for p in members)
        confidence = sum(p["confidence"] * p["seconds"] for p in members) / seconds
        videos = ", ".join(sorted({Path(p["video"]).name for p in members}))
        advice.append(
            f"something in the box x {x1:.0f}-{x2:.0f}, y {y1:.0f}-{y2:.0f} px looked like a person to the pose model for "
            f"{seconds:.1f} s ({videos}) with joint confidence {confidence:.2f}: if nobody was there, it is an object "
            "(a coat, a curtain): move it, or put a zone over it; if someone was, they are barely seen: more light"
        )
    if total["seconds"] < TRUSTED_SECONDS:
        advice.append(f"{minutes} of footage is little for a rate per hour: check hours of everyday footage before relying on it")
    if total["person_share"] < FEW_PEOPLE:
        advice.append(
            f"a person was found in only {total['person_share']:.0%} of the frames: if people were in view more often, "
            "the pose model misses them (more light, a closer camera)"
        )
    advice += _sight_advice(figures)
    return advice


def _sight_advice(figures: dict) -> list[str]:
    """Advice on how well the pose model sees the people found."""
    total, imgsz = figures["total"], figures["imgsz"]
    advice = []
    height, seen_height = total["person_height"], total["person_height_input"]
    if seen_height is not None and seen_height < SMALL_PERSON:
        side = max(max(video["size"]) for video in figures["videos"])  # the longest frame side: more is upscaling
        needed = min(math.ceil(imgsz * SMALL_PERSON / seen_height / STEP - 1e-9), math.ceil(side / STEP)) * STEP
        tall = f"people are {height:.0f} px tall ({seen_height:.0f} px in the pose model's {imgsz} px input)"
        if needed > imgsz:
            advice.append(f"{tall}: use --imgsz {needed} (slower), or move the camera closer")
        else:
            advice.append(f"{tall}: move the camera closer, or record at a higher resolution")
    if total["keypoint_confidence"] < LOW_CONFIDENCE:
        advice.append(f"keypoint confidence {total['keypoint_confidence']:.2f} is low: more light, or a camera that sees people whole")
    if total["torso_seen"] is not None and total["torso_seen"] < TORSO_SEEN:
        reads = "; a fall is read from the torso" if figures["fall_cue"] else ""
        advice.append(
            f"shoulders and hips are all seen in only {total['torso_seen']:.0%} of a person's frames{reads}: "
            "place the camera where furniture and the frame's edges hide them less"
        )
    if figures["fall_cue"] and total["feet_seen"] is not None and total["feet_seen"] < FEET_SEEN:
        advice.append(
            f"an ankle is seen in only {total['feet_seen']:.0%} of a person's frames: the floor is found at the ankles "
            "(else guessed from the legs' usual length): tilt the camera so the floor around people is in view"
        )
    return advice
