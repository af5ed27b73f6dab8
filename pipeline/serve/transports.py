"""Where events go, each sink on its own terms and none able to slow a frame:

- `JsonlEvents`: one line per event appended to a file and flushed (the service's log of events;
  `actionlstm run --events` writes its file atomically instead, like its other outputs).
- `Webhook`: a POST of the event's JSON to a URL, from a thread of its own with a bounded queue;
  retried with backoff, and what a slow or dead receiver makes it drop is counted. Redirects are
  not followed (a 3xx is a failed attempt): the event and any basic-auth header go where the user
  said, never where a receiver points.
- `Mqtt`: paho-mqtt, QoS 1, reconnecting by itself; events on `<prefix>/<source>/events`, each
  source's persons, labels and who is down retained on `<prefix>/<source>/state`, and `online` / `offline`
  retained on `<prefix>/status`, `offline` being also the broker's last will (as Frigate does).

Every sink counts what it delivered and what it dropped; `status()` says so without secrets
(`pipeline.sources.redact`: a URL's user, password and query values are shown as ***, a webhook
as `scheme://host:port/…`, since its path is often its secret).
"""

import base64
import json
import math
import os
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from actionlstm import __version__
from actionlstm.errors import UserError
from pipeline.sources import redact

WEBHOOK_QUEUE = 100  # events waiting for a receiver; more are dropped (and counted)
WEBHOOK_TIMEOUT_SECONDS = 5.0
WEBHOOK_RETRY_SECONDS = (1.0, 2.0, 4.0)  # waits before the retries of one event; then it is dropped
MQTT_QUEUE = 1000  # QoS 1 messages paho keeps while the broker is away
STATE_INTERVAL_SECONDS = 0.5  # a source's retained state is published on change, at most this often
MQTT_PORT = 1883


class EventSink:
    """What every sink has: a name for status and metrics, and its counts."""

    kind = "sink"

    def __init__(self, target: str):
        self.target = target  # shown as it may be shown (redacted)
        self.delivered = 0
        self.dropped = 0
        self._counting = threading.Lock()  # the frame loop and a sink's own thread both count

    def count(self, delivered: int = 0, dropped: int = 0) -> None:
        with self._counting:
            self.delivered += delivered
            self.dropped += dropped

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}"

    def send(self, event: dict) -> None:
        """Hand over one event; never blocks for long."""
        raise NotImplementedError

    def close(self, timeout: float) -> None:
        """Deliver what can be delivered within `timeout` seconds, then stop."""

    def status(self) -> dict:
        return {"kind": self.kind, "target": self.target, "delivered": self.delivered, "dropped": self.dropped}


class JsonlEvents(EventSink):
    """Appends: a service restarted on the same file keeps the events of its earlier runs."""

    kind = "jsonl"

    def __init__(self, path: Path):
        super().__init__(str(path))
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
        self.error = ""

    def send(self, event: dict) -> None:
        try:
            self.file.write(json.dumps(event) + "\n")  # one write per line: never half a line before the flush
            self.file.flush()
            self.count(delivered=1)
        except OSError as exc:  # a full disk: counted, said in the status, the service goes on
            self.count(dropped=1)
            self.error = exc.strerror or str(exc)

    def close(self, timeout: float) -> None:
        try:
            self.file.close()
        except OSError:
            pass

    def status(self) -> dict:
        return {**super().status(), **({"error": self.error} if self.error else {})}


def check_http_url(url: str, what: str) -> None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # reading it checks it
    except ValueError:
        raise UserError(f"{what} {redact(url, path=False)} is not a valid URL (its host or port cannot be read)") from None
    if any(c.isspace() or not c.isprintable() for c in url):
        raise UserError(f"{what} {redact(url, path=False)}: a URL holds no spaces or control characters")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{what} {redact(url, path=False)} is not an http:// or https:// URL")


