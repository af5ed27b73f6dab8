"""Home Assistant MQTT discovery: the entities one service shows, as the retained config messages
Home Assistant reads under `<discovery prefix>/<component>/<node>/<object>/config`.

One device per service (its node id is made from the MQTT prefix, so two services on one broker
are two devices), and per source:

    sensor         <source> action          the most confident person's top-1 (`none`: nobody, or nobody certain)
    sensor         <source> persons         how many persons are in view
    binary_sensor  <source> <rule>          on while someone holds the rule (and the source's alerts are on)
    event          <source> alert           fires per alert event, its type the label
    switch         <source> alerts          arm / disarm the source's alerts
    image          <source> last event      the last event's snapshot

and for the service: a number that snoozes every alert for N seconds, and a timestamp sensor of
when the snooze ends. Every entity is unavailable while `PREFIX/status` says `offline` (the
service's last will), and its `unique_id` is made of the node, the source's name and the rule as
written, so it stays the same across restarts and model changes.

This module only builds messages; `pipeline.serve.home` sends them.
"""

import re

from pipeline.rules import ANY, DOWN, AlertRule

SNOOZE_MAX_SECONDS = 24 * 3600
EVENT_TEMPLATE = (
    "{{ {'event_type': value_json.label, 'id': value_json.id, 'person': value_json.person, 'prob': value_json.prob, "
    "'rule': value_json.rule, 'at': value_json.at, 'clip': value_json.clip} | tojson }}"
)
NONE = "none"  # the action sensor's value when nobody certain is in view


def slug(text: str) -> str:
    """A topic and id part made of letters, digits and _ (`*` reads `any`)."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]+", "_", text.replace(ANY, "any"))).strip("_").lower() or "x"


def node_id(prefix: str) -> str:
    return slug(prefix)


def rule_id(rule: AlertRule) -> str:
    """A rule as written (without its cooldown: changing a cooldown keeps the entity)."""
    return slug(str(AlertRule(rule.label, rule.prob, rule.seconds)))


def state_topics(prefix: str, source: str) -> dict[str, str]:
    """The topics this service publishes per source besides its events and state."""
    return {
        "action": f"{prefix}/{source}/action",
        "persons": f"{prefix}/{source}/persons",
        "alerts": f"{prefix}/{source}/alerts/state",
        "set": f"{prefix}/{source}/alerts/set",
        "snapshot": f"{prefix}/{source}/snapshot",
        "events": f"{prefix}/{source}/events",
    }


def rule_topic(prefix: str, source: str, rule: AlertRule) -> str:
    return f"{prefix}/{source}/rules/{rule_id(rule)}"


def snooze_topics(prefix: str) -> tuple[str, str]:
    """(command, state) of the snooze."""
    return f"{prefix}/alerts/snooze", f"{prefix}/alerts/snooze/state"


def event_types(rules: list[AlertRule], classes: list[str]) -> list[str]:
    """The labels the rules can fire."""
    labels = set(classes) if any(rule.label == ANY for rule in rules) else set()
    return sorted(labels | {rule.label for rule in rules if rule.label != ANY})


def configs(
    prefix: str, discovery_prefix: str, sources: list[str], rules: list[AlertRule], classes: list[str], version: str
) -> dict[str, dict]:
    """Config topic -> config, for every entity of the service. `rules` as written (their ids), in
    the order the alert engine holds them."""
    node = node_id(prefix)
    device = {
        "identifiers": [node],
        "name": "ActionLSTM" if prefix == "actionlstm" else f"ActionLSTM {prefix}",
        "manufacturer": "ActionLSTM",
        "model": "Skeleton action recognition",
        "sw_version": version,
    }
    common = {
        "availability_topic": f"{prefix}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
        "origin": {"name": "actionlstm", "sw_version": version},
    }
    entities: list[tuple[str, str, dict]] = []  # component, object id, config
    for source in sources:
        topics = state_topics(prefix, source)
        entities += [
            (
                "sensor",
                f"{source}_action",
                {
                    "name": f"{source} action",
                    "state_topic": topics["action"],
                    "device_class": "enum",
                    "options": [*classes, NONE],
                    "icon": "mdi:human",
                },
            ),
            (
                "sensor",
                f"{source}_persons",
                {"name": f"{source} persons", "state_topic": topics["persons"], "state_class": "measurement", "icon": "mdi:account-group"},
            ),
            *[
                (
                    "binary_sensor",
                    f"{source}_rule_{rule_id(rule)}",
                    {
                        "name": f"{source} {AlertRule(rule.label, rule.prob, rule.seconds)}",
                        "state_topic": rule_topic(prefix, source, rule),
                        "payload_on": "ON",
                        "payload_off": "OFF",
                        **({"device_class": "safety"} if rule.label in ("fall", DOWN) else {"icon": "mdi:alert-circle-outline"}),
                    },
                )
                for rule in rules
            ],
            (
                "event",
                f"{source}_alert",
                {
                    "name": f"{source} alert",
                    "state_topic": topics["events"],
                    "event_types": event_types(rules, classes),
                    "value_template": EVENT_TEMPLATE,
                    "icon": "mdi:bell-alert",
                },
            ),
            (
                "switch",
                f"{source}_alerts",
                {
                    "name": f"{source} alerts",
                    "command_topic": topics["set"],
                    "state_topic": topics["alerts"],
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "icon": "mdi:shield-home",
                },
            ),
            (
                "image",
                f"{source}_snapshot",
                {"name": f"{source} last event", "image_topic": topics["snapshot"], "content_type": "image/jpeg"},
            ),
        ]
    command, state = snooze_topics(prefix)
    entities += [
        (
            "number",
            "snooze",
            {
                "name": "snooze alerts",
                "command_topic": command,
                "min": 0,
                "max": SNOOZE_MAX_SECONDS,
                "step": 60,
                "mode": "box",
                "unit_of_measurement": "s",
                "icon": "mdi:bell-sleep",
            },
        ),
        (
            "sensor",
            "snoozed_until",
            {
                "name": "alerts snoozed until",
                "state_topic": state,
                "device_class": "timestamp",
                "value_template": "{{ value_json.until or 'None' }}",
                "icon": "mdi:bell-sleep-outline",
            },
        ),
    ]
    return {
        f"{discovery_prefix}/{component}/{node}/{slug(object_id)}/config": {
            **config,
            "unique_id": f"{node}_{slug(object_id)}",
            **common,
        }
        for component, object_id, config in entities
    }
