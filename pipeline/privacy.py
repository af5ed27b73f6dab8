"""Privacy mode: every picture the pipeline hands on (the annotated frame of each result, so the
saved video, the window, the service's page, MJPEG stream, snapshots and clips) shows skeletons,
boxes and labels drawn on a plain background, never the camera's pixels.

The camera's frame goes to the pose model and the tracker and nowhere else: `ActionPipeline`
swaps it for `plain_canvas` before the overlay draws, so nothing downstream can leak it, however
it is written. A bedroom camera that lets no image of the room leave the box, and still shows a
carer the skeleton of the fall, is what a pose-based system can offer.
"""

import numpy as np

from actionlstm.errors import UserError

MODES = ("off", "skeleton")
BACKGROUND = (46, 38, 32)  # BGR: a dark slate, the page's own colour, on which the overlay's colours read


def check_privacy(mode: str) -> str:
    """The mode, or a one-line error naming the modes there are."""
    if mode not in MODES:
        raise UserError(f"--privacy {mode}: the modes are {', '.join(MODES)}")
    return mode


def plain_canvas(image: np.ndarray) -> np.ndarray:
    """A new picture of `image`'s size in the background colour: nothing of `image` but its shape."""
    return np.full(image.shape, BACKGROUND, dtype=np.uint8)
