"""`actionlstm serve` end to end, every component real and on loopback: the service (real pose on the
shared exercise video, replayed with --loop), a camera-like MJPEG stream over HTTP (with a password
in its URL) that the tests drop and bring back, a mosquitto broker that they stop and restart, an
HTTP webhook receiver, and a headless Chromium that opens the page.

The tests share one service and run in file order; the last one stops it with SIGTERM.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port, read_video, shared_video, start_receiver
from tests.serve.service import Service, open_stream, wait_for

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.serve,
    pytest.mark.video,
    pytest.mark.skipif(MOSQUITTO is None, reason="needs Debian's mosquitto (.ci/run installs it)"),
]
TOKEN = "test-token-0123456789"
PASSWORD = "camsecret42"
MAX_CLIENTS = 6
COOLING = "*>=0:1.5s/5s"  # a rule with a cooldown of 5 s
CLIP_BEFORE = 3.0  # seconds of each clip before its event (and 1 s after)
MAX_CLIPS = 3


class Broker:
    """A real mosquitto on a free loopback port; stop() and start() it at will (same port)."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _accepts(self.port), 10, "mosquitto to listen")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Subscriber:
    """A paho client (resubscribing on every connection) that keeps every message with its arrival time."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[float, str, bytes, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("actionlstm/#", qos=1)
        self.client.on_message = lambda c, u, m: self.messages.append((time.monotonic(), m.topic, m.payload, m.retain))
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def events(self) -> list[dict]:
        return [json.loads(payload) for _, topic, payload, _ in self.messages if topic.endswith("/events")]

    def last(self, topic: str) -> bytes | None:
        found = [payload for _, t, payload, _ in self.messages if t == topic]
        return found[-1] if found else None


class Camera:
    """An IP camera as OpenCV meets one: MJPEG over HTTP (multipart/x-mixed-replace) at 10 fps, from the
    exercise video's frames. stop() drops it (listener and open streams), start() brings it back."""

    def __init__(self):
        frames, _ = read_video(shared_video("exercise_3people.avi"))
        self.jpegs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames[:100]]
        self.port = free_port()
        self.server = None
        self.start()

    def start(self) -> None:
        import http.server

        camera = self

        class Stream(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                k = 0
                try:
                    while not camera.stopped.is_set():
                        data = camera.jpegs[k % len(camera.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data) + data + b"\r\n")
                        k += 1
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.stopped = threading.Event()
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Stream)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://viewer:{PASSWORD}@127.0.0.1:{self.port}/cam.mjpg"


@pytest.fixture(scope="module")
def world(tmp_path_factory, trained_checkpoint):
    """Broker, subscriber, webhook receiver, camera and the service, started once for the module."""
    folder = tmp_path_factory.mktemp("serve")
    broker = Broker(folder)
    subscriber = Subscriber(broker.port)
    hook = start_receiver()
    camera = Camera()
    video = shared_video("exercise_3people.avi")
    service = Service(
        [
            video,
            f"cam={camera.url}",
            "--loop",
            "--checkpoint",
            trained_checkpoint,
            "--device",
            "cpu",
            "--min-prob",
            "0",
            "--alert",
            "*>=0:1s",
            "--mqtt",
            f"mqtt://127.0.0.1:{broker.port}",
            "--webhook",
            f"http://127.0.0.1:{hook.server_port}/hook",
            "--token",
            TOKEN,
            "--events",
            folder / "events.jsonl",
            "--snapshot-dir",
            folder / "snapshots",
            "--max-clients",
            MAX_CLIENTS,
            "--alert",
            COOLING,
            "--state-file",
            folder / "state.json",
            "--clip-dir",
            folder / "clips",
            "--clip-seconds",
            f"{CLIP_BEFORE:g}:1",
            "--max-clips",
            MAX_CLIPS,
        ],
        cwd=folder,
        token=TOKEN,
    )
    yield {"broker": broker, "subscriber": subscriber, "hook": hook, "camera": camera, "service": service, "folder": folder}
    if service.proc.poll() is None:
        service.proc.kill()
        service.proc.wait()
    subscriber.client.loop_stop()
    camera.stop()
    hook.shutdown()
    broker.proc.kill()


