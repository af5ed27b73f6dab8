"""The camera check's figures and advice (`pipeline.camera_check`): what a frame's persons add to the
tallies, how alarms are grouped by place, and which advice which figures give. The check run end to
end on real footage is in tests/cli/test_check_camera.py."""

import numpy as np
import pytest

from pipeline.camera_check import Sight, Tracks, advise, clock, places
from pipeline.predictor import FrameResult, PersonResult


def person(box: list[float], torso: float = 0.9, ankles: float = 0.9, rest: float = 0.8) -> PersonResult:
    scores = np.full(17, rest, np.float32)
    scores[[5, 6, 11, 12]] = torso
    scores[[15, 16]] = ankles
    return PersonResult(1, box, None, keypoints=np.zeros((17, 2), np.float32), scores=scores)


def test_a_frame_adds_its_persons_heights_scores_and_seen_parts():
    sight = Sight()
    seen, hidden = person([0, 100, 50, 300]), person([0, 0, 40, 100], torso=0.2, ankles=0.1, rest=0.5)
    sight.add(FrameResult(0, 0.0, None, [seen, hidden], 0.0), 0.1, 0.5)  # 0.1 s a frame, input at half the frame's size
    sight.add(FrameResult(1, 0.1, None, [], 0.0), 0.1, 0.5)
    figures = sight.to_json()
    assert figures["frames"] == 2 and figures["seconds"] == pytest.approx(0.2)
    assert figures["person_share"] == 0.5
    assert figures["person_height"] == pytest.approx(150.0)  # median of 200 and 100
    assert figures["person_height_input"] == pytest.approx(75.0)
    assert figures["torso_seen"] == 0.5 and figures["feet_seen"] == 0.5
    assert figures["keypoint_confidence"] == pytest.approx((0.8 + 0.5) / 2)
    assert figures["false_alarms"] == 0 and figures["false_alarms_per_hour"] == 0.0


def test_a_person_barely_seen_counts_in_the_confidence_only():
    sight = Sight()
    sight.add(FrameResult(0, 0.0, None, [person([0, 0, 40, 300], torso=0.1, ankles=0.1, rest=0.2)], 0.0), 0.1, 1.0)
    seen = sight.to_json()
    assert seen["person_share"] == 1.0 and seen["keypoint_confidence"] == pytest.approx(0.2)
    assert seen["person_height"] is None and seen["torso_seen"] is None and seen["feet_seen"] is None
    advice = advise(report({**seen, "seconds": 3600.0}))  # no advice on heights, torso or feet it has not got
    assert advice[0] == "no false alarm in 60.0 min of footage" and advice[1].startswith("keypoint confidence 0.20 is low")
    assert len(advice) == 2


def test_a_track_unsure_all_along_for_a_second_is_a_phantom_and_said_with_its_place():
    tracks = Tracks()
    for k in range(30):  # 2 s at 15 fps: a real person, and a coat on a door for the first 20 frames
        coat = [PersonResult(7, [0, 10 + k % 2, 40, 340], None, scores=np.full(17, 0.25, np.float32))] if k < 20 else []
        tracks.add(FrameResult(k, k / 15, None, [person([200, 50, 320, 400]), *coat], 0.0))
    [phantom] = tracks.phantoms("door.mp4", 15.0)
    assert (phantom.person, phantom.seconds, phantom.confidence, phantom.box) == (7, pytest.approx(1.33, abs=0.01), 0.25, [0, 10, 40, 340])
    assert tracks.phantoms("door.mp4", 10.0)[0].seconds == 2.0 and Tracks().phantoms("x", 15.0) == []
    line = advise(report(figures(), phantoms=[phantom.to_json()]))[1]
    assert line.startswith("something in the box x 0-40, y 10-340 px looked like a person to the pose model for 1.3 s (door.mp4)"), line


def test_footage_without_anyone_has_no_figures_of_people_and_one_piece_of_advice():
    sight = Sight()
    for k in range(30):
        sight.add(FrameResult(k, k / 30, None, [], 0.0), 1 / 30, 1.0)
    figures = sight.to_json()
    assert figures["person_share"] == 0.0 and figures["person_height"] is None and figures["torso_seen"] is None
    advice = advise(report(figures))
    assert len(advice) == 1 and "no person was found" in advice[0]


def alarm(video: str, time: float, box: list[float]) -> dict:
    return {"video": video, "time": time, "person": 1, "label": "fall", "prob": 1.0, "box": box}


