"""Events: a person's smoothed top-1 label holding an alert rule for the rule's duration.

An event fires once per person per episode: after it, the rule stays quiet for that person until
they show another label (or leave: a person who comes back gets a new id, so a new episode). A frame
on which the person is uncertain, or below the rule's probability, never fires and restarts the
duration. A person out of sight whose id the tracker still holds (`FrameResult.unseen`) keeps their
last label, so a rule they held goes on holding and may fire (at the box they were last seen in):
a fall often ends where the pose model loses the person, on the floor or behind furniture. Once
the tracker lets them go, they are gone. A source that starts over (a reopened camera, a replayed
file: `FrameResult.session`) starts every episode afresh.

The down rule (`down:SECONDS`, `pipeline.rules`) watches a person's down state instead of a label: it
fires once when they have been on the floor for SECONDS after a fall, seen or not, and again only
after they were up. Its event's `start` is when they reached the floor and its `duration` the seconds
down. A zone (`pipeline.zones`) keeps the labels it names quiet while the person is inside: a frame
there holds no rule, like an uncertain one.

A rule's cooldown (`AlertRule.cooldown`) and the caller's `gate` (the service's arming and snoozing)
keep events from being made at all: an episode that would have fired while quiet is spent, so it
does not fire when the quiet ends, and no event id is taken. Either is counted in `quieted`.
`active` says, per source, which rules someone holds now (has held for the rule's duration).
"""

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from pipeline.clock import iso_time
from pipeline.predictor import FrameResult, PersonResult
from pipeline.rules import DOWN, AlertRule
from pipeline.zones import Zone

EPSILON = 1e-6  # frame times are rounded; durations compare with this slack


@dataclass
class Event:
    """One alert, as every sink receives it (`to_json`)."""

    id: int  # increasing over the run (service) and its sources
    source: str  # the source's name (its index unless named NAME=SRC)
    person: int  # the tracker's id
    label: str  # the top-1 label that fired, or `down` (the down rule)
    prob: float  # smoothed top-1 probability on the frame that fired (1 for the down rule: a state)
    rule: str  # the rule it satisfied, as LABEL>=PROB:SECONDSs
    start: str  # ISO 8601: when the person began to satisfy the rule (the down rule: reached the floor)
    time: float  # seconds since the source started, on the frame that fired (as `time` in the JSONL)
    at: str  # ISO 8601 of that frame
    duration: float  # seconds the rule had held when it fired (the down rule: seconds on the floor)
    box: list[float]  # x1, y1, x2, y2 pixels
    snapshot: str | None = None  # the snapshot's URL path (`serve`); None without a server
    clip: str | None = None  # the clip's URL path (`serve`, written once the seconds after it are in); None without one

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _Watch:
    """One rule watching one person."""

    label: str | None = None  # the label holding the rule now (None: not holding)
    since: float = 0.0  # source time at which it began to
    fired: str | None = None  # the label this episode's event was for; quiet until another shows


@dataclass
class _Person:
    watches: list[_Watch]
    last_seen: float


@dataclass
class _Source:
    session: int
    origin: float  # wall clock of source time 0, when the caller gives none
    persons: dict[int, _Person] = field(default_factory=dict)