def test_events_reach_the_broker_and_the_webhook_within_10_s(world):
    service, subscriber, hook = world["service"], world["subscriber"], world["hook"]
    first_mqtt = wait_for(
        lambda: next((t for t, topic, _, _ in subscriber.messages if topic == "actionlstm/0/events"), None), 60, "an event on MQTT"
    )
    wait_for(lambda: hook.received, 30, "an event at the webhook")
    print(f"first MQTT event {first_mqtt - service.serving:.1f} s after 'serving on', {first_mqtt - service.launched:.1f} s after launch")
    assert first_mqtt - service.serving < 10.0
    event = subscriber.events()[0]
    assert set(event) == {"id", "source", "person", "label", "prob", "rule", "start", "time", "at", "duration", "box", "snapshot", "clip"}
    assert event["clip"] == f"/api/events/{event['id']}/clip.mp4"
    assert event["rule"] == "*>=0:1s" and event["duration"] >= 1.0 - 1e-6 and event["snapshot"] == f"/api/events/{event['id']}/snapshot.jpg"
    classes = service.status()["model"]["classes"]
    assert event["label"] in classes and len(event["box"]) == 4
    assert hook.received[0][0]["id"] in {e["id"] for e in subscriber.events()}  # the same events both ways
    assert subscriber.last("actionlstm/status") == b"online"
    state = json.loads(wait_for(lambda: subscriber.last("actionlstm/0/state"), 30, "a retained state"))
    assert state["source"] == "0" and all(p["label"] in classes + [None] for p in state["persons"])


def test_status_reports_sources_fps_and_persons_with_top5(world):
    service = world["service"]
    status = service.status()
    assert [s["name"] for s in status["sources"]] == ["0", "cam"]
    video = wait_for(lambda: (s := service.source("0"))["persons"] and s, 30, "persons in the status")
    assert video["state"] == "running" and video["fps"] > 0 and video["frames"] > 0 and video["size"] == [384, 288]
    labelled = wait_for(lambda: [p for p in service.source("0")["persons"] if p["top5"]], 30, "a person with top-5")
    person = labelled[0]
    assert len(person["box"]) == 4 and len(person["top5"]) == 4  # four classes
    assert [t["prob"] for t in person["top5"]] == sorted((t["prob"] for t in person["top5"]), reverse=True)
    assert status["version"] and status["uptime"] > 0
    assert {s["kind"] for s in status["sinks"]} == {"jsonl", "webhook", "mqtt"}


ROUTES = [
    "/",
    "/static/app.js",
    "/static/style.css",
    "/api/status",
    "/api/events",
    "/api/events?since=0",
    "/api/events/stream",
    "/api/events/1/snapshot.jpg",
    "/api/sources/0/snapshot.jpg",
    "/api/sources/0/stream.mjpg",
    "/api/timeline",
    "/metrics",
    "/no/such/page",
]


def test_every_route_needs_the_token(world):
    service = world["service"]
    for path in ROUTES:
        for headers, token in [({}, None), ({}, "wrong-token-0123456789"), ({"Cookie": "actionlstm_token=wrong"}, None), ({}, TOKEN[:-1])]:
            code, _, _ = service.get(path, token=token, headers=headers)
            assert code == 401, (path, headers, token, code)
        code, _, _ = service.get(path + ("&" if "?" in path else "?") + "token=wrong", token=None)
        assert code == 401, path
    for path in ["/", "/static/app.js", "/api/status", "/api/events", "/api/timeline", "/metrics", "/api/sources/0/snapshot.jpg"]:
        assert service.get(path)[0] == 200, path
    assert service.get("/no/such/page")[0] == 404
    for token in (None, "wrong-token-0123456789", TOKEN):  # the health check needs no token and tells nothing but ok
        assert service.get("/healthz", token=token)[::2] == (200, b"ok\n")
    # the printed URL's ?token= sets the page's cookie and takes the token out of the address bar
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{service.base}/?token={TOKEN}", timeout=10) as response:
        assert response.status == 200 and response.url == f"{service.base}/"
    with opener.open(f"{service.base}/api/status", timeout=10) as response:
        assert response.status == 200


