"""How often does a checkpoint's descent cue (pipeline/descent.py) read a fall in footage that has none?

The built-in `falls` model's cue thresholds were set on GMDCSA24's 23 clips, so its false alarms there
are not a held-out figure. Any skeleton pickle of everyday actions by other people, filmed by other
cameras, is: every clip in which the cue ever reads a descent is a false reading. Each clip's frames
are pushed into a person's buffer as the live runtime sizes it, and the cue reads it after each frame.

    python scripts/jhmdb_to_pickle.py DD-Net/data/JHMDB /tmp/jhmdb.pkl    # e.g. JHMDB's 14 everyday actions
    python scripts/descent_study.py /tmp/jhmdb.pkl --classes /tmp/jhmdb.classes.txt

Prints, per class, the clips read as a descent at any frame and those read so for `--held` seconds
or more in a row (an alert on `fall` needs the label held, 0.5 s with the `falls` model's own rule).
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from actionlstm.builtin import resolve_checkpoint
from actionlstm.checkpoint import load_checkpoint
from actionlstm.dataset import load_dataset
from actionlstm.labels import read_label_file
from actionlstm.preprocess import PreprocessConfig
from pipeline.buffers import TrackBuffers
from pipeline.descent import DescentCue, descent_cue, read_fall

ROOT = Path(__file__).resolve().parents[1]


def longest_descent(keypoint: np.ndarray, score: np.ndarray, fps: float, cue: DescentCue, pre: PreprocessConfig) -> float:
    """Seconds of the longest run of frames at which the person's buffer, filled by `TrackBuffers` as
    live runs fill it, reads as a descent (0: never)."""
    buffers, track_ids = TrackBuffers(pre, fps, (0, 0)), np.zeros(1, dtype=int)  # one person, track 0
    longest = run = 0
    for frame in range(len(keypoint)):
        buffers.update(frame / fps, track_ids, keypoint[frame][None], score[frame][None])
        run = run + 1 if read_fall(*buffers[0].frames(), cue) else 0
        longest = max(longest, run)
    return longest / fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a skeleton pickle of clips with no falls in them")
    parser.add_argument("--classes", type=Path, help="class names, one per line (default: label numbers)")
    parser.add_argument("--checkpoint", default="falls", help="the model whose cue is read (default: the built-in falls)")
    parser.add_argument("--held", type=float, default=0.5, help="seconds a reading must last to count as held")
    args = parser.parse_args()

    clf = load_checkpoint(resolve_checkpoint(args.checkpoint))
    found = descent_cue(clf.meta, clf.class_names)
    if found is None:
        sys.exit(f"error: {args.checkpoint} carries no descent cue")
    cue = found[0]
    dataset = load_dataset(args.data)
    names = read_label_file(args.classes) if args.classes else [str(n) for n in range(dataset.num_classes)]
    clips, read, held = Counter(), Counter(), Counter()
    for index in range(len(dataset)):
        name = names[int(dataset.labels[index])]
        seconds = longest_descent(*dataset.clip(index), dataset.clip_rate(index, clf.preprocess.fps), cue, clf.preprocess)
        clips[name] += 1
        read[name] += seconds > 0
        held[name] += seconds >= args.held
    total = sum(clips.values())
    print(
        f"{total} clips: a descent read in {sum(read.values())} ({sum(read.values()) / max(total, 1):.1%}), "
        f"held {args.held:g} s in {sum(held.values())} ({sum(held.values()) / max(total, 1):.1%})"
    )
    for name in sorted(clips, key=lambda n: (-read[n], n)):
        print(f"  {name:<16} {read[name]:>3} read, {held[name]:>3} held, of {clips[name]}")


if __name__ == "__main__":
    main()
