"""The Python API: `ActionRecognizer`, the object `actionlstm run` is itself built on.

    from actionlstm import ActionRecognizer

    rec = ActionRecognizer("checkpoints/my.pth", device="auto")  # every `run` option as a keyword, or a RecognizerSettings
    for r in rec.stream("video.mp4"):  # also a camera index (0), a URL, or a list of sources in turn
        for p in r.persons:  # r.frame, r.time (s), r.image (annotated unless draw=False)
            if p.top5 is not None:  # None until the person's buffer spans the minimum window
                print(f"{r.time:.2f}s #{p.id} {p.top5[0].label} {p.top5[0].prob:.0%}")

    for step in rec.stream_together([0, "rtsp://cam2/stream"]):  # side by side: one result per running source
        ...

    rec.classify(keypoints, scores, fps=30.0)  # one skeleton sequence in the pickle's layout -> Top-5

Like ultralytics' `model.predict(source, stream=True)`, `stream` yields one result per frame as the
frames arrive, so a camera runs for as long as you keep iterating.
"""

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from actionlstm.builtin import resolve_checkpoint
from actionlstm.dataset import parse_annotations
from actionlstm.device import resolve_device
from actionlstm.export import load_classifier
from actionlstm.inference import predict_clips
from pipeline.actions import ActionRuntime, LabelProb
from pipeline.alerts import Alerts, Event
from pipeline.overlay import Overlay
from pipeline.predictor import ActionPipeline, FrameResult
from pipeline.privacy import check_privacy
from pipeline.rules import DOWN, AlertRule, check_rules, parse_rule
from pipeline.settings import RecognizerSettings
from pipeline.sources import FrameSource, open_source
from pipeline.zones import Zone, check_zones, parse_zone

Source = str | int | Path | FrameSource
SAMPLE_MODEL_NOTE = "SAMPLE MODEL: synthetic labels"