def test_requests_are_bounded(world):
    service = world["service"]
    assert service.get("/api/status", method="POST", data=b"{}")[0] == 405
    assert service.get("/api/status", headers={"Content-Length": "5"}, data=b"12345", method="GET")[0] == 413
    assert service.get("/api/status", headers={"X-Big": "x" * 40_000})[0] in (400, 431)
    assert service.get("/api/events?since=-1")[0] == 400 and service.get("/api/events?limit=abc")[0] == 400
    assert service.get("/api/sources/7/stream.mjpg")[0] == 404
    streams = [
        open_stream(service.port, "/api/events/stream" if k % 2 else "/api/sources/0/stream.mjpg", TOKEN) for k in range(MAX_CLIENTS)
    ]
    assert all(b" 200 " in head.split(b"\r\n")[0] for _, head in streams)
    code, headers, _ = service.get("/api/sources/0/stream.mjpg")
    assert code == 503 and headers["Retry-After"]
    for sock, _ in streams:
        sock.close()
    wait_for(lambda: service.status()["stream_clients"] == 0, 10, "closed streams to be counted off")


def _mjpeg_parts(port: int, count: int) -> list[bytes]:
    sock, head = open_stream(port, "/api/sources/0/stream.mjpg", TOKEN)
    assert b"multipart/x-mixed-replace; boundary=frame" in head
    data, parts = b"", []
    while len(parts) < count:
        data += sock.recv(65536)
        while (head := re.search(rb"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: (\d+)\r\n\r\n", data)) and len(
            data
        ) >= head.end() + int(head[1]):
            parts.append(data[head.end() : head.end() + int(head[1])])
            data = data[head.end() + int(head[1]) :]
    sock.close()
    return parts


