"""Does watching slow the service? Frame rate of `actionlstm serve` with 0 and with N page clients.

    python scripts/bench_serve.py ../shared/data/videos/basketball_2people.mp4 --checkpoint CKPT --clients 20

Starts the real service (`serve VIDEO --loop`, replayed at the video's own rate), lets it warm up,
then measures the frames it processes per second from `/api/status` in three back-to-back phases:
no client, N clients each streaming the annotated video (MJPEG) over loopback as fast as they can
read, and no client again (the machine's speed drifts; the two quiet phases bracket it). Prints
each phase's rate, what the clients received, and the ratio of the watched phase to the quiet ones.
A video faster than the CPU pipeline (the 30 fps basketball clip here) is the honest test: a 10 fps
one is paced by its own clock and shows no difference either way.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "actionlstm"]
TOKEN = "bench-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StreamClients:
    """`count` clients on loopback, each reading one long-lived stream (the video's MJPEG, or the
    event stream) as fast as it can and counting what it got; raw sockets, so the readers cost the
    machine little more than the kernel's copying."""

    def __init__(self, port: int, count: int, path: str = "/api/sources/0/stream.mjpg", token: str = TOKEN):
        self.port, self.path, self.token = port, path, token
        self.frames = [0] * count
        self.bytes = [0] * count
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._read, args=(k,), daemon=True) for k in range(count)]
        for thread in self._threads:
            thread.start()

    def _read(self, k: int) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n\r\n".encode())
                    while not self._stop.is_set():
                        data = sock.recv(1 << 16)
                        if not data:
                            break
                        self.bytes[k] += len(data)
                        self.frames[k] += data.count(b"--frame\r\n")
            except OSError:
                self._stop.wait(0.5)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=6)


def status(port: int) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def start_service(video: str, checkpoint: str, port: int, extra: list[str], log: Path) -> subprocess.Popen:
    command = [
        *CLI,
        "serve",
        video,
        "--loop",
        "--checkpoint",
        checkpoint,
        "--token",
        TOKEN,
        "--port",
        str(port),
        "--max-clients",
        "64",
        *extra,
    ]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.monotonic() + 600
    while "serving on" not in log.read_text(errors="replace"):
        if child.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"error: the service did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return child


def phase(port: int, seconds: float, clients: int) -> dict:
    """Frames processed per second over `seconds` with `clients` video clients attached."""
    attached = StreamClients(port, clients) if clients else None
    time.sleep(min(3.0, seconds / 4))  # the clients connected and streaming before counting starts
    first, t0 = status(port)["sources"][0]["frames"], time.monotonic()
    received0 = sum(attached.frames) if attached else 0
    time.sleep(seconds)
    last, t1 = status(port)["sources"][0]["frames"], time.monotonic()
    result = {"clients": clients, "fps": round((last - first) / (t1 - t0), 2)}
    if attached:
        per_client = (sum(attached.frames) - received0) / clients / (t1 - t0)
        result["received_fps_per_client"] = round(per_client, 2)
        attached.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Other arguments are passed on to `actionlstm serve`.")
    parser.add_argument("video")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    args, extra = parser.parse_known_args()
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_serve_{port}.log"
    child = start_service(args.video, args.checkpoint, port, extra, log)
    try:
        time.sleep(args.warmup)
        phases = [phase(port, args.seconds, n) for n in (0, args.clients, 0)]
    finally:
        child.send_signal(signal.SIGTERM)  # as systemd stops it (a shell's background job ignores SIGINT)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            raise SystemExit("error: the service did not stop within 30 s of SIGTERM") from None
    quiet = (phases[0]["fps"] + phases[2]["fps"]) / 2
    ratio = phases[1]["fps"] / quiet if quiet else float("nan")
    for p in phases:
        extra_text = f", each client received {p['received_fps_per_client']:.1f} frames/s" if "received_fps_per_client" in p else ""
        print(f"{p['clients']:>3} clients: {p['fps']:6.2f} frames/s processed{extra_text}")
    print(f"with {args.clients} clients / without: {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.10 else 'NOT within'} 10%)")
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"video": args.video, "phases": phases, "ratio": ratio, "load": load}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