def test_alarms_whose_boxes_overlap_are_one_place():
    bed = [alarm("a.mp4", 12.5, [100, 200, 300, 260]), alarm("b.mp4", 70.0, [250, 210, 380, 270])]
    door = [alarm("a.mp4", 30.0, [500, 50, 560, 230])]
    sizes = {"a.mp4": (640, 480), "b.mp4": (640, 480), "c.mp4": (1280, 720)}
    assert places([bed[0], door[0], bed[1]], sizes) == [bed, door]
    elsewhere = alarm("c.mp4", 3.0, [100, 200, 300, 260])  # the same box in another camera's frame
    assert places([*bed, elsewhere], sizes) == [bed, [elsewhere]]
    assert clock(70.0) == "1:10.0" and clock(5.25) == "0:05.2"


def figures(**total) -> dict:
    """A seen person's figures, over an hour of footage; `total` replaces some."""
    return {
        "frames": 108000,
        "seconds": 3600.0,
        "person_share": 0.9,
        "keypoint_confidence": 0.9,
        "person_height": 300.0,
        "person_height_input": 300.0,
        "torso_seen": 0.95,
        "feet_seen": 0.9,
        "false_alarms": 0,
        "false_alarms_per_hour": 0.0,
        **total,
    }


def report(total: dict, size=(640, 480), alarms: list | None = None, fall_cue: bool = True, phantoms: list | None = None) -> dict:
    videos = [{"video": name, "size": list(size), "fps": 30.0, **total} for name in ("a.mp4", "b.mp4", "door.mp4")]
    return {
        "checkpoint": "falls",
        "rules": ["fall"],
        "imgsz": 640,
        "fall_cue": fall_cue,
        "videos": videos,
        "total": total,
        "alarms": alarms or [],
        "phantoms": phantoms or [],
        "ended_by": None,
    }


def test_a_well_seen_hour_without_alarms_is_all_right():
    assert advise(report(figures())) == ["no false alarm in 60.0 min of footage"]


def test_each_place_of_alarms_is_listed_with_its_box_and_times():
    alarms = [alarm("a.mp4", 12.5, [100, 200, 300, 260]), alarm("b.mp4", 70.0, [250, 210, 380, 270])]
    advice = advise(report(figures(false_alarms=2, false_alarms_per_hour=2.0), alarms=alarms))
    assert len(advice) == 1
    assert "2 false alarms in the box x 100-380, y 200-270 px (a.mp4 at 0:12.5, b.mp4 at 1:10.0)" in advice[0]
    assert "zone" in advice[0] and "fall" in advice[0]


def test_short_footage_is_said_to_be_little():
    advice = advise(report(figures(seconds=90.0)))
    assert advice[-1].startswith("1.5 min of footage is little")


def test_small_people_in_a_large_frame_ask_for_a_larger_imgsz():
    # 1920 x 1080: a 100 px tall person is 33 px in the 640 input; 150 px there needs imgsz 640 * 150 / 33.3 = 2880, capped at 1920.
    advice = advise(report(figures(person_height=100.0, person_height_input=100 / 3), size=(1920, 1080)))
    assert any("people are 100 px tall (33 px in the pose model's 640 px input): use --imgsz 1920" in line for line in advice)
    advice = advise(report(figures(person_height=200.0, person_height_input=200 / 3), size=(1920, 1080)))
    assert any("use --imgsz 1440" in line for line in advice)  # 640 * 150 / 66.7 = 1440


def test_small_people_in_a_small_frame_ask_for_a_closer_camera():
    advice = advise(report(figures(person_height=50.0, person_height_input=100.0), size=(320, 240)))
    assert any("people are 50 px tall (100 px in the pose model's 640 px input): move the camera closer" in line for line in advice)


def test_unsure_joints_a_hidden_torso_and_unseen_ankles_are_each_said():
    advice = advise(report(figures(keypoint_confidence=0.35, torso_seen=0.5, feet_seen=0.2)))
    assert any(line.startswith("keypoint confidence 0.35 is low: more light") for line in advice)
    assert any("shoulders and hips are all seen in only 50%" in line and "a fall is read from the torso" in line for line in advice)
    assert any("an ankle is seen in only 20%" in line for line in advice)
    # A model without the fall cue does not read the floor at the ankles.
    advice = advise(report(figures(feet_seen=0.2), fall_cue=False))
    assert not any("ankle" in line for line in advice)


def test_few_frames_with_a_person_are_said():
    advice = advise(report(figures(person_share=0.3)))
    assert any("a person was found in only 30% of the frames" in line for line in advice)
