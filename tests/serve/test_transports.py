"""The service's event snapshots and event sinks, each against the real thing: files on disk, a real
HTTP receiver on loopback (mosquitto's tests are in test_serve.py)."""

import http.server
import json
import threading
import time

import numpy as np

from pipeline.serve.history import first_event_id, recent_events
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
    assert kept.folder == tmp_path and (tmp_path / "event-1.jpg").is_file()  # a given folder stays
    (tmp_path / "event-12x.jpg").write_bytes(b"not ours")
    again = SnapshotStore(tmp_path, keep=2)  # the next start: one folder, the bound counts the earlier run's
    assert again.kept_ids == [1] and again.path(1) is not None
    again.save(2, IMAGE)
    again.save(3, IMAGE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["event-12x.jpg", "event-2.jpg", "event-3.jpg"]


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


def _answering(handler: type) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_redirect_is_a_failed_delivery_and_its_target_never_hears_of_it(monkeypatch):
    monkeypatch.setattr("pipeline.serve.transports.WEBHOOK_RETRY_SECONDS", (0.05, 0.05))

    class Trap(http.server.BaseHTTPRequestHandler):  # where a receiver points: records whatever reaches it
        def do_GET(self):
            self.server.requests.append((self.command, self.headers.get("Authorization")))
            self.send_response(204)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    trap = _answering(Trap)

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.server.requests.append(self.path)
            self.send_response(302 if len(self.server.requests) % 2 else 307)
            self.send_header("Location", f"http://127.0.0.1:{trap.server_port}/elsewhere")
            self.end_headers()

        def log_message(self, *args):
            pass

    redirecting = _answering(Redirecting)
    sink = Webhook(f"http://user:secret@127.0.0.1:{redirecting.server_port}/api/webhook/s3cr3t-id?key=q")
    sink.send({"id": 1})
    deadline = time.monotonic() + 10
    while sink.dropped == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    sink.close(0.5)
    assert (sink.delivered, sink.dropped, sink.failures) == (0, 1, 3) and len(redirecting.requests) == 3
    assert trap.requests == []  # neither the event nor the basic-auth header went where the redirect pointed
    assert "302" in sink.last_error or "307" in sink.last_error
    shown = json.dumps(sink.status())
    assert sink.target == f"http://127.0.0.1:{redirecting.server_port}/…" and not any(s in shown for s in ("secret", "s3cr3t", "key"))
    for server in (trap, redirecting):
        server.shutdown()


def test_an_event_in_retry_when_the_service_stops_is_counted_dropped(receiver, monkeypatch):
    monkeypatch.setattr("pipeline.serve.transports.WEBHOOK_RETRY_SECONDS", (30.0,))
    port = receiver.server_port
    receiver.shutdown()
    receiver.server_close()
    sink = Webhook(f"http://127.0.0.1:{port}/hook")
    sink.send({"id": 1})
    sink.send({"id": 2})
    deadline = time.monotonic() + 10
    while sink.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    sink.close(0.2)  # SIGTERM while the first waits for its retry, the second in the queue
    assert (sink.delivered, sink.dropped) == (0, 2)


def test_a_run_takes_ids_above_every_earlier_one_and_above_the_clock(tmp_path):
    path = tmp_path / "events.jsonl"
    assert recent_events(path) == [] and first_event_id([], [], now=1_700_000_000.0) == 1_700_000_000_000
    ahead = 1_800_000_000_000  # from a run whose clock was ahead
    lines = [json.dumps({"id": ahead - 1}), "not json", json.dumps({"id": "7"}), '{"id": ' + "9" * 5000 + "}", json.dumps({"id": ahead})]
    path.write_text("\n".join(lines) + '\n{"id": 12')  # and a line torn by a power cut
    earlier = recent_events(path)
    assert [e["id"] for e in earlier] == [ahead - 1, ahead] and recent_events(path, 1) == earlier[1:]
    assert first_event_id(earlier, [ahead + 5], now=1_700_000_000.0) == ahead + 6  # a snapshot of a later one
    assert first_event_id(earlier, [], now=1_900_000_000.0) == 1_900_000_000_000
