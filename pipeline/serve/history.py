"""Where a restarted service picks up: the id of its first event, and the events the page shows
before the first new one fires.

Event ids never repeat: not in an `--events` file that runs append to, not in a `--snapshot-dir`
that runs share, and not on a page left open across a restart (which asks for the events after
the last id it saw, and shows `/api/events/{id}/snapshot.jpg` links). A run's first id is the
milliseconds since 1970 at its start, or one more than the largest id its events files and
snapshot folder hold if that is larger (a clock set back); each event takes the next. So ids also
grow from run to run of a service that keeps nothing, as long as a run fires fewer events than
milliseconds pass.
"""

import json
import time
from pathlib import Path

TAIL_BYTES = 4 << 20  # the end of an events file that is read: its newest few thousand events
MAX_ID = 10**18 - 1  # ids are whole numbers of at most 18 digits (the clock in milliseconds and a count); the API refuses others


def recent_events(path: Path, count: int | None = None) -> list[dict]:
    """The newest `count` (None: all read) events of a JSON-lines events file, oldest first; lines that are not an
    event with a plausible id (a torn last line, an edit by hand) are passed over."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, 2)
            file.seek(max(size - TAIL_BYTES, 0))
            lines = file.read().splitlines()[1 if size > TAIL_BYTES else 0 :]  # the first may be cut
    except OSError:  # not there yet: no events
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:  # not JSON, or an integer of thousands of digits
            continue
        if isinstance(event, dict) and type(event.get("id")) is int and 0 < event["id"] <= MAX_ID:
            events.append(event)
    return events if count is None else events[-count:] if count else []


def first_event_id(events: list[dict], snapshot_ids: list[int], now: float | None = None) -> int:
    """The first id of a run (see the module's docstring)."""
    clock = int((time.time() if now is None else now) * 1000)
    return max([clock, *(e["id"] + 1 for e in events), *(i + 1 for i in snapshot_ids)])
