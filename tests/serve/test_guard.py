"""The web service's front door on the real server (uvicorn with the service's own protocol and
guard, real sockets), without a pipeline behind it: names a rebinding page would use, sockets that
never send a request, heads sent by halves, and the headers of every answer."""

import socket
import threading
import time

import pytest

from pipeline.serve.app import create_app
from pipeline.serve.guard import HostCheck
from pipeline.serve.hub import Hub
from pipeline.serve.server import http_server, listen
from pipeline.serve.snapshots import SnapshotStore
from tests.serve.service import closed_by_server

pytestmark = pytest.mark.serve
TOKEN = "guard-token-0123456789"
DEADLINE = 1.0  # --request-timeout of these servers


@pytest.fixture(scope="module")
def servers():
    """Two real servers: one with --no-auth on 127.0.0.1, one with a token and --allow-host."""
    started = []
    for token, allow in [(None, []), (TOKEN, ["cam.example.org", "*.home.arpa"])]:
        hub = Hub([], None, [], SnapshotStore(None), {"checkpoint": "none"})
        app = create_app(hub, token, HostCheck("127.0.0.1", token is not None, allow), log=lambda line: None)
        server = http_server(app, DEADLINE, max_connections=60)
        sock = listen("127.0.0.1", 0)
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        started.append((server, sock.getsockname()[1], hub))
    yield {"open": started[0][1], "token": started[1][1]}
    for server, _, hub in started:
        server.should_exit = True
        hub.snapshots.close()


def ask(port: int, head: str) -> tuple[int, dict, bytes]:
    """One raw request (`head` without its blank line) on a fresh socket: status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode("latin-1") + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_part, _, body = data.partition(b"\r\n\r\n")
    lines = head_part.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def get(port: int, path: str, host: str | None = "127.0.0.1", token: str | None = None, version: str = "1.1") -> tuple[int, dict, bytes]:
    lines = [f"GET {path} HTTP/{version}"] + ([f"Host: {host}"] if host is not None else [])
    lines += [f"Authorization: Bearer {token}"] if token else []
    return ask(port, "\r\n".join(lines) + "\r\n")


@pytest.mark.parametrize(
    "host, code",
    [
        ("127.0.0.1", 200),
        ("localhost", 200),
        ("[::1]:8321", 200),
        ("LOCALHOST.:8321", 200),
        ("attacker.example.com", 400),  # what a DNS-rebinding page sends
        ("127.0.0.1.attacker.example.com", 400),
        ("192.168.1.20", 400),  # --no-auth answers on loopback only
        ("[::1", 400),
    ],
)
def test_without_a_token_only_loopback_names_are_answered(servers, host, code):
    status, _, body = get(servers["open"], "/api/status", host)
    assert status == code, body
    if code == 400:
        assert b"sources" not in body


def test_http_1_0_without_a_host_is_answered(servers):
    assert get(servers["open"], "/api/status", host=None, version="1.0")[0] == 200


@pytest.mark.parametrize(
    "host, code",
    [
        ("127.0.0.1:9", 200),
        ("192.168.1.20", 200),  # an address: no name to rebind
        ("cam.example.org", 200),  # --allow-host
        ("nas.home.arpa", 200),  # --allow-host '*.home.arpa'
        (socket.gethostname(), 200),  # this machine's own name
        ("evil.example.org", 400),
        ("home.arpa.evil.example", 400),
    ],
)
def test_with_a_token_the_allowed_names_and_addresses_are_answered(servers, host, code):
    assert get(servers["token"], "/api/status", host, TOKEN)[0] == code


def test_every_answer_carries_the_security_headers(servers):
    port = servers["token"]
    answers = [
        get(port, "/", token=TOKEN),
        get(port, "/api/status"),  # 401
        get(port, "/no/such/page", token=TOKEN),  # 404
        get(port, "/api/status", "evil.example.org", TOKEN),  # 400
        ask(port, "POST /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"),  # 405
    ]
    assert [code for code, _, _ in answers] == [200, 401, 404, 400, 405]
    for _, headers, _ in answers:
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"


def test_the_cookie_holds_a_session_value_not_the_token(servers):
    port = servers["token"]
    code, headers, _ = get(port, f"/?token={TOKEN}")
    assert code == 303 and headers["location"] == "/"
    name, _, rest = headers["set-cookie"].partition("=")
    value = rest.split(";")[0]
    assert name == "actionlstm_session" and TOKEN not in value and len(value) == 64
    assert "httponly" in headers["set-cookie"].lower() and "samesite=strict" in headers["set-cookie"].lower()
    for cookie, answer in [(value, 200), (TOKEN, 401), (value[:-1] + "0", 401)]:
        assert ask(port, f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {name}={cookie}\r\n")[0] == answer


@pytest.mark.parametrize(
    "path",
    [
        "/api/events/%D9%A1%D9%A2/snapshot.jpg",  # Arabic-Indic digits: int() would take them
        "/api/events/%C2%B2/snapshot.jpg",  # a superscript two: isdigit() says yes, int() fails
        "/api/events/" + "9" * 4400 + "/snapshot.jpg",  # more digits than int() converts
        "/api/sources/" + "9" * 4400 + "/stream.mjpg",
        "/api/sources/-1/snapshot.jpg",
        "/api/events?since=" + "9" * 4400,
        "/api/events?since=%D9%A1",
        "/api/events?limit=1_0",
    ],
)
def test_hostile_ids_are_a_400_never_a_500(servers, path):
    code, _, body = get(servers["token"], path, token=TOKEN)
    assert code == 400 and b"whole number" in body


@pytest.mark.parametrize("last", ["9" * 4400, "\u00b2", "-5", "1e3"])
def test_a_hostile_last_event_id_is_a_400(servers, last):
    head = f"GET /api/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nLast-Event-ID: {last}\r\n"
    assert ask(servers["token"], head)[0] == 400


def test_silent_and_half_sent_requests_are_closed_and_never_lock_the_owner_out(servers):
    port = servers["token"]
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    halves = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    for sock in halves:
        sock.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
    began = time.monotonic()
    for _ in range(5):  # 130 sockets held, 60 allowed: the owner is answered, the oldest idle ones gave way
        assert get(port, "/api/status", token=TOKEN)[0] == 200
    assert time.monotonic() - began < 2.0
    for sock in silent + halves:
        sock.settimeout(DEADLINE + 3)
    assert all(closed_by_server(sock) for sock in silent + halves)
    assert time.monotonic() - began < DEADLINE + 3


def test_a_kept_alive_connection_has_the_deadline_for_its_next_head(servers):
    port = servers["token"]
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE + 3) as sock:
        sock.sendall(f"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        began = time.monotonic()
        for piece in (b"GET /api/status HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n"):  # then a byte now and then
            sock.sendall(piece)
            time.sleep(DEADLINE / 3)
        assert closed_by_server(sock) and time.monotonic() - began < DEADLINE + 2