class ActionRecognizer:
    """A checkpoint with the live pose, tracking and labelling stages around it.

    Args:
        checkpoint: a `.pth` written by `actionlstm train`, a model `actionlstm export` wrote
            (`.onnx`, OpenVINO folder), or a built-in model's name as a str (`"falls"`; a `Path` is
            always a file); or a whole `RecognizerSettings`.
        **settings: the other `RecognizerSettings`, by name, as `actionlstm run` takes them: device,
            pose_model, pose_backend, imgsz, conf, tracker, lost_seconds, classifier_backend, stride,
            smoothing, min_seconds, min_prob, idle_fps (with a `RecognizerSettings`, they replace its own).
        draw: annotate `result.image` (skeletons, ids, Top-5 panels).
        note: text for the overlay's header; by default a warning when the checkpoint was trained on
            the generated sample, whose labels are no real actions.
        privacy: "skeleton" draws on a plain background instead of the frame: no result's image
            holds a pixel of the camera's (`pipeline.privacy`); "off" (default) draws on the frame.
    """

    def __init__(
        self,
        checkpoint: str | Path | RecognizerSettings,
        *,
        draw: bool = True,
        note: str | None = None,
        privacy: str = "off",
        **settings: Any,
    ):
        private = check_privacy(privacy) != "off"
        if isinstance(checkpoint, RecognizerSettings):
            self.settings = replace(checkpoint, **settings)
        else:
            self.settings = RecognizerSettings(checkpoint=checkpoint, **settings)
        s = self.settings
        self.device = resolve_device(s.device)
        self.checkpoint = resolve_checkpoint(s.checkpoint)
        self.classifier = load_classifier(self.checkpoint, self.device, s.classifier_backend)
        actions = ActionRuntime(self.classifier, self.device, s.stride, s.smoothing, s.min_seconds, s.min_prob)
        pose, tracker = s.build()
        if note is None:
            note = SAMPLE_MODEL_NOTE if self.classifier.synthetic else ""
        self.pipeline = ActionPipeline(pose, tracker, actions, Overlay() if draw else None, note, private, s.idle_fps)

    @property
    def class_names(self) -> list[str]:
        return self.classifier.class_names

    def open(self, source: str | int | Path, realtime: bool = False) -> FrameSource:
        """The source `stream` would read: `0` a camera, a path a file, `scheme://...` a stream."""
        return open_source(str(source), realtime=realtime)

    def stream(self, source: Source | Iterable[Source], realtime: bool = False) -> Iterator[FrameResult]:
        """One `FrameResult` per frame; a list of sources is read one after the other, each from
        scratch (ids, buffers and labels start afresh). `realtime` plays files as a camera would."""
        if isinstance(source, FrameSource):
            yield from self.pipeline.stream(source)
            return
        for spec in source if isinstance(source, (list, tuple)) else [source]:
            if isinstance(spec, FrameSource):
                yield from self.pipeline.stream(spec)
                continue
            with self.open(spec, realtime) as opened:
                yield from self.pipeline.stream(opened)

    @contextmanager
    def open_many(self, sources: Iterable[Source], realtime: bool = False) -> Iterator[list[FrameSource]]:
        """Every source opened (those given opened already are used as they are), all closed on exit."""
        with ExitStack() as stack:
            yield [spec if isinstance(spec, FrameSource) else stack.enter_context(self.open(spec, realtime)) for spec in sources]

    def stream_together(self, sources: Iterable[Source], realtime: bool = False) -> Iterator[list[FrameResult]]:
        """Several sources side by side, as `actionlstm run SRC1 SRC2 ...` runs them: per step, a list
        with a result for the next frame of each source still running (`result.source` is its index).
        Their frames go through the pose network together and their persons through one classifier pass."""
        with self.open_many(sources, realtime) as opened:
            yield from self.pipeline.stream_many(opened)

    def alerts(self, rules: Iterable["str | AlertRule"], zones: Iterable["str | Zone"] = ()) -> Alerts:
        """An alert engine for this model's labels: rules as `--alert` takes them ('fall>=0.8:1s',
        '*', 'down:30') or `AlertRule`s, each checked against the class names; what a rule leaves out
        is the model's own (`Classifier.alert_defaults`), else 0.7 for 1 s. `zones` as `--zone`
        takes them ('bed=fall:0.1,0.5 0.6,0.5 0.6,0.9') or `Zone`s keep labels quiet where they lie.
        `alerts.update(result)` gives the events a `stream` result fires."""
        parsed = [rule if isinstance(rule, AlertRule) else parse_rule(rule) for rule in ([rules] if isinstance(rules, str) else rules)]
        places = [zone if isinstance(zone, Zone) else parse_zone(zone) for zone in ([zones] if isinstance(zones, str) else zones)]
        down = self.pipeline.actions.fall is not None  # a fall cue keeps the down state
        check_zones(places, [*self.class_names, *([DOWN] if down else [])])
        return Alerts(check_rules(parsed, self.class_names, self.classifier.alert_defaults, down), places)

    def events(
        self,
        source: Source | Iterable[Source],
        rules: Iterable["str | AlertRule"],
        realtime: bool = False,
        zones: Iterable["str | Zone"] = (),
    ) -> Iterator[Event]:
        """Only the events: `for event in rec.events(0, ["fall>=0.8:1s"])` runs the camera and
        yields each event as it fires (`event.to_json()` is what `--events` writes)."""
        alerts = self.alerts(rules, zones)
        for spec in source if isinstance(source, (list, tuple)) else [source]:
            alerts.reset()  # each source of a list starts afresh, ids and all
            for result in self.stream(spec, realtime):
                yield from alerts.update(result)

    def classify(self, keypoints: np.ndarray, scores: np.ndarray, fps: float = 25.0, k: int = 5) -> list[LabelProb]:
        """Top-k labels of one skeleton sequence, exactly as `actionlstm predict` labels a pickle clip.

        `keypoints` is [T, 17, 2] pixels or [M, T, 17, 2] (the pickle's layout, main person chosen as
        for training), `scores` [T, 17] or [M, T, 17]; `fps` is the sequence's frame rate.
        """
        keypoints, scores = np.asarray(keypoints, np.float32), np.asarray(scores, np.float32)
        if keypoints.ndim == 3:
            keypoints, scores = keypoints[None], scores[None]
        clip = {
            "frame_dir": "sequence",
            "label": 0,
            "img_shape": (0, 0),
            "keypoint": keypoints,
            "keypoint_score": scores,
            "fps": float(fps),
        }
        dataset = parse_annotations({"split": {}, "annotations": [clip]})
        probs = predict_clips(self.classifier.model, self.classifier.preprocess, dataset, np.array([0]), self.device)[0]
        return [LabelProb(self.class_names[int(c)], float(probs[c])) for c in np.argsort(-probs)[:k]]
