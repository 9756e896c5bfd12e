"""Alert rules, from YAML::

    webhooks: [http://alerts.example/hook]      # optional; also --webhook on the CLI
    rules:
      - name: feature_drift
        check: psi            # a monitoring check_name
        op: ">"
        threshold: 0.2
        feature: any          # any feature (one alert per feature); or a feature name
        for_windows: 2        # the last 2 windows of the version
      - name: auc_low
        when: auc < 0.8       # short form of check/op/threshold

A bare list of rules is accepted too. Every mistake is an InvalidInputError naming the rule.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lakeml.errors import InvalidInputError

OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                  "<=": operator.le, "==": operator.eq, "!=": operator.ne}
FEATURE_CHECKS = ("psi", "ks", "jsd")
MODEL_CHECKS = ("prediction_psi", "prediction_ks", "prediction_jsd", "accuracy", "auc", "f1", "mae", "rmse",
                "requests", "request_rate", "error_rate", "latency_p50", "latency_p95", "latency_p99", "labeled")
CHECKS = FEATURE_CHECKS + MODEL_CHECKS
KEYS = {"name", "check", "op", "threshold", "feature", "for_windows", "model", "when", "description"}
_WHEN = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Rule:
    name: str
    check: str
    op: str
    threshold: float
    feature: str | None = None  # "any", a feature name, or None (model-level checks)
    for_windows: int = 1
    model: str | None = None
    description: str | None = None

    def holds(self, value: float | None) -> bool:
        return value is not None and OPS[self.op](value, self.threshold)

    def condition(self) -> str:
        on = "" if self.feature is None else f" on {'any feature' if self.feature == 'any' else self.feature}"
        return (f"{self.check} {self.op} {self.threshold:g}{on}"
                + (f" for {self.for_windows} windows" if self.for_windows > 1 else ""))


def load_rules(source: str | Path | list | dict) -> tuple[list[Rule], list[str]]:
    """Rules and webhook URLs from a YAML file path, YAML text, or the parsed structure."""
    import yaml

    where = "the rules"
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(f"alert rules file {str(path)!r} does not exist")
        where, source = str(path), path.read_text()
    if isinstance(source, str):
        try:
            source = yaml.safe_load(source)
        except yaml.YAMLError as e:
            raise InvalidInputError(f"{where} is not valid YAML: {' '.join(str(e).split())}") from None
    webhooks: Any = []
    if isinstance(source, dict):
        extra = set(source) - {"rules", "webhooks"}
        if extra:
            raise InvalidInputError(f"{where}: unknown top-level keys {sorted(extra)}; use 'rules' and 'webhooks'")
        webhooks, source = source.get("webhooks") or [], source.get("rules")
    if not isinstance(source, list) or not source:
        raise InvalidInputError(f"{where} must hold a non-empty list of rules (a 'rules:' list of mappings)")
    if not isinstance(webhooks, list) or not all(isinstance(u, str) and u.startswith(("http://", "https://"))
                                                 for u in webhooks):
        raise InvalidInputError(f"{where}: webhooks must be a list of http:// or https:// URLs, got {webhooks!r}")
    rules = [parse_rule(r, i, where) for i, r in enumerate(source)]
    names = [r.name for r in rules]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidInputError(f"{where}: rule names must be unique; repeated: {', '.join(dup)}")
    return rules, list(webhooks)


def parse_rule(raw: Any, i: int, where: str = "the rules") -> Rule:
    """One rule mapping, checked."""
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where}: rule #{i + 1} must be a mapping (name, check, op, threshold...), "
                                f"got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{where}: rule #{i + 1} needs a 'name' (a non-empty string)")
    who = f"{where}: rule {name!r}"
    extra = set(raw) - KEYS
    if extra:
        raise InvalidInputError(f"{who} has unknown keys {sorted(extra)}; allowed: {sorted(KEYS)}")
    check, op, threshold = raw.get("check"), raw.get("op"), raw.get("threshold")
    if "when" in raw:
        if check is not None or op is not None or threshold is not None:
            raise InvalidInputError(f"{who}: give either 'when' or check/op/threshold, not both")
        m = _WHEN.match(str(raw["when"]))
        if not m:
            raise InvalidInputError(f"{who}: when {raw['when']!r} must read '<check> <op> <number>', e.g. 'auc < 0.8'")
        check, op, threshold = m.group(1), m.group(2), m.group(3)
        try:
            threshold = float(threshold)
        except ValueError:
            raise InvalidInputError(f"{who}: threshold {m.group(3)!r} in 'when' is not a number") from None
    if check not in CHECKS:
        raise InvalidInputError(f"{who}: check {check!r} is not a monitoring check; one of {', '.join(CHECKS)}")
    if op not in OPS:
        raise InvalidInputError(f"{who}: op {op!r} must be one of {', '.join(OPS)} (quote it in YAML: op: \">\")")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise InvalidInputError(f"{who}: threshold {threshold!r} must be a number")
    for_windows = raw.get("for_windows", 1)
    if isinstance(for_windows, bool) or not isinstance(for_windows, int) or not 1 <= for_windows <= 1000:
        raise InvalidInputError(f"{who}: for_windows {for_windows!r} must be an integer from 1 to 1000")
    feature = raw.get("feature")
    if check in FEATURE_CHECKS:
        feature = "any" if feature is None else feature
        if not isinstance(feature, str) or not feature:
            raise InvalidInputError(f"{who}: feature {feature!r} must be 'any' or a feature name")
    elif feature is not None:
        raise InvalidInputError(f"{who}: check {check!r} is model-level; remove 'feature' (only "
                                f"{', '.join(FEATURE_CHECKS)} are per feature)")
    model = raw.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidInputError(f"{who}: model {model!r} must be a registered model name")
    return Rule(name.strip(), check, op, float(threshold), feature, for_windows, model, raw.get("description"))
