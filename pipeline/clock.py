"""Wall-clock times as events and the service show them."""

from datetime import datetime, timezone


def iso_time(wall: float) -> str:
    """Seconds since the epoch as ISO 8601 with milliseconds and the local UTC offset."""
    return datetime.fromtimestamp(wall, timezone.utc).astimezone().isoformat(timespec="milliseconds")
