"""Soak test: does a long live run keep its memory, file descriptors and threads flat?

    python scripts/soak.py ../shared/data/videos/exercise_3people.avi --minutes 30 [--checkpoint CKPT] [--json soak.json]
    python scripts/soak.py ../shared/data/videos/exercise_3people.avi --serve --clients 5 --minutes 30

A leak of a few kB per frame is invisible in a one-minute test and fatal in a day-long run, so this
runs the real console command `actionlstm run SOURCE --checkpoint CKPT --no-show --realtime` in a child
process (the code a user runs, independent of the pipeline's internals) and samples its process tree
with psutil every few seconds. A video file is first written out, looped, into a temporary file a
minute longer than --minutes at its own frame rate, so the run is fed like a camera for the whole time;
a camera index or stream URL is used as it is. Sampling starts when the CLI reports its source open
(its "source ...: WxH at N fps" line; model loading is not the steady state) and the run is stopped
with Ctrl-C (the service with SIGTERM) --minutes later, so its shutdown is not measured either. After a warm-up (buffers
filling, allocator pools growing: the first --warmup fraction of the samples) a straight line is
fitted to each series and its slope printed per hour; RSS growth is also given in % of the RSS at the
end of the warm-up. Exit status 1 when that exceeds --target (default 1 %/hour) or the run failed.
Extra arguments (e.g. `--device cuda --pose-backend torch`) are passed on to `actionlstm run`.

`--serve` soaks the service instead: `actionlstm serve SOURCE --loop` (a file replayed by the service
itself), with --clients page clients streaming its video, one following its event stream and one
polling its status and metrics every two seconds, all the time; sampling starts at its "serving on"
line. Extra arguments go to `actionlstm serve` (say `--alert '*>=0:1s' --min-prob 0`, so events fire).
"""

import argparse
import json
import math
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import psutil
from bench_serve import TOKEN, StreamClients, free_port, status

ROOT = Path(__file__).resolve().parents[1]
# The console command of this checkout, run from its root so the tree's code is what is measured.
CLI = [sys.executable, "-m", "actionlstm"]
# What `actionlstm run` prints on stderr once its source is open and frames start to flow ...
SOURCE_OPEN = re.compile(r"source .*: \d+x\d+ at [\d.]+ fps")
# ... and what `actionlstm serve` prints once it takes requests.
SERVING = re.compile(r"serving on http://")


@dataclass
class Sample:
    seconds: float  # since the source opened
    rss_mb: float
    fds: int
    threads: int
    processes: int


def loop_video(source: Path, minutes: float, out: Path) -> tuple[float, int]:
    """Write `source` over and over into `out` until it lasts `minutes` at the source's frame rate.
    The CLI has no looping option (and should not need one): a long file played with --realtime is
    what a camera delivers, with the real decode path. Returns (fps, frames written)."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    ok, image = capture.read()
    if not ok:
        raise SystemExit(f"error: cannot read a frame from {source}")
    height, width = image.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise SystemExit(f"error: cannot write {out}")
    wanted = math.ceil(minutes * 60 * fps)
    for _ in range(wanted):
        if not ok:  # end of one pass: start the next
            capture.release()
            capture = cv2.VideoCapture(str(source))
            ok, image = capture.read()
        writer.write(image)
        ok, image = capture.read()
    capture.release()
    writer.release()
    return fps, wanted


def quick_checkpoint(folder: Path) -> Path:
    """A small checkpoint trained on the built-in sample data: the soak measures the pipeline's
    resources, which do not depend on what the classifier learned, only on its shape."""
    data, checkpoint = folder / "sample.pkl", folder / "soak_model.pth"
    for args in (["sample", data], ["train", "--data", data, "--epochs", "2", "--out", checkpoint, "--no-cache"]):
        done = subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"error: actionlstm {args[0]} failed:\n{done.stderr[-2000:]}")
    return checkpoint


class Poller:
    """A page's status poll, plus a Prometheus scrape, every two seconds."""

    def __init__(self, port: int):
        self.port, self.requests, self.failures = port, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(2.0):
            try:
                status(self.port)
                request = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                self.requests += 2
            except OSError:
                self.failures += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def sample(process: psutil.Process, started: float) -> Sample | None:
    """RSS, open descriptors and threads summed over the child and any processes it started
    (so a stage moved into a worker process is still counted); None once it has exited."""
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    rss = fds = threads = alive = 0
    for member in tree:
        try:
            with member.oneshot():
                rss += member.memory_info().rss
                fds += member.num_fds()
                threads += member.num_threads()
            alive += 1
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    if alive == 0:
        return None
    return Sample(time.monotonic() - started, rss / 2**20, fds, threads, alive)


