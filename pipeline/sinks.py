"""Outputs written under a temporary name and renamed when the run ends.

A run that ends normally, by Ctrl-C or by q leaves a playable video and a complete JSONL; a run that
fails removes its partial files, so an existing output is never replaced by a broken one.
"""

import json
import os
from pathlib import Path

import cv2
import numpy as np

from actionlstm.errors import UserError

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def _partial_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


class _AtomicOutput:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.partial = _partial_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _release(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Close and publish under the final name."""
        self._release()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        """Close and remove the partial file, leaving any earlier output untouched."""
        self._release()
        self.partial.unlink(missing_ok=True)


class VideoSink(_AtomicOutput):
    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        super().__init__(path)
        fourcc = _FOURCC.get(self.path.suffix.lower())
        if fourcc is None:
            raise UserError(f"cannot write {self.path}: use a .mp4, .avi, .mkv or .mov file name")
        self.size = size
        self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self.writer.isOpened():
            self.partial.unlink(missing_ok=True)
            raise UserError(f"cannot write video {self.path}")
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)
        self.frames += 1

    def _release(self) -> None:
        self.writer.release()


class JsonlSink(_AtomicOutput):
    def __init__(self, path: Path):
        super().__init__(path)
        try:
            self.file = open(self.partial, "w", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def _release(self) -> None:
        self.file.close()
