"""Alert rules: which label, how sure, for how long.

--alert 'fall>=0.8:1s'     fall, top-1 probability at least 0.8, for 1 s
--alert 'wave:2'           wave at the default probability (0.7), for 2 s
--alert fall               the model's own operating point for fall, if it records one, else 0.7 for 1 s
--alert '*>=0:1s'          any label at all, held for 1 s
--alert 'wave:2/5m'        wave for 2 s, then quiet on that source for 5 minutes (a cooldown: s, m or h)
--alert 'down:30'          someone who fell has been on the floor for 30 s (the down state, see `AlertRule`)
--rules rules.yaml         the same in a file (YAML or TOML), see `load_rules`
"""

import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from actionlstm.errors import UserError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DEFAULT_PROB = 0.7
DEFAULT_SECONDS = 1.0
ANY = "*"
# The down state (`pipeline.actions.LabelState.down`): on the floor after a confirmed fall, not up again.
DOWN = "down"
DOWN_SECONDS = 30.0
MAX_FILE_BYTES = 1 << 20  # a rules file is a few lines; a larger one is refused before it is parsed
_RULE = re.compile(r"^(?P<label>(?:(?!>=)[^:/])+)(?:>=(?P<prob>[^:/]*))?(?::(?P<seconds>[^:/]*?)s?)?(?:/(?P<cooldown>[^:/]*))?$")
_DURATION = re.compile(r"^\s*(?P<number>[^smh\s]+)\s*(?P<unit>[smh]?)\s*$")
UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class AlertRule:
    """Fires when a person's smoothed top-1 label is `label` (any label for `*`) with at least
    `prob`, on every frame for `seconds`.

    A `prob` or `seconds` left out (None) is the model's own for that label when it records one
    (`Classifier.alert_defaults`: a built-in model stores the operating point measured for it, since
    how sure and for how long depends on the model and the action: a fall is over in a second),
    else DEFAULT_PROB and DEFAULT_SECONDS; `completed` fills them in.

    `down:SECONDS` watches the down state instead of a label: it fires once when a person has been
    on the floor for SECONDS after a confirmed fall (DOWN_SECONDS left out), as care services measure
    time on the floor. It is the same grammar read the same way, a state held for a duration; a state
    has no probability, so `down>=P` is refused.

    `cooldown` (seconds, `/5m` in the rule) keeps the rule quiet on a source for that long after
    it fired there, for everybody: a rule that fires again and again while someone exercises
    sends one notification, not a stream of them. 0: none."""

    label: str
    prob: float | None = None
    seconds: float | None = None
    cooldown: float = 0.0

    def __post_init__(self) -> None:
        if not self.label.strip():
            raise UserError("an alert rule needs a label (or * for any)")
        if self.prob is not None and not (math.isfinite(self.prob) and 0.0 <= self.prob <= 1.0):
            raise UserError(f"alert rule {self.label}: the probability must be between 0 and 1, not {self.prob:g}")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds >= 0.0):
            raise UserError(f"alert rule {self.label}: the duration must be 0 or more seconds, not {self.seconds:g}")
        if not (math.isfinite(self.cooldown) and self.cooldown >= 0.0):
            raise UserError(f"alert rule {self.label}: the cooldown must be 0 or more seconds, not {self.cooldown:g}")
        if self.label == DOWN and self.prob is not None and self.prob != 1.0:
            raise UserError(f"alert rule down>={self.prob:g}: the down state has no probability; give down[:SECONDS], e.g. 'down:30'")

    def completed(self, own: dict[str, dict[str, float]] | None = None) -> "AlertRule":
        """This rule with what it leaves out taken from `own` (label -> {"prob", "seconds"}), else the defaults."""
        mine = (own or {}).get(self.label, {})
        if self.label == DOWN:  # a state, held or not: its probability is 1
            seconds = self.seconds if self.seconds is not None else float(mine.get("seconds", DOWN_SECONDS))
            return AlertRule(DOWN, 1.0, seconds, self.cooldown)
        prob = self.prob if self.prob is not None else float(mine.get("prob", DEFAULT_PROB))
        seconds = self.seconds if self.seconds is not None else float(mine.get("seconds", DEFAULT_SECONDS))
        return AlertRule(self.label, prob, seconds, self.cooldown)

    def matches(self, label: str, prob: float) -> bool:
        """Of a completed label rule: whether a top-1 `label` at `prob` holds it (the down rule watches no label)."""
        return self.label != DOWN and (self.label == ANY or label == self.label) and prob >= self.prob

    def __str__(self) -> str:
        prob = "" if self.prob is None or self.label == DOWN else f">={self.prob:g}"
        seconds = "" if self.seconds is None else f":{self.seconds:g}s"
        cooldown = f"/{self.cooldown:g}s" if self.cooldown else ""
        return f"{self.label}{prob}{seconds}{cooldown}"