def measure(
    child: subprocess.Popen,
    err_path: Path,
    seconds: float,
    interval: float,
    ready: re.Pattern = SOURCE_OPEN,
    on_ready=lambda: None,
    stop: signal.Signals = signal.SIGINT,
) -> tuple[list[Sample], float | None, float]:
    """Sample the child from the moment its stderr shows `ready` (its source open) until `seconds`
    later, then stop it with `stop` (Ctrl-C's SIGINT, or SIGTERM as systemd stops a service; the CLI
    ends cleanly on either); `on_ready` is called once, then. Returns the samples, when it got ready
    (None if never) and when the child was started (monotonic clock)."""
    launched, opened, samples = time.monotonic(), None, []
    process = psutil.Process(child.pid)
    try:
        while child.poll() is None:
            now = time.monotonic()
            if opened is None and ready.search(err_path.read_text(errors="replace")):
                opened = now
                on_ready()
            if now - (opened or launched) > seconds + (0 if opened else 600):  # done, or never got going
                break
            if opened is not None and (point := sample(process, opened)) is not None:
                samples.append(point)
            time.sleep(interval)
    except KeyboardInterrupt:
        print("interrupted: figures so far", file=sys.stderr)
    if child.poll() is None:
        child.send_signal(stop)
        try:
            child.wait(120)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return samples, opened, launched


def growth(samples: list[Sample], warmup: float) -> dict:
    """Per series: value at the end of the warm-up and the end (of the fitted line), max, and slope
    per hour of a least-squares line over the samples after the warm-up fraction."""
    kept = samples[int(len(samples) * warmup) :]
    if len(kept) < 3:
        raise SystemExit(f"error: only {len(kept)} samples after the warm-up; run longer or sample more often")
    t = np.array([s.seconds for s in kept])
    result = {"warmup_seconds": round(kept[0].seconds, 1), "fitted_samples": len(kept)}
    for name in ("rss_mb", "fds", "threads"):
        y = np.array([getattr(s, name) for s in kept], dtype=float)
        (slope, intercept), cov = np.polyfit(t, y, 1, cov=True) if len(kept) > 3 else (np.polyfit(t, y, 1), np.zeros((2, 2)))
        start = intercept + slope * t[0]
        per_hour, error = slope * 3600, math.sqrt(max(cov[0, 0], 0.0)) * 3600  # error: the slope's standard error
        result[name] = {
            "after_warmup": round(float(start), 2),
            "end": round(float(y[-1]), 2),
            "max": round(float(max(getattr(s, name) for s in samples)), 2),
            "per_hour": round(float(per_hour), 3) + 0.0,  # + 0.0: no "-0.00"
            "percent_per_hour": round(float(per_hour / start * 100), 3) + 0.0 if start else None,
            "percent_per_hour_error": round(float(error / start * 100), 3) if start else None,
        }
    return result


