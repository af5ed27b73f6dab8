"""Panel placement, checked on the rectangles the overlay computes: no panel covers another, each is
inside the frame and names its person; a crowd gets top-1 panels, then only as many as fit; panels
are drawn over the people, not under them."""

import itertools

import numpy as np

from pipeline.actions import LabelProb
from pipeline.overlay import Overlay, Panel, Rect, place_panels, track_colour
from pipeline.tracking import Poses

TOP5 = [
    LabelProb(name, p)
    for name, p in zip(["jumping_jack", "boxing_punching_bag", "push_ups", "tai_chi", "wall_push_ups"], [0.61, 0.2, 0.1, 0.05, 0.04])
]


def _poses(boxes: list[list[float]]) -> Poses:
    """People with ids 1..N in these boxes (x1, y1, x2, y2); their skeletons play no part in placement."""
    n = len(boxes)
    return Poses(np.arange(1, n + 1), np.asarray(boxes, np.float32), np.zeros((n, 17, 2), np.float32), np.zeros((n, 17), np.float32))


def _intersect(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _layout(width: int, height: int, boxes: list[list[float]]) -> list[Panel]:
    """The panels of these people, all classified, in a width x height frame with an fps line; checked
    to be disjoint, inside the frame, one per person at most and named after their person."""
    poses = _poses(boxes)
    panels = Overlay().layout((height, width, 3), poses, {tid: TOP5 for tid in poses.track_ids.tolist()}, header="25.0 fps")
    for a, b in itertools.combinations(panels, 2):
        assert not _intersect(a.rect, b.rect), (a, b)
    for panel in panels:
        x, y, w, h = panel.rect
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height, panel
    assert len({p.track_id for p in panels}) == len(panels) and {p.track_id for p in panels} <= set(poses.track_ids.tolist())
    return panels


def test_three_close_people_get_a_panel_each_that_does_not_overlap():
    # Boxes the pose and tracking stages find in frame 20 of exercise_3people.avi (384x288). At its own
    # size the three full panels fit only stacked in one column, which the nearest-place rule does not
    # find for every font's text widths, so there every panel shows the same number of lines.
    boxes = [[55, 131, 104, 229], [223, 131, 270, 231], [131, 132, 196, 255]]
    panels = _layout(384, 288, boxes)
    assert [p.track_id for p in panels] == [1, 2, 3]
    assert len({len(p.labels) for p in panels}) == 1 and panels[0].labels in (TOP5, TOP5[:1])
    # The same scene at 640x480, where two panels fit side by side: every panel shows the full Top-5.
    panels = _layout(640, 480, [[round(v * 640 / 384) for v in box] for box in boxes])
    assert [p.track_id for p in panels] == [1, 2, 3]
    assert all(p.labels == TOP5 for p in panels)


def test_two_people_at_1920x1080_get_full_panels_beside_them():
    # A tenth more than a panel's width between the two and right of the second, whatever the font's text widths.
    width, _ = Overlay()._panel_size("#2", TOP5, Overlay._text_unit((1080, 1920)))
    left = 305 + round(1.1 * width)
    boxes = [[60, 490, 305, 860], [left, 490, left + 235, 866]]
    assert 1920 - boxes[1][2] > 1.1 * width
    panels = _layout(1920, 1080, boxes)
    assert [p.track_id for p in panels] == [1, 2] and all(p.labels == TOP5 for p in panels)
    for panel, (_, y1, _, _) in zip(panels, boxes):
        x, y, w, h = panel.rect
        assert y == y1, panel  # level with the box top
        for bx1, by1, bx2, by2 in boxes:  # beside the people, covering (almost) none of them
            covered = max(0, min(x + w, bx2) - max(x, bx1)) * max(0, min(y + h, by2) - max(y, by1))
            assert covered < 0.02 * w * h, panel


def test_six_people_side_by_side_get_top1_panels_that_do_not_overlap():
    panels = _layout(384, 288, [[10 + 60 * k, 60, 64 + 60 * k, 280] for k in range(6)])
    assert [p.track_id for p in panels] == [1, 2, 3, 4, 5, 6]
    assert all(p.labels == TOP5[:1] for p in panels)


def test_a_crowd_shows_the_oldest_tracks_panels_that_fit_and_no_others():
    panels = _layout(384, 288, [[9 * k, 100, 9 * k + 8, 280] for k in range(40)])
    assert 6 <= len(panels) < 40
    assert [p.track_id for p in panels] == list(range(1, len(panels) + 1))
    assert all(p.labels == TOP5[:1] for p in panels)


def test_placement_finds_the_one_free_place_left():
    """Everything but a 60x30 hole at (200, 120) is taken: the panel goes exactly there."""
    reserved = [(0, 0, 384, 120), (0, 150, 384, 138), (0, 120, 200, 30), (260, 120, 124, 30)]
    assert place_panels([(10, 10, 40, 100)], [(60, 30)], (384, 288), reserved, gap=0) == [(200, 120, 60, 30)]
    assert place_panels([(10, 10, 40, 100)], [(61, 30)], (384, 288), reserved, gap=0) == [None]


def test_panels_are_drawn_over_the_people():
    """A person filling the frame: their box's right edge runs under the panel, and is darkened with
    the rest of what the panel covers instead of being drawn over it."""
    image = np.full((288, 384, 3), 128, np.uint8)
    poses = _poses([[0, 0, 383, 287]])
    Overlay().draw(image, poses, {1: TOP5}, fps=None)
    (panel,) = Overlay().layout(image.shape, poses, {1: TOP5})
    x, y, w, h = panel.rect
    assert x + w == 384  # the panel reaches the frame's right edge, where the box is drawn
    edge = image[y + h // 2 : y + h, x + w - 2 : x + w]  # the box's edge, under the label lines
    assert not np.all(edge == track_colour(1), axis=-1).any()
