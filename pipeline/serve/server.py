"""The service: sources kept open, the pipeline loop on the main thread, the web app beside it on
uvicorn (its own thread and event loop), and a stop within seconds that loses no event.

SIGTERM or Ctrl-C ends it: the streams end, the sources close, the event sinks deliver what they
can in a second or two (the JSONL file has every event already: each line is flushed as it fires),
MQTT says `offline`, and the process exits with 0 (the service did its job until asked to stop).
"""

import gc
import os
import re
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from actionlstm import console
from actionlstm.errors import UserError, interrupt_name
from actionlstm.paths import check_output_file, check_writable_folder
from pipeline.clock import iso_time
from pipeline.privacy import check_privacy
from pipeline.recognizer import ActionRecognizer
from pipeline.rules import AlertRule
from pipeline.serve import discovery
from pipeline.serve.clips import ClipRecorder, ClipStore, check_encoder
from pipeline.serve.connections import HEAD_SECONDS, MAX_CONNECTIONS, guarded_protocol
from pipeline.serve.control import Control, default_state_file
from pipeline.serve.guard import HostCheck
from pipeline.serve.history import first_event_id, recent_events
from pipeline.serve.home import HomeLink, remove_discovery
from pipeline.serve.hub import Hub, SourceFeed, Timeline
from pipeline.serve.snapshots import SnapshotStore
from pipeline.serve.supervised import SupervisedSource
from pipeline.serve.transports import EventSink, JsonlEvents, Mqtt, Webhook, check_http_url, parse_mqtt_url
from pipeline.settings import RecognizerSettings
from pipeline.sources import VideoFileSource, check_source, is_url
from pipeline.zones import Zone, check_zones

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SOURCE_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_-]{1,32})=(?P<spec>.+)$")
STOP_SECONDS = 4.0  # the whole stop, sinks included, stays within this


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8321
    token: str | None = None
    token_file: Path | None = None
    no_auth: bool = False
    allow_hosts: list[str] = field(default_factory=list)  # names answered besides this machine's (`HostCheck`)
    loop: bool = False  # replay file sources forever
    rules: list[AlertRule] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)  # per source (`Zone.source`, by name) or for all
    events: list[Path] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)
    mqtt: list[str] = field(default_factory=list)
    mqtt_prefix: str = "actionlstm"
    snapshot_dir: Path | None = None
    max_snapshots: int = 200
    max_clients: int = 32
    request_timeout: float = HEAD_SECONDS  # for a request's head, from the connection's opening or the last response
    stream_fps: float = 15.0
    timeline_minutes: float = 10.0
    min_segment: float = 0.5
    # Home Assistant, arming and snoozing, clips, privacy (`pipeline.serve.home`, `.control`, `.clips`, `pipeline.privacy`)
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    remove_discovery: bool = False
    state_file: Path | None = None  # None: `control.default_state_file`
    clips: bool = True
    clip_before: float = 5.0
    clip_after: float = 5.0
    clip_dir: Path | None = None
    max_clips: int = 100
    max_clip_age: float = 7 * 24 * 3600.0
    privacy: str = "off"


def log(message: str) -> None:
    """One line of the service's log, on stderr, with the local time."""
    console.err.print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {escape(message)}", soft_wrap=True, highlight=False)


def name_sources(specs: list[str]) -> list[tuple[str, str]]:
    """(name, spec) per source: `NAME=SRC` names a source (its MQTT topics, its events' `source`),
    otherwise its index names it."""
    named = []
    for k, spec in enumerate(specs):
        match = None if Path(spec).exists() else SOURCE_NAME.match(spec)  # a file called a=b.mp4 is a file
        named.append((match["name"], match["spec"]) if match else (str(k), spec))
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise UserError(f"two sources are named '{next(n for n in names if names.count(n) > 1)}'; give each its own NAME=SRC")
    return named


def read_token_file(path: Path) -> str:
    """The token in a file (its first line, spaces around it dropped): systemd's `LoadCredential=`,
    a Docker secret, or a file only the service's user can read."""
    try:
        if Path(path).stat().st_size > 4096:
            raise UserError(f"--token-file {path} is larger than 4 KiB: not a token")
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"--token-file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read --token-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise UserError(f"--token-file {path} is empty")
    return token


