"""Each layer imports only the layers below it, read from the source with `ast` (no module is run):

    actionlstm/cli/      the CLI: may import everything
    pipeline/serve/      the web service: `pipeline` and `actionlstm`
    pipeline/            what runs on frames: `actionlstm`, never `pipeline.serve`
    actionlstm/          the model side: never `pipeline`

Two modules of `actionlstm/` reach up by design: the facade `actionlstm/__init__.py` (its lazy
`ActionRecognizer`) and `actionlstm/__main__.py` (the command). Nothing below the CLI imports it.
The check is shown to fail on a tree written with each kind of wrong import."""

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

ENTRY_POINTS = {"actionlstm/__init__.py", "actionlstm/__main__.py"}


def imports(path: Path, package: str) -> list[list[str]]:
    """Per import statement of `path`, wherever it stands (in functions too), the modules it may
    import, relative imports made absolute (`package` is the module's own package, dotted):
    `from pipeline import serve` may import `pipeline` and `pipeline.serve`."""
    statements = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            statements += [[alias.name] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            statements.append([base, *(f"{base}.{alias.name}" for alias in node.names)])
    return statements


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def problem(where: str, module: str, name: str) -> str | None:
    """Why module `module` (file `where`) may not import `name`, or None."""
    in_cli = within(module, "actionlstm.cli")
    if within(name, "actionlstm.cli") and not in_cli and where != "actionlstm/__main__.py":
        return f"imports the CLI ({name})"
    if within(module, "actionlstm") and not in_cli and where not in ENTRY_POINTS and within(name, "pipeline"):
        return f"the model side imports {name}"
    if within(module, "pipeline") and not within(module, "pipeline.serve") and within(name, "pipeline.serve"):
        return f"imports the service ({name})"
    if within(name, "service"):
        return f"imports {name}, which is pipeline.serve now"
    return None


def violations(root: Path) -> list[str]:
    """`file: why` for every import statement that goes up a layer, in the tree under `root`."""
    found = []
    for path in sorted([*root.glob("actionlstm/**/*.py"), *root.glob("pipeline/**/*.py")]):
        where = path.relative_to(root).as_posix()
        module = where.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for names in imports(path, package):
            if why := next(filter(None, (problem(where, module, name) for name in names)), None):
                found.append(f"{where}: {why}")
    return found


def test_every_layer_imports_only_the_layers_below_it():
    assert violations(ROOT) == []


def test_the_layers_are_there_to_check():
    """The check reads the real tree: the CLI does import both layers, the service the pipeline."""

    def names(folder: Path, package: str) -> set[str]:
        return {name for path in folder.glob("*.py") for statement in imports(path, package) for name in statement}

    cli = names(ROOT / "actionlstm" / "cli", "actionlstm.cli")
    assert any(within(name, "pipeline") for name in cli) and any(within(name, "actionlstm.train") for name in cli)
    assert any(within(name, "pipeline.recognizer") for name in names(ROOT / "pipeline" / "serve", "pipeline.serve"))


@pytest.mark.parametrize(
    "where, source, says",
    [
        ("actionlstm/train.py", "from pipeline.pose import PoseEstimator\n", "the model side imports pipeline.pose"),
        ("actionlstm/model.py", "def f():\n    import pipeline.settings\n", "the model side imports pipeline.settings"),
        ("pipeline/run.py", "from pipeline.serve.hub import Hub\n", "imports the service (pipeline.serve.hub)"),
        ("pipeline/alerts.py", "from pipeline import serve\n", "imports the service (pipeline.serve)"),
        ("pipeline/extract/video.py", "from ..serve import app\n", "imports the service (pipeline.serve)"),
        ("pipeline/serve/hub.py", "from actionlstm.cli.options import app\n", "imports the CLI (actionlstm.cli.options)"),
        ("actionlstm/checkpoint.py", "from actionlstm import cli\n", "imports the CLI (actionlstm.cli)"),
        ("pipeline/rules.py", "import service.rules\n", "imports service.rules, which is pipeline.serve now"),
    ],
)
def test_an_import_up_a_layer_is_found(tmp_path, where, source, says):
    for name in ("actionlstm/__init__.py", "actionlstm/cli/__init__.py", "pipeline/__init__.py", "pipeline/serve/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('"""A package."""\n')
    (tmp_path / "actionlstm/__init__.py").write_text("def __getattr__(name):\n    from pipeline.recognizer import ActionRecognizer\n")
    (tmp_path / "actionlstm/cli/live.py").write_text("from pipeline.run import run_sources\nfrom pipeline.serve.server import serve\n")
    (tmp_path / "pipeline/serve/server.py").write_text(
        "from pipeline.recognizer import ActionRecognizer\nfrom actionlstm.errors import UserError\n"
    )
    assert violations(tmp_path) == []  # the allowed imports, alone
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / where).write_text(source)
    assert violations(tmp_path) == [f"{where}: {says}"]


def test_scripts_import_the_installed_packages():
    """Scripts run against the installed packages: none edits `sys.path` to reach the source tree."""
    editing = [p.name for p in (ROOT / "scripts").glob("*.py") if "sys.path" in p.read_text(encoding="utf-8")]
    assert editing == []
