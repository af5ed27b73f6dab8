"""Action segments from hand-written JSONL: every expected interval and mean is worked out by hand.

Most records are at 5 fps (a frame every 0.2 s), so one frame lasts 0.2 s and a run's end is its last
frame's time + 0.2.
"""

import json

import pytest

from actionlstm.errors import UserError
from pipeline.segments import SegmentBuilder, format_segments, segments_from_jsonl


def segments(tmp_path, text: str, **options) -> list[dict]:
    path = tmp_path / "run.jsonl"
    path.write_text(text)
    return segments_from_jsonl(path, **options)


def approx(*expected: tuple) -> list[dict]:
    return [
        {"id": i, "label": label, "start": pytest.approx(s), "end": pytest.approx(e), "mean_prob": pytest.approx(p, abs=1e-4)}
        for i, label, s, e, p in expected
    ]


# wave for 1.0 s, one 0.2 s frame of clap, wave for 0.8 s
FLICKER = """\
{"frame": 0, "time": 0.0, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.9}, {"label": "clap", "prob": 0.05}]}]}
{"frame": 1, "time": 0.2, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.9}, {"label": "clap", "prob": 0.05}]}]}
{"frame": 2, "time": 0.4, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.9}, {"label": "clap", "prob": 0.05}]}]}
{"frame": 3, "time": 0.6, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.9}, {"label": "clap", "prob": 0.05}]}]}
{"frame": 4, "time": 0.8, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.9}, {"label": "clap", "prob": 0.05}]}]}
{"frame": 5, "time": 1.0, "persons": [{"id": 1, "top5": [{"label": "clap", "prob": 0.6}, {"label": "wave", "prob": 0.3}]}]}
{"frame": 6, "time": 1.2, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}, {"label": "clap", "prob": 0.1}]}]}
{"frame": 7, "time": 1.4, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}, {"label": "clap", "prob": 0.1}]}]}
{"frame": 8, "time": 1.6, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}, {"label": "clap", "prob": 0.1}]}]}
{"frame": 9, "time": 1.8, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}, {"label": "clap", "prob": 0.1}]}]}
"""


def test_a_short_flicker_between_two_runs_of_one_label_joins_them(tmp_path):
    # mean over the 9 wave frames: (5 * 0.9 + 4 * 0.8) / 9 = 7.7 / 9
    assert segments(tmp_path, FLICKER) == approx((1, "wave", 0.0, 2.0, 0.8556))


def test_min_segment_zero_keeps_every_run(tmp_path):
    assert segments(tmp_path, FLICKER, min_segment=0) == approx(
        (1, "wave", 0.0, 1.0, 0.9), (1, "clap", 1.0, 1.2, 0.6), (1, "wave", 1.2, 2.0, 0.8)
    )


def test_a_flicker_between_two_labels_goes_to_the_run_before_it_and_a_leading_one_to_the_run_after_it(tmp_path):
    text = """\
{"frame": 0, "time": 0.0, "persons": [{"id": 4, "top5": [{"label": "jump", "prob": 0.5}]}]}
{"frame": 1, "time": 0.2, "persons": [{"id": 4, "top5": [{"label": "wave", "prob": 0.7}]}]}
{"frame": 2, "time": 0.4, "persons": [{"id": 4, "top5": [{"label": "wave", "prob": 0.7}]}]}
{"frame": 3, "time": 0.6, "persons": [{"id": 4, "top5": [{"label": "wave", "prob": 0.9}]}]}
{"frame": 4, "time": 0.8, "persons": [{"id": 4, "top5": [{"label": "clap", "prob": 0.4}]}]}
{"frame": 5, "time": 1.0, "persons": [{"id": 4, "top5": [{"label": "squat", "prob": 0.6}]}]}
{"frame": 6, "time": 1.2, "persons": [{"id": 4, "top5": [{"label": "squat", "prob": 0.6}]}]}
{"frame": 7, "time": 1.4, "persons": [{"id": 4, "top5": [{"label": "squat", "prob": 0.9}]}]}
"""
    # jump (0.0-0.2) leads: wave takes it from 0.0; clap (0.8-1.0) goes to wave; squat 1.0-1.6.
    # wave's mean is over its own 3 frames: (0.7 + 0.7 + 0.9) / 3 = 0.7667; squat (0.6 + 0.6 + 0.9) / 3 = 0.7
    assert segments(tmp_path, text) == approx((4, "wave", 0.0, 1.0, 0.7667), (4, "squat", 1.0, 1.6, 0.7))


