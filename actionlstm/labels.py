"""Class names: the UCF101 names ship inside the package; any other class count gets `class_N` names."""

from importlib import resources
from pathlib import Path

from actionlstm.errors import UserError


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
