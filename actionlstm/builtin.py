"""Built-in action models: shipped inside the package, named instead of a path (`--checkpoint falls`).

A name is the packaged model before any path: `falls` is always the built-in one, `./falls` (or any
spelling with a folder in it) the file. In Python, a `str` may name a built-in and a `Path` is always
a path. Nothing is ever downloaded. Each built-in checkpoint records in its `meta["builtin"]` what it
knows, what it learnt from, under which license, and how well it did (see `scripts/train_builtin.py`).
"""

from importlib import resources
from pathlib import Path

from actionlstm.errors import UserError

BUILTINS = {"falls": "falls.pth"}  # name -> file in actionlstm/models/


def _packaged(file: str) -> Path:
    return Path(str(resources.files("actionlstm") / "models" / file))


def builtin_path(name: str) -> Path:
    """The packaged file of built-in model `name`."""
    path = _packaged(BUILTINS[name])
    if not path.is_file():
        raise UserError(f"the built-in model '{name}' is missing from this installation ({path}); reinstall actionlstm")
    return path


def resolve_checkpoint(spec: str | Path) -> Path:
    """`spec` as a file to load: a built-in's packaged file for its bare name (a str), else the path."""
    if isinstance(spec, str) and spec in BUILTINS:
        return builtin_path(spec)
    return Path(spec)


def builtin_name(path: Path) -> str | None:
    """The name of the built-in model at `path`, if it is one."""
    for name, file in BUILTINS.items():
        packaged = _packaged(file)
        if packaged.is_file() and Path(path).resolve() == packaged.resolve():
            return name
    return None


def builtin_models() -> list[dict]:
    """Per built-in model: its name, classes, the record its training left (data, license, figures)
    its own alert operating points (what `--alert LABEL` means with it) and its fall cue, if any
    (`pipeline.falls`: a label read from the skeleton's geometry)."""
    from actionlstm.checkpoint import load_checkpoint

    models = []
    for name in BUILTINS:
        clf = load_checkpoint(builtin_path(name))
        models.append(
            {
                "name": name,
                "classes": clf.class_names,
                **clf.meta.get("builtin", {}),
                "alert_defaults": clf.alert_defaults,
                "fall": clf.meta.get("fall"),
            }
        )
    return models