def test_a_person_absent_longer_than_the_gap_ends_the_segment_a_shorter_absence_is_bridged(tmp_path):
    text = """\
{"frame": 0, "time": 0.0, "persons": [{"id": 2, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 1, "time": 0.2, "persons": [{"id": 2, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 2, "time": 0.4, "persons": [{"id": 2, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 3, "time": 0.6, "persons": []}
{"frame": 4, "time": 0.8, "persons": []}
{"frame": 5, "time": 1.0, "persons": [{"id": 2, "top5": [{"label": "wave", "prob": 0.6}]}]}
{"frame": 6, "time": 1.2, "persons": []}
{"frame": 7, "time": 1.4, "persons": []}
{"frame": 8, "time": 1.6, "persons": []}
{"frame": 9, "time": 1.8, "persons": []}
{"frame": 10, "time": 2.0, "persons": []}
{"frame": 11, "time": 2.2, "persons": []}
{"frame": 12, "time": 2.4, "persons": [{"id": 2, "top5": [{"label": "wave", "prob": 0.7}]}]}
{"frame": 13, "time": 2.6, "persons": [{"id": 2, "top5": [{"label": "wave", "prob": 0.7}]}]}
{"frame": 14, "time": 2.8, "persons": [{"id": 2, "top5": [{"label": "wave", "prob": 0.7}]}]}
"""
    # absent 0.6-0.8 (last seen 0.4, back at 1.0: 0.6 s) is bridged: 0.0-1.2, mean (3 * 0.8 + 0.6) / 4 = 0.75.
    # Absent after 1.0 for 1.4 s (> 1 s): that segment ends at 1.2 and a new one starts at 2.4.
    assert segments(tmp_path, text) == approx((2, "wave", 0.0, 1.2, 0.75), (2, "wave", 2.4, 3.0, 0.7))


def test_a_stalled_stream_does_not_stretch_the_frame_before_the_stall(tmp_path):
    text = """\
{"frame": 0, "time": 0.0, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.5}]}]}
{"frame": 1, "time": 0.2, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.5}]}]}
{"frame": 2, "time": 0.4, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.5}]}]}
{"frame": 3, "time": 5.0, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.5}]}]}
{"frame": 4, "time": 5.2, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.5}]}]}
{"frame": 5, "time": 5.4, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.5}]}]}
"""
    assert segments(tmp_path, text) == approx((1, "wave", 0.0, 0.6, 0.5), (1, "wave", 5.0, 5.6, 0.5))


def test_several_persons_interleaved(tmp_path):
    frames = [  # (id, top-1 label, probability) per person, in the order the JSONL lists them
        [(7, "clap", 0.9), (3, "wave", 0.5)],
        [(3, "wave", 0.7), (7, "clap", 0.9)],
        [(7, "clap", 0.9), (3, "wave", 0.9)],
        [(3, "squat", 0.8), (7, "wave", 0.6), (9, "jump", 0.95)],
        [(9, "jump", 0.95), (3, "squat", 0.8), (7, "wave", 0.6)],
        [(7, "wave", 0.6), (3, "squat", 0.8), (9, "jump", 0.95)],
    ]
    records = [
        {"frame": k, "time": round(0.2 * k, 1), "persons": [{"id": i, "top5": [{"label": label, "prob": p}]} for i, label, p in persons]}
        for k, persons in enumerate(frames)
    ]
    text = "".join(json.dumps(record) + "\n" for record in records)
    # ordered by id, then start; every run is 0.6 s, all kept; the last frame lasts 0.2 s (to 1.2)
    assert segments(tmp_path, text) == approx(
        (3, "wave", 0.0, 0.6, 0.7),  # (0.5 + 0.7 + 0.9) / 3
        (3, "squat", 0.6, 1.2, 0.8),
        (7, "clap", 0.0, 0.6, 0.9),
        (7, "wave", 0.6, 1.2, 0.6),
        (9, "jump", 0.6, 1.2, 0.95),
    )


def test_uncertain_frames_end_a_run_and_are_never_joined_across(tmp_path):
    text = """\
{"frame": 0, "time": 0.0, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 1, "time": 0.2, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 2, "time": 0.4, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 3, "time": 0.6, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.3}], "uncertain": true}]}
{"frame": 4, "time": 0.8, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.9}], "uncertain": false}]}
{"frame": 5, "time": 1.0, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.9}]}]}
{"frame": 6, "time": 1.2, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.9}]}]}
{"frame": 7, "time": 1.4, "persons": [{"id": 1, "top5": [{"label": "clap", "prob": 0.35}], "uncertain": true}]}
{"frame": 8, "time": 1.6, "persons": [{"id": 1, "top5": [{"label": "clap", "prob": 0.9}]}]}
"""
    # wave 0.0-0.6 (ends at the uncertain frame), wave again 0.8-1.4, then clap 1.6-1.8 is shorter
    # than 0.5 s with no steady run around it: dropped.
    assert segments(tmp_path, text) == approx((1, "wave", 0.0, 0.6, 0.8), (1, "wave", 0.8, 1.4, 0.9))