def test_video_stream_snapshots_and_metrics(world):
    service = world["service"]
    parts = _mjpeg_parts(service.port, 4)
    images = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in parts]
    assert all(image.shape == (288, 384, 3) for image in images)
    assert any(np.abs(images[0].astype(int) - image.astype(int)).mean() > 1 for image in images[1:])  # the video moves
    code, headers, body = service.get("/api/sources/0/snapshot.jpg")
    assert (
        code == 200
        and headers["Content-Type"] == "image/jpeg"
        and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (288, 384, 3)
    )
    first = json.loads(service.get("/api/events?limit=1")[2])[-1]
    code, _, body = service.get(first["snapshot"])
    assert code == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is not None
    newest = json.loads(service.get("/api/events?limit=5")[2])
    assert [e["id"] for e in newest] == sorted(e["id"] for e in newest) and len(newest) <= 5
    later = json.loads(service.get(f"/api/events?since={newest[0]['id']}")[2])
    assert all(e["id"] > newest[0]["id"] for e in later)
    families = {f.name: f for f in text_string_to_metric_families(service.get("/metrics")[2].decode())}

    def value(family: str, suffix: str, **labels: str) -> float:
        samples = families[family].samples
        return sum(s.value for s in samples if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("actionlstm_frames", "_total", source="0") > 0
    assert value("actionlstm_latency_seconds", "_count", source="0") > 0 and value("actionlstm_pose_seconds", "_count", source="0") > 0
    assert value("actionlstm_events", "_total") >= len(json.loads(service.get("/api/events?limit=1000")[2]))
    assert value("actionlstm_sink_delivered", "_total", sink=f"mqtt:mqtt://127.0.0.1:{world['broker'].port}") > 0
    assert value("actionlstm_fps", "", source="0") > 0
    for family in (
        "actionlstm_dropped_frames",
        "actionlstm_reconnects",
        "actionlstm_sink_dropped",
        "actionlstm_classify_seconds",
        "actionlstm_uptime_seconds",
    ):
        assert family in families, family


def test_a_client_that_stops_reading_never_stalls_the_pipeline(world):
    service = world["service"]
    before = service.source("0")["frames"]
    time.sleep(3)
    normal = service.source("0")["frames"] - before
    stalled = [open_stream(service.port, "/api/sources/0/stream.mjpg", TOKEN) for _ in range(3)]  # read nothing more
    before = service.source("0")["frames"]
    time.sleep(3)
    with_stalled = service.source("0")["frames"] - before
    for sock, _ in stalled:
        sock.close()
    assert normal > 0 and with_stalled >= 0.7 * normal, (normal, with_stalled)


def test_event_stream_pushes_events(world):
    service = world["service"]
    sock, head = open_stream(service.port, "/api/events/stream?since=0", TOKEN)
    assert b"text/event-stream" in head
    data = b""
    deadline = time.monotonic() + 60
    while data.count(b"event: alert") < 2 and time.monotonic() < deadline:
        data += sock.recv(65536)
    sock.close()
    ids = [int(m) for m in re.findall(rb"\nid: (\d+)\n", b"\n" + data)]
    first = json.loads(service.get("/api/events?limit=1000")[2])[0]["id"]
    assert len(ids) >= 2 and ids == sorted(ids) and ids[0] == first  # since=0: from the first event on
    payload = json.loads(re.search(rb"data: (.*)\n", data).group(1))
    assert payload["id"] == ids[0]


def ha_configs(port: int, seconds: float = 3.0) -> dict[str, dict]:
    """The retained discovery configs on the broker now, as a Home Assistant that starts reads them."""
    import paho.mqtt.client as mqtt

    found: dict[str, dict] = {}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-ha-{time.monotonic_ns()}")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("homeassistant/+/+/+/config", qos=1)
    client.on_message = lambda c, u, m: found.__setitem__(m.topic, json.loads(m.payload)) if m.payload else found.pop(m.topic, None)
    client.connect("127.0.0.1", port)
    client.loop_start()
    time.sleep(seconds)
    client.loop_stop()
    client.disconnect()
    return found


def publish(port: int, topic: str, payload: str) -> None:
    import paho.mqtt.publish

    paho.mqtt.publish.single(topic, payload, qos=1, hostname="127.0.0.1", port=port)


# What Home Assistant's MQTT discovery requires of each platform (its documented schema), and where
# each reads its values.
REQUIRED = {
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "event": {"state_topic", "event_types"},
    "switch": {"command_topic"},
    "image": {"image_topic"},
    "number": {"command_topic"},
}
READS = ("state_topic", "image_topic")


def test_home_assistant_discovery_as_home_assistant_reads_it(world):
    import jinja2

    service, broker, subscriber = world["service"], world["broker"], world["subscriber"]
    configs = wait_for(lambda: (c := ha_configs(broker.port)) and c, 20, "retained discovery configs")
    classes = service.status()["model"]["classes"]
    assert {topic.split("/")[1] for topic in configs} == set(REQUIRED)
    per_source = [t for t in configs if "/actionlstm/0_" in t]
    assert len(per_source) == 2 + 2 + 1 + 1 + 1  # action, persons, a binary sensor per rule, event, switch, image
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)  # unique ids ...
    for topic, config in configs.items():
        component, node, object_id = topic.split("/")[1:4]
        assert re.fullmatch(r"[A-Za-z0-9_-]+", node) and re.fullmatch(r"[A-Za-z0-9_-]+", object_id), topic
        assert REQUIRED[component] <= set(config), (topic, config)
        assert config["unique_id"] == f"{node}_{object_id}"  # ... made of names that do not change across restarts
        assert config["availability_topic"] == "actionlstm/status" and config["payload_available"] == "online"
        assert config["device"]["identifiers"] == ["actionlstm"] and config["name"]
    # every topic an entity reads receives values, and the templates make of them what Home Assistant needs
    env = jinja2.Environment()
    for topic, config in configs.items():
        for key in READS:
            if key in config and "snooze" not in config[key]:
                payload = wait_for(lambda t=config[key]: subscriber.last(t), 30, f"a value on {config[key]}")
                if "value_template" in config:
                    value = env.from_string(config["value_template"]).render(value_json=json.loads(payload), value=payload.decode())
                    if topic.startswith("homeassistant/event/"):
                        assert json.loads(value)["event_type"] in config["event_types"]
                elif config.get("device_class") == "enum":
                    assert payload.decode() in config["options"] and set(classes) < set(config["options"])
                elif topic.startswith("homeassistant/binary_sensor/") or topic.startswith("homeassistant/switch/"):
                    assert payload in (b"ON", b"OFF")
                elif "image" in key:
                    assert cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR) is not None
    # Home Assistant's birth message: every config is sent again
    subscriber.client.subscribe("homeassistant/#", qos=1)
    time.sleep(0.5)
    seen = len(subscriber.messages)
    publish(broker.port, "homeassistant/status", "online")
    again = wait_for(
        lambda: (a := {t for _, t, _, _ in subscriber.messages[seen:] if t.endswith("/config")}) >= set(configs) and a,
        10,
        "configs re-sent",
    )
    assert again == set(configs)