def print_table(summary: dict) -> None:
    print(f"{'':10} {'after warm-up':>14} {'end':>10} {'max':>10} {'growth/h':>10} {'%/h (± s.e.)':>16}")
    for name, label in (("rss_mb", "RSS MB"), ("fds", "open fds"), ("threads", "threads")):
        row = summary[name]
        percent = "" if row["percent_per_hour"] is None else f"{row['percent_per_hour']:+.2f} ± {row['percent_per_hour_error']:.2f}"
        print(f"{label:10} {row['after_warmup']:>14.1f} {row['end']:>10.1f} {row['max']:>10.1f} {row['per_hour']:>+10.2f} {percent:>16}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Other arguments are passed on to `actionlstm run`.")
    parser.add_argument("source", help="video file (looped), camera index or stream URL")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    parser.add_argument("--checkpoint", type=Path, help="classifier checkpoint; by default a quick one is trained")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the samples left out of the fit (default 0.2)")
    parser.add_argument("--target", type=float, default=1.0, help="largest RSS growth in %%/hour that passes (default 1)")
    parser.add_argument("--json", type=Path, help="also write the samples and the summary here")
    parser.add_argument("--serve", action="store_true", help="soak `actionlstm serve SOURCE --loop` with clients attached instead")
    parser.add_argument("--clients", type=int, default=5, help="with --serve: page clients streaming the video (default 5)")
    args, run_args = parser.parse_known_args()

    clients = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        folder = Path(tmp)
        checkpoint = args.checkpoint or quick_checkpoint(folder)
        source, looped = args.source, Path(args.source).is_file() and not args.serve
        if looped:
            written = time.monotonic()
            fps, frames = loop_video(Path(args.source), args.minutes + 1, folder / "looped.mp4")
            source = str(folder / "looped.mp4")
            took = time.monotonic() - written
            print(f"looped {args.source} into {frames} frames ({args.minutes + 1:g} min at {fps:.1f} fps) in {took:.0f} s", flush=True)
        if args.serve:
            port = free_port()
            command = [
                *CLI,
                "serve",
                source,
                "--loop",
                "--checkpoint",
                str(checkpoint),
                "--token",
                TOKEN,
                "--port",
                str(port),
                "--max-clients",
                str(args.clients + 8),
                *run_args,
            ]

            def attach() -> None:  # the page's three kinds of reader, for the whole run
                clients.extend([StreamClients(port, args.clients), StreamClients(port, 1, "/api/events/stream"), Poller(port)])
        else:
            command = [*CLI, "run", source, "--checkpoint", str(checkpoint), "--no-show", "--realtime", *run_args]
        err_path = folder / "run.err"
        with open(folder / "run.out", "w") as log_out, open(err_path, "w") as log_err:
            child = subprocess.Popen(command, cwd=ROOT, stdout=log_out, stderr=log_err)
        if args.serve:
            samples, opened, launched = measure(child, err_path, args.minutes * 60, args.interval, SERVING, attach, signal.SIGTERM)
        else:
            samples, opened, launched = measure(child, err_path, args.minutes * 60, args.interval)
        for client in clients:
            client.close()
        run_output, run_errors = (folder / "run.out").read_text().strip(), err_path.read_text()
    ended_ok = child.returncode in (0, 130)  # 130: run stopped by our Ctrl-C after --minutes, as intended; serve ends with 0

    load = f"source open {opened - launched:.0f} s after start" if opened else "source never reported open"
    print(f"actionlstm {command[3]}: exit {child.returncode}; {load}, then {len(samples)} samples every {args.interval:g} s")
    if args.serve and clients:
        streams = clients[0]
        print(
            f"  {args.clients} video clients received {sum(streams.frames)} frames ({sum(streams.bytes) / 2**20:.0f} MiB); "
            f"{clients[2].requests} status and metrics requests answered, {clients[2].failures} failed"
        )
    if run_output:
        print("  " + run_output.replace("\n", "\n  "))
    if not ended_ok:
        print(run_errors[-3000:], file=sys.stderr)
        print(f"error: actionlstm {command[3]} failed (exit {child.returncode})", file=sys.stderr)
        if len(samples) < 10:
            return 1
    summary = growth(samples, args.warmup)
    print(f"fit over the {summary['fitted_samples']} samples after the first {summary['warmup_seconds']:.0f} s:")
    print_table(summary)
    rss_growth = summary["rss_mb"]["percent_per_hour"]
    passed = ended_ok and rss_growth is not None and rss_growth < args.target
    print(f"RSS growth after warm-up: {rss_growth:+.2f} %/hour (target < {args.target:g}): {'OK' if passed else 'FAIL'}")
    error = summary["rss_mb"]["percent_per_hour_error"]
    if abs(rss_growth - args.target) < 2 * error:  # the verdict is within noise of the target
        print(f"  not conclusive: the slope's standard error is ±{error:.2f} %/hour; run longer")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "source": args.source,
                    "minutes": args.minutes,
                    "command": command[3:],
                    "exit_code": child.returncode,
                    "summary": summary,
                    "passed": passed,
                    "samples": [asdict(s) for s in samples],
                },
                indent=1,
            )
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