def _why(exc: Exception) -> str:
    """A failed POST in a few words, for the status (never the URL: it may hold the secret)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}" + (" (redirects are not followed)" if 300 <= exc.code < 400 else "")
    return str(getattr(exc, "reason", None) or exc)[:200]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx stays an answer (urllib raises it as an HTTPError) instead of a request elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Webhook(EventSink):
    """POSTs each event as JSON. A receiver that hangs or fails costs its own thread time only: the
    frame loop puts events into a bounded queue, which drops (and counts) what does not fit."""

    kind = "webhook"

    def __init__(self, url: str, queue_size: int = WEBHOOK_QUEUE):
        check_http_url(url, "--webhook")
        super().__init__(redact(url, path=False))
        parts = urlsplit(url)
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        self.headers = {"Content-Type": "application/json", "User-Agent": f"actionlstm/{__version__}"}
        if parts.username is not None:  # user:pass@ in the URL: HTTP basic authentication
            pair = f"{parts.username}:{parts.password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.opener = urllib.request.build_opener(_NoRedirects)
        self.in_hand = False  # an event taken from the queue and not yet delivered or dropped
        self.failures = 0  # attempts that failed (each retried event counts each time)
        self.failing = False  # the last attempt failed
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._deliver, name="webhook", daemon=True)
        self._thread.start()

    def send(self, event: dict) -> None:
        try:
            self.queue.put_nowait(json.dumps(event).encode())
        except queue.Full:
            self.count(dropped=1)

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        with self.opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS):
            pass  # the status is the answer: a body that trickles in must not hold the thread

    def _deliver(self) -> None:
        while not self._stop.is_set():
            try:
                body = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._settle(in_hand=True)
            for wait in (0.0, *WEBHOOK_RETRY_SECONDS):
                if wait and self._stop.wait(wait):
                    break  # stopping between retries: `close` counts it as dropped
                try:
                    self._post(body)
                    self._settle(delivered=1)
                    self.failing = False
                    break
                except (OSError, urllib.error.URLError, ValueError) as exc:  # refused, timed out, HTTP 3xx/4xx/5xx
                    self.failures += 1
                    self.failing = True
                    self.last_error = _why(exc)
            else:
                self._settle(dropped=1)

    def _settle(self, delivered: int = 0, dropped: int = 0, in_hand: bool = False) -> None:
        """Counts the event in hand as delivered or dropped, once, whoever gets there first: the
        sender, or `close` when the service stops during a retry or a hanging POST."""
        with self._counting:
            if self.in_hand or in_hand:
                self.delivered += delivered
                self.dropped += dropped
            self.in_hand = in_hand

    def close(self, timeout: float) -> None:
        """Waits for the queue to empty while the receiver answers; a failing one is not waited for."""
        deadline = time.monotonic() + timeout
        while not self.queue.empty() and not self.failing and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        self._stop.set()
        self._thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        self._settle(dropped=1)  # the one it was retrying or still sending, if any
        self.count(dropped=self.queue.qsize())  # never sent

    def status(self) -> dict:
        return {
            **super().status(),
            "queued": self.queue.qsize(),
            "failed_attempts": self.failures,
            **({"last_error": self.last_error} if self.last_error else {}),
        }


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, str | None]:
    """mqtt://[user:pass@]host[:port] -> host, port, user, password."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise UserError(f"--mqtt {redact(url)} is not mqtt://[user:pass@]host[:port]")
    try:
        port = parts.port or MQTT_PORT
    except ValueError:
        raise UserError(f"--mqtt {redact(url)}: the port is not a number from 1 to 65535") from None
    return parts.hostname, port, parts.username, parts.password