def test_disarming_a_source_stops_its_events_and_arming_brings_them_back(world):
    service, broker, subscriber = world["service"], world["broker"], world["subscriber"]
    assert subscriber.last("actionlstm/0/alerts/state") == b"ON"
    publish(broker.port, "actionlstm/0/alerts/set", "OFF")
    wait_for(lambda: subscriber.last("actionlstm/0/alerts/state") == b"OFF", 10, "the disarmed state echoed")
    status = service.status()["alerts"]
    assert status["armed"] == {"0": False, "cam": True}
    assert json.loads((world["folder"] / "state.json").read_text())["armed"]["0"] is False  # kept for a restart
    last = service.status()["events"]["last_id"]
    quieted = status["quieted"].get("disarmed", 0)
    wait_for(lambda: service.status()["alerts"]["quieted"].get("disarmed", 0) > quieted, 30, "an episode kept quiet")
    later = [e for e in json.loads(service.get(f"/api/events?since={last}")[2])]
    assert [e for e in later if e["source"] == "0"] == []
    publish(broker.port, "actionlstm/0/alerts/set", "ON")
    wait_for(lambda: subscriber.last("actionlstm/0/alerts/state") == b"ON", 10, "the armed state echoed")
    back = service.status()["events"]["last_id"]
    wait_for(lambda: [e for e in json.loads(service.get(f"/api/events?since={back}")[2]) if e["source"] == "0"], 45, "events of 0 again")