def resolve_token(token: str | None, no_auth: bool, host: str, token_file: Path | None = None) -> tuple[str | None, bool]:
    """The token every request must carry (None with --no-auth) and whether it was made up here:
    from --token, --token-file or ACTIONLSTM_TOKEN, else a new random one."""
    if no_auth:
        if host not in LOOPBACK:
            raise UserError(f"--no-auth serves without a token, so only on this machine: use it with --host 127.0.0.1, not {host}")
        if token or token_file:
            raise UserError(f"--no-auth and {'--token' if token else '--token-file'} contradict each other; give one")
        return None, False
    if token and token_file:
        raise UserError("--token and --token-file both give the token; give one")
    token = token or (read_token_file(token_file) if token_file else None) or os.environ.get("ACTIONLSTM_TOKEN") or None
    if token is not None and len(token) < 8:
        raise UserError("the token must be at least 8 characters long")
    if token is not None and any(not c.isprintable() or c.isspace() for c in token):
        raise UserError("the token holds spaces or control characters (it travels in a header): give one without")
    return (token, False) if token else (secrets.token_urlsafe(24), True)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any model loads, so a taken port fails in a second."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def check_sources(named: list[tuple[str, str]]) -> None:
    """A file that is not there or not a video fails at start; a camera or stream that is not there
    yet is waited for (it may come up after the service)."""
    for _, spec in named:
        check_source(spec)
        if not (spec.isdigit() or is_url(spec)):
            VideoFileSource(spec).close()


def check_sinks(settings: ServeSettings) -> None:
    """Event files and folders that can be written, URLs that can be reached: refused at start, not at the first event."""
    for folder in (settings.snapshot_dir, settings.clip_dir):
        if folder is not None:
            check_writable_folder(Path(folder))
    for path in settings.events:
        check_output_file(path)
        if path.suffix.lower() != ".jsonl":
            raise UserError(f"{path}: events are written as JSON lines, give a .jsonl file name")
    for url in settings.webhooks:
        check_http_url(url, "--webhook")
    for url in settings.mqtt:
        parse_mqtt_url(url)


def open_sinks(settings: ServeSettings) -> list[EventSink]:
    sinks: list[EventSink] = []
    try:
        sinks += [JsonlEvents(path) for path in settings.events]
        sinks += [Webhook(url) for url in settings.webhooks]
        sinks += [Mqtt(url, settings.mqtt_prefix) for url in settings.mqtt]
    except BaseException:
        for sink in sinks:
            sink.close(0.0)
        raise
    return sinks


