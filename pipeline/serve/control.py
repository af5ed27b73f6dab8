"""What a user switches while the service runs, kept across restarts: whether each source's alerts
are armed (`PREFIX/<source>/alerts/set`), whether every alert is snoozed and until when
(`PREFIX/alerts/snooze`), and each rule's last event per source, which its cooldown counts from.

It is the alert engine's gate (`Alerts.gate`): a disarmed source or a snoozed service makes no
event, and the episode it would have fired is spent. The state is a small JSON file, rewritten
whole (atomically) on every change: a restart, a crash or a power cut finds the last state, never
half of one. A file that cannot be read is said in one line and the service starts armed.
"""

import json
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from actionlstm.atomic import atomic_path
from actionlstm.errors import UserError
from pipeline.alerts import Alerts, Event
from pipeline.clock import iso_time
from pipeline.predictor import FrameResult
from pipeline.rules import AlertRule

MAX_SNOOZE_SECONDS = 7 * 24 * 3600.0


def default_state_file(node: str) -> Path:
    """Where the service keeps its state without --state-file: `$XDG_STATE_HOME/actionlstm/`
    (`~/.local/state/actionlstm/`), one file per MQTT prefix (`node`), so two services on one
    machine keep theirs apart."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "actionlstm" / f"serve-{node}.json"


class Control:
    """Arming, snoozing and the cooldowns' clocks of one service, for its `sources` (names)."""

    def __init__(self, path: Path | None, sources: list[str], log: Callable[[str], None] = print):
        self.path = path
        self.sources = list(sources)
        self.alerts: Alerts | None = None
        self.log = log
        self._fired: dict[tuple[str, str], float] = {}
        self.armed = dict.fromkeys(self.sources, True)
        self.snooze_end: float | None = None  # wall clock
        self.discovered: list[str] = []  # Home Assistant config topics published (`pipeline.serve.home`)
        self.listeners: list[Callable[[], None]] = []  # told after every change
        self._lock = threading.Lock()
        self._load()

    def attach(self, alerts: Alerts) -> None:
        """Be `alerts`' gate, and give it back the rules' last events (their cooldowns go on)."""
        self.alerts = alerts
        alerts.gate = self.gate
        alerts.last_fired.update(self._fired)

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            armed = {name: bool(on) for name, on in data.get("armed", {}).items() if name in self.armed}
            end = data.get("snoozed_until")
            fired = {(str(s), str(r)): float(t) for s, r, t in data.get("last_fired", [])}
            discovered = [str(topic) for topic in data.get("discovered", [])]
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            self.log(f"warning: alert state {self.path} not read ({exc}); starting with every source armed")
            return
        self.armed.update(armed)
        self.snooze_end = float(end) if isinstance(end, (int, float)) and math.isfinite(end) and end > time.time() else None
        self.discovered = discovered
        self._fired = fired

    def check_writable(self) -> None:
        """The state file's folder can be written: refused at start, not at the first switch."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path.parent / ".actionlstm-write-test"):
                pass
        except OSError as exc:
            raise UserError(f"cannot keep the alert state in {self.path}: {exc.strerror or exc}") from None

    def save(self) -> None:
        """The state, written whole; a failure is said and the service goes on with it in memory."""
        if self.path is None:
            return
        with self._lock:
            data = {
                "armed": dict(self.armed),
                "snoozed_until": self.snooze_end,
                "last_fired": [[s, r, t] for (s, r), t in (self.alerts.last_fired.items() if self.alerts else [])],
                "discovered": list(self.discovered),
            }
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            self.log(f"warning: alert state not saved to {self.path}: {exc.strerror or exc}")

    def _changed(self) -> None:
        self.save()
        for listener in self.listeners:
            listener()

    def set_armed(self, source: str, on: bool) -> None:
        if source not in self.armed:
            raise KeyError(source)
        with self._lock:
            self.armed[source] = on
        self.log(f"alerts of source {source} {'armed' if on else 'disarmed'}")
        self._changed()

    def snooze(self, seconds: float) -> None:
        """Every alert quiet for `seconds` from now (0 ends a snooze)."""
        if not (math.isfinite(seconds) and 0 <= seconds <= MAX_SNOOZE_SECONDS):
            raise ValueError(f"snooze for 0 to {MAX_SNOOZE_SECONDS:.0f} seconds")
        with self._lock:
            self.snooze_end = time.time() + seconds if seconds > 0 else None
        self.log(f"alerts snoozed until {iso_time(self.snooze_end)}" if seconds > 0 else "snooze ended")
        self._changed()

    def snoozed_until(self) -> float | None:
        end = self.snooze_end
        return end if end is not None and end > time.time() else None

    def quiet(self, source: str) -> str | None:
        """Why `source`'s alerts are quiet now (disarmed, snoozed), or None."""
        if not self.armed.get(source, True):
            return "disarmed"
        return "snoozed" if self.snoozed_until() is not None else None

    def gate(self, source: str, rule: AlertRule) -> str | None:
        return self.quiet(source)

    # --- as the hub's watcher ---------------------------------------------------------------------

    def frame(self, source: str, result: FrameResult) -> None:
        pass

    def fired(self, event: Event, result: FrameResult) -> None:
        """A cooldown runs from this event: kept, so that a restart keeps to it."""
        if self.alerts is not None and any(rule.cooldown for rule in self.alerts.rules):
            self.save()

    def status(self) -> dict:
        end = self.snoozed_until()
        rules = self.alerts.rules if self.alerts is not None else []
        return {
            "alerts": {
                "armed": dict(self.armed),
                "snoozed_until": None if end is None else iso_time(end),
                "rules": [{"rule": str(rule), "label": rule.label, "cooldown": rule.cooldown} for rule in rules],
                "active": {name: list(on) for name, on in (self.alerts.active.items() if self.alerts else [])},
                "quieted": dict(self.alerts.quieted) if self.alerts is not None else {},
                "state_file": None if self.path is None else str(self.path),
            }
        }
