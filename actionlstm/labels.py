"""Class names: the UCF101 names ship inside the package; any other class count gets `class_N` names,
unless a labels file (one name per line, `--labels`, or the one `extract` and `sample` write beside a pickle) names them."""

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from actionlstm.errors import UserError

if TYPE_CHECKING:
    from actionlstm.dataset import SkeletonDataset


def ucf101_class_names() -> list[str]:
    text = resources.files("actionlstm").joinpath("classes/ucf101.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_label_file(path: Path) -> list[str]:
    """One class name per line, in label order; blank lines are ignored."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"labels file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read labels file {path}: {exc}") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise UserError(f"labels file {path} holds no class names")
    return names


def default_class_names(num_classes: int) -> list[str]:
    """UCF101's names for a 101-class dataset, else `class_0` ... `class_{n-1}`."""
    if num_classes == 101:
        return ucf101_class_names()
    return [f"class_{i}" for i in range(num_classes)]


def labels_file_for(labels: Path | None, data: Path) -> Path | None:
    """`labels` when given, else the `<data>.classes.txt` that `extract` and `sample` write beside a pickle, if it is there."""
    beside = data.with_suffix(".classes.txt")
    return labels if labels is not None else (beside if beside.is_file() else None)


def class_names_for(dataset: "SkeletonDataset", labels_file: Path | None) -> list[str]:
    """Names from the labels file, else `default_class_names`; every label of the data must have one."""
    if labels_file is None:
        return default_class_names(dataset.num_classes)
    names = read_label_file(labels_file)
    too_big = dataset.labels >= len(names)
    if too_big.any():
        i = int(too_big.argmax())
        raise UserError(
            f"clip '{dataset.frame_dirs[i]}' has label {dataset.labels[i]}, out of range for the {len(names)} classes in {labels_file}"
        )
    return names