def test_a_snooze_keeps_every_alert_quiet_for_its_seconds_and_cooldowns_hold(world):
    service, broker, subscriber = world["service"], world["broker"], world["subscriber"]
    publish(broker.port, "actionlstm/alerts/snooze", "600")
    wait_for(lambda: service.status()["alerts"]["snoozed_until"], 10, "the snooze")
    publish(broker.port, "actionlstm/alerts/snooze", "0")  # 0 ends it
    wait_for(lambda: service.status()["alerts"]["snoozed_until"] is None, 10, "the snooze to end")
    publish(broker.port, "actionlstm/alerts/snooze", "2")
    until = wait_for(lambda: service.status()["alerts"]["snoozed_until"], 10, "the snooze")
    wait_for(lambda: json.loads(subscriber.last("actionlstm/alerts/snooze/state"))["until"] == until, 10, "the snooze's end on MQTT")
    last = service.status()["events"]["last_id"]
    wait_for(lambda: service.status()["alerts"]["snoozed_until"] is None, 10, "the snooze to run out", every=0.2)
    fired = json.loads(service.get(f"/api/events?since={last}")[2])
    end = time.time()
    assert all(_epoch(e["at"]) >= end - 0.3 for e in fired), fired  # nothing fired while snoozed
    # new episodes come surely with the looped file's next lap (39 s: new ids); sooner when a label changes
    wait_for(lambda: json.loads(service.get(f"/api/events?since={last}")[2]), 45, "events after the snooze")
    wait_for(lambda: json.loads(subscriber.last("actionlstm/alerts/snooze/state"))["until"] is None, 10, "the snooze's end on MQTT")
    # the cooling rule fired no two events on one source closer than its cooldown, and kept some quiet
    events = [e for e in json.loads(service.get("/api/events?limit=1000")[2]) if e["rule"] == COOLING]
    for source in ("0", "cam"):
        times = sorted(_epoch(e["at"]) for e in events if e["source"] == source)
        assert all(b - a >= 5.0 - 0.01 for a, b in zip(times, times[1:])), (source, times)
    assert events and service.status()["alerts"]["quieted"]["cooldown"] > 0


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def read_clip(data: bytes, folder: Path) -> tuple[list[np.ndarray], list[float]]:
    """A clip's frames and their times (seconds), decoded by OpenCV (not by the code that wrote it)."""
    path = folder / f"clip-{time.monotonic_ns()}.mp4"
    path.write_bytes(data)
    capture = cv2.VideoCapture(str(path))
    frames, times = [], []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
        times.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    capture.release()
    return frames, times


