"""Event snapshots: the annotated frame that fired each event, as a JPEG named by the event's id.

The folder is bounded (the newest `keep` are kept, the oldest removed, those of earlier runs
counted: event ids never repeat, `pipeline.serve.history`, so every run writes into the same
folder), and no request names a file: the API asks for an event id and gets that event's file or
nothing.
"""

import re
import shutil
import tempfile
from collections import deque
from pathlib import Path

import cv2
import numpy as np

from actionlstm.atomic import atomic_path

JPEG_QUALITY = 80
SNAPSHOT_NAME = re.compile(r"^event-([0-9]{1,18})\.jpg$")


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def mark_unseen(image: np.ndarray, box: list[float], text: str) -> np.ndarray:
    """A copy of `image` with `box` outlined and captioned: where the person an event names was last
    seen, when the frame that fired it no longer shows them (the overlay draws only people it sees)."""
    marked = image.copy()
    height, width = marked.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, x2 = max(0, min(x1, width - 1)), max(0, min(x2, width - 1))
    y1, y2 = max(0, min(y1, height - 1)), max(0, min(y2, height - 1))
    thickness = max(1, round(min(height, width) / 240))
    cv2.rectangle(marked, (x1, y1), (x2, y2), (0, 0, 255), thickness)
    scale = max(0.4, min(height, width) / 960)
    cv2.putText(
        marked,
        text,
        (x1 + 2 * thickness, max(y1 - 4 * thickness, int(14 * scale))),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 255),
        thickness,
        cv2.LINE_AA,
    )
    return marked


class SnapshotStore:
    """`folder` None: a temporary folder, removed by `close`. Otherwise the folder itself, with the
    snapshots earlier runs left there (`kept_ids`), pruned to `keep` with this run's."""

    def __init__(self, folder: Path | None = None, keep: int = 200):
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        self.keep = keep
        self.owned = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="actionlstm-snapshots-")) if folder is None else Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        earlier = sorted(int(m[1]) for f in self.folder.iterdir() if (m := SNAPSHOT_NAME.match(f.name)))
        self._kept: deque[int] = deque()
        self._ids: set[int] = set()
        for event_id in earlier:
            self._keep(event_id)

    @property
    def kept_ids(self) -> list[int]:
        return list(self._kept)

    def _keep(self, event_id: int) -> None:
        self._kept.append(event_id)
        self._ids.add(event_id)
        while len(self._kept) > self.keep:
            oldest = self._kept.popleft()
            self._ids.discard(oldest)
            self._file(oldest).unlink(missing_ok=True)

    def save(self, event_id: int, image: np.ndarray) -> None:
        data = encode_jpeg(image)
        with atomic_path(self._file(event_id)) as tmp:
            tmp.write_bytes(data)
        self._keep(event_id)

    def path(self, event_id: int) -> Path | None:
        """The snapshot of event `event_id`, if it is still kept."""
        return self._file(event_id) if event_id in self._ids else None

    def _file(self, event_id: int) -> Path:
        return self.folder / f"event-{int(event_id)}.jpg"

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)