def _number(text: str, what: str, rule: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(
            f"alert rule '{rule}': {what} '{text}' is not a number (rules look like LABEL[>=PROB][:SECONDS], e.g. 'fall>=0.8:1s')"
        ) from None


def parse_duration(text: str, where: str) -> float:
    """Seconds from `90`, `90s`, `5m` or `2h` (`where` begins the error: what was being read)."""
    match = _DURATION.match(text)
    try:
        if match is not None:
            return float(match["number"]) * UNIT_SECONDS[match["unit"]]
    except ValueError:
        pass
    raise UserError(f"{where}: the cooldown '{text}' is not a duration (e.g. 90, 90s, 5m, 2h)")


def parse_rule(text: str) -> AlertRule:
    """`LABEL[>=PROB][:SECONDS][/COOLDOWN]`; SECONDS may end in `s`, COOLDOWN in `s`, `m` or `h`."""
    match = _RULE.match(text.strip())
    if match is None or not match["label"].strip():
        raise UserError(f"alert rule '{text}' is not LABEL[>=PROB][:SECONDS][/COOLDOWN] (e.g. 'fall>=0.8:1s', 'wave:2/5m', '*')")
    prob = None if match["prob"] is None else _number(match["prob"], "the probability", text)
    seconds = None if match["seconds"] is None else _number(match["seconds"], "the duration", text)
    cooldown = 0.0 if match["cooldown"] is None else parse_duration(match["cooldown"], f"alert rule '{text}'")
    return AlertRule(match["label"].strip(), prob, seconds, cooldown)


def file_number(value: object, what: str, where: str) -> float:
    """A number read from a rules file as a float; one too large for a float (a 400-digit integer) is
    refused in one line instead of overflowing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: {what} must be a number, not {str(value)[:40]!r}")
    try:
        return float(value)
    except OverflowError:
        raise UserError(f"{where}: {what} is a number far too large") from None


def check_keys(entry: dict, keys: tuple[str, ...], where: str, what: str) -> None:
    """A table of a rules file holds only `keys` (a rule's, a zone's): a misspelt one is said, not ignored."""
    unknown = sorted(set(entry) - set(keys))
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' ({what} has {', '.join(keys[:-1])} and {keys[-1]})")


def _rule_from_entry(entry: object, where: str) -> AlertRule:
    if isinstance(entry, str):
        return parse_rule(entry)
    if not isinstance(entry, dict):
        raise UserError(f"{where}: a rule is a string like 'fall>=0.8:1s' or a table with label, prob, seconds, cooldown")
    check_keys(entry, ("label", "prob", "seconds", "cooldown"), where, "a rule")
    if not isinstance(entry.get("label"), str):
        raise UserError(f"{where}: a rule needs a label (a string; * for any)")
    values = {key: file_number(entry[key], key, where) for key in ("prob", "seconds") if key in entry}
    if "cooldown" in entry:  # seconds, or a duration such as "5m"
        cooldown = entry["cooldown"]
        if isinstance(cooldown, str):
            values["cooldown"] = parse_duration(cooldown, where)
        else:
            values["cooldown"] = file_number(cooldown, "cooldown", where)
    return AlertRule(entry["label"], **values)


def read_rules_file(path: Path) -> object:
    """The parsed YAML (.yaml, .yml) or TOML (.toml) of a rules file."""
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml", ".toml"):
        raise UserError(f"{path}: rules are read from a .yaml, .yml or .toml file")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UserError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB: not a rules file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"rules file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:
        why = str(exc).splitlines()[0]
        if isinstance(exc, RecursionError):
            why = "nested too deeply"
        elif "integer string conversion" in why:  # an integer of 4,300 digits or more
            why = "a number with thousands of digits"
        raise UserError(f"{path} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'YAML'}: {why}") from None


def load_rules(path: Path) -> list[AlertRule]:
    """Rules from a YAML (.yaml, .yml) or TOML (.toml) file: a list `alerts` whose entries are rule
    strings or tables of `label`, `prob`, `seconds`, `cooldown` (the file may hold zones too, `pipeline.zones`):

        alerts:                         [[alerts]]
          - label: fall                 label = "fall"
            prob: 0.8                   prob = 0.8
            seconds: 1                  seconds = 1
            cooldown: 5m                cooldown = "5m"
          - "down:30"
    """
    data = read_rules_file(path)
    entries = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: expected a non-empty list 'alerts' of rules")
    return [_rule_from_entry(entry, f"{path}, rule {k + 1}") for k, entry in enumerate(entries)]


def check_rules(
    rules: list[AlertRule], class_names: list[str], own: dict[str, dict[str, float]] | None = None, down: bool = False
) -> list[AlertRule]:
    """The rules completed with the model's own operating points `own` (see `AlertRule`). A rule for
    a label the model cannot give, or for the down state of a model without one (`down`: it reads
    falls from geometry, `pipeline.falls`), would never fire: say so at start, not never."""
    for rule in rules:
        if rule.label == DOWN and not down:
            raise UserError(
                f"alert rule {rule}: the down state follows a fall read by a fall cue, which this model has not (try --checkpoint falls)"
            )
        if rule.label not in (ANY, DOWN) and rule.label not in class_names:
            shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
            raise UserError(f"alert rule {rule}: the model has no class '{rule.label}' (its classes: {shown})")
    return [rule.completed(own) for rule in rules]


def read_rules(texts: list[str] | None, path: Path | None) -> list[AlertRule]:
    """The rules of `--alert` (`texts`) and of `--rules FILE` (`path`), parsed (and so refused) before any model loads."""
    return [parse_rule(text) for text in texts or []] + (load_rules(path) if path is not None else [])
