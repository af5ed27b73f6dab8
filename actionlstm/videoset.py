"""A user's labelled videos: which files, which class each belongs to, and which split it lands in.

Two layouts are read: a folder with one subfolder per action (the folder name is the class name),
or a text file of `path label` lines (PYSKL's list format; paths relative to the list file). The
split keeps groups (an actor, a scene) on one side, so a test score says how the model does on
people it has never seen.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from actionlstm.errors import UserError

UCF101_GROUP = re.compile(r"_g(\d+)_")  # v_<Class>_gXX_cYY: one group = one actor and scene


@dataclass(frozen=True)
class Video:
    path: Path
    label: int
    name: str  # path relative to the folder or list file, with '/': what --test and --group search


@dataclass
class VideoSet:
    videos: list[Video]
    class_names: list[str]
    problems: list[str]  # what was left out and why, one line each


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _from_folder(root: Path) -> VideoSet:
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{root} has no class folders (expected one subfolder of videos per action)")
    videos: list[Video] = []
    names: list[str] = []
    problems: list[str] = []
    for folder in classes:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not _is_hidden(p.relative_to(root)))
        if not files:
            problems.append(f"{folder.name}/: no videos in this class folder (class left out)")
            continue
        label = len(names)
        names.append(folder.name)
        videos.extend(Video(p, label, p.relative_to(root).as_posix()) for p in files)
    return VideoSet(videos, names, problems)


def _from_list(list_file: Path) -> VideoSet:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read video list {list_file}: {exc}") from None
    entries: list[tuple[str, str]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise UserError(f"{list_file} line {number}: expected 'path label', got {line.strip()!r}")
        entries.append((parts[0].strip(), parts[1]))
    if not entries:
        raise UserError(f"video list {list_file} names no videos")
    labels = [label for _, label in entries]
    if all(label.isdigit() for label in labels):  # PYSKL's numeric labels: keep their numbering
        names = [f"class_{i}" for i in range(max(int(label) for label in labels) + 1)]
        index = {label: int(label) for label in labels}
    else:
        names = sorted(set(labels))
        index = {name: i for i, name in enumerate(names)}
    videos, problems, listed = [], [], set()
    for path, label in entries:
        video = Video(list_file.parent / path, index[label], path)
        if not video.path.is_file():
            problems.append(f"{path}: file not found")
        elif video.path.resolve() in listed:
            problems.append(f"{path}: listed more than once (first entry kept)")
        else:
            listed.add(video.path.resolve())
            videos.append(video)
    return VideoSet(videos, names, problems)


def find_videos(source: Path) -> VideoSet:
    """The labelled videos of a class-per-folder tree or a `path label` list file."""
    source = Path(source)
    if source.is_dir():
        return _from_folder(source)
    if source.is_file():
        return _from_list(source)
    raise UserError(f"no such folder or video list: {source}")


def frame_dirs(videos: list[Video], class_names: list[str]) -> list[str]:
    """A unique clip name per video: the file name without extension, prefixed by the class when two
    classes share a file name, and the whole relative path when even that is not unique."""

    def unique(names: list[str]) -> bool:
        return len(set(names)) == len(names)

    stems = [Path(v.name).stem for v in videos]
    if unique(stems):
        return stems
    prefixed = [f"{class_names[v.label]}_{stem}" for v, stem in zip(videos, stems)]
    if unique(prefixed):
        return prefixed
    return [v.name for v in videos]


def _compile(pattern: str, option: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"{option} {pattern!r} is not a valid regular expression ({exc})") from None


def group_of(name: str, pattern: re.Pattern) -> str:
    """The first capture group of `pattern` in the video's name (the whole match without a group);
    a video the pattern doesn't match is a group of its own."""
    match = pattern.search(name)
    if match is None:
        return name
    return match.group(1) if pattern.groups else match.group(0)


def _rank(group: str) -> str:
    """A fixed pseudo-random order of groups, so the choice does not depend on how files are named."""
    return hashlib.sha256(group.encode()).hexdigest()


def assign_splits(
    videos: list[Video], class_names: list[str], test: str | None, group: str | None, test_fraction: float
) -> tuple[list[bool], list[str]]:
    """Per video: True when it goes to test1. Returns the flags and warnings for the user.

    With `test` (a regex searched in the video's name) the user decides. Otherwise groups are held
    out as a whole, in every class at once (an actor held out is never seen in training), until each
    class has about `test_fraction` of its groups held out (at least one while it has two or more).
    A class whose groups all end up held out, or none, is reported.
    """
    if test is not None:
        pattern = _compile(test, "--test")
        flags = [pattern.search(v.name) is not None for v in videos]
        warnings = []
        if not any(flags):
            warnings.append(f"--test {test!r} matches no video: test1 is empty")
        elif all(flags):
            warnings.append(f"--test {test!r} matches every video: train1 is empty")
        return flags, warnings
    if not 0.0 <= test_fraction < 1.0:
        raise UserError("--test-fraction must be in [0, 1)")
    pattern = _compile(group, "--group") if group else UCF101_GROUP
    groups = [group_of(v.name, pattern) for v in videos]
    class_groups = {label: sorted({g for g, v in zip(groups, videos) if v.label == label}, key=_rank) for label in range(len(class_names))}
    held: set[str] = set()
    if test_fraction > 0:
        for members in class_groups.values():
            target = max(1, round(len(members) * test_fraction)) if len(members) >= 2 else 0
            for g in members:
                if len([m for m in members if m in held]) >= target:
                    break
                held.add(g)
    warnings = []
    for label, members in class_groups.items():
        if not members or test_fraction == 0:
            continue
        count = sum(m in held for m in members)
        if count == 0:
            warnings.append(f"class {class_names[label]}: too few videos (or groups) for a test split: all go to train1")
        elif count == len(members):
            warnings.append(f"class {class_names[label]}: all its groups are held out elsewhere: it has no training video")
    return [g in held for g in groups], warnings