class Mqtt(EventSink):
    """One paho-mqtt client, its network loop on its own thread, reconnecting by itself (1 to 30 s
    apart). Events are QoS 1: published while the broker is away they wait in paho's queue (up to
    `MQTT_QUEUE`, more are dropped and counted) and go out on reconnection; `delivered` counts the
    broker's acknowledgements."""

    kind = "mqtt"

    def __init__(self, url: str, prefix: str = "actionlstm"):
        import paho.mqtt.client as mqtt

        host, port, user, password = parse_mqtt_url(url)
        if not prefix or any(c in prefix for c in "+#") or prefix.startswith("/") or prefix.endswith("/"):
            raise UserError(f"--mqtt-prefix '{prefix}' is not a topic prefix (no +, #, nor a / at either end)")
        super().__init__(redact(url))
        self.prefix = prefix
        self.connected = False
        self.connects = 0
        self._states: dict[str, bytes] = {}  # each source's newest state, published again on every connect
        self._last_state: dict[str, tuple] = {}  # each source's last published (key, time)
        self._pending: set[int] = set()  # message ids of events awaiting the broker's acknowledgement
        self._acked: deque[int] = deque(maxlen=64)  # the newest acknowledgements of ids not noted as pending
        self._lock = threading.Lock()
        self.connect_hooks: list = []  # called with the client on every connection (`pipeline.serve.home`)
        client_id = f"actionlstm-{socket.gethostname()}-{os.getpid()}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.will_set(self.topic("status"), "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.max_queued_messages_set(MQTT_QUEUE)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def topic(self, *parts: str) -> str:
        return "/".join([self.prefix, *parts])

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        self.connected = True
        self.connects += 1
        client.publish(self.topic("status"), "online", qos=1, retain=True)
        with self._lock:
            states = dict(self._states)
        for source, payload in states.items():
            client.publish(self.topic(source, "state"), payload, qos=1, retain=True)
        for hook in self.connect_hooks:
            hook(client)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
                self.count(delivered=1)
            else:
                self._acked.append(mid)  # a state's or the status's, or an event's acknowledged before send() noted it

    def send(self, event: dict) -> None:
        import paho.mqtt.client as mqtt

        # Not under our lock: paho's network thread calls _on_publish, which takes it, while holding
        # the lock that publish() takes, so holding ours over publish() can make both wait for good
        # (and /api/status with them). An acknowledgement that beats us here is in `_acked`.
        info = self.client.publish(self.topic(event["source"], "events"), json.dumps(event), qos=1)
        with self._lock:
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self.count(dropped=1)
            elif info.mid in self._acked:
                self.count(delivered=1)
            else:
                self._pending.add(info.mid)

    def publish_state(self, source: str, source_state: str, time_iso: str, persons: list, down: list[dict]) -> None:
        """A source's persons and top-1 labels (`PersonResult`s) and who is down (`hub.down_persons`),
        retained: when they change (who is in view, their label, whether uncertain, who went down
        or got up), at most every `STATE_INTERVAL_SECONDS`. While the broker is away only the newest
        is kept and sent on reconnection, so an outage never fills the queue with stale states."""
        shown = [
            {
                "id": p.id,
                "label": p.top5[0].label if p.top5 else None,
                "prob": round(p.top5[0].prob, 3) if p.top5 else None,
                "uncertain": p.uncertain,
                "box": [round(v, 1) for v in p.box],
            }
            for p in persons
        ]
        key = (source_state, tuple((p["id"], p["label"], p["uncertain"]) for p in shown), tuple((d["id"], d["since"]) for d in down))
        now = time.monotonic()
        last_key, last_sent = self._last_state.get(source, (None, -math.inf))
        if key == last_key or now - last_sent < STATE_INTERVAL_SECONDS:
            return
        self._last_state[source] = (key, now)
        payload = json.dumps({"source": source, "state": source_state, "time": time_iso, "persons": shown, "down": down}).encode()
        with self._lock:
            self._states[source] = payload
        if self.connected:
            self.client.publish(self.topic(source, "state"), payload, qos=1, retain=True)

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if self.connected:
            info = self.client.publish(self.topic("status"), "offline", qos=1, retain=True)
            while self.connected and time.monotonic() < deadline and (self._pending or not info.is_published()):
                time.sleep(0.02)
        self.client.disconnect()
        self.client.loop_stop()
        with self._lock:
            self.count(dropped=len(self._pending))  # never acknowledged
            self._pending.clear()

    def status(self) -> dict:
        with self._lock:
            pending = len(self._pending)
        return {**super().status(), "connected": self.connected, "connects": self.connects, "pending": pending}
