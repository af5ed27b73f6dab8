"""The service's zones and down state end to end: `actionlstm serve` with the built-in `falls` model on
a real GMDCSA24 fall (real pose, replayed with --loop), a zone on the mat where the person falls that
keeps the fall quiet for that source, the down rule publishing through every transport (a real
mosquitto broker, the JSONL file), and the down state in /api/status and in the retained MQTT state.

The broker, subscriber and service helpers are test_serve.py's; this module starts a service of its own
(another model, another video) and stops it with SIGTERM at its end.
"""

import json
import signal

import cv2
import numpy as np
import pytest

from pipeline.privacy import BACKGROUND
from pipeline.serve.snapshots import encode_jpeg
from tests.helpers import SHARED_DATA, camera_likeness, read_video
from tests.serve.service import Service, wait_for
from tests.serve.test_serve import MOSQUITTO, TOKEN, Broker, Subscriber, read_clip

pytestmark = [
    pytest.mark.serve,
    pytest.mark.video,
    pytest.mark.skipif(MOSQUITTO is None, reason="needs Debian's mosquitto (.ci/run installs it)"),
]
VIDEO = SHARED_DATA / "falls" / "fall" / "S3_Fall_01.mp4"  # off the bed onto the mat on the floor at 1.0 s; 3.8 s long
MAT = "room/mat=fall:0,0.75 1,0.75 1,1 0,1"  # the floor in front of the bed, for this source only


@pytest.fixture(scope="module")
def fallen(tmp_path_factory):
    """Broker, subscriber and the service on the fall clip, started once for the module."""
    if not VIDEO.exists():
        pytest.skip(f"{VIDEO} is not there")
    folder = tmp_path_factory.mktemp("serve-falls")
    broker = Broker(folder)
    subscriber = Subscriber(broker.port)
    service = Service(
        [
            f"room={VIDEO}",
            "--loop",
            "--checkpoint",
            "falls",
            "--device",
            "cpu",
            "--alert",
            "fall",
            "--alert",
            "down:2",
            "--zone",
            MAT,
            "--mqtt",
            f"mqtt://127.0.0.1:{broker.port}",
            "--token",
            TOKEN,
            "--events",
            folder / "events.jsonl",
            "--privacy",
            "skeleton",
            "--clip-seconds",
            "1:0.5",
            "--state-file",
            folder / "state.json",
        ],
        cwd=folder,
        token=TOKEN,
    )
    yield {"subscriber": subscriber, "service": service, "folder": folder}
    if service.proc.poll() is None:
        service.proc.kill()
        service.proc.wait()
    subscriber.client.loop_stop()
    broker.proc.kill()


def test_the_down_rule_is_published_through_every_transport(fallen):
    service, subscriber, folder = fallen["service"], fallen["subscriber"], fallen["folder"]
    down = wait_for(lambda: [e for e in subscriber.events() if e["label"] == "down"], 120, "a down event on MQTT")[0]
    assert down["source"] == "room" and down["rule"] == "down:2s" and isinstance(down["person"], int)
    assert down["duration"] >= 2.0 - 1e-6 and down["start"] < down["at"]  # the seconds on the floor, from when they reached it
    written = wait_for(lambda: (folder / "events.jsonl").read_text().splitlines(), 10, "the event in the JSONL file")
    assert down["id"] in {json.loads(line)["id"] for line in written}  # one event, every sink
    assert down in json.loads(service.get("/api/events")[2])  # and the API's list


def test_the_zone_keeps_the_fall_quiet_for_its_source(fallen):
    service, subscriber = fallen["service"], fallen["subscriber"]
    wait_for(lambda: [e for e in subscriber.events() if e["label"] == "down"], 120, "a down event on MQTT")
    assert f"zone {MAT}" in service.log()
    # The down event fires a second after the fall's confirmation, which would have fired the fall: the mat kept it quiet.
    assert [e for e in subscriber.events() if e["label"] == "fall"] == []
    assert {e["label"] for e in json.loads(service.get("/api/events")[2])} == {"down"}


def test_the_status_and_the_retained_state_show_who_is_down(fallen):
    service, subscriber = fallen["service"], fallen["subscriber"]
    source = wait_for(lambda: (s := service.source("room"))["down"] and s, 60, "someone down in the status", every=0.05)
    down = source["down"][0]
    assert set(down) == {"id", "seconds", "since", "seen"} and down["seconds"] >= 0.0
    shown = [p for p in source["persons"] if p["id"] == down["id"]]
    assert not down["seen"] or shown[0]["down"] >= down["seconds"] - 0.1  # the person's own entry says it too

    def retained_down() -> list:
        states = [json.loads(payload) for _, topic, payload, _ in subscriber.messages if topic == "actionlstm/room/state"]
        return [d for state in states for d in state["down"]]

    published = wait_for(retained_down, 30, "someone down in the retained MQTT state")
    assert set(published[0]) == {"id", "seconds", "since", "seen"}


def test_in_privacy_mode_no_picture_holds_the_camera(fallen, tmp_path):
    service, subscriber = fallen["service"], fallen["subscriber"]
    frames = read_video(VIDEO)[0][::4]
    down = wait_for(lambda: [e for e in json.loads(service.get("/api/events")[2]) if service.get(e["clip"])[0] == 200], 60, "a clip")[0]
    pictures = {
        "the source's snapshot": service.get("/api/sources/0/snapshot.jpg")[2],
        "an event's snapshot": service.get(down["snapshot"])[2],
        "the MQTT snapshot": wait_for(lambda: subscriber.last("actionlstm/room/snapshot"), 10, "the snapshot on MQTT"),
    }
    shown = {name: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) for name, data in pictures.items()}
    clip = read_clip(service.get(down["clip"])[2], tmp_path)[0]
    shown |= {"a clip's first frame": clip[0], "a clip's last frame": clip[-1]}
    control = frames[7].copy()  # the test can fail: the camera's frame, drawn on and JPEG-compressed, is found
    cv2.rectangle(control, (40, 40), (300, 400), (0, 255, 0), 3)
    assert camera_likeness(cv2.imdecode(np.frombuffer(encode_jpeg(control), np.uint8), cv2.IMREAD_COLOR), frames) > 0.9
    for name, picture in shown.items():
        likeness = camera_likeness(picture, frames)
        plain = (np.abs(picture.astype(int) - np.array(BACKGROUND)).max(axis=2) <= 12).mean()
        print(f"{name}: likeness {likeness:.3f}, plain background {plain:.0%}")
        assert likeness < 0.3 and plain > 0.5, (name, likeness, plain)
    assert service.status()["privacy"] == "skeleton"


def test_sigterm_stops_the_service(fallen):
    service = fallen["service"]
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(30) == 0, service.log()
    assert "Traceback" not in service.log()
