"""`actionlstm serve` started as a user starts it, and the clients the service tests share."""

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import CLI, free_port


def wait_for(condition, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Service:
    """`actionlstm serve` as a user starts it, its stderr log collected line by line with times."""

    def __init__(self, args: list, cwd: Path, token: str | None = None):
        self.port = free_port()
        self.token = token
        self.launched = time.monotonic()
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [*CLI, "serve", *map(str, args), "--port", str(self.port)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.stdout: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True).start()
        self.serving = wait_for(
            lambda: next((t for t, line in self.lines if "serving on" in line), None) or self._dead(), 300, "the service to start"
        )
        self.base = f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _read(stream, into: list) -> None:
        for line in stream:
            into.append((time.monotonic(), line.rstrip("\n")) if into is not None else line)

    def _dead(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the service exited with {self.proc.returncode}: {self.log()}")
        return None

    def log(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def get(
        self,
        path: str,
        token: str | None = "",
        headers: dict | None = None,
        method: str = "GET",
        data: bytes | None = None,
        timeout: float = 10,
    ):
        """(status, headers, body) of one request, with the service's token unless `token` says otherwise."""
        token = self.token if token == "" else token
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def status(self) -> dict:
        code, _, body = self.get("/api/status")
        assert code == 200, body
        return json.loads(body)

    def source(self, name: str) -> dict:
        return next(s for s in self.status()["sources"] if s["name"] == name)


def open_stream(port: int, path: str, token: str, headers: str = "") -> tuple[socket.socket, bytes]:
    """A raw HTTP client that sends a GET and reads only the response head: a client that stops reading."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n{headers}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    return sock, head


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed `sock` within the socket's timeout (what it still sends is read past)."""
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