def test_a_clip_starts_its_pre_capture_before_the_event_and_retention_removes_the_oldest(world, tmp_path):
    service = world["service"]
    status = service.status()
    wait_for(lambda: service.status()["clips"]["written"] > MAX_CLIPS, 60, "more clips than are kept")
    events = json.loads(service.get("/api/events?limit=1000")[2])
    kept = [e for e in events if service.get(e["clip"])[0] == 200]
    assert 1 <= len(kept) <= MAX_CLIPS and len(list((world["folder"] / "clips").rglob("*.mp4"))) <= MAX_CLIPS
    assert service.get(events[0]["clip"])[0] == 404  # the oldest went
    event = kept[-1]
    code, headers, data = service.get(event["clip"])
    assert headers["Content-Type"] == "video/mp4"
    frames, times = read_clip(data, tmp_path)
    snapshot = cv2.imdecode(np.frombuffer(service.get(event["snapshot"])[2], np.uint8), cv2.IMREAD_COLOR)
    assert frames[0].shape == snapshot.shape  # 384x288: not scaled
    # the frame that fired the event (its snapshot) lies CLIP_BEFORE seconds into the clip: the first frame that long before it
    differences = [np.abs(frame.astype(int) - snapshot.astype(int)).mean() for frame in frames]
    at = times[int(np.argmin(differences))]
    print(f"event frame at {at:.2f} s of a {times[-1]:.2f} s clip; encoding took {status['clips']['encode_seconds']} s a clip")
    assert times[0] == 0.0 and abs(at - CLIP_BEFORE) <= 0.5, (at, times)
    assert times[-1] - at <= 1.0 + 0.15  # and it ends 1 s after
    assert sorted(differences)[0] < 0.5 * sorted(differences)[len(differences) // 2]  # a match, not the least bad of strangers


def save_page(driver, path: Path) -> None:
    """A screenshot of the whole page (the window made as tall as the page), to look at."""
    width = driver.execute_script("return window.outerWidth")
    driver.set_window_size(width, driver.execute_script("return document.documentElement.scrollHeight") + 140)
    time.sleep(0.5)
    driver.save_screenshot(str(path))


PLAY = """
const done = arguments[arguments.length - 1];
const video = document.createElement("video");
video.muted = true;
video.onerror = () => done({error: video.error ? video.error.code : "error"});
video.oncanplay = () => video.play().then(() => setTimeout(
  () => done({width: video.videoWidth, time: video.currentTime, duration: video.duration}), 700)).catch((e) => done({error: String(e)}));
video.src = arguments[0];
document.body.append(video);
"""


@pytest.mark.skipif(CHROMEDRIVER is None, reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_the_page_in_headless_chromium_at_desktop_and_phone_width(world, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By

    service = world["service"]
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    shots = Path(os.environ.get("ACTIONLSTM_SCREENSHOTS", tmp_path))
    try:
        driver.set_window_size(1280, 900)
        driver.get(f"{service.base}/?token={TOKEN}")
        assert driver.current_url == f"{service.base}/"  # the token left the address bar ...
        cookies = driver.get_cookies()  # ... for a cookie of this port's, which does not hold the token
        assert [c["name"] for c in cookies] == [f"actionlstm_session_{service.port}"] and TOKEN not in cookies[0]["value"]
        video = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "img.video"), 20, "the video")[0]
        wait_for(lambda: driver.execute_script("return arguments[0].naturalWidth", video) == 384, 20, "the first video frame")
        first = video.screenshot_as_png
        wait_for(lambda: video.screenshot_as_png != first, 20, "the video to move")
        classes = service.status()["model"]["classes"]
        shown = "return [...document.querySelectorAll('.person .label.first')].map(e => e.firstChild.textContent)"  # re-drawn every second
        wait_for(lambda: [text for text in driver.execute_script(shown) if text in classes], 30, "a label on the page")
        wait_for(
            lambda: driver.execute_script("return [...document.querySelectorAll('.event img')].some(i => i.naturalWidth > 0)"),
            30,
            "an event with its snapshot",
        )
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".legend span"), 20, "the timeline's legend")
        assert "401" not in driver.page_source and driver.find_element(By.ID, "connection").text == "live"
        assert PASSWORD not in driver.page_source
        # an event's clip is linked from the page, and Chromium's <video> loads and plays it
        clip = wait_for(
            lambda: driver.execute_script("return [...document.querySelectorAll('.event a.clip')].map(a => a.href)"), 30, "a clip link"
        )
        kept = [href for href in clip if service.get(href.removeprefix(service.base))[0] == 200]  # the oldest are removed
        played = driver.execute_async_script(PLAY, kept[0])
        assert played.get("error") is None and played["width"] == 384 and played["time"] > 0.3, played
        save_page(driver, shots / "page-desktop.png")
        driver.set_window_size(390, 844)  # a phone
        time.sleep(1.5)
        width = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width  # nothing sticks out sideways
        rects = driver.execute_script(
            """return ['img.video', '#events'].map(s => document.querySelector(s).getBoundingClientRect().toJSON())"""
        )
        assert rects[0]["right"] <= width[1] and rects[1]["top"] >= rects[0]["bottom"]  # one column: the events below the video
        save_page(driver, shots / "page-phone.png")
    finally:
        driver.quit()


def test_a_camera_that_drops_and_comes_back(world):
    service, camera = world["service"], world["camera"]
    wait_for(lambda: service.source("cam")["frames"] > 10, 60, "the camera's frames")
    camera.stop()
    down = wait_for(lambda: (s := service.source("cam"))["state"] != "running" and s, 30, "the outage to show")
    assert down["outages"] and down["outages"][-1]["end"] is None
    video_frames = service.source("0")["frames"]
    time.sleep(3)
    assert service.source("0")["frames"] > video_frames  # the other source goes on meanwhile
    camera.start()
    back = wait_for(
        lambda: (s := service.source("cam"))["state"] == "running" and s["reconnects"] >= 1 and s, 60, "the camera to come back"
    )
    frames = back["frames"]
    wait_for(lambda: service.source("cam")["frames"] > frames + 5, 30, "the camera's frames again")
    assert back["outages"][-1]["end"] is not None
    assert sum("source cam" in line and "is down" in line for _, line in service.lines) == len(back["outages"])  # one log line per outage
    everything = service.log() + json.dumps(service.status()) + service.get("/api/events?limit=1000")[2].decode()
    assert PASSWORD not in everything and "viewer:***@" not in everything and "***@127.0.0.1" in everything


