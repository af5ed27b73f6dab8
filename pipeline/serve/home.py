"""The service on an MQTT broker, for Home Assistant and anything else that speaks MQTT: arming and
snoozing in, what each source shows out, and Home Assistant's discovery (`pipeline.serve.discovery`).

In (subscribed on every connection):

    PREFIX/<source>/alerts/set      ON / OFF: arm or disarm the source's alerts (`Control`)
    PREFIX/alerts/snooze            seconds: every alert quiet for that long; 0 ends a snooze
    homeassistant/status            online: Home Assistant (re)started, the configs are sent again

Out (retained, on every connection and on change):

    PREFIX/<source>/alerts/state    ON / OFF, the echo of the switch
    PREFIX/alerts/snooze/state      {"until": ISO 8601, or null when not snoozed}
    PREFIX/<source>/action          the most confident certain person's top-1, or `none`
    PREFIX/<source>/persons         how many persons are in view
    PREFIX/<source>/rules/<rule>    ON while someone holds the rule and the source's alerts are on, else OFF
    PREFIX/<source>/snapshot        the last event's snapshot (JPEG)

Each value goes out when it changes, at most every `VALUE_INTERVAL_SECONDS` for the action and the
count (a flickering label must not flood the broker); rule states at once.
"""

import json
import threading
import time

from actionlstm import __version__
from actionlstm.errors import UserError
from pipeline.alerts import Event
from pipeline.clock import iso_time
from pipeline.predictor import FrameResult
from pipeline.serve import discovery
from pipeline.serve.control import Control
from pipeline.serve.hub import fit_width
from pipeline.serve.snapshots import encode_jpeg
from pipeline.serve.transports import Mqtt

VALUE_INTERVAL_SECONDS = 0.5


def top_action(result: FrameResult) -> str:
    """The top-1 label of the most confident person in view who is not uncertain, else `none`."""
    certain = [p for p in result.persons if p.top5 and not p.uncertain]
    return max(certain, key=lambda p: p.top5[0].prob).top5[0].label if certain else discovery.NONE