class Alerts:
    """Frame results in (`update`), events out. One `Alerts` serves every source of a run; each
    event takes the next id.

    `zones`: where given labels fire nothing, in the source they name (by its `name`) or in all.
    `forget_seconds`: a person not seen for this long is forgotten (trackers never reuse an id, so
    this only bounds memory over a day-long run).
    `gate(source name, rule)`: why that rule must stay quiet on that source now ("disarmed",
    "snoozed"), or None to let it fire. `last_fired[(source name, str(rule))]`: the wall-clock time
    of the rule's last event there, which its cooldown counts from (a caller may restore it).
    """

    def __init__(self, rules: list[AlertRule], zones: list[Zone] | None = None, forget_seconds: float = 30.0, first_id: int = 1):
        self.rules = [rule.completed() for rule in rules]  # rules the model did not complete take the defaults
        self.zones = list(zones or [])
        self.forget_seconds = forget_seconds
        self.next_id = first_id
        self.gate: Callable[[str, AlertRule], str | None] | None = None
        self.last_fired: dict[tuple[str, str], float] = {}
        self.quieted: Counter[str] = Counter()  # episodes kept quiet, by why: cooldown, disarmed, snoozed
        self.active: dict[str, list[bool]] = {}  # per source name, per rule: someone holds it now
        self._sources: dict[int, _Source] = {}

    def reset(self) -> None:
        """Forget every person of every source (ids go on): the next frames come from sources that start afresh."""
        self._sources.clear()

    def update(self, result: FrameResult, name: str | None = None, origin: float | None = None) -> list[Event]:
        """The events this frame fires. `name` is the source's (default: its index); `origin` is the
        wall-clock time (seconds since the epoch) of source time 0, for the events' ISO times
        (default: the source's first frame was now)."""
        source = self._sources.get(result.source)
        if source is None or source.session != result.session:
            source = self._sources[result.source] = _Source(result.session, time.time() - result.time)
        name = str(result.source) if name is None else name
        origin = source.origin if origin is None else origin
        now = result.time
        events = []
        zones = [zone for zone in self.zones if zone.source in (None, name)]

        def quiet(label: str, person: PersonResult) -> bool:
            return any(zone.covers(label, person.box, result.size) for zone in zones)

        active = [False] * len(self.rules)

        def fire(k: int, rule: AlertRule, label: str, since: float, prob: float, person: PersonResult) -> None:
            active[k] = True
            since_last = origin + now - self.last_fired.get((name, str(rule)), -math.inf)
            why = "cooldown" if abs(since_last) < rule.cooldown - EPSILON else None  # (a clock set back counts too)
            why = why or (self.gate(name, rule) if self.gate is not None else None)
            if why is not None:
                self.quieted[why] += 1
                return
            self.last_fired[(name, str(rule))] = origin + now
            events.append(self._event(rule, label, since, prob, result, person, name, origin))

        for person in [*result.persons, *result.unseen]:
            state = source.persons.get(person.id)
            if state is None:
                state = source.persons[person.id] = _Person([_Watch() for _ in self.rules], now)
            state.last_seen = now
            top = person.top5[0] if person.top5 and not person.uncertain else None
            for k, (rule, watch) in enumerate(zip(self.rules, state.watches)):
                if rule.label == DOWN:
                    if person.down is None:
                        watch.fired = None  # up again: the next fall is a new episode
                    elif person.down >= rule.seconds - EPSILON and not quiet(DOWN, person):
                        if watch.fired is None:
                            fire(k, rule, DOWN, now - person.down, 1.0, person)
                            watch.fired = DOWN
                        active[k] = True
                    continue
                if top is None or not math.isfinite(top.prob):
                    watch.label = None
                    continue
                if watch.fired is not None and top.label != watch.fired:
                    watch.fired = None  # another label: the next episode may fire
                if not rule.matches(top.label, top.prob) or quiet(top.label, person):
                    watch.label = None
                    continue
                if watch.fired is not None:  # fired (or kept quiet) this episode: still held
                    active[k] = True
                    continue
                if watch.label != top.label:
                    watch.label, watch.since = top.label, now
                if now - watch.since >= rule.seconds - EPSILON:
                    fire(k, rule, top.label, watch.since, top.prob, person)
                    watch.fired, watch.label = top.label, None
        for person_id in [p for p, s in source.persons.items() if now - s.last_seen > self.forget_seconds]:
            del source.persons[person_id]
        self.active[name] = active
        return events

    def _event(
        self, rule: AlertRule, label: str, since: float, prob: float, result: FrameResult, person: PersonResult, name: str, origin: float
    ) -> Event:
        event = Event(
            id=self.next_id,
            source=name,
            person=person.id,
            label=label,
            prob=round(prob, 4),
            rule=str(rule),
            start=iso_time(origin + since),
            time=round(result.time, 4),
            at=iso_time(origin + result.time),
            duration=round(result.time - since, 4),
            box=[round(v, 1) for v in person.box],
        )
        self.next_id += 1
        return event
