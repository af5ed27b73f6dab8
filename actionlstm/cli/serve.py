"""`actionlstm serve`: the pipeline as a service, behind a token."""

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from actionlstm.cli.options import AlertOpt, MinSegmentOpt, PrivacyOpt, RulesOpt, ZoneOpt, command, with_settings
from pipeline.settings import RecognizerSettings


@command
@with_settings(RecognizerSettings)
def serve(
    source: Annotated[
        list[str],
        typer.Argument(
            help="Webcam index (0), stream URL or video file; "
            "NAME=SRC names a source (its MQTT topics, its events' 'source'), else its index does."
        ),
    ],
    settings: RecognizerSettings,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface; put TLS in front, see docs/service.md).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")] = 8321,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="The token every request must carry (default: ACTIONLSTM_TOKEN, else a new random one, printed once in the page's URL).",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Read the token from this file's first line (systemd's LoadCredential=, a Docker secret): unlike --token, "
            "it does not show in the process list.",
        ),
    ] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", metavar="", help="Serve without a token: only with --host 127.0.0.1.")] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            envvar="ACTIONLSTM_ALLOW_HOST",
            help="A host name the service answers to besides localhost, this machine's name and addresses (the name a "
            "reverse proxy passes on; *.example.com for a domain's names, * for any); repeatable, or a list in ACTIONLSTM_ALLOW_HOST.",
        ),
    ] = None,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop", metavar="", help="Replay file sources forever at their frame rate (each replay starts afresh: new ids, new episodes)."
        ),
    ] = False,
    alert: AlertOpt = None,
    rules: RulesOpt = None,
    zone: ZoneOpt = None,
    events: Annotated[
        list[str] | None, typer.Option("--events", help="Append one JSON line per event to this file (flushed per event); repeatable.")
    ] = None,
    webhook: Annotated[
        list[str] | None, typer.Option("--webhook", help="POST each event's JSON to this URL (retried, bounded queue); repeatable.")
    ] = None,
    mqtt: Annotated[
        list[str] | None, typer.Option("--mqtt", help="Publish to the broker at mqtt://[user:pass@]host[:port] (QoS 1); repeatable.")
    ] = None,
    mqtt_prefix: Annotated[
        str, typer.Option("--mqtt-prefix", help="Topic prefix: PREFIX/<source>/events, PREFIX/<source>/state, PREFIX/status.")
    ] = "actionlstm",
    snapshot_dir: Annotated[
        Path | None,
        typer.Option(
            "--snapshot-dir",
            help="Keep event snapshots here; every start shares it (event ids never repeat) and the newest --max-snapshots are kept "
            "(default: a temporary folder, removed at exit).",
        ),
    ] = None,
    max_snapshots: Annotated[
        int, typer.Option("--max-snapshots", min=1, help="Event snapshots kept (earlier starts' included); the oldest are removed.")
    ] = 200,
    max_clients: Annotated[int, typer.Option("--max-clients", min=1, help="Open video and event streams at most.")] = 32,
    request_timeout: Annotated[
        float,
        typer.Option(
            "--request-timeout",
            min=0.5,
            max=300,
            help="Seconds a client has to send a request's head; a connection silent or half-sent for longer is closed.",
        ),
    ] = 10.0,
    stream_fps: Annotated[float, typer.Option("--stream-fps", min=0.1, help="Frames per second sent to each page's video at most.")] = 15.0,
    timeline_minutes: Annotated[float, typer.Option("--timeline-minutes", min=0.1, help="Minutes the page's timeline shows.")] = 10.0,
    min_segment: MinSegmentOpt = 0.5,
    discovery: Annotated[
        bool,
        typer.Option(
            "--discovery/--no-discovery",
            metavar="",
            help="With --mqtt, announce the sources to Home Assistant (MQTT discovery: sensors, rule sensors, events, switches, images).",
        ),
    ] = True,
    discovery_prefix: Annotated[str, typer.Option("--discovery-prefix", help="Home Assistant's discovery prefix.")] = "homeassistant",
    remove_discovery: Annotated[
        bool,
        typer.Option("--remove-discovery", metavar="", help="Remove this service's entities from Home Assistant (with --mqtt), then exit."),
    ] = False,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file",
            help="Keep arming, snoozing and cooldowns here across restarts (default: ~/.local/state/actionlstm/serve-PREFIX.json).",
        ),
    ] = None,
    clips: Annotated[bool, typer.Option("--clips/--no-clips", metavar="", help="Record a clip (H.264 MP4) around each event.")] = True,
    clip_seconds: Annotated[
        str, typer.Option("--clip-seconds", metavar="BEFORE:AFTER", help="Seconds of each clip before and after its event.")
    ] = "5:5",
    clip_dir: Annotated[
        Path | None,
        typer.Option("--clip-dir", help="Keep clips here; every start shares it (default: a temporary folder, removed at exit)."),
    ] = None,
    max_clips: Annotated[
        int, typer.Option("--max-clips", min=1, help="Clips kept (over every start's folder); the oldest are removed.")
    ] = 100,
    max_clip_age: Annotated[float, typer.Option("--max-clip-hours", min=0.01, help="Clips older than this many hours are removed.")] = 7
    * 24.0,
    privacy: PrivacyOpt = "off",
) -> None:
    """Run as a service until SIGTERM or Ctrl-C: a live web page, a JSON API, Prometheus metrics and
    alert events (JSONL, webhooks, MQTT), behind a token. Sources that drop are reopened."""
    from pipeline.rules import read_rules
    from pipeline.serve.clips import parse_clip_seconds
    from pipeline.serve.server import ServeSettings
    from pipeline.serve.server import serve as run_service
    from pipeline.zones import read_zones

    service = ServeSettings(
        host=host, port=port, token=token, token_file=token_file, no_auth=no_auth,
        allow_hosts=[name for entry in allow_host or [] for name in entry.replace(",", " ").split()], loop=loop,
        rules=read_rules(alert, rules), zones=read_zones(zone, rules),
        events=[Path(e) for e in events or []], webhooks=list(webhook or []), mqtt=list(mqtt or []), mqtt_prefix=mqtt_prefix,
        snapshot_dir=snapshot_dir, max_snapshots=max_snapshots, max_clients=max_clients, request_timeout=request_timeout,
        stream_fps=stream_fps, timeline_minutes=timeline_minutes, min_segment=min_segment,
    )  # fmt: skip
    before, after = parse_clip_seconds(clip_seconds)
    service = replace(
        service, discovery=discovery, discovery_prefix=discovery_prefix, remove_discovery=remove_discovery, state_file=state_file,
        clips=clips, clip_before=before, clip_after=after, clip_dir=clip_dir, max_clips=max_clips, max_clip_age=max_clip_age * 3600,
        privacy=privacy,
    )  # fmt: skip
    run_service(source, settings, service)