def test_mqtt_events_sent_while_acknowledgements_arrive_never_lock_up(tmp_path):
    """Events sent back to back while the broker's acknowledgements of earlier ones come in on
    paho's network thread, and the status read meanwhile: every send returns, every event is
    counted delivered once, and the status never waits (holding the sink's lock over publish()
    deadlocked against the acknowledgement callback, and took /api/status with it)."""
    from pipeline.serve.transports import Mqtt

    broker = Broker(tmp_path)
    sink = Mqtt(f"mqtt://127.0.0.1:{broker.port}", prefix="deadlock-test")
    rounds, burst, done, reads = 6, 500, threading.Event(), []  # a burst stays within the sink's queue of 1,000
    count = rounds * burst
    try:
        wait_for(lambda: sink.connected, 20, "the sink to connect")

        def send_all() -> None:
            for r in range(rounds):
                for k in range(burst):
                    sink.send({"source": "0", "id": r * burst + k})
                deadline = time.monotonic() + 10
                while sink.status()["pending"] > burst // 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
            done.set()

        def read_status() -> None:
            while not done.is_set():
                started = time.monotonic()
                sink.status()
                reads.append(time.monotonic() - started)

        threads = [threading.Thread(target=send_all, daemon=True), threading.Thread(target=read_status, daemon=True)]
        for thread in threads:
            thread.start()
        assert done.wait(60), "sending locked up"  # (the status would wait for good too: not asked here)
        wait_for(lambda: (st := sink.status())["pending"] == 0 and st["delivered"] == count and st, 30, "every event acknowledged")
        assert sink.status()["dropped"] == 0 and len(reads) > 0 and max(reads) < 1.0
    finally:
        if done.is_set():  # a locked-up sink would lock up its close too
            sink.close(2.0)
        broker.stop()


def test_the_broker_goes_away_and_comes_back(world):
    service, broker, subscriber = world["service"], world["broker"], world["subscriber"]
    broker.stop()
    stopped = time.monotonic()
    wait_for(lambda: not next(s for s in service.status()["sinks"] if s["kind"] == "mqtt")["connected"], 20, "the service to notice")
    frames = service.source("0")["frames"]
    time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
    assert service.source("0")["frames"] > frames  # the service never stopped
    seen = len(subscriber.messages)
    broker.start()

    def mqtt() -> dict:
        return next(s for s in service.status()["sinks"] if s["kind"] == "mqtt")

    wait_for(lambda: mqtt()["connects"] >= 2, 60, "the service to reconnect")
    wait_for(lambda: [p for _, t, p, _ in subscriber.messages[seen:] if t.endswith("/events")], 60, "events after the broker came back")
    fired = service.status()["events"]["fired"]
    # what fired while the broker was away waited in the queue and was acknowledged since: none lost
    wait_for(lambda: (m := mqtt())["pending"] == 0 and m["delivered"] >= fired, 30, "every event to be acknowledged")
    assert mqtt()["dropped"] == 0
    assert service.proc.poll() is None


def test_sigterm_stops_within_5_s_leaving_complete_files(world):
    service, folder, subscriber = world["service"], world["folder"], world["subscriber"]
    fired = service.status()["events"]["fired"]
    started = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    code = service.proc.wait(30)
    took = time.monotonic() - started
    print(f"stopped in {took:.2f} s")
    assert code == 0, service.log()
    assert took < 5.0
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    ids = [e["id"] for e in events]
    assert len(events) >= fired and ids == list(range(ids[0], ids[0] + len(ids)))
    assert not [p.name for p in folder.rglob("*") if ".tmp" in p.name or ".partial" in p.name]
    snapshots = [p for p in (folder / "snapshots").rglob("*.jpg")]
    assert snapshots and all(cv2.imread(str(p)) is not None for p in snapshots)
    wait_for(lambda: subscriber.last("actionlstm/status") == b"offline", 10, "the service to say offline")
    assert "Traceback" not in service.log()