def page_url(host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def http_server(app, request_timeout: float = HEAD_SECONDS, max_connections: int = MAX_CONNECTIONS):
    """uvicorn serving `app` with the service's connection limits (`pipeline.serve.connections`:
    `request_timeout` seconds for each request's head, idle sockets give way to new ones)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=guarded_protocol(request_timeout, max_connections),
        log_level="error",  # not a line per malformed request: a hostile client must not fill the log
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=5,
        server_header=False,
        h11_max_incomplete_event_size=16 * 1024,
    )
    return uvicorn.Server(config)


def serve(specs: list[str], recognizer_settings: RecognizerSettings, settings: ServeSettings) -> None:
    """Run the service until SIGTERM or Ctrl-C (see the module's docstring)."""
    from pipeline.serve.app import create_app

    named = name_sources(specs)
    if settings.zones and not settings.rules:
        raise UserError("zones keep alerts quiet: give the rules with --alert or --rules")
    check_zones(settings.zones, sources=[name for name, _ in named])
    token, generated = resolve_token(settings.token, settings.no_auth, settings.host, settings.token_file)
    hosts = HostCheck(settings.host, token is not None, settings.allow_hosts)
    check_sources(named)
    check_sinks(settings)
    control = open_control(settings, [name for name, _ in named])
    if settings.remove_discovery:
        _remove_discovery(settings, control, [name for name, _ in named])
        return
    check_privacy(settings.privacy)
    if settings.clips and settings.rules:
        check_encoder()
    sock = listen(settings.host, settings.port)
    port = sock.getsockname()[1]
    sinks: list[EventSink] = []
    sources: list[SupervisedSource] = []
    snapshots = None
    clips = None
    server = thread = None
    try:
        recognizer = ActionRecognizer(recognizer_settings, privacy=settings.privacy)
        alerts = recognizer.alerts(settings.rules, settings.zones) if settings.rules else None  # rules and zones checked
        if alerts is not None:
            control.attach(alerts)
        pose = recognizer.pipeline.pose
        action = f"action model {recognizer.checkpoint.name}: {recognizer.classifier.describe()}"
        log(f"pose model {Path(pose.weights).name} ({pose.backend}) on {recognizer.device}; {action}")
        if recognizer.classifier.synthetic:
            log("warning: this action model learnt generated movements (`actionlstm sample`), not real actions")
        sinks = open_sinks(settings)
        snapshots = SnapshotStore(settings.snapshot_dir, settings.max_snapshots)
        earlier = list({event["id"]: event for path in settings.events for event in recent_events(path)}.values())
        if alerts is not None:
            alerts.next_id = first_event_id(earlier, snapshots.kept_ids)  # never an id an earlier run gave
        idle_wait = 0.1 if len(named) == 1 else 0.0  # with several, one that is down must not hold up the others
        sources = [SupervisedSource(spec, name, settings.loop, idle_wait, log) for name, spec in named]
        feeds = [SourceFeed(k, s, Timeline(settings.timeline_minutes * 60, settings.min_segment)) for k, s in enumerate(sources)]
        model = {"checkpoint": recognizer.checkpoint.name, "classes": recognizer.class_names, "about": recognizer.classifier.describe()}
        hub = Hub(feeds, alerts, sinks, snapshots, model, earlier=earlier)
        if settings.clips and alerts is not None:
            store = ClipStore(settings.clip_dir, settings.max_clips, settings.max_clip_age)
            clips = ClipRecorder(store, settings.clip_before, settings.clip_after, log)
        names = [source.name for source in sources]
        links = [
            HomeLink(sink, control, names, settings.rules, recognizer.class_names, settings.discovery, settings.discovery_prefix)
            for sink in sinks
            if isinstance(sink, Mqtt)
        ]
        hub.watchers = [watcher for watcher in (clips, control, *links) if watcher is not None]
        hub.extra = {"privacy": settings.privacy}
        app = create_app(hub, token, hosts, f"actionlstm_session_{port}", settings.max_clients, settings.stream_fps, log)
        server = http_server(app, settings.request_timeout)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="http", daemon=True)
        thread.start()
        # The models' millions of objects live as long as the process: out of the collector's sight,
        # neither its full passes in a week-long run nor the final one at exit walk them again.
        gc.freeze()
        for source in sources:
            log(f"source {source.name}: {source.shown}" + (" (replayed forever)" if source.is_file and settings.loop else ""))
        for rule in alerts.rules if alerts is not None else []:
            log(f"alert rule {rule}")
        for zone in settings.zones:
            log(f"zone {zone}")
        for sink in sinks:
            log(f"events to {sink.kind} {sink.target}")
        for line in _home_lines(settings, control, clips, links):
            log(line)
        if settings.token:
            log("warning: --token shows in the process list (ps) to every user of this machine; --token-file or ACTIONLSTM_TOKEN do not")
        if token is None:
            log(f"serving WITHOUT a token (--no-auth), on this machine only: {page_url(settings.host, port, None)}")
        elif generated:
            log(f"serving on {page_url(settings.host, port, token)}  (a new token each start; --token-file or ACTIONLSTM_TOKEN fixes it)")
        else:
            log(f"serving on {page_url(settings.host, port, None)} (token from --token, --token-file or ACTIONLSTM_TOKEN)")
        log(f"answering to host names {', '.join(sorted(hosts.names))} and to " + ("loopback addresses" if token is None else "addresses"))
        try:
            for results in recognizer.pipeline.stream_many(sources):
                for result in results:
                    hub.add(result)
            log("every source has ended; the service stays up until Ctrl-C or SIGTERM")
            while True:
                time.sleep(3600)
        except KeyboardInterrupt as stop:
            log(f"stopping ({interrupt_name(stop)})")
            hub.close_streams()
    finally:
        _stop(server, thread, sources, sinks, snapshots, sock, clips)


def open_control(settings: ServeSettings, names: list[str]) -> Control:
    """Arming, snoozing and the cooldowns' clocks, read from the state file. A --state-file that
    cannot be written is refused; the default one, if its folder cannot be made, is said once and
    the state lives in memory only."""
    path = settings.state_file or default_state_file(discovery.node_id(settings.mqtt_prefix))
    control = Control(path, names, log)
    try:
        control.check_writable()
    except UserError as exc:
        if settings.state_file is not None:
            raise
        log(f"warning: {exc}; arming and snoozing will not outlive this run (give --state-file)")
        control.path = None
    return control


def _remove_discovery(settings: ServeSettings, control: Control, names: list[str]) -> None:
    """--remove-discovery: this service's Home Assistant entities removed from every broker, then exit."""
    if not settings.mqtt:
        raise UserError("--remove-discovery removes this service's entities from Home Assistant's broker: give --mqtt")
    for url in settings.mqtt:
        sink = Mqtt(url, settings.mqtt_prefix)
        try:
            configs = discovery.configs(settings.mqtt_prefix, settings.discovery_prefix, names, settings.rules, [], "")
            removed = remove_discovery(sink, control, configs)
        finally:
            sink.close(1.0)
        log(f"removed {len(removed)} Home Assistant entities from {sink.target}")


def _home_lines(settings: ServeSettings, control: Control, clips: ClipRecorder | None, links: list[HomeLink]) -> list[str]:
    """What the service says at start of its privacy, clips, arming and Home Assistant."""
    lines = []
    if settings.privacy != "off":
        lines.append(f"privacy mode {settings.privacy}: no picture of a camera leaves the service, only skeletons, boxes and labels")
    if clips is not None:
        where = clips.store.folder if not clips.store.owned else "a temporary folder (--clip-dir keeps them)"
        lines.append(
            f"clips of {settings.clip_before:g} s before and {settings.clip_after:g} s after each event in {where}, "
            f"at most {settings.max_clips}, for {settings.max_clip_age / 3600:g} h"
        )
    if links:
        armed = ", ".join(f"{name} {'armed' if on else 'DISARMED'}" for name, on in control.armed.items())
        snooze = control.snoozed_until()
        lines.append(f"alerts: {armed}" + (f"; snoozed until {iso_time(snooze)}" if snooze else ""))
        lines.append(f"alert state kept in {control.path}" if control.path else "alert state kept in memory only")
    if links and settings.discovery:
        node = discovery.node_id(settings.mqtt_prefix)
        lines.append(f"Home Assistant discovery under {settings.discovery_prefix}/ (device {node})")
    return lines


def _stop(
    server,
    thread: threading.Thread | None,
    sources: list[SupervisedSource],
    sinks: list[EventSink],
    snapshots: SnapshotStore | None,
    sock: socket.socket,
    clips: ClipRecorder | None = None,
) -> None:
    """Everything the service started, ended within `STOP_SECONDS` (a second SIGTERM meanwhile waits for it)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    deadline = time.monotonic() + STOP_SECONDS
    if server is not None:
        server.should_exit = True
    for source in sources:
        source.stop()
    for source in sources:
        source.close()
    if clips is not None:  # clips still recording are written with what they have, if there is time
        clips.close(min(1.0, max(0.0, deadline - time.monotonic() - 1.5)))
    for k, sink in enumerate(sinks):  # the time left, shared
        sink.close(max(0.0, (deadline - time.monotonic()) / (len(sinks) - k) - 0.1))
    if thread is not None:
        thread.join(timeout=max(0.1, deadline - time.monotonic()))
    sock.close()
    if snapshots is not None:
        snapshots.close()
    if clips is not None:
        clips.store.close()
    delivered = sum(s.delivered for s in sinks)
    dropped = sum(s.dropped for s in sinks)
    if sinks:
        log(f"stopped: {delivered} event deliveries, {dropped} dropped")
