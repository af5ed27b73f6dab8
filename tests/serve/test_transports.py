"""The service's event snapshots and event sinks, each against the real thing: files on disk, a real
HTTP receiver on loopback (mosquitto's tests are in test_serve.py)."""

import json
import time

import numpy as np

from pipeline.serve.snapshots import SnapshotStore, mark_unseen
from pipeline.serve.transports import JsonlEvents, Webhook

IMAGE = np.zeros((48, 64, 3), np.uint8)


def test_a_snapshot_for_someone_out_of_sight_outlines_where_they_were_last_seen():
    image = np.full((240, 320, 3), 50, np.uint8)
    marked = mark_unseen(image, [100.0, 80.0, 200.0, 220.0], "#3 fall, last seen here")
    assert (image == 50).all()  # the frame itself (shared with the video and the page) is not drawn on
    changed = (marked != image).any(-1)
    assert changed[80, 100:201].all() and changed[220, 100:201].all() and changed[80:221, 100].all() and changed[80:221, 200].all()
    assert not changed[120:200, 120:180].any()  # an outline: the person's place stays visible
    assert changed[:80, 100:].any() and not changed[:, :95].any()  # the caption above the box, not elsewhere
    edge = mark_unseen(image, [-40.0, 200.0, 500.0, 400.0], "#4")  # a box past the frame is drawn at its border
    assert (edge != image).any(-1)[239, :].all()


def test_snapshot_folder_keeps_the_newest_and_goes_when_temporary(tmp_path):
    store = SnapshotStore(None, keep=3)
    for event_id in range(1, 6):
        store.save(event_id, IMAGE)
    assert [store.path(i) is not None for i in range(1, 6)] == [False, False, True, True, True]
    assert sorted(p.name for p in store.folder.iterdir()) == ["event-3.jpg", "event-4.jpg", "event-5.jpg"]
    assert store.path(5).read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    store.close()
    assert not store.folder.exists()
    kept = SnapshotStore(tmp_path, keep=2)
    kept.save(1, IMAGE)
    kept.close()
    assert kept.folder.parent == tmp_path and (kept.folder / "event-1.jpg").is_file()  # a given folder stays


def test_jsonl_events_append_whole_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": 1, "earlier": true}\n')
    sink = JsonlEvents(path)
    sink.send({"id": 1})
    assert path.read_text().splitlines()[-1] == '{"id": 1}'  # flushed at once, before close
    sink.send({"id": 2})
    sink.close(1.0)
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [1, 1, 2] and sink.delivered == 2


def test_webhook_posts_each_event_with_basic_auth_from_the_url(receiver):
    sink = Webhook(f"http://user:secret@127.0.0.1:{receiver.server_port}/hook")
    assert "secret" not in sink.target and "secret" not in json.dumps(sink.status())
    for k in range(3):
        sink.send({"id": k})
    deadline = time.monotonic() + 10
    while len(receiver.received) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    sink.close(1.0)
    assert [body["id"] for body, _ in receiver.received] == [0, 1, 2]
    assert receiver.received[0][1] == "Basic dXNlcjpzZWNyZXQ="  # user:secret
    assert (sink.delivered, sink.dropped) == (3, 0)


def test_a_hanging_receiver_never_blocks_the_sender_and_what_overflows_is_counted(receiver):
    receiver.hang.set()
    sink = Webhook(f"http://127.0.0.1:{receiver.server_port}/hook", queue_size=5)
    started = time.perf_counter()
    for k in range(50):
        sink.send({"id": k})
    assert time.perf_counter() - started < 0.1  # 50 sends while the receiver hangs
    assert sink.dropped >= 50 - 5 - 1  # at most one in flight and five queued
    assert sink.status()["queued"] <= 5
    receiver.hang_released.set()
    sink.close(2.0)
    assert sink.delivered + sink.dropped == 50


def test_a_dead_receiver_is_retried_then_counted(receiver, monkeypatch):
    monkeypatch.setattr("pipeline.serve.transports.WEBHOOK_RETRY_SECONDS", (0.05, 0.05))
    port = receiver.server_port
    receiver.shutdown()
    receiver.server_close()
    sink = Webhook(f"http://127.0.0.1:{port}/hook")
    sink.send({"id": 1})
    deadline = time.monotonic() + 10
    while sink.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    sink.close(0.5)
    assert (sink.delivered, sink.dropped, sink.failures) == (0, 1, 3)  # one try and two retries
    assert sink.last_error