def test_null_or_missing_top5_is_no_label(tmp_path):
    text = """\
{"frame": 0, "time": 0.0, "persons": [{"id": 5, "box": [1, 2, 3, 4]}]}
{"frame": 1, "time": 0.2, "persons": [{"id": 5, "box": [1, 2, 3, 4], "top5": null}]}
{"frame": 2, "time": 0.4, "persons": [{"id": 5, "box": [1, 2, 3, 4], "top5": [{"label": "bow", "prob": 0.6}]}]}
{"frame": 3, "time": 0.6, "persons": [{"id": 5, "box": [1, 2, 3, 4], "top5": [{"label": "bow", "prob": 0.6}]}]}
{"frame": 4, "time": 0.8, "persons": [{"id": 5, "box": [1, 2, 3, 4], "top5": [{"label": "bow", "prob": 0.6}]}]}
{"frame": 5, "time": 1.0, "persons": [{"id": 5, "box": [1, 2, 3, 4], "top5": null}]}
{"frame": 6, "time": 1.2, "persons": [{"id": 5, "box": [1, 2, 3, 4], "top5": []}]}
"""
    assert segments(tmp_path, text) == approx((5, "bow", 0.4, 1.0, 0.6))


def test_a_truncated_last_line_is_skipped_a_bad_line_before_the_end_is_an_error(tmp_path):
    text = """\
{"frame": 0, "time": 0.0, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 1, "time": 0.2, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 2, "time": 0.4, "persons": [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}]}]}
{"frame": 3, "time": 0.6, "persons": [{"id": 1, "top5": [{"lab"""
    assert segments(tmp_path, text) == approx((1, "wave", 0.0, 0.6, 0.8))
    with pytest.raises(UserError, match=r"run.jsonl:2: not a JSON line"):
        segments(tmp_path, '{"time": 0.0, "persons": []}\n{"time": 0.2, "pers\n{"time": 0.4, "persons": []}\n')
    with pytest.raises(UserError, match=r"run.jsonl:1: not a frame record"):
        segments(tmp_path, '{"frame": 0}\n')
    (tmp_path / "video.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42\xff\xfe\x81")
    with pytest.raises(UserError, match="not a JSONL file"):
        segments_from_jsonl(tmp_path / "video.mp4")
    with pytest.raises(UserError, match="cannot read"):
        segments_from_jsonl(tmp_path / "missing.jsonl")


def test_the_builder_hands_out_segments_as_they_close():
    builder = SegmentBuilder(min_segment=0.5)
    wave = [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}]}]
    closed = [builder.add(t, wave) for t in (0.0, 0.2, 0.4)]
    closed.append(builder.add(0.6, [{"id": 1, "top5": [{"label": "wave", "prob": 0.8}], "uncertain": True}]))
    assert closed == [[], [], [], approx((1, "wave", 0.0, 0.6, 0.8))]
    assert builder.finish() == []
    builder.add(1.0, wave)  # finish started afresh: a new source may begin at any time
    with pytest.raises(ValueError):
        builder.add(0.8, wave)


def test_summary_lines_are_one_per_person_and_capped():
    found = [
        {"id": 3, "label": "wave", "start": 0.0, "end": 4.2, "mean_prob": 0.91},
        {"id": 3, "label": "clap", "start": 4.2, "end": 9.0, "mean_prob": 0.77},
    ]
    found += [{"id": 8, "label": "jump", "start": float(t), "end": t + 1.0, "mean_prob": 0.5} for t in range(10)]
    found += [{"id": 100 + k, "label": "bow", "start": 0.0, "end": 1.0, "mean_prob": 0.6} for k in range(20)]
    lines = format_segments(found, per_person=3, max_persons=5)
    assert lines[0] == "#3: 0.0-4.2 s wave (0.91), 4.2-9.0 s clap (0.77)"
    assert lines[1] == "#8: 0.0-1.0 s jump (0.50), 1.0-2.0 s jump (0.50), 2.0-3.0 s jump (0.50), +7 more"
    assert lines[2] == "#100: 0.0-1.0 s bow (0.60)"
    assert lines[5] == "+17 more persons"
    assert len(lines) == 6