class HomeLink:
    """One broker's side of arming, snoozing, the sources' values and discovery."""

    def __init__(
        self,
        sink: Mqtt,
        control: Control,
        sources: list[str],
        rules: list,
        classes: list[str],
        discover: bool = True,
        discovery_prefix: str = "homeassistant",
    ):
        self.sink = sink
        self.client = sink.client
        self.prefix = sink.prefix
        self.control = control
        self.sources = sources
        self.rules = rules  # as written: their ids name the rule topics
        self.discover = discover
        self.discovery_prefix = discovery_prefix
        self.configs = discovery.configs(self.prefix, discovery_prefix, sources, rules, classes, __version__) if discover else {}
        self.births = 0  # Home Assistant's online messages answered
        self._sent: dict[str, tuple[bytes, float]] = {}  # topic -> (payload, monotonic time) last published
        self._lock = threading.Lock()
        self.snooze_topic, self.snooze_state = discovery.snooze_topics(self.prefix)
        self.client.message_callback_add(f"{self.prefix}/+/alerts/set", self._on_set)
        self.client.message_callback_add(self.snooze_topic, self._on_snooze)
        self.client.message_callback_add(f"{discovery_prefix}/status", self._on_birth)
        control.listeners.append(self.publish_control)
        sink.connect_hooks.append(self._on_connect)
        if sink.connected:  # connected before the hook was in place
            self._on_connect(self.client)

    # --- the broker's side (paho's network thread) ----------------------------------------------

    def _on_connect(self, client) -> None:
        topics = [(f"{self.prefix}/+/alerts/set", 1), (self.snooze_topic, 1)]
        client.subscribe([*topics, *([(f"{self.discovery_prefix}/status", 1)] if self.discover else [])])
        self.announce()
        self.publish_control()
        with self._lock:
            sent = {topic: payload for topic, (payload, _) in self._sent.items()}
        for topic, payload in sent.items():  # the newest values, again: the broker may have restarted without them
            client.publish(topic, payload, qos=1, retain=True)

    def _on_set(self, client, userdata, message) -> None:
        source = message.topic[len(self.prefix) + 1 : -len("/alerts/set")]
        command = message.payload.decode("utf-8", "replace").strip().upper()
        if source in self.sources and command in ("ON", "OFF") and not message.retain:
            self.control.set_armed(source, command == "ON")
        elif source in self.sources:
            self.publish_control()  # a command it cannot follow: the state as it is, again

    def _on_snooze(self, client, userdata, message) -> None:
        if message.retain:  # an old command kept by the broker is no command now
            return
        try:
            self.control.snooze(float(message.payload.decode("utf-8", "replace").strip()))
        except ValueError:  # not a number of seconds, or too many: the snooze as it is, again
            self.publish_control()

    def _on_birth(self, client, userdata, message) -> None:
        if message.payload.decode("utf-8", "replace").strip() == "online":
            self.births += 1
            self.announce()
            self.publish_control()

    # --- what goes out --------------------------------------------------------------------------

    def announce(self) -> None:
        """Every discovery config, retained; those of an earlier run that this one no longer has, removed."""
        for topic, config in self.configs.items():
            self.client.publish(topic, json.dumps(config), qos=1, retain=True)
        stale = [topic for topic in self.control.discovered if topic not in self.configs]
        for topic in stale:
            self.client.publish(topic, b"", qos=1, retain=True)
        if self.discover and sorted(self.control.discovered) != sorted(self.configs):
            self.control.discovered = sorted(self.configs)
            self.control.save()

    def _publish(self, topic: str, payload: bytes | str, every: float = 0.0) -> None:
        """`payload` retained on `topic` when it differs from what was sent last, and `every` seconds after it."""
        data = payload.encode() if isinstance(payload, str) else payload
        now = time.monotonic()
        with self._lock:
            last = self._sent.get(topic)
            if last is not None and (last[0] == data or now - last[1] < every):
                return
            self._sent[topic] = (data, now)
        if self.sink.connected:
            self.client.publish(topic, data, qos=1, retain=True)

    def publish_control(self) -> None:
        """The switches' states and the snooze, as they are now."""
        for source in self.sources:
            self._publish(discovery.state_topics(self.prefix, source)["alerts"], "ON" if self.control.armed[source] else "OFF")
        end = self.control.snoozed_until()
        self._publish(self.snooze_state, json.dumps({"until": None if end is None else iso_time(end)}))

    # --- the hub's side (the pipeline's thread) -------------------------------------------------

    def frame(self, source: str, result: FrameResult) -> None:
        topics = discovery.state_topics(self.prefix, source)
        self._publish(topics["action"], top_action(result), VALUE_INTERVAL_SECONDS)
        self._publish(topics["persons"], str(len(result.persons)), VALUE_INTERVAL_SECONDS)
        alerts = self.control.alerts
        active = alerts.active.get(source, []) if alerts is not None else []
        on = self.control.quiet(source) is None
        for rule, holds in zip(self.rules, active):
            self._publish(discovery.rule_topic(self.prefix, source, rule), "ON" if holds and on else "OFF")
        if self.control.snooze_end is not None and self.control.snoozed_until() is None:
            self.publish_control()  # the snooze ran out

    def fired(self, event: Event, result: FrameResult) -> None:
        self._publish(discovery.state_topics(self.prefix, event.source)["snapshot"], encode_jpeg(fit_width(result.image)))

    def status(self) -> dict:
        return {}


def remove_discovery(sink: Mqtt, control: Control, configs: dict[str, dict], timeout: float = 10.0) -> list[str]:
    """Every Home Assistant config of this service, now and before (`Control.discovered`), removed
    from the broker (an empty retained message each): Home Assistant deletes the entities. The
    topics removed; a broker that is not reached within `timeout` seconds is a one-line error."""
    deadline = time.monotonic() + timeout
    while not sink.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    if not sink.connected:
        raise UserError(f"MQTT broker {sink.target} not reached within {timeout:.0f} s: nothing removed")
    topics = sorted({*configs, *control.discovered})
    infos = [sink.client.publish(topic, b"", qos=1, retain=True) for topic in topics]
    for info in infos:
        info.wait_for_publish(timeout=max(deadline - time.monotonic(), 0.1))
    control.discovered = []
    control.save()
    return topics
