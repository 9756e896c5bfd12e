"""Promotion gates: rules a model version must pass before it gets an alias or an environment."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Iterable, Mapping

from lakeml import validation as v
from lakeml.errors import InvalidInputError
from lakeml.registry import names


@dataclass(frozen=True)
class GateFacts:
    """What the rules are checked against: the run's latest metrics, its artifact files, the version's tags."""

    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: frozenset[str] = frozenset()
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    #: lifecycle steps done in the projects that link the model (None: no lifecycle component wired)
    steps_done: frozenset[str] | None = None


@dataclass(frozen=True)
class Gates:
    """The promotion rules of one model.

    ``min_metrics`` / ``max_metrics``: bounds on the source run's latest metric values;
    ``required_artifacts``: files (or folders) the run must have stored, e.g. a validation report;
    ``required_tags``: version tags that must be set, optionally to one of some values
    (e.g. ``{"approved_by": ["alice", "bob"]}``, set by the business owner).
    ``aliases`` / ``environments`` say which promotions the rules guard (None: all of them).
    ``lifecycle_steps`` (rule kind ``lifecycle_step_done``): BPMN task ids (e.g. ``approval``) that must be
    completed in a model project linking the model (see ``lake.projects``).
    """

    min_metrics: dict[str, float] = field(default_factory=dict)
    max_metrics: dict[str, float] = field(default_factory=dict)
    required_artifacts: tuple[str, ...] = ()
    required_tags: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    aliases: tuple[str, ...] | None = None
    environments: tuple[str, ...] | None = None
    lifecycle_steps: tuple[str, ...] = ()

    @classmethod
    def build(cls, *, min_metrics: Mapping[str, float] | None = None, max_metrics: Mapping[str, float] | None = None,
              required_artifacts: Iterable[str] | None = None,
              required_tags: Mapping[str, Any] | Iterable[str] | None = None,
              aliases: Iterable[str] | None = None, environments: Iterable[str] | None = None,
              lifecycle_steps: Iterable[str] | None = None) -> "Gates":
        """Validate user input into a :class:`Gates`."""
        def bounds(d: Mapping[str, float] | None, what: str) -> dict[str, float]:
            out = {}
            for k, val in (d or {}).items():
                v.validate_key(k, "metric")
                if isinstance(val, bool) or not isinstance(val, Real) or not math.isfinite(float(val)):
                    raise InvalidInputError(f"{what} for metric {k!r} must be a finite number, got {val!r}")
                out[k] = float(val)
            return out

        from lakeml.storage.artifacts import clean_artifact_path

        tags: dict[str, tuple[str, ...] | None] = {}
        if required_tags is not None:
            items = required_tags.items() if isinstance(required_tags, Mapping) else ((k, None) for k in required_tags)
            for k, allowed in items:
                v.validate_key(k, "tag")
                if allowed is None:
                    tags[k] = None
                elif isinstance(allowed, str):
                    tags[k] = (allowed,)
                else:
                    tags[k] = tuple(str(a) for a in allowed)
        arts = []
        for p in required_artifacts or ():
            cp = clean_artifact_path(p)
            if not cp:
                raise InvalidInputError("a required artifact path is empty; name a file such as 'validation/report.html'")
            arts.append(cp)
        steps = [lifecycle_steps] if isinstance(lifecycle_steps, str) else list(lifecycle_steps or ())
        for s in steps:
            if not isinstance(s, str) or not s.strip():
                raise InvalidInputError(f"a lifecycle step must be a BPMN task id such as 'approval', got {s!r}")
        return cls(bounds(min_metrics, "minimum"), bounds(max_metrics, "maximum"), tuple(arts), tags,
                   tuple(names.alias(a) for a in aliases) if aliases is not None else None,
                   tuple(names.environment(e) for e in environments) if environments is not None else None,
                   tuple(s.strip() for s in steps))

    @property
    def empty(self) -> bool:
        return not (self.min_metrics or self.max_metrics or self.required_artifacts or self.required_tags
                    or self.lifecycle_steps)

    def applies_to(self, *, alias: str | None = None, environment: str | None = None) -> bool:
        if alias is not None:
            return self.aliases is None or alias in self.aliases
        if environment is not None:
            return self.environments is None or environment in self.environments
        return False

    def rules(self) -> list[str]:
        """Each rule in words."""
        out = [f"metric {k} >= {b:g}" for k, b in self.min_metrics.items()]
        out += [f"metric {k} <= {b:g}" for k, b in self.max_metrics.items()]
        out += [f"artifact {p} exists" for p in self.required_artifacts]
        for k, allowed in self.required_tags.items():
            out.append(f"tag {k} is set" if not allowed else f"tag {k} is one of {', '.join(allowed)}")
        out += [f"lifecycle step {s} done" for s in self.lifecycle_steps]
        return out

    def evaluate(self, facts: GateFacts) -> list[str]:
        """The failed rules, each as a sentence naming the value and the rule (empty: all passed)."""
        fails: list[str] = []
        run = f"run {facts.run_id}" if facts.run_id else "the version (it has no source run)"
        for bounds, cmp, word in ((self.min_metrics, lambda x, b: x >= b, "minimum"),
                                  (self.max_metrics, lambda x, b: x <= b, "maximum")):
            for k, b in bounds.items():
                x = facts.metrics.get(k)
                if x is None:
                    fails.append(f"metric {k!r} is required ({word} {b:g}) but {run} did not log it")
                elif not (isinstance(x, float) and math.isnan(x)) and cmp(x, b):
                    continue
                else:
                    fails.append(f"metric {k!r} is {x:g}; the {word} is {b:g}")
        for p in self.required_artifacts:
            if not any(f == p or f.startswith(p + "/") for f in facts.artifacts):
                fails.append(f"artifact {p!r} is required but {run} did not store it (store it with "
                             "lake.log_artifact(run_id, file, artifact_path=...))")
        for k, allowed in self.required_tags.items():
            have = facts.tags.get(k)
            if not have:
                fails.append(f"version tag {k!r} is required but not set (set it with "
                             f"lake.set_model_version_tag(name, version, {k!r}, ...))")
            elif allowed and have not in allowed:
                fails.append(f"version tag {k!r} is {have!r}; it must be one of {', '.join(map(repr, allowed))}")
        for s in self.lifecycle_steps:  # rule kind lifecycle_step_done
            if facts.steps_done is None:
                fails.append(f"lifecycle step {s!r} must be done, but this lake has no lifecycle component to ask")
            elif s not in facts.steps_done:
                fails.append(f"lifecycle step {s!r} is not done in any model project linking this model "
                             f"(complete it with 'lakeml tasks complete <project> {s}')")
        return fails

    def to_dict(self) -> dict[str, Any]:
        return {"min_metrics": dict(self.min_metrics), "max_metrics": dict(self.max_metrics),
                "required_artifacts": list(self.required_artifacts),
                "required_tags": {k: list(a) if a is not None else None for k, a in self.required_tags.items()},
                "aliases": list(self.aliases) if self.aliases is not None else None,
                "environments": list(self.environments) if self.environments is not None else None,
                **({"lifecycle_steps": list(self.lifecycle_steps)} if self.lifecycle_steps else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "Gates":
        d = d or {}
        return cls(dict(d.get("min_metrics") or {}), dict(d.get("max_metrics") or {}),
                   tuple(d.get("required_artifacts") or ()),
                   {k: tuple(a) if a is not None else None for k, a in (d.get("required_tags") or {}).items()},
                   tuple(d["aliases"]) if d.get("aliases") is not None else None,
                   tuple(d["environments"]) if d.get("environments") is not None else None,
                   tuple(d.get("lifecycle_steps") or ()))
