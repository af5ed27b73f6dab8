"""`actionlstm serve` on a hostile home network, end to end and all real: a service restarted on
the files of an earlier run, a looped file beside an IP camera that accepts and never answers
(with its credentials in the query), a webhook whose receiver redirects elsewhere (its secret in
the path), the token in a file, and clients that hold sockets open without a request.

The tests share one service and run in file order; the last one stops it with SIGTERM.
"""

import json
import signal
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import run_cli, start_receiver
from tests.serve.service import Service, closed_by_server, open_stream, wait_for

pytestmark = [pytest.mark.serve, pytest.mark.video]
TOKEN = "hostile-token-0123456789"
SECRET = "S3cretPa55"  # in the camera's user info and query, and the webhook's user info and query
HOOK_ID = "hook-id-8f3a1c"  # the webhook's path: Home Assistant's /api/webhook/<id> is its secret
ALLOWED = "cams.example.org"
AHEAD = int(time.time() * 1000) + 3_600_000  # the last id of an earlier run whose clock was an hour ahead
REQUEST_TIMEOUT = 2.0


class SilentCamera:
    """Accepts every connection and never answers: an IP camera hung while booting."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                self.held.append(self.server.accept()[0])
        except OSError:  # closed
            pass

    def close(self) -> None:
        self.server.close()
        for sock in self.held:
            sock.close()


class Redirecting:
    """A webhook receiver that answers every POST with a redirect to `trap` (a receiver that records
    whatever reaches it)."""

    def __init__(self, trap):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self.server.posts += 1
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{trap.server_port}/hook")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.posts = 0
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, trained_checkpoint, short_video):
    folder = tmp_path_factory.mktemp("hostile")
    events, snapshots = folder / "events.jsonl", folder / "snapshots"
    earlier = [{"id": AHEAD - 1, "source": "clip", "label": "earlier"}, {"id": AHEAD, "source": "clip", "label": "earlier"}]
    events.write_text("".join(json.dumps({**e, "snapshot": f"/api/events/{e['id']}/snapshot.jpg"}) + "\n" for e in earlier))
    snapshots.mkdir()
    cv2.imwrite(str(snapshots / f"event-{AHEAD}.jpg"), np.full((48, 64, 3), 200, np.uint8))
    token_file = folder / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    camera, trap = SilentCamera(), start_receiver()
    redirecting = Redirecting(trap)
    hook = f"http://hookuser:{SECRET}@127.0.0.1:{redirecting.server.server_port}/api/webhook/{HOOK_ID}?key={SECRET}"
    service = Service(
        [
            f"clip={short_video}",
            f"cam=rtsp://admin:{SECRET}@127.0.0.1:{camera.port}/live?user=admin&pwd={SECRET}",
            "--loop",
            "--checkpoint",
            trained_checkpoint,
            "--device",
            "cpu",
            "--min-prob",
            "0",
            "--alert",
            "*>=0:1s",
            "--webhook",
            hook,
            "--token-file",
            token_file,
            "--allow-host",
            ALLOWED,
            "--events",
            events,
            "--snapshot-dir",
            snapshots,
            "--max-snapshots",
            3,
            "--request-timeout",
            REQUEST_TIMEOUT,
        ],
        cwd=folder,
        token=TOKEN,
    )
    yield {"service": service, "folder": folder, "trap": trap, "redirecting": redirecting.server, "camera": camera.port}
    if service.proc.poll() is None:
        service.proc.kill()
        service.proc.wait()
    camera.close()
    trap.shutdown()
    redirecting.server.shutdown()


def frames_of(service: Service, name: str) -> int:
    return service.source(name)["frames"]


def test_the_looped_file_never_waits_for_the_camera_that_hangs(hostile):
    service = hostile["service"]
    replays = service.source("clip")["replays"]
    seen, began = [], time.monotonic()
    while time.monotonic() - began < 6.0:  # past the end of the 4 s clip, while the camera's openings hang
        seen.append((time.monotonic(), frames_of(service, "clip")))
        time.sleep(0.25)
    moved = [t for (t, n), (_, before) in zip(seen[1:], seen) if n > before]
    gaps = np.diff([began, *moved, time.monotonic()])
    assert gaps.max() < 1.5, f"the clip showed no new frame for {gaps.max():.1f} s"
    assert service.source("clip")["replays"] >= replays + 1
    cam = service.source("cam")
    assert cam["state"] in ("connecting", "reconnecting") and "no answer from 127.0.0.1" in cam["outages"][-1]["reason"]


def test_no_secret_shows_in_the_status_the_metrics_the_events_or_the_log(hostile):
    service = hostile["service"]
    wait_for(lambda: service.status()["events"]["fired"] > 0, 30, "an event")
    status = service.status()
    cam = service.source("cam")
    assert cam["source"] == f"rtsp://***@127.0.0.1:{hostile['camera']}/live?user=***&pwd=***"
    assert [s["target"] for s in status["sinks"] if s["kind"] == "webhook"] == [f"http://127.0.0.1:{hostile['redirecting'].server_port}/…"]
    shown = [json.dumps(status), service.get("/metrics")[2].decode(), service.get("/api/events?limit=1000")[2].decode(), service.log()]
    for text in shown:
        assert not any(secret in text for secret in (SECRET, HOOK_ID, "hookuser", "admin")), text[:2000]


def test_event_ids_go_on_from_the_earlier_runs_files(hostile):
    service = hostile["service"]
    wait_for(lambda: service.status()["events"]["fired"] >= 4, 60, "four events")
    events = json.loads(service.get("/api/events?limit=1000")[2])
    ids = [e["id"] for e in events]
    assert ids[:2] == [AHEAD - 1, AHEAD] and ids[2] > AHEAD and ids == sorted(set(ids))  # the earlier run's first, on the page too
    kept = sorted(p.name for p in (hostile["folder"] / "snapshots").iterdir())
    assert len(kept) == 3 and f"event-{AHEAD}.jpg" not in kept  # --max-snapshots counts the earlier run's
    assert service.get(f"/api/events/{ids[-1]}/snapshot.jpg")[0] == 200 and service.get(f"/api/events/{AHEAD}/snapshot.jpg")[0] == 404


def test_the_event_stream_resumes_after_last_event_id_not_from_since(hostile):
    service = hostile["service"]
    ids = [e["id"] for e in json.loads(service.get("/api/events?limit=1000")[2])]
    sock, head = open_stream(service.port, "/api/events/stream?since=0", TOKEN, f"Last-Event-ID: {ids[-2]}\r\n")
    sock.settimeout(10)
    data = b""
    while b"\nid: " not in data and b"\n\nid: " not in data and not data.startswith(b"id: "):
        data += sock.recv(4096)
    sock.close()
    first = int(data.split(b"id: ", 1)[1].split(b"\n", 1)[0])
    assert b" 200 " in head.split(b"\r\n")[0] and first == ids[-1]  # the next after the one seen, not all since 0


def test_names_other_than_the_allowed_ones_are_refused(hostile):
    service = hostile["service"]
    assert service.get("/api/status", headers={"Host": ALLOWED})[0] == 200
    code, headers, body = service.get("/api/status", headers={"Host": "rebind.attacker.example"})
    assert code == 400 and b"--allow-host" in body and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    refused = "refused a request for host name 'rebind.attacker.example'"
    wait_for(lambda: refused in service.log(), 10, "the refusal in the service's log")  # read from its output by a thread


def test_idle_sockets_neither_lock_the_owner_out_nor_slow_a_source(hostile):
    service = hostile["service"]
    before = frames_of(service, "clip")
    time.sleep(2.0)
    rate_before = (frames_of(service, "clip") - before) / 2.0
    silent = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(200)]
    halves = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(50)]
    for sock in halves:
        sock.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    began = time.monotonic()
    for _ in range(3):
        assert service.get("/api/status")[0] == 200  # was 503 from the 97th socket on
    assert time.monotonic() - began < 2.0
    held = frames_of(service, "clip")
    time.sleep(REQUEST_TIMEOUT - 0.2)
    rate_held = (frames_of(service, "clip") - held) / (REQUEST_TIMEOUT - 0.2)
    assert rate_held >= 0.85 * rate_before, (rate_before, rate_held)
    for sock in silent + halves:
        sock.settimeout(3.0)
    assert all(closed_by_server(sock) for sock in silent + halves)


def test_a_hostile_rules_file_token_file_or_folder_is_one_line(tmp_path):
    huge = tmp_path / "rules.yaml"
    huge.write_text("alerts:\n  - label: fall\n    prob: " + "9" * 400 + "\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("alerts:\n  - " + "[" * 5000 + "]" * 5000 + "\n")
    empty = tmp_path / "token"
    empty.write_text("\n")
    for args, message in [
        (["--rules", huge], "prob is a number far too large"),
        (["--rules", deep], "nested too deeply"),
        (["--token-file", empty], "is empty"),
        (["--token-file", tmp_path / "none"], "not found"),
        (["--token", "abcdefgh12", "--token-file", empty], "give one"),
        (["--snapshot-dir", empty], "is a file, not a folder"),
        (["--clip-dir", empty / "clips"], "cannot write to"),
    ]:
        proc = run_cli("serve", "0", "--checkpoint", "falls", *args)
        assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_sigterm_during_webhook_retries_loses_no_count(hostile):
    service, folder = hostile["service"], hostile["folder"]
    assert hostile["redirecting"].posts >= 1 and hostile["trap"].received == []  # the redirect was never followed
    webhook = next(s for s in service.status()["sinks"] if s["kind"] == "webhook")
    assert webhook["delivered"] == 0 and webhook["failed_attempts"] >= 1 and "redirects are not followed" in webhook["last_error"]
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(30) == 0, service.log()
    written = [json.loads(line) for line in Path(folder / "events.jsonl").read_text().splitlines()]
    fired = len([e for e in written if e["id"] > AHEAD])
    line = next(line for _, line in service.lines if "event deliveries" in line)
    delivered, dropped = (int(word) for word in line.replace(",", " ").split() if word.isdigit())
    assert delivered + dropped == 2 * fired  # each event to the file (delivered) and the webhook (dropped), once
    assert "Traceback" not in service.log()
